"""The service plugin's tables (SQLAlchemy Core). Cases and their messages reference the core's customers;
the SLA policies, working hours and days off are the business's configuration (no customer data).

Every ``*_at`` column is timezone-aware UTC (:class:`crmkit.core.types.UTCDateTime`); durations are whole
working minutes. Users and teams are referenced by name, as the core's ``customers.owner`` is.
"""

import sqlalchemy as sa

from crmkit.plugin_api import Id, UTCDateTime, customer_fk, new_metadata
from crmkit.plugin_api import core_tables as tables

metadata = new_metadata()
#: The cases that missed an SLA target (the partial index the compliance report reads them by).
MISSED = "first_response_breached_at IS NOT NULL OR resolution_breached_at IS NOT NULL"

cases = sa.Table(
    "service_cases",
    metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=True),
    customer_fk(),
    sa.Column("subject", sa.String(300), nullable=False),
    sa.Column("description", sa.Text, nullable=True),
    sa.Column("channel", sa.String(30), nullable=False),
    sa.Column("category", sa.String(100), nullable=True),
    sa.Column("priority", sa.String(10), nullable=False),
    sa.Column("status", sa.String(30), nullable=False),
    sa.Column("assignee", sa.String(100), nullable=True),
    sa.Column("team", sa.String(200), nullable=True),
    sa.Column("resolution", sa.Text, nullable=True),
    sa.Column("created_by", sa.String(100), nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    # SLA clock: due times in business hours; paused_at is set while waiting on the customer.
    sa.Column("first_response_due_at", UTCDateTime, nullable=True),
    sa.Column("resolution_due_at", UTCDateTime, nullable=True),
    sa.Column("first_responded_at", UTCDateTime, nullable=True),
    sa.Column("resolved_at", UTCDateTime, nullable=True),
    sa.Column("closed_at", UTCDateTime, nullable=True),
    sa.Column("paused_at", UTCDateTime, nullable=True),
    sa.Column("first_response_breached_at", UTCDateTime, nullable=True),
    sa.Column("resolution_breached_at", UTCDateTime, nullable=True),
    # service_0002: the organization's contact, the order/product it concerns, the case it was merged into.
    sa.Column("contact_id", Id, sa.ForeignKey(tables.customers.c.id), nullable=True, index=True),
    sa.Column("order_id", Id, nullable=True),
    sa.Column("product", sa.String(100), nullable=True),
    sa.Column("merged_into_id", Id, sa.ForeignKey("service_cases.id"), nullable=True),
    sa.Column("external_id", sa.String(500), nullable=True),  # the Message-ID of the e-mail that opened it
    # service_0003: the customer group its SLA rule was chosen by, breach warnings, reopenings, the CSAT survey.
    sa.Column("customer_group", sa.String(100), nullable=True),
    sa.Column("first_response_warned_at", UTCDateTime, nullable=True),
    sa.Column("resolution_warned_at", UTCDateTime, nullable=True),
    sa.Column("reopen_count", sa.Integer, nullable=False, server_default="0"),
    sa.Column("csat_requested_at", UTCDateTime, nullable=True),
    sa.Column("csat_token_hash", sa.String(64), nullable=True),
    sa.Column("csat_score", sa.SmallInteger, nullable=True),
    sa.Column("csat_comment", sa.Text, nullable=True),
    sa.Column("csat_answered_at", UTCDateTime, nullable=True),
    sa.Index("ix_service_cases_customer_created", "customer_id", "created_at"),
    sa.Index("ix_service_cases_status_due", "status", "resolution_due_at"),
    sa.Index("ix_service_cases_assignee_status", "assignee", "status"),
    sa.Index("ix_service_cases_external_id", "external_id"),
    # service_0003: the reports — the backlog, and SLA compliance per team and agent (all cases, then the missed)
    sa.Index("ix_service_cases_status_created", "status", "created_at"),
    sa.Index("ix_service_cases_team_assignee_created", "team", "assignee", "created_at"),
    sa.Index(
        "ix_service_cases_missed",
        "team",
        "assignee",
        "created_at",
        "first_response_breached_at",
        "resolution_breached_at",
        sqlite_where=sa.text(MISSED),
        postgresql_where=sa.text(MISSED),
    ),
)

#: The columns a case shows (``Case``, the API, the CLI): all but the survey link's hash, which only csat.py reads.
case_columns = tuple(column for column in cases.c if column.name != "csat_token_hash")

messages = sa.Table(
    "service_case_messages",
    metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=True),
    sa.Column("case_id", Id, sa.ForeignKey("service_cases.id"), nullable=False),
    customer_fk(),  # the case's customer, kept here so export, erase and merge reach messages directly
    sa.Column("kind", sa.String(10), nullable=False),  # reply | note
    sa.Column("direction", sa.String(10), nullable=True),  # inbound | outbound for replies
    sa.Column("body", sa.Text, nullable=False),
    sa.Column("author", sa.String(100), nullable=False),
    sa.Column("interaction_id", Id, nullable=True),  # the core interaction logged with it
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("external_id", sa.String(500), nullable=True),  # service_0002: an e-mail's Message-ID, for threading
    sa.Index("ix_service_case_messages_case", "case_id", "id"),
    sa.Index("ix_service_case_messages_external_id", "external_id"),
)

