"""crmkit-service: customer service cases and SLAs as a crmkit plugin."""
