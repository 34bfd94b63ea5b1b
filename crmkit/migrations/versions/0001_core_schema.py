"""Core schema: customers, contact points, addresses, tags, consents, memberships, search keys,
interactions, audit log, merges, plugin states, settings.

Revision ID: crmkit_0001
Revises: (base)
Create Date: 2026-11-23 09:07:46.779785
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import crmkit.core.types

revision = "crmkit_0001"
down_revision = None
branch_labels = ("crmkit",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "audit_log",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("at", crmkit.core.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=100), nullable=False),
        sa.Column("action", sa.String(length=50), nullable=False),
        sa.Column("entity", sa.String(length=50), nullable=False),
        sa.Column("entity_id", sa.String(length=100), nullable=False),
        sa.Column("customer_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column(
            "changes", sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"), nullable=True
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_log")),
    )
    with op.batch_alter_table("audit_log", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_audit_log_customer_id"), ["customer_id"], unique=False)

    op.create_table(
        "crmkit_plugins",
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("changed_at", crmkit.core.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_crmkit_plugins")),
    )
    op.create_table(
        "crmkit_settings",
        sa.Column("key", sa.String(length=100), nullable=False),
        sa.Column(
            "value", sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"), nullable=False
        ),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_crmkit_settings")),
    )
    op.create_table(
        "customers",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("external_id", sa.String(length=200), nullable=True),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("name", sa.String(length=300), nullable=False),
        sa.Column("given_name", sa.String(length=150), nullable=True),
        sa.Column("family_name", sa.String(length=150), nullable=True),
        sa.Column(
            "name_key",
            sa.String(length=400).with_variant(sa.String(length=400, collation="C"), "postgresql"),
            nullable=False,
        ),
        sa.Column("birth_date", sa.Date(), nullable=True),
        sa.Column("gender", sa.String(length=20), nullable=True),
        sa.Column("lifecycle_stage", sa.String(length=30), nullable=False),
        sa.Column("owner", sa.String(length=100), nullable=True),
        sa.Column("country", sa.String(length=2), nullable=True),
        sa.Column("city", sa.String(length=100), nullable=True),
        sa.Column("province", sa.String(length=100), nullable=True),
        sa.Column(
            "attributes", sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"), nullable=False
        ),
        sa.Column("status", sa.String(length=20), server_default="active", nullable=False),
        sa.Column("merged_into_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("created_at", crmkit.core.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", crmkit.core.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["merged_into_id"], ["customers.id"], name=op.f("fk_customers_merged_into_id_customers")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_customers")),
        sa.UniqueConstraint("external_id", name=op.f("uq_customers_external_id")),
    )
    with op.batch_alter_table("customers", schema=None) as batch_op:
        batch_op.create_index("ix_customers_name_key_id", ["name_key", "id"], unique=False)
        batch_op.create_index("ix_customers_owner_id", ["owner", "id"], unique=False)

    op.create_table(
        "customer_addresses",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("customer_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("label", sa.String(length=50), nullable=True),
        sa.Column("line1", sa.String(length=300), nullable=False),
        sa.Column("line2", sa.String(length=300), nullable=True),
        sa.Column("ward", sa.String(length=100), nullable=True),
        sa.Column("district", sa.String(length=100), nullable=True),
        sa.Column("city", sa.String(length=100), nullable=True),
        sa.Column("province", sa.String(length=100), nullable=True),
        sa.Column("postal_code", sa.String(length=20), nullable=True),
        sa.Column("country", sa.String(length=2), nullable=True),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customers.id"], name=op.f("fk_customer_addresses_customer_id_customers")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_customer_addresses")),
    )
    with op.batch_alter_table("customer_addresses", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_customer_addresses_customer_id"), ["customer_id"], unique=False)

    op.create_table(
        "customer_consents",
        sa.Column("customer_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("channel", sa.String(length=30), nullable=False),
        sa.Column("granted", sa.Boolean(), nullable=False),
        sa.Column("at", crmkit.core.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("source", sa.String(length=200), nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customers.id"], name=op.f("fk_customer_consents_customer_id_customers")
        ),
        sa.PrimaryKeyConstraint("customer_id", "channel", name=op.f("pk_customer_consents")),
    )
    op.create_table(
        "customer_contact_points",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("customer_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("value", sa.String(length=320), nullable=False),
        sa.Column("label", sa.String(length=50), nullable=True),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customers.id"], name=op.f("fk_customer_contact_points_customer_id_customers")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_customer_contact_points")),
    )
    with op.batch_alter_table("customer_contact_points", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_customer_contact_points_customer_id"), ["customer_id"], unique=False)
        batch_op.create_index("ix_customer_contact_points_kind_value", ["kind", "value"], unique=False)

    op.create_table(
        "customer_memberships",
        sa.Column("person_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("organization_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("role", sa.String(length=100), nullable=True),
        sa.ForeignKeyConstraint(
            ["organization_id"], ["customers.id"], name=op.f("fk_customer_memberships_organization_id_customers")
        ),
        sa.ForeignKeyConstraint(
            ["person_id"], ["customers.id"], name=op.f("fk_customer_memberships_person_id_customers")
        ),
        sa.PrimaryKeyConstraint("person_id", "organization_id", name=op.f("pk_customer_memberships")),
    )
    with op.batch_alter_table("customer_memberships", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_customer_memberships_organization_id"), ["organization_id"], unique=False)

    op.create_table(
        "customer_merges",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("kept_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("merged_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("at", crmkit.core.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=100), nullable=False),
        sa.Column(
            "snapshot", sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"), nullable=False
        ),
        sa.ForeignKeyConstraint(["kept_id"], ["customers.id"], name=op.f("fk_customer_merges_kept_id_customers")),
        sa.ForeignKeyConstraint(["merged_id"], ["customers.id"], name=op.f("fk_customer_merges_merged_id_customers")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_customer_merges")),
    )
    with op.batch_alter_table("customer_merges", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_customer_merges_kept_id"), ["kept_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_customer_merges_merged_id"), ["merged_id"], unique=False)

    op.create_table(
        "customer_search_keys",
        sa.Column(
            "key",
            sa.String(length=400).with_variant(sa.String(length=400, collation="C"), "postgresql"),
            nullable=False,
        ),
        sa.Column("customer_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customers.id"], name=op.f("fk_customer_search_keys_customer_id_customers")
        ),
        sa.PrimaryKeyConstraint("key", "customer_id", name=op.f("pk_customer_search_keys")),
    )
    with op.batch_alter_table("customer_search_keys", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_customer_search_keys_customer_id"), ["customer_id"], unique=False)

    op.create_table(
        "customer_tags",
        sa.Column("customer_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("tag", sa.String(length=100), nullable=False),
        sa.ForeignKeyConstraint(["customer_id"], ["customers.id"], name=op.f("fk_customer_tags_customer_id_customers")),
        sa.PrimaryKeyConstraint("customer_id", "tag", name=op.f("pk_customer_tags")),
    )
    with op.batch_alter_table("customer_tags", schema=None) as batch_op:
        batch_op.create_index("ix_customer_tags_tag_customer_id", ["tag", "customer_id"], unique=False)

    op.create_table(
        "interactions",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("customer_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("channel", sa.String(length=30), nullable=False),
        sa.Column("direction", sa.String(length=10), nullable=False),
        sa.Column("occurred_at", crmkit.core.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("subject", sa.String(length=300), nullable=True),
        sa.Column("summary", sa.Text(), nullable=True),
        sa.Column("outcome", sa.String(length=100), nullable=True),
        sa.Column("rating", sa.SmallInteger(), nullable=True),
        sa.Column("employee", sa.String(length=100), nullable=True),
        sa.Column("sender", sa.String(length=320), nullable=True),
        sa.Column("created_at", crmkit.core.types.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint("rating IS NULL OR (rating BETWEEN 1 AND 5)", name=op.f("ck_interactions_rating_range")),
        sa.ForeignKeyConstraint(["customer_id"], ["customers.id"], name=op.f("fk_interactions_customer_id_customers")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_interactions")),
    )
    with op.batch_alter_table("interactions", schema=None) as batch_op:
        batch_op.create_index(
            "ix_interactions_customer_id_occurred_at", ["customer_id", "occurred_at", "id"], unique=False
        )
        batch_op.create_index("ix_interactions_employee_occurred_at", ["employee", "occurred_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("interactions", schema=None) as batch_op:
        batch_op.drop_index("ix_interactions_employee_occurred_at")
        batch_op.drop_index("ix_interactions_customer_id_occurred_at")

    op.drop_table("interactions")
    with op.batch_alter_table("customer_tags", schema=None) as batch_op:
        batch_op.drop_index("ix_customer_tags_tag_customer_id")

    op.drop_table("customer_tags")
    with op.batch_alter_table("customer_search_keys", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_customer_search_keys_customer_id"))

    op.drop_table("customer_search_keys")
    with op.batch_alter_table("customer_merges", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_customer_merges_merged_id"))
        batch_op.drop_index(batch_op.f("ix_customer_merges_kept_id"))

    op.drop_table("customer_merges")
    with op.batch_alter_table("customer_memberships", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_customer_memberships_organization_id"))

    op.drop_table("customer_memberships")
    with op.batch_alter_table("customer_contact_points", schema=None) as batch_op:
        batch_op.drop_index("ix_customer_contact_points_kind_value")
        batch_op.drop_index(batch_op.f("ix_customer_contact_points_customer_id"))

    op.drop_table("customer_contact_points")
    op.drop_table("customer_consents")
    with op.batch_alter_table("customer_addresses", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_customer_addresses_customer_id"))

    op.drop_table("customer_addresses")
    with op.batch_alter_table("customers", schema=None) as batch_op:
        batch_op.drop_index("ix_customers_owner_id")
        batch_op.drop_index("ix_customers_name_key_id")

    op.drop_table("customers")
    op.drop_table("crmkit_settings")
    op.drop_table("crmkit_plugins")
    with op.batch_alter_table("audit_log", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_audit_log_customer_id"))

    op.drop_table("audit_log")
