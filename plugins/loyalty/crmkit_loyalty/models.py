"""The loyalty plugin's tables. Point quantities are integers in *units* of the program:
whole points, or hundredths etc. when the program allows fractional points (``point_decimals``).

The ledger is append-only but for one column: ``remaining``, the part of a positive entry not yet
spent or expired (its *open lot*, what FIFO expiry and redemption consume). The balance row of a
member (``loyalty_members.points``) and the open lots are kept in step with the entries in the
same transaction, and ``crm.loyalty.jobs.verify()`` proves they agree.
"""

from decimal import Decimal
from typing import Any

import sqlalchemy as sa

from crmkit.plugin_api import Id, UTCDateTime, customer_fk, new_metadata

metadata = new_metadata()


class DecimalText(sa.types.TypeDecorator[Decimal]):
    """An exact decimal (rates, multipliers) stored as text: SQLite has no exact NUMERIC, and these are never summed."""

    impl = sa.String(24)
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: sa.Dialect) -> str | None:
        return None if value is None else format(Decimal(value).normalize(), "f")

    def process_result_value(self, value: Any, dialect: sa.Dialect) -> Decimal | None:
        return None if value is None else Decimal(value)


programs = sa.Table(
    "loyalty_programs",
    metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=True),
    sa.Column("code", sa.String(50), nullable=False, unique=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("earn_points", DecimalText, nullable=False),  # points earned per earn_amount_minor spent
    sa.Column("earn_amount_minor", sa.BigInteger, nullable=False),
    sa.Column("rounding", sa.String(10), nullable=False),  # floor | round | ceil
    sa.Column("point_decimals", sa.SmallInteger, nullable=False),  # 0 = whole points only
    sa.Column("include_tax", sa.Boolean, nullable=False),
    sa.Column("expiry_days", sa.Integer),  # None: points never expire
    sa.Column("tier_basis", sa.String(10), nullable=False),  # points | spend
    sa.Column("tier_window_days", sa.Integer, nullable=False),
    sa.Column("point_value_minor", sa.BigInteger),  # money value of one point (for the liability report)
    sa.Column("auto_enroll", sa.Boolean, nullable=False),
    sa.Column("active", sa.Boolean, nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    # Bumped by every change of the program, its rules or its tiers: what the earning path's cache checks.
    sa.Column("config_version", sa.Integer, nullable=False, server_default="0"),
    sa.CheckConstraint("earn_amount_minor > 0", name="earn_amount_positive"),
    sa.CheckConstraint("point_decimals BETWEEN 0 AND 3", name="point_decimals_range"),
)

rules = sa.Table(
    "loyalty_rules",
    metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=True),
    sa.Column("program_id", Id, sa.ForeignKey("loyalty_programs.id"), nullable=False),
    # product | category | min_order | birthday | occasion | signup | referral
    sa.Column("kind", sa.String(20), nullable=False),
    sa.Column("target", sa.String(100)),  # SKU / product id, category, or occasion
    sa.Column("multiplier", DecimalText),
    sa.Column("bonus_points", sa.BigInteger),  # units
    sa.Column("amount_minor", sa.BigInteger),  # minimum order amount
    sa.Column("starts_on", sa.Date),
    sa.Column("ends_on", sa.Date),
    sa.Column("active", sa.Boolean, nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Index("ix_loyalty_rules_program_id_kind", "program_id", "kind"),
)

tiers = sa.Table(
    "loyalty_tiers",
    metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=True),
    sa.Column("program_id", Id, sa.ForeignKey("loyalty_programs.id"), nullable=False),
    sa.Column("code", sa.String(50), nullable=False),
    sa.Column("name", sa.String(100), nullable=False),
    sa.Column("rank", sa.Integer, nullable=False),  # 0 = the lowest tier
    sa.Column("threshold", sa.BigInteger, nullable=False),  # qualifying points (units) or spend (minor units)
    sa.Column("multiplier", DecimalText, nullable=False),
    sa.UniqueConstraint("program_id", "code"),
    sa.UniqueConstraint("program_id", "rank"),
)

members = sa.Table(
    "loyalty_members",
    metadata,
    customer_fk(primary_key=True, index=False),
    sa.Column("program_id", Id, sa.ForeignKey("loyalty_programs.id"), primary_key=True),
    sa.Column("points", sa.BigInteger, nullable=False),  # the balance: always the sum of the member's ledger
    sa.Column("tier", sa.String(50)),
    sa.Column("tier_since", UTCDateTime),
    sa.Column("enrolled_at", UTCDateTime, nullable=False),
    sa.Index("ix_loyalty_members_program_id_tier", "program_id", "tier"),
)