watchers = sa.Table(
    "service_case_watchers",
    metadata,
    sa.Column("case_id", Id, sa.ForeignKey("service_cases.id"), primary_key=True),
    sa.Column("username", sa.String(100), primary_key=True),
)

policies = sa.Table(
    "service_sla_policies",
    metadata,
    sa.Column("priority", sa.String(10), primary_key=True),
    sa.Column("first_response_minutes", sa.Integer, nullable=False),
    sa.Column("resolution_minutes", sa.Integer, nullable=False),
)

hours = sa.Table(
    "service_hours",
    metadata,
    sa.Column("team", sa.String(200), primary_key=True),  # "" = the business's default week
    sa.Column("weekday", sa.Integer, primary_key=True, autoincrement=False),  # 0 = Monday
    # minutes after local midnight; several rows a day are intervals around breaks (service_0003)
    sa.Column("opens", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("closes", sa.Integer, nullable=False),
)

sla_rules = sa.Table(  # service_0003: SLA targets per customer group, breach warnings and escalation actions
    "service_sla_rules",
    metadata,
    sa.Column("customer_group", sa.String(100), primary_key=True),  # "" = every group
    sa.Column("priority", sa.String(10), primary_key=True),
    sa.Column("first_response_minutes", sa.Integer, nullable=True),  # None: the priority's policy
    sa.Column("resolution_minutes", sa.Integer, nullable=True),
    sa.Column("warn_minutes", sa.Integer, nullable=True),  # warn this many minutes before a target is missed
    sa.Column("escalate_to", sa.String(100), nullable=True),  # on a breach: reassign to this user …
    sa.Column("escalate_team", sa.String(200), nullable=True),  # … and/or this team
    sa.Column("notify", sa.String(100), nullable=True),  # … tell this user (the team lead): a watcher, in the event
    sa.Column("raise_priority", sa.Boolean, nullable=False, server_default=sa.false()),
)

days_off = sa.Table(
    "service_days_off",
    metadata,
    sa.Column("day", sa.Date, primary_key=True),
    sa.Column("team", sa.String(200), primary_key=True),  # "" = the whole company
    sa.Column("note", sa.String(200), nullable=False),
)

# service_0002: attachments, intake, routing and canned replies.

attachments = sa.Table(
    "service_case_attachments",
    metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=True),
    sa.Column("case_id", Id, sa.ForeignKey("service_cases.id"), nullable=False, index=True),
    customer_fk(),
    sa.Column("name", sa.String(300), nullable=False),
    sa.Column("url", sa.String(2000), nullable=True),  # a URL or a storage key: the file itself lives elsewhere
    sa.Column("storage_key", sa.String(500), nullable=True),
    sa.Column("size", sa.BigInteger, nullable=True),
    sa.Column("content_type", sa.String(200), nullable=True),
    sa.Column("created_by", sa.String(100), nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
)

rejected_payloads = sa.Table(
    "service_rejected_payloads",
    metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=True),
    customer_fk(nullable=True),  # the customer the sender's address matched, if any
    sa.Column("source", sa.String(20), nullable=False),  # form | message
    sa.Column("field", sa.String(100), nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("payload", sa.Text, nullable=False),
    sa.Column("received_at", UTCDateTime, nullable=False, index=True),
)

intake_fingerprints = sa.Table(
    "service_intake_fingerprints",
    metadata,
    sa.Column("fingerprint", sa.String(64), primary_key=True),  # sha256 of sender, subject and body
    sa.Column("case_id", Id, sa.ForeignKey("service_cases.id"), nullable=False),
    customer_fk(),
    sa.Column("seen_at", UTCDateTime, nullable=False),
)

routing_rules = sa.Table(
    "service_routing_rules",
    metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=True),
    sa.Column("position", sa.Integer, nullable=False),
    sa.Column("category", sa.String(100), nullable=True),
    sa.Column("channel", sa.String(30), nullable=True),
    sa.Column("customer_group", sa.String(100), nullable=True),
    sa.Column("language", sa.String(10), nullable=True),
    sa.Column("team", sa.String(200), nullable=False),
    sa.Column("strategy", sa.String(20), nullable=False),  # round_robin | least_loaded | team
    sa.Column("created_at", UTCDateTime, nullable=False),
)

routing_cursors = sa.Table(
    "service_routing_cursors",
    metadata,
    sa.Column("team", sa.String(200), primary_key=True),
    sa.Column("last_assignee", sa.String(100), nullable=True),
)

agent_shifts = sa.Table(
    "service_agent_shifts",
    metadata,
    sa.Column("username", sa.String(100), primary_key=True),
    sa.Column("weekday", sa.Integer, primary_key=True, autoincrement=False),  # 0 = Monday
    sa.Column("opens", sa.Integer, nullable=False),  # minutes after local midnight
    sa.Column("closes", sa.Integer, nullable=False),
)

canned_replies = sa.Table(
    "service_canned_replies",
    metadata,
    sa.Column("key", sa.String(100), primary_key=True),
    sa.Column("language", sa.String(10), primary_key=True),  # vi | en
    sa.Column("title", sa.String(200), nullable=False),
    sa.Column("body", sa.Text, nullable=False),
    sa.Column("updated_by", sa.String(100), nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
)

#: The customer-owned tables of service_0002, exported and erased with the customer's cases (children first).
CASE_DATA = (attachments, intake_fingerprints, rejected_payloads)
