"""crmkit-campaigns: segments, consented multichannel campaigns, occasions, tracking and ROI (``crm.campaigns``)."""
