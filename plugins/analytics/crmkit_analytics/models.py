"""The analytics plugin's tables: per-customer value aggregates, runs, and one snapshot table per measure.

Aggregates are kept up to date inside each order transaction (see ``aggregates.py``) so that RFM,
customer types and CLV read one row per customer instead of rescanning every order. Snapshot
tables hold the latest run of each measure per currency; ``analytics_runs`` says when it was
computed, for which date and with which parameters. Money is integer minor units.
"""

import sqlalchemy as sa

from crmkit.plugin_api import Id, JSONType, UTCDateTime, customer_fk, new_metadata

metadata = new_metadata()

customer_value = sa.Table(
    "analytics_customer_value",
    metadata,
    # (currency, customer_id) is the key, and on SQLite the table is stored in that order (WITHOUT ROWID):
    # one currency's customers are read sequentially, in customer order, with no lookups
    sa.Column("currency", sa.String(3), primary_key=True),
    customer_fk(index=True, primary_key=True),
    sa.Column("first_purchase_at", UTCDateTime, nullable=False),
    sa.Column("last_purchase_at", UTCDateTime, nullable=False),
    sa.Column("purchase_count", sa.Integer, nullable=False),
    sa.Column("total_minor", sa.BigInteger, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    # Purchase occasions (every transaction of one local day of the business's time zone, netted): how many,
    # the first and last one's day (days since 1970-01-01, local), the first one's amount, the lowest one's
    # (a negative occasion is a refund without its purchase) and their sum. What the BTYD models read.
    sa.Column("occasions", sa.Integer, nullable=False, server_default="0"),
    sa.Column("first_day", sa.Integer, nullable=False, server_default="0"),
    sa.Column("last_day", sa.Integer, nullable=False, server_default="0"),
    sa.Column("first_occasion_minor", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("lowest_occasion_minor", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("occasions_minor", sa.BigInteger, nullable=False, server_default="0"),
    # Quintile cut points are read from these indexes (ORDER BY … LIMIT 1 OFFSET k).
    sa.Index("ix_analytics_customer_value_currency_last", "currency", "last_purchase_at"),
    sa.Index("ix_analytics_customer_value_currency_count", "currency", "purchase_count"),
    sa.Index("ix_analytics_customer_value_currency_total", "currency", "total_minor"),
    sa.Index("ix_analytics_customer_value_currency_first", "currency", "first_purchase_at"),
    sqlite_with_rowid=False,
)

#: Indexes the full rebuild drops and recreates around its bulk insert (building them sorted is far faster).
REBUILT_INDEXES = [ix for ix in customer_value.indexes if ix.name != "ix_analytics_customer_value_customer_id"]

runs = sa.Table(
    "analytics_runs",
    metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=True),
    sa.Column("measure", sa.String(20), nullable=False),  # rfm | types | pcv | sow | clv
    sa.Column("currency", sa.String(3)),  # None for currency-free measures (customer types)
    sa.Column("as_of", UTCDateTime, nullable=False),
    sa.Column("computed_at", UTCDateTime, nullable=False),
    sa.Column("actor", sa.String(100), nullable=False),
    sa.Column("parameters", JSONType, nullable=False),
    sa.Column("summary", JSONType, nullable=False),
    sa.Index("ix_analytics_runs_measure_id", "measure", "id"),
)


def _run_id() -> sa.Column[int]:
    # no foreign key: checking it costs a lookup per row on million-row snapshots, and runs are never deleted
    return sa.Column("run_id", Id, primary_key=True)


rfm = sa.Table(
    "analytics_rfm",
    metadata,
    customer_fk(index=False, primary_key=True),
    _run_id(),
    sa.Column("recency_days", sa.Integer, nullable=False),
    sa.Column("frequency", sa.Integer, nullable=False),
    sa.Column("monetary_minor", sa.BigInteger, nullable=False),
    sa.Column("r", sa.SmallInteger, nullable=False),
    sa.Column("f", sa.SmallInteger, nullable=False),
    sa.Column("m", sa.SmallInteger, nullable=False),
    sa.Column("score", sa.String(3), nullable=False),
    sa.Column("segment", sa.String(30), nullable=False),
)

customer_types = sa.Table(
    "analytics_customer_types",
    metadata,
    customer_fk(index=False, primary_key=True),
    _run_id(),
    sa.Column("customer_type", sa.String(20), nullable=False),
)

pcv = sa.Table(
    "analytics_pcv",
    metadata,
    customer_fk(index=False, primary_key=True),
    _run_id(),
    sa.Column("purchases", sa.Integer, nullable=False),
    sa.Column("pcv_minor", sa.BigInteger, nullable=False),
)

sow = sa.Table(
    "analytics_sow",
    metadata,
    customer_fk(index=False, primary_key=True),
    _run_id(),
    sa.Column("spend_minor", sa.BigInteger, nullable=False),
    sa.Column("category_spend_minor", sa.BigInteger, nullable=False),
    sa.Column("share", sa.Float, nullable=False),  # a ratio 0–1, not money
    sa.Column("source", sa.String(20), nullable=False),  # attribute | estimate
)

clv = sa.Table(
    "analytics_clv",
    metadata,
    customer_fk(index=False, primary_key=True),
    _run_id(),
    sa.Column("p_alive", sa.Float, nullable=False),  # a probability, not money
    sa.Column("expected_purchases", sa.Float, nullable=False),
    sa.Column("expected_spend_minor", sa.BigInteger, nullable=False),  # per purchase
    sa.Column("clv_minor", sa.BigInteger, nullable=False),
    # the customer's summary the models read: repeat occasions x, t_x and T in weeks (None in runs before them)
    sa.Column("frequency", sa.Integer),
    sa.Column("recency_weeks", sa.Float),
    sa.Column("age_weeks", sa.Float),
)

#: Snapshot tables by measure name (what ``analytics_runs.measure`` says).
SNAPSHOTS = {"rfm": rfm, "types": customer_types, "pcv": pcv, "sow": sow, "clv": clv}
