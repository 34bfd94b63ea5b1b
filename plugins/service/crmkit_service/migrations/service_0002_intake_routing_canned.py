"""Service, issue 17 items 1–3 and 6: a case's contact, order, product and merge pointer, attachments, messages' external
ids, rejected intake payloads and duplicate fingerprints, routing rules, cursors and agent shifts, canned replies.

Revision ID: service_0002
Revises: service_0001
Create Date: 2026-12-07 12:20:38.412038
"""

import sqlalchemy as sa
from alembic import op

import crmkit.core.types

revision = "service_0002"
down_revision = "service_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "service_agent_shifts",
        sa.Column("username", sa.String(length=100), nullable=False),
        sa.Column("weekday", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("opens", sa.Integer(), nullable=False),
        sa.Column("closes", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("username", "weekday", name=op.f("pk_service_agent_shifts")),
    )
    op.create_table(
        "service_canned_replies",
        sa.Column("key", sa.String(length=100), nullable=False),
        sa.Column("language", sa.String(length=10), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("updated_by", sa.String(length=100), nullable=False),
        sa.Column("updated_at", crmkit.core.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("key", "language", name=op.f("pk_service_canned_replies")),
    )
    op.create_table(
        "service_rejected_payloads",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("customer_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("source", sa.String(length=20), nullable=False),
        sa.Column("field", sa.String(length=100), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("received_at", crmkit.core.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customers.id"], name=op.f("fk_service_rejected_payloads_customer_id_customers")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_service_rejected_payloads")),
    )
    with op.batch_alter_table("service_rejected_payloads", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_service_rejected_payloads_customer_id"), ["customer_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_service_rejected_payloads_received_at"), ["received_at"], unique=False)

    op.create_table(
        "service_routing_cursors",
        sa.Column("team", sa.String(length=200), nullable=False),
        sa.Column("last_assignee", sa.String(length=100), nullable=True),
        sa.PrimaryKeyConstraint("team", name=op.f("pk_service_routing_cursors")),
    )
    op.create_table(
        "service_routing_rules",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("category", sa.String(length=100), nullable=True),
        sa.Column("channel", sa.String(length=30), nullable=True),
        sa.Column("customer_group", sa.String(length=100), nullable=True),
        sa.Column("language", sa.String(length=10), nullable=True),
        sa.Column("team", sa.String(length=200), nullable=False),
        sa.Column("strategy", sa.String(length=20), nullable=False),
        sa.Column("created_at", crmkit.core.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_service_routing_rules")),
    )
    op.create_table(
        "service_case_attachments",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("case_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("customer_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("name", sa.String(length=300), nullable=False),
        sa.Column("url", sa.String(length=2000), nullable=True),
        sa.Column("storage_key", sa.String(length=500), nullable=True),
        sa.Column("size", sa.BigInteger(), nullable=True),
        sa.Column("content_type", sa.String(length=200), nullable=True),
        sa.Column("created_by", sa.String(length=100), nullable=False),
        sa.Column("created_at", crmkit.core.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["case_id"], ["service_cases.id"], name=op.f("fk_service_case_attachments_case_id_service_cases")
        ),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customers.id"], name=op.f("fk_service_case_attachments_customer_id_customers")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_service_case_attachments")),
    )
    with op.batch_alter_table("service_case_attachments", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_service_case_attachments_case_id"), ["case_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_service_case_attachments_customer_id"), ["customer_id"], unique=False)

    op.create_table(
        "service_intake_fingerprints",
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("case_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("customer_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("seen_at", crmkit.core.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["case_id"], ["service_cases.id"], name=op.f("fk_service_intake_fingerprints_case_id_service_cases")
        ),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customers.id"], name=op.f("fk_service_intake_fingerprints_customer_id_customers")
        ),
        sa.PrimaryKeyConstraint("fingerprint", name=op.f("pk_service_intake_fingerprints")),
    )
    with op.batch_alter_table("service_intake_fingerprints", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_service_intake_fingerprints_customer_id"), ["customer_id"], unique=False)

    with op.batch_alter_table("service_case_messages", schema=None) as batch_op:
        batch_op.add_column(sa.Column("external_id", sa.String(length=500), nullable=True))
        batch_op.create_index("ix_service_case_messages_external_id", ["external_id"], unique=False)

    with op.batch_alter_table("service_cases", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("contact_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True)
        )
        batch_op.add_column(sa.Column("order_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True))
        batch_op.add_column(sa.Column("product", sa.String(length=100), nullable=True))
        batch_op.add_column(
            sa.Column("merged_into_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True)
        )
        batch_op.add_column(sa.Column("external_id", sa.String(length=500), nullable=True))
        batch_op.create_index("ix_service_cases_external_id", ["external_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_service_cases_contact_id"), ["contact_id"], unique=False)
        batch_op.create_foreign_key(
            batch_op.f("fk_service_cases_merged_into_id_service_cases"), "service_cases", ["merged_into_id"], ["id"]
        )
        batch_op.create_foreign_key(
            batch_op.f("fk_service_cases_contact_id_customers"), "customers", ["contact_id"], ["id"]
        )


def downgrade() -> None:
    with op.batch_alter_table("service_cases", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_service_cases_contact_id_customers"), type_="foreignkey")
        batch_op.drop_constraint(batch_op.f("fk_service_cases_merged_into_id_service_cases"), type_="foreignkey")
        batch_op.drop_index(batch_op.f("ix_service_cases_contact_id"))
        batch_op.drop_index("ix_service_cases_external_id")
        batch_op.drop_column("external_id")
        batch_op.drop_column("merged_into_id")
        batch_op.drop_column("product")
        batch_op.drop_column("order_id")
        batch_op.drop_column("contact_id")

    with op.batch_alter_table("service_case_messages", schema=None) as batch_op:
        batch_op.drop_index("ix_service_case_messages_external_id")
        batch_op.drop_column("external_id")

    with op.batch_alter_table("service_intake_fingerprints", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_service_intake_fingerprints_customer_id"))

    op.drop_table("service_intake_fingerprints")
    with op.batch_alter_table("service_case_attachments", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_service_case_attachments_customer_id"))
        batch_op.drop_index(batch_op.f("ix_service_case_attachments_case_id"))

    op.drop_table("service_case_attachments")
    op.drop_table("service_routing_rules")
    op.drop_table("service_routing_cursors")
    with op.batch_alter_table("service_rejected_payloads", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_service_rejected_payloads_received_at"))
        batch_op.drop_index(batch_op.f("ix_service_rejected_payloads_customer_id"))

    op.drop_table("service_rejected_payloads")
    op.drop_table("service_canned_replies")
    op.drop_table("service_agent_shifts")
