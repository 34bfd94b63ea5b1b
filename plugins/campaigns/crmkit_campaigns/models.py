"""The campaigns plugin's tables: segments, campaigns and their variants, runs, the message outbox,
tracking events, suppression lists and the keys that sign tracking links.

``campaign_messages`` is both the outbox and the record of who was targeted: one row per
customer, campaign and period (``""`` for a one-off campaign, the year for a yearly occasion),
written in the run's transaction; excluded customers (no consent, frequency cap…) and the
holdout group get a row too, with their status, so every report is a query over it.
"""

from __future__ import annotations

import sqlalchemy as sa

from crmkit.plugin_api import Id, JSONType, UTCDateTime, customer_fk, new_metadata

metadata = new_metadata()

segments = sa.Table(
    "campaign_segments",
    metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(200), nullable=False, unique=True),
    sa.Column("expression", sa.Text, nullable=False),
    sa.Column("description", sa.Text),
    sa.Column("created_by", sa.String(100), nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
)

campaigns = sa.Table(
    "campaigns",
    metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(200), nullable=False, unique=True),
    sa.Column("objective", sa.String(500)),
    sa.Column("owner", sa.String(100)),
    sa.Column("status", sa.String(20), nullable=False),  # draft | scheduled | running | done | cancelled
    sa.Column("channel", sa.String(30), nullable=False),
    sa.Column("segment_id", Id, sa.ForeignKey("campaign_segments.id")),  # NULL: every active customer
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("budget_minor", sa.BigInteger),
    sa.Column("cost_fixed_minor", sa.BigInteger, nullable=False),
    sa.Column("cost_per_message_minor", sa.BigInteger, nullable=False),
    sa.Column("holdout_bp", sa.Integer, nullable=False),  # basis points of the eligible audience held out
    sa.Column("attribution_days", sa.Integer, nullable=False),
    sa.Column("occasion", sa.String(30)),  # birthday | first_purchase | tet | founding_day | valentine | …
    sa.Column("days_before", sa.Integer, nullable=False),
    sa.Column("occasion_checked_through", sa.Date),  # the last local day run-due has handled
    sa.Column("scheduled_at", UTCDateTime),
    sa.Column("scheduled_by", sa.String(100)),  # the user whose scope run-due runs it with (NULL: the system)
    sa.Column("started_at", UTCDateTime),
    sa.Column("finished_at", UTCDateTime),
    sa.Column("created_by", sa.String(100), nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.Index("ix_campaigns_status_scheduled_at", "status", "scheduled_at"),
)

variants = sa.Table(
    "campaign_variants",
    metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=True),
    sa.Column("campaign_id", Id, sa.ForeignKey("campaigns.id"), nullable=False),
    sa.Column("name", sa.String(50), nullable=False),
    sa.Column("weight", sa.Integer, nullable=False),
    sa.Column("subject", sa.String(300)),
    sa.Column("body", sa.Text, nullable=False),
    sa.UniqueConstraint("campaign_id", "name"),
)

runs = sa.Table(
    "campaign_runs",
    metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=True),
    sa.Column("campaign_id", Id, sa.ForeignKey("campaigns.id"), nullable=False, index=True),
    sa.Column("period", sa.String(10), nullable=False),
    sa.Column("kind", sa.String(20), nullable=False),  # manual | scheduled | occasion
    sa.Column("occasion_date", sa.Date),
    sa.Column("started_at", UTCDateTime, nullable=False),
    sa.Column("actor", sa.String(100), nullable=False),
    sa.Column("expression", sa.Text),  # the audience expression as it was when the run was prepared
    sa.Column("audience", sa.Integer, nullable=False),
    sa.Column("queued", sa.Integer, nullable=False),
    sa.Column("holdout", sa.Integer, nullable=False),
    sa.Column("excluded", JSONType, nullable=False),  # {reason: count}
)

