"""The QCI plugin's tables. None references a customer: the plugin stores no personal data about
customers, only employees' usernames (assessors, action owners — users —, who recorded a cost)."""

from __future__ import annotations

import sqlalchemy as sa

from crmkit.plugin_api import Id, JSONType, UTCDateTime, new_metadata

metadata = new_metadata()

#: Imported question banks; the newest active one is used, none active means the default bank.
banks = sa.Table(
    "qci_banks",
    metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("version", sa.String(40), nullable=False),
    sa.Column("document", JSONType, nullable=False),
    sa.Column("active", sa.Boolean, nullable=False),
    sa.Column("imported_at", UTCDateTime, nullable=False),
    sa.Column("imported_by", sa.String(100), nullable=False),
)

assessments = sa.Table(
    "qci_assessments",
    metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=True),
    sa.Column("assessed_on", sa.Date, nullable=False, index=True),
    sa.Column("label", sa.String(200)),
    sa.Column("assessor", sa.String(100), nullable=False),  # employee id
    sa.Column("bank", sa.String(260), nullable=False),  # "name vN (#id)": what was asked
    sa.Column("overall", sa.Float),  # 0–100, one decimal; NULL when no area was answered
    sa.Column("created_at", UTCDateTime, nullable=False),
)

#: Each answer keeps the question's area, weight and scale as asked, so old scores never change.
answers = sa.Table(
    "qci_answers",
    metadata,
    sa.Column("assessment_id", Id, sa.ForeignKey("qci_assessments.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("question_id", sa.String(40), primary_key=True),
    sa.Column("area", sa.String(40), nullable=False),
    sa.Column("value", sa.SmallInteger),  # NULL: not applicable
    sa.Column("scale_min", sa.SmallInteger, nullable=False),
    sa.Column("scale_max", sa.SmallInteger, nullable=False),
    sa.Column("weight", sa.Float, nullable=False),
)

area_scores = sa.Table(
    "qci_area_scores",
    metadata,
    sa.Column("assessment_id", Id, sa.ForeignKey("qci_assessments.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("area", sa.String(40), primary_key=True),
    sa.Column("score", sa.Float),  # 0–100, one decimal; NULL when not assessed
    sa.Column("weight", sa.Float, nullable=False),
    sa.Column("answered", sa.Integer, nullable=False),
    sa.Column("questions", sa.Integer, nullable=False),
)

actions = sa.Table(
    "qci_actions",
    metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=True),
    sa.Column("area", sa.String(40), nullable=False),
    sa.Column("rule_id", sa.String(60), nullable=False),
    sa.Column("title", sa.String(300), nullable=False),
    sa.Column("description", sa.Text, nullable=False),
    sa.Column("owner", sa.String(100)),  # a user's username; NULL: unassigned
    sa.Column("due_on", sa.Date, nullable=False),
    sa.Column("status", sa.String(20), nullable=False),  # open | in_progress | done
    sa.Column("reason", sa.String(300), nullable=False),  # why the area was chosen (its scores)
    sa.Column("segment_ref", sa.String(100)),  # the segment made in campaigns, when handed off
    sa.Column("campaign_ref", sa.String(100)),  # the draft campaign made in campaigns
    sa.Column("handoff", sa.String(500)),  # what happened with the campaigns handoff
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("created_by", sa.String(100), nullable=False),
    sa.Column("started_at", UTCDateTime),
    sa.Column("done_at", UTCDateTime),
    sa.Index("ix_qci_actions_status_due_on", "status", "due_on"),
)

#: Customer-management costs per month (no CRM table holds them): efficiency KPIs divide by them.
costs = sa.Table(
    "qci_costs",
    metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=True),
    sa.Column("month", sa.String(7), nullable=False, index=True),  # YYYY-MM
    sa.Column("kind", sa.String(20), nullable=False),  # acquisition | retention | service | marketing | other
    sa.Column("amount_minor", sa.BigInteger, nullable=False),
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("note", sa.String(300)),
    sa.Column("recorded_at", UTCDateTime, nullable=False),
    sa.Column("recorded_by", sa.String(100), nullable=False),
)
