"""Campaigns schema: segments, campaigns and variants, runs, the message outbox, tracking events,
suppression lists and link-signing keys.

Revision ID: campaigns_0001
Revises: (base)
Create Date: 2026-11-23 10:27:25.619506
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import crmkit.core.types

revision = "campaigns_0001"
down_revision = None
branch_labels = ("campaigns",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "campaign_segments",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("expression", sa.Text(), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("created_by", sa.String(length=100), nullable=False),
        sa.Column("created_at", crmkit.core.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", crmkit.core.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_campaign_segments")),
        sa.UniqueConstraint("name", name=op.f("uq_campaign_segments_name")),
    )
    op.create_table(
        "campaign_signing_keys",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("secret", sa.String(length=64), nullable=False),
        sa.Column("created_at", crmkit.core.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_campaign_signing_keys")),
    )
    op.create_table(
        "campaign_suppressions",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("channel", sa.String(length=30), nullable=True),
        sa.Column("address", sa.String(length=320), nullable=True),
        sa.Column("customer_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("reason", sa.String(length=200), nullable=False),
        sa.Column("created_by", sa.String(length=100), nullable=False),
        sa.Column("created_at", crmkit.core.types.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "address IS NOT NULL OR customer_id IS NOT NULL", name=op.f("ck_campaign_suppressions_address_or_customer")
        ),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customers.id"], name=op.f("fk_campaign_suppressions_customer_id_customers")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_campaign_suppressions")),
    )
    with op.batch_alter_table("campaign_suppressions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_campaign_suppressions_address"), ["address"], unique=False)
        batch_op.create_index(batch_op.f("ix_campaign_suppressions_customer_id"), ["customer_id"], unique=False)

    op.create_table(
        "campaigns",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("objective", sa.String(length=500), nullable=True),
        sa.Column("owner", sa.String(length=100), nullable=True),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("channel", sa.String(length=30), nullable=False),
        sa.Column("segment_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("budget_minor", sa.BigInteger(), nullable=True),
        sa.Column("cost_fixed_minor", sa.BigInteger(), nullable=False),
        sa.Column("cost_per_message_minor", sa.BigInteger(), nullable=False),
        sa.Column("holdout_bp", sa.Integer(), nullable=False),
        sa.Column("attribution_days", sa.Integer(), nullable=False),
        sa.Column("occasion", sa.String(length=30), nullable=True),
        sa.Column("days_before", sa.Integer(), nullable=False),
        sa.Column("occasion_checked_through", sa.Date(), nullable=True),
        sa.Column("scheduled_at", crmkit.core.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("started_at", crmkit.core.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("finished_at", crmkit.core.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_by", sa.String(length=100), nullable=False),
        sa.Column("created_at", crmkit.core.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", crmkit.core.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["segment_id"], ["campaign_segments.id"], name=op.f("fk_campaigns_segment_id_campaign_segments")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_campaigns")),
        sa.UniqueConstraint("name", name=op.f("uq_campaigns_name")),
    )
    with op.batch_alter_table("campaigns", schema=None) as batch_op:
        batch_op.create_index("ix_campaigns_status_scheduled_at", ["status", "scheduled_at"], unique=False)

    op.create_table(
        "campaign_runs",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("campaign_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("period", sa.String(length=10), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("occasion_date", sa.Date(), nullable=True),
        sa.Column("started_at", crmkit.core.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=100), nullable=False),
        sa.Column("expression", sa.Text(), nullable=True),
        sa.Column("audience", sa.Integer(), nullable=False),
        sa.Column("queued", sa.Integer(), nullable=False),
        sa.Column("holdout", sa.Integer(), nullable=False),
        sa.Column(
            "excluded", sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"), nullable=False
        ),
        sa.ForeignKeyConstraint(["campaign_id"], ["campaigns.id"], name=op.f("fk_campaign_runs_campaign_id_campaigns")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_campaign_runs")),
    )
    with op.batch_alter_table("campaign_runs", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_campaign_runs_campaign_id"), ["campaign_id"], unique=False)

    op.create_table(
        "campaign_variants",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("campaign_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("name", sa.String(length=50), nullable=False),
        sa.Column("weight", sa.Integer(), nullable=False),
        sa.Column("subject", sa.String(length=300), nullable=True),
        sa.Column("body", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["campaign_id"], ["campaigns.id"], name=op.f("fk_campaign_variants_campaign_id_campaigns")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_campaign_variants")),
        sa.UniqueConstraint("campaign_id", "name", name=op.f("uq_campaign_variants_campaign_id_name")),
    )
    op.create_table(
        "campaign_messages",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("campaign_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("run_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("variant_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("customer_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("recipient_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("period", sa.String(length=10), nullable=False),
        sa.Column("channel", sa.String(length=30), nullable=False),
        sa.Column("status", sa.String(length=15), nullable=False),
        sa.Column("reason", sa.String(length=30), nullable=True),
        sa.Column("queued_at", crmkit.core.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("next_attempt_at", crmkit.core.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("lease_until", crmkit.core.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("worker", sa.String(length=64), nullable=True),
        sa.Column("address", sa.String(length=320), nullable=True),
        sa.Column("provider_message_id", sa.String(length=250), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("sent_at", crmkit.core.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("delivered_at", crmkit.core.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("bounced_at", crmkit.core.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("opened_at", crmkit.core.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("clicked_at", crmkit.core.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("responded_at", crmkit.core.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("unsubscribed_at", crmkit.core.types.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["campaign_id"], ["campaigns.id"], name=op.f("fk_campaign_messages_campaign_id_campaigns")
        ),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customers.id"], name=op.f("fk_campaign_messages_customer_id_customers")
        ),
        sa.ForeignKeyConstraint(
            ["run_id"], ["campaign_runs.id"], name=op.f("fk_campaign_messages_run_id_campaign_runs")
        ),
        sa.ForeignKeyConstraint(
            ["variant_id"], ["campaign_variants.id"], name=op.f("fk_campaign_messages_variant_id_campaign_variants")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_campaign_messages")),
        sa.UniqueConstraint(
            "campaign_id", "period", "recipient_id", name=op.f("uq_campaign_messages_campaign_id_period_recipient_id")
        ),
    )
    with op.batch_alter_table("campaign_messages", schema=None) as batch_op:
        batch_op.create_index("ix_campaign_messages_customer_id_queued_at", ["customer_id", "queued_at"], unique=False)
        batch_op.create_index(
            "ix_campaign_messages_due",
            ["next_attempt_at"],
            unique=False,
            sqlite_where=sa.text("status = 'queued'"),
            postgresql_where=sa.text("status = 'queued'"),
        )
        batch_op.create_index(
            "ix_campaign_messages_in_flight",
            ["lease_until"],
            unique=False,
            sqlite_where=sa.text("status IN ('claimed', 'sending')"),
            postgresql_where=sa.text("status IN ('claimed', 'sending')"),
        )
        batch_op.create_index("ix_campaign_messages_provider_message_id", ["provider_message_id"], unique=False)

    op.create_table(
        "campaign_events",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("message_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("campaign_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("customer_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("at", crmkit.core.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column(
            "detail", sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"), nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["campaign_id"], ["campaigns.id"], name=op.f("fk_campaign_events_campaign_id_campaigns")
        ),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customers.id"], name=op.f("fk_campaign_events_customer_id_customers")
        ),
        sa.ForeignKeyConstraint(
            ["message_id"], ["campaign_messages.id"], name=op.f("fk_campaign_events_message_id_campaign_messages")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_campaign_events")),
    )
    with op.batch_alter_table("campaign_events", schema=None) as batch_op:
        batch_op.create_index("ix_campaign_events_campaign_id_kind", ["campaign_id", "kind"], unique=False)
        batch_op.create_index("ix_campaign_events_customer_id_at", ["customer_id", "at"], unique=False)
        batch_op.create_index(batch_op.f("ix_campaign_events_message_id"), ["message_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("campaign_events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_campaign_events_message_id"))
        batch_op.drop_index("ix_campaign_events_customer_id_at")
        batch_op.drop_index("ix_campaign_events_campaign_id_kind")

    op.drop_table("campaign_events")
    with op.batch_alter_table("campaign_messages", schema=None) as batch_op:
        batch_op.drop_index("ix_campaign_messages_provider_message_id")
        batch_op.drop_index(
            "ix_campaign_messages_in_flight",
            sqlite_where=sa.text("status IN ('claimed', 'sending')"),
            postgresql_where=sa.text("status IN ('claimed', 'sending')"),
        )
        batch_op.drop_index(
            "ix_campaign_messages_due",
            sqlite_where=sa.text("status = 'queued'"),
            postgresql_where=sa.text("status = 'queued'"),
        )
        batch_op.drop_index("ix_campaign_messages_customer_id_queued_at")

    op.drop_table("campaign_messages")
    op.drop_table("campaign_variants")
    with op.batch_alter_table("campaign_runs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_campaign_runs_campaign_id"))

    op.drop_table("campaign_runs")
    with op.batch_alter_table("campaigns", schema=None) as batch_op:
        batch_op.drop_index("ix_campaigns_status_scheduled_at")

    op.drop_table("campaigns")
    with op.batch_alter_table("campaign_suppressions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_campaign_suppressions_customer_id"))
        batch_op.drop_index(batch_op.f("ix_campaign_suppressions_address"))

    op.drop_table("campaign_suppressions")
    op.drop_table("campaign_signing_keys")
    op.drop_table("campaign_segments")