messages = sa.Table(
    "campaign_messages",
    metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=True),
    sa.Column("campaign_id", Id, sa.ForeignKey("campaigns.id"), nullable=False),
    sa.Column("run_id", Id, sa.ForeignKey("campaign_runs.id"), nullable=False),
    sa.Column("variant_id", Id, sa.ForeignKey("campaign_variants.id")),  # NULL for the holdout and excluded
    customer_fk(index=False),  # the customer now (merges re-point it)
    sa.Column(
        "recipient_id", Id, nullable=False
    ),  # who the row stands for in the unique key (see customer_data.merge_many)
    sa.Column("period", sa.String(10), nullable=False),
    sa.Column("channel", sa.String(30), nullable=False),
    # excluded | holdout | queued | claimed | sending | sent | unconfirmed | failed | bounced | cancelled
    sa.Column("status", sa.String(15), nullable=False),
    sa.Column("reason", sa.String(30)),  # why excluded / failed / cancelled
    sa.Column("queued_at", UTCDateTime, nullable=False),
    sa.Column("next_attempt_at", UTCDateTime),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("lease_until", UTCDateTime),
    sa.Column("worker", sa.String(64)),
    sa.Column("address", sa.String(320)),  # where it was sent (set when sending)
    sa.Column("provider_message_id", sa.String(250)),
    sa.Column("last_error", sa.Text),
    sa.Column("sent_at", UTCDateTime),
    sa.Column("delivered_at", UTCDateTime),
    sa.Column("bounced_at", UTCDateTime),
    sa.Column("opened_at", UTCDateTime),
    sa.Column("clicked_at", UTCDateTime),
    sa.Column("responded_at", UTCDateTime),
    sa.Column("unsubscribed_at", UTCDateTime),
    # a transactional message's own template and values ({"subject", "body", "values"}); NULL in campaign runs
    sa.Column("content", JSONType),
    sa.UniqueConstraint("campaign_id", "period", "recipient_id"),
    sa.Index("ix_campaign_messages_customer_id_queued_at", "customer_id", "queued_at"),
    sa.Index("ix_campaign_messages_provider_message_id", "provider_message_id"),
)
#: The dispatcher's work queue (in claim order) and its lease recovery, kept small: only rows waiting or in flight.
sa.Index(
    "ix_campaign_messages_due",
    messages.c.next_attempt_at,
    messages.c.id,
    sqlite_where=messages.c.status == "queued",
    postgresql_where=messages.c.status == "queued",
)
sa.Index(
    "ix_campaign_messages_in_flight",
    messages.c.lease_until,
    sqlite_where=messages.c.status.in_(("claimed", "sending")),
    postgresql_where=messages.c.status.in_(("claimed", "sending")),
)

events = sa.Table(
    "campaign_events",
    metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=True),
    sa.Column("message_id", Id, sa.ForeignKey("campaign_messages.id"), nullable=False, index=True),
    sa.Column("campaign_id", Id, sa.ForeignKey("campaigns.id"), nullable=False),
    customer_fk(index=False),
    sa.Column("kind", sa.String(20), nullable=False),
    sa.Column("at", UTCDateTime, nullable=False),
    sa.Column("detail", JSONType, nullable=False),
    sa.Index("ix_campaign_events_customer_id_at", "customer_id", "at"),
    sa.Index("ix_campaign_events_campaign_id_kind", "campaign_id", "kind"),
)

suppressions = sa.Table(
    "campaign_suppressions",
    metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=True),
    sa.Column("channel", sa.String(30)),  # NULL: every channel
    sa.Column("address", sa.String(320), index=True),  # a normalized e-mail or E.164 phone number
    customer_fk(nullable=True),
    sa.Column("reason", sa.String(200), nullable=False),
    sa.Column("created_by", sa.String(100), nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.CheckConstraint("address IS NOT NULL OR customer_id IS NOT NULL", name="address_or_customer"),
)

signing_keys = sa.Table(
    "campaign_signing_keys",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("secret", sa.String(64), nullable=False),  # wrapped with the CRM secret key (crmkit.core.secrets)
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("nonce", sa.String(32)),  # null: an older key in clear, wrapped when next loaded
    sa.Column("key_check", sa.String(16)),
    sa.Column("expires_at", UTCDateTime),  # end of an old key's grace period after a rotation
)

#: Tables holding rows about a customer, children first (the order erasure deletes in).
CUSTOMER_TABLES = (events, messages, suppressions)
