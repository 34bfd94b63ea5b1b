"""IDIC tables: runs and their step results, gathered identifiers, the review queue and merge log,
per-customer profiles (tier, needs, channel, next-best-action), the interaction plan and treatment rules."""

from __future__ import annotations

import sqlalchemy as sa

from crmkit.plugin_api import Id, JSONType, UTCDateTime, customer_fk, new_metadata
from crmkit.plugin_api import core_tables as core

metadata = new_metadata()


def _customer_ref(name: str, **kwargs: object) -> sa.Column[int]:
    """A second column referencing a customer (pairs: the other customer of a review item or merge)."""
    return sa.Column(name, Id, sa.ForeignKey(core.customers.c.id), **kwargs)  # type: ignore[arg-type]


runs = sa.Table(
    "idic_runs",
    metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=True),
    sa.Column("steps", JSONType, nullable=False),  # the steps this run executes, in order
    sa.Column("segment", sa.Text),  # a campaigns segment expression limiting the run (None: everyone)
    sa.Column("segment_id", Id),
    sa.Column("status", sa.String(20), nullable=False),  # running | failed | done
    sa.Column("error", sa.Text),
    sa.Column("actor", sa.String(100), nullable=False),
    sa.Column("started_at", UTCDateTime, nullable=False),
    sa.Column("finished_at", UTCDateTime),
)

step_results = sa.Table(
    "idic_step_results",
    metadata,
    sa.Column("run_id", Id, sa.ForeignKey(runs.c.id), primary_key=True),
    sa.Column("step", sa.String(20), primary_key=True),
    sa.Column("status", sa.String(20), nullable=False),  # running | failed | done
    sa.Column("counts", JSONType, nullable=False),
    sa.Column("report", JSONType, nullable=False),
    sa.Column("error", sa.Text),
    sa.Column("started_at", UTCDateTime, nullable=False),
    sa.Column("finished_at", UTCDateTime),
)

identifiers = sa.Table(
    "idic_identifiers",
    metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=True),
    customer_fk(),
    sa.Column("kind", sa.String(30), nullable=False),  # email | phone | external_id | social:<network> | <plugin kind>
    sa.Column("value", sa.String(320), nullable=False),  # normalized
    sa.Column("source", sa.String(30), nullable=False),  # contact | external_id | attributes | interaction | plugin
    sa.Index("ix_idic_identifiers_kind_value", "kind", "value"),
)

reviews = sa.Table(
    "idic_reviews",
    metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=True),
    sa.Column("run_id", Id, sa.ForeignKey(runs.c.id)),
    customer_fk(),
    _customer_ref("other_id", nullable=False, index=True),
    sa.Column("score", sa.Float, nullable=False),  # match confidence 0..1 (not money)
    sa.Column("reason", sa.String(500), nullable=False),
    sa.Column("status", sa.String(20), nullable=False),  # pending | accepted | rejected | conflict
    sa.Column("decided_by", sa.String(100)),
    sa.Column("decided_at", UTCDateTime),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Index("ix_idic_reviews_status_id", "status", "id"),
)

do_not_merge = sa.Table(
    "idic_do_not_merge",
    metadata,
    customer_fk(index=False, primary_key=True),
    _customer_ref("other_id", primary_key=True, index=True),
    sa.Column("reason", sa.String(500), nullable=False),
    sa.Column("created_by", sa.String(100), nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
)

merge_log = sa.Table(
    "idic_merges",
    metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=True),
    sa.Column("run_id", Id, sa.ForeignKey(runs.c.id)),
    customer_fk(),  # the kept customer
    _customer_ref("merged_id", nullable=False, index=True),
    sa.Column("core_merge_id", Id, nullable=False),  # customer_merges.id: the core's journal an unmerge reads
    sa.Column("score", sa.Float, nullable=False),
    sa.Column("reason", sa.String(500), nullable=False),
    sa.Column("automatic", sa.Boolean, nullable=False),
    sa.Column("status", sa.String(20), nullable=False),  # merged | undone
    sa.Column("at", UTCDateTime, nullable=False),
    sa.Column("undone_at", UTCDateTime),
)

profiles = sa.Table(
    "idic_profiles",
    metadata,
    customer_fk(index=False, primary_key=True),
    sa.Column("run_id", Id, sa.ForeignKey(runs.c.id)),
    sa.Column("value_minor", sa.BigInteger),
    sa.Column("currency", sa.String(3)),
    sa.Column("value_source", sa.String(20)),
    sa.Column("score", sa.Float),  # what tiers rank by: CLV / PCV / net value in minor units, or the RFM score
    sa.Column("tier", sa.String(30), nullable=False),
    sa.Column("needs", sa.String(100)),
    sa.Column("needs_reason", sa.String(300)),
    sa.Column("channel", sa.String(30)),
    sa.Column("best_hour", sa.SmallInteger),  # 0-23, Asia/Ho_Chi_Minh
    sa.Column("best_weekday", sa.SmallInteger),  # 0 = Monday
    sa.Column("rhythm_days", sa.Integer),
    sa.Column("treatment_id", Id),
    sa.Column("next_action", sa.String(500)),
    sa.Column("reason", sa.String(500)),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.Index("ix_idic_profiles_tier_needs", "tier", "needs"),
)

plan_items = sa.Table(
    "idic_plan_items",
    metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=True),
    sa.Column("run_id", Id, sa.ForeignKey(runs.c.id)),
    customer_fk(),
    sa.Column("owner", sa.String(100)),
    sa.Column("due_on", sa.Date, nullable=False),  # local date, Asia/Ho_Chi_Minh
    sa.Column("hour", sa.SmallInteger),
    sa.Column("channel", sa.String(30), nullable=False),
    sa.Column("purpose", sa.String(300), nullable=False),
    sa.Column("status", sa.String(20), nullable=False),  # open | done | cancelled
    sa.Column("interaction_id", Id),
    sa.Column("closed_at", UTCDateTime),
    sa.Index("ix_idic_plan_items_owner_status_due_on", "owner", "status", "due_on"),
)

treatments = sa.Table(
    "idic_treatments",
    metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(200), nullable=False, unique=True),
    sa.Column("tier", sa.String(30)),  # None: any tier
    sa.Column("needs", sa.String(100)),  # None: any needs group
    sa.Column("condition", sa.Text),  # campaigns segment expression (None: no condition)
    sa.Column("offer", sa.String(300)),
    sa.Column("price_list", sa.String(100)),
    sa.Column("service_level", sa.String(100)),
    sa.Column("message", sa.String(1000)),
    sa.Column("priority", sa.Integer, nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
)
