"""crmkit-sales: deals, quotes, orders, payments, contracts and appointments around each customer."""
