"""Service schema: cases, their conversation and watchers, SLA policies, working hours and days off.

Revision ID: service_0001
Revises: (base)
Create Date: 2026-12-07 02:07:49.779064
"""

import sqlalchemy as sa
from alembic import op

import crmkit.core.types

revision = "service_0001"
down_revision = None
branch_labels = ("service",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "service_cases",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("customer_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("subject", sa.String(length=300), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("channel", sa.String(length=30), nullable=False),
        sa.Column("category", sa.String(length=100), nullable=True),
        sa.Column("priority", sa.String(length=10), nullable=False),
        sa.Column("status", sa.String(length=30), nullable=False),
        sa.Column("assignee", sa.String(length=100), nullable=True),
        sa.Column("team", sa.String(length=200), nullable=True),
        sa.Column("resolution", sa.Text(), nullable=True),
        sa.Column("created_by", sa.String(length=100), nullable=False),
        sa.Column("created_at", crmkit.core.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", crmkit.core.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("first_response_due_at", crmkit.core.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("resolution_due_at", crmkit.core.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("first_responded_at", crmkit.core.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("resolved_at", crmkit.core.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("closed_at", crmkit.core.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("paused_at", crmkit.core.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("first_response_breached_at", crmkit.core.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("resolution_breached_at", crmkit.core.types.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["customer_id"], ["customers.id"], name=op.f("fk_service_cases_customer_id_customers")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_service_cases")),
    )
    with op.batch_alter_table("service_cases", schema=None) as batch_op:
        batch_op.create_index("ix_service_cases_assignee_status", ["assignee", "status"], unique=False)
        batch_op.create_index("ix_service_cases_customer_created", ["customer_id", "created_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_service_cases_customer_id"), ["customer_id"], unique=False)
        batch_op.create_index("ix_service_cases_status_due", ["status", "resolution_due_at"], unique=False)

    op.create_table(
        "service_days_off",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("team", sa.String(length=200), nullable=False),
        sa.Column("note", sa.String(length=200), nullable=False),
        sa.PrimaryKeyConstraint("day", "team", name=op.f("pk_service_days_off")),
    )
    op.create_table(
        "service_hours",
        sa.Column("team", sa.String(length=200), nullable=False),
        sa.Column("weekday", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("opens", sa.Integer(), nullable=False),
        sa.Column("closes", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("team", "weekday", name=op.f("pk_service_hours")),
    )
    op.create_table(
        "service_sla_policies",
        sa.Column("priority", sa.String(length=10), nullable=False),
        sa.Column("first_response_minutes", sa.Integer(), nullable=False),
        sa.Column("resolution_minutes", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("priority", name=op.f("pk_service_sla_policies")),
    )
    op.create_table(
        "service_case_messages",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("case_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("customer_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("direction", sa.String(length=10), nullable=True),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("author", sa.String(length=100), nullable=False),
        sa.Column("interaction_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("created_at", crmkit.core.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["case_id"], ["service_cases.id"], name=op.f("fk_service_case_messages_case_id_service_cases")
        ),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customers.id"], name=op.f("fk_service_case_messages_customer_id_customers")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_service_case_messages")),
    )
    with op.batch_alter_table("service_case_messages", schema=None) as batch_op:
        batch_op.create_index("ix_service_case_messages_case", ["case_id", "id"], unique=False)
        batch_op.create_index(batch_op.f("ix_service_case_messages_customer_id"), ["customer_id"], unique=False)

    op.create_table(
        "service_case_watchers",
        sa.Column("case_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("username", sa.String(length=100), nullable=False),
        sa.ForeignKeyConstraint(
            ["case_id"], ["service_cases.id"], name=op.f("fk_service_case_watchers_case_id_service_cases")
        ),
        sa.PrimaryKeyConstraint("case_id", "username", name=op.f("pk_service_case_watchers")),
    )


def downgrade() -> None:
    op.drop_table("service_case_watchers")
    with op.batch_alter_table("service_case_messages", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_service_case_messages_customer_id"))
        batch_op.drop_index("ix_service_case_messages_case")

    op.drop_table("service_case_messages")
    op.drop_table("service_sla_policies")
    op.drop_table("service_hours")
    op.drop_table("service_days_off")
    with op.batch_alter_table("service_cases", schema=None) as batch_op:
        batch_op.drop_index("ix_service_cases_status_due")
        batch_op.drop_index(batch_op.f("ix_service_cases_customer_id"))
        batch_op.drop_index("ix_service_cases_customer_created")
        batch_op.drop_index("ix_service_cases_assignee_status")

    op.drop_table("service_cases")
