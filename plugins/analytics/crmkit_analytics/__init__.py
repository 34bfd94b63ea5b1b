"""crmkit-analytics: RFM, customer types, PCV, share of wallet, lifetime value (BG/NBD + Gamma-Gamma), KPIs and reports."""
