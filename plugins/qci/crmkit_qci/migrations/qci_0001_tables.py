"""QCI tables: question banks, assessments with answers and area scores, the action plan, recorded costs.

None references a customer: the plugin keeps no personal data about customers.

Revision ID: qci_0001
Revises: (base)
Create Date: 2026-11-23 10:24:45.387071
"""

import sqlalchemy as sa
from alembic import op

import crmkit.core.types

revision = "qci_0001"
down_revision = None
branch_labels = ("qci",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "qci_actions",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("area", sa.String(length=40), nullable=False),
        sa.Column("rule_id", sa.String(length=60), nullable=False),
        sa.Column("title", sa.String(length=300), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("owner", sa.String(length=100), nullable=False),
        sa.Column("due_on", sa.Date(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("reason", sa.String(length=300), nullable=False),
        sa.Column("segment_ref", sa.String(length=100), nullable=True),
        sa.Column("campaign_ref", sa.String(length=100), nullable=True),
        sa.Column("handoff", sa.String(length=500), nullable=True),
        sa.Column("created_at", crmkit.core.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=100), nullable=False),
        sa.Column("started_at", crmkit.core.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("done_at", crmkit.core.types.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_qci_actions")),
    )
    with op.batch_alter_table("qci_actions", schema=None) as batch_op:
        batch_op.create_index("ix_qci_actions_status_due_on", ["status", "due_on"], unique=False)

    op.create_table(
        "qci_assessments",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("assessed_on", sa.Date(), nullable=False),
        sa.Column("label", sa.String(length=200), nullable=True),
        sa.Column("assessor", sa.String(length=100), nullable=False),
        sa.Column("bank", sa.String(length=260), nullable=False),
        sa.Column("overall", sa.Float(), nullable=True),
        sa.Column("created_at", crmkit.core.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_qci_assessments")),
    )
    with op.batch_alter_table("qci_assessments", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_qci_assessments_assessed_on"), ["assessed_on"], unique=False)

    op.create_table(
        "qci_banks",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("version", sa.String(length=40), nullable=False),
        sa.Column("document", crmkit.core.types.JSONType, nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("imported_at", crmkit.core.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("imported_by", sa.String(length=100), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_qci_banks")),
    )
    op.create_table(
        "qci_costs",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("month", sa.String(length=7), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("amount_minor", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("note", sa.String(length=300), nullable=True),
        sa.Column("recorded_at", crmkit.core.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("recorded_by", sa.String(length=100), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_qci_costs")),
    )
    with op.batch_alter_table("qci_costs", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_qci_costs_month"), ["month"], unique=False)

    op.create_table(
        "qci_answers",
        sa.Column("assessment_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("question_id", sa.String(length=40), nullable=False),
        sa.Column("area", sa.String(length=40), nullable=False),
        sa.Column("value", sa.SmallInteger(), nullable=True),
        sa.Column("scale_min", sa.SmallInteger(), nullable=False),
        sa.Column("scale_max", sa.SmallInteger(), nullable=False),
        sa.Column("weight", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(
            ["assessment_id"],
            ["qci_assessments.id"],
            name=op.f("fk_qci_answers_assessment_id_qci_assessments"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("assessment_id", "question_id", name=op.f("pk_qci_answers")),
    )
    op.create_table(
        "qci_area_scores",
        sa.Column("assessment_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("area", sa.String(length=40), nullable=False),
        sa.Column("score", sa.Float(), nullable=True),
        sa.Column("weight", sa.Float(), nullable=False),
        sa.Column("answered", sa.Integer(), nullable=False),
        sa.Column("questions", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["assessment_id"],
            ["qci_assessments.id"],
            name=op.f("fk_qci_area_scores_assessment_id_qci_assessments"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("assessment_id", "area", name=op.f("pk_qci_area_scores")),
    )


def downgrade() -> None:
    op.drop_table("qci_area_scores")
    op.drop_table("qci_answers")
    with op.batch_alter_table("qci_costs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_qci_costs_month"))

    op.drop_table("qci_costs")
    op.drop_table("qci_banks")
    with op.batch_alter_table("qci_assessments", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_qci_assessments_assessed_on"))

    op.drop_table("qci_assessments")
    with op.batch_alter_table("qci_actions", schema=None) as batch_op:
        batch_op.drop_index("ix_qci_actions_status_due_on")

    op.drop_table("qci_actions")