ledger = sa.Table(
    "loyalty_ledger",
    metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=True),
    sa.Column("program_id", Id, sa.ForeignKey("loyalty_programs.id"), nullable=False),
    customer_fk(index=False),
    sa.Column("points", sa.BigInteger, nullable=False),  # units, + or -
    sa.Column("kind", sa.String(10), nullable=False),  # earn | reverse | redeem | expire | adjust
    sa.Column("reason", sa.String(60), nullable=False),
    sa.Column("source_kind", sa.String(20), nullable=False),  # order | customer | redemption | manual | expiry
    sa.Column("source_id", sa.String(100), nullable=False),
    sa.Column("order_id", sa.String(100)),  # the order an entry is about (bonuses and reversals included)
    sa.Column("amount_minor", sa.BigInteger),  # money spent (+) or refunded (-) behind the entry
    sa.Column("qualifying", sa.Boolean, nullable=False),  # counts towards tier status
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("expires_at", UTCDateTime),
    sa.Column("note", sa.String(500)),
    sa.Column("actor", sa.String(100), nullable=False),
    # The entry's open lot: units not yet spent or expired (0 once used up, and for negative entries).
    sa.Column("remaining", sa.BigInteger, nullable=False, server_default="0"),
    # Idempotency lives in the database, not in a check: a re-delivered event cannot earn twice.
    sa.UniqueConstraint("program_id", "source_kind", "source_id", "reason"),
    # A member's entries by date, carrying what the tier window sums (qualifying, points, spend): the
    # re-evaluation after each order reads only this index, never the table.
    sa.Index(
        "ix_loyalty_ledger_member_window",
        "customer_id",
        "program_id",
        "created_at",
        "id",
        "qualifying",
        "points",
        "amount_minor",
    ),
    sa.Index("ix_loyalty_ledger_program_id_created_at", "program_id", "created_at"),
    # The open lots only (a small part of the ledger), per member soonest-expiring first: FIFO spending and expiry.
    sa.Index(
        "ix_loyalty_ledger_open_lots",
        "customer_id",
        "program_id",
        "expires_at",
        sqlite_where=sa.text("remaining > 0"),
        postgresql_where=sa.text("remaining > 0"),
    ),
)


rewards = sa.Table(
    "loyalty_rewards",
    metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=True),
    sa.Column("program_id", Id, sa.ForeignKey("loyalty_programs.id"), nullable=False),
    sa.Column("code", sa.String(50), nullable=False),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("kind", sa.String(20), nullable=False),  # product | service | discount
    sa.Column("points_cost", sa.BigInteger, nullable=False),  # units
    sa.Column("stock", sa.Integer),  # None: unlimited
    sa.Column("value_minor", sa.BigInteger),  # what the reward is worth, in the program's currency
    sa.Column("description", sa.Text),
    sa.Column("active", sa.Boolean, nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.UniqueConstraint("program_id", "code"),
    sa.CheckConstraint("points_cost > 0", name="points_cost_positive"),
    sa.CheckConstraint("stock IS NULL OR stock >= 0", name="stock_not_negative"),
)

redemptions = sa.Table(
    "loyalty_redemptions",
    metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=True),
    sa.Column("program_id", Id, sa.ForeignKey("loyalty_programs.id"), nullable=False),
    customer_fk(index=False),
    sa.Column("reward_id", Id, sa.ForeignKey("loyalty_rewards.id"), nullable=False),
    sa.Column("quantity", sa.Integer, nullable=False),
    sa.Column("points", sa.BigInteger, nullable=False),  # units spent
    sa.Column("status", sa.String(20), nullable=False),  # completed | used (on an order) | cancelled
    sa.Column("code", sa.String(20), nullable=False, unique=True),  # the voucher code handed to the customer
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("cancelled_at", UTCDateTime),
    sa.Column("note", sa.String(500)),
    sa.Column("order_id", sa.String(64), index=True),  # the sales order the voucher was used on (status used)
    sa.Column("used_at", UTCDateTime),
    sa.CheckConstraint("quantity > 0", name="quantity_positive"),
    sa.CheckConstraint("points > 0", name="points_positive"),
    sa.Index("ix_loyalty_redemptions_customer_id_created_at", "customer_id", "created_at"),
)
