"""The service plugin's tables (SQLAlchemy Core). Cases and their messages reference the core's customers;
the SLA policies, working hours and days off are the business's configuration (no customer data).

Every ``*_at`` column is timezone-aware UTC (:class:`crmkit.core.types.UTCDateTime`); durations are whole
working minutes. Users and teams are referenced by name, as the core's ``customers.owner`` is.
"""

import sqlalchemy as sa

from crmkit.core.types import Id, UTCDateTime, customer_fk, new_metadata

metadata = new_metadata()

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
    sa.Index("ix_service_cases_customer_created", "customer_id", "created_at"),
    sa.Index("ix_service_cases_status_due", "status", "resolution_due_at"),
    sa.Index("ix_service_cases_assignee_status", "assignee", "status"),
)

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
    sa.Index("ix_service_case_messages_case", "case_id", "id"),
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
    sa.Column("opens", sa.Integer, nullable=False),  # minutes after local midnight
    sa.Column("closes", sa.Integer, nullable=False),
)

days_off = sa.Table(
    "service_days_off",
    metadata,
    sa.Column("day", sa.Date, primary_key=True),
    sa.Column("team", sa.String(200), primary_key=True),  # "" = the whole company
    sa.Column("note", sa.String(200), nullable=False),
)
