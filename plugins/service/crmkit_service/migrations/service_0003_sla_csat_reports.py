"""Service, issue 17 items 4, 5 and 7: SLA rules per customer group with warnings and escalation, working hours
with breaks (several intervals a day), the case's customer group, warning marks, reopen count and CSAT survey, and
an index for the backlog report.

Revision ID: service_0003
Revises: service_0002
Create Date: 2026-12-07 12:45:00
"""

import sqlalchemy as sa
from alembic import op

import crmkit.core.types

revision = "service_0003"
down_revision = "service_0002"
branch_labels = None
depends_on = None
MISSED = "first_response_breached_at IS NOT NULL OR resolution_breached_at IS NOT NULL"


def upgrade() -> None:
    op.create_table(
        "service_sla_rules",
        sa.Column("customer_group", sa.String(length=100), nullable=False),
        sa.Column("priority", sa.String(length=10), nullable=False),
        sa.Column("first_response_minutes", sa.Integer(), nullable=True),
        sa.Column("resolution_minutes", sa.Integer(), nullable=True),
        sa.Column("warn_minutes", sa.Integer(), nullable=True),
        sa.Column("escalate_to", sa.String(length=100), nullable=True),
        sa.Column("escalate_team", sa.String(length=200), nullable=True),
        sa.Column("notify", sa.String(length=100), nullable=True),
        sa.Column("raise_priority", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.PrimaryKeyConstraint("customer_group", "priority", name=op.f("pk_service_sla_rules")),
    )
    with op.batch_alter_table("service_hours", schema=None) as batch_op:
        batch_op.drop_constraint("pk_service_hours", type_="primary")
        batch_op.create_primary_key("pk_service_hours", ["team", "weekday", "opens"])
    utc = crmkit.core.types.UTCDateTime(timezone=True)
    with op.batch_alter_table("service_cases", schema=None) as batch_op:
        batch_op.add_column(sa.Column("customer_group", sa.String(length=100), nullable=True))
        batch_op.add_column(sa.Column("first_response_warned_at", utc, nullable=True))
        batch_op.add_column(sa.Column("resolution_warned_at", utc, nullable=True))
        batch_op.add_column(sa.Column("reopen_count", sa.Integer(), server_default="0", nullable=False))
        batch_op.add_column(sa.Column("csat_requested_at", utc, nullable=True))
        batch_op.add_column(sa.Column("csat_token_hash", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("csat_score", sa.SmallInteger(), nullable=True))
        batch_op.add_column(sa.Column("csat_comment", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("csat_answered_at", utc, nullable=True))
        batch_op.create_index("ix_service_cases_status_created", ["status", "created_at"], unique=False)
        batch_op.create_index(
            "ix_service_cases_team_assignee_created", ["team", "assignee", "created_at"], unique=False
        )
        batch_op.create_index(
            "ix_service_cases_missed",
            ["team", "assignee", "created_at", "first_response_breached_at", "resolution_breached_at"],
            unique=False,
            sqlite_where=sa.text(MISSED),
            postgresql_where=sa.text(MISSED),
        )


def downgrade() -> None:
    with op.batch_alter_table("service_cases", schema=None) as batch_op:
        batch_op.drop_index("ix_service_cases_missed")
        batch_op.drop_index("ix_service_cases_team_assignee_created")
        batch_op.drop_index("ix_service_cases_status_created")
        for column in (
            "csat_answered_at",
            "csat_comment",
            "csat_score",
            "csat_token_hash",
            "csat_requested_at",
            "reopen_count",
            "resolution_warned_at",
            "first_response_warned_at",
            "customer_group",
        ):
            batch_op.drop_column(column)
    op.execute(
        "DELETE FROM service_hours WHERE opens <> (SELECT MIN(h.opens) FROM service_hours h "
        "WHERE h.team = service_hours.team AND h.weekday = service_hours.weekday)"
    )
    with op.batch_alter_table("service_hours", schema=None) as batch_op:
        batch_op.drop_constraint("pk_service_hours", type_="primary")
        batch_op.create_primary_key("pk_service_hours", ["team", "weekday"])
    op.drop_table("service_sla_rules")
