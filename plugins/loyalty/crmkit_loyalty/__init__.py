"""crmkit-loyalty: loyalty points, tiers and rewards built on the sales plugin's order hooks (``crm.loyalty``)."""
