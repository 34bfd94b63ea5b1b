"""crmkit-notes: free-text notes about customers, as a crmkit plugin (``crm.notes``, ``crmkit notes``)."""
