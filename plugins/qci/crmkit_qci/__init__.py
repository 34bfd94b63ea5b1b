"""crmkit-qci: assess customer management the QCI way, measure it from the CRM's data, plan the fixes, report."""
