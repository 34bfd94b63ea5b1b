"""Differentiate, Interact and Customize: set-based SQL over ``idic_profiles``, one step per transaction.

Differentiate ranks customers by value (CLV, PCV, RFM score or net purchases, from the analytics
plugin when installed) into tiers, and puts them in a needs group (by rules: top category bought, a
``needs:`` tag, interaction topics, else ``general``; or by k-means over the same evidence). Interact
picks each customer's channel, best contact time and rhythm and writes the interaction plan. Customize
applies treatment rules.
"""

from __future__ import annotations

import importlib
import math
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from crmkit.errors import ValidationError
from crmkit.money import Money
from crmkit.plugin_api import core_tables as core
from crmkit.plugin_api import local_clock
from crmkit_idic import models as m
from crmkit_idic.config import TIERS, setting
from crmkit_idic.identify import BATCH, customer_set

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from crmkit import CRM

Scope = sa.ColumnElement[bool] | None
NO_HISTORY = (
    "no purchase history ({why}): every customer is 'unknown' value; needs groups come from tags and interaction topics"
)
#: Next-best-action when no treatment rule matches, by tier.
DEFAULT_ACTIONS = {
    "most_valuable": "personal thank-you call from the owner",
    "most_growable": "suggest the next product in their needs group",
    "maintain": "keep in touch at the usual rhythm",
    "below_zero": "no proactive offer: review returns and margin first",
    "unknown": "ask about their needs at the next contact",
}
PROFILE = m.profiles.c


def in_scope(scope: Scope) -> sa.ColumnElement[bool]:
    """Profiles of the customers a run covers."""
    return PROFILE.customer_id.in_(customer_set(scope))


# -- Differentiate -------------------------------------------------------------------------------------------


def _value_sources(crm: CRM) -> tuple[str | None, Any, Any, str]:
    """(currency, ranking expression, net value expression, note) over ``customers.c.id``; (None, …) when
    there is no purchase history to rank by."""
    if not crm.has_service("analytics"):
        return None, None, None, NO_HISTORY.format(why="the analytics plugin is not installed")
    currency = crm.analytics.currency()
    if currency is None:
        return None, None, None, NO_HISTORY.format(why="no transaction yet")
    vt = crm.analytics.transactions()
    net = (
        sa.select(sa.func.sum(vt.c.amount_minor))
        .where(vt.c.customer_id == core.customers.c.id, vt.c.currency == currency)
        .scalar_subquery()
    )
    wanted = str(setting(crm, "value_source"))
    fields = {"clv": "clv", "pcv": "pcv", "rfm": "rfm_score"}
    if wanted == "auto":
        wanted = next(
            (
                name
                for name in ("clv", "pcv", "rfm")
                if crm.analytics.latest("rfm" if name == "rfm" else name) is not None
            ),
            "net",
        )
    if wanted == "net":
        return currency, net, net, "ranked by net purchases"
    if wanted not in fields:
        raise ValidationError(f"unknown value source {wanted!r} (auto, clv, pcv, rfm or net)", field="value_source")
    if crm.analytics.latest(wanted) is None:
        raise ValidationError(
            f"no {wanted} has been computed yet: run `crmkit analytics {wanted}` first, "
            "or set idic.value_source to net",
            field="value_source",
        )
    return currency, crm.hooks.segment_fields()[fields[wanted]], net, f"ranked by {wanted}"


def run_differentiate(crm: CRM, session: Session, run_id: int, scope: Scope) -> tuple[dict[str, Any], dict[str, Any]]:
    """Value tier and needs group of every customer in scope; returns counts and the tier × needs matrix."""
    conn = session.connection()
    c = core.customers.c
    currency, rank, net, note = _value_sources(crm)
    now = crm.now()
    conn.execute(m.profiles.delete().where(in_scope(scope)))
    known = rank is not None
    conn.execute(
        m.profiles.insert().from_select(
            ("customer_id", "run_id", "value_minor", "currency", "value_source", "score", "tier", "updated_at"),
            sa.select(
                c.id,
                sa.literal(run_id),
                net if known else sa.null(),
                sa.literal(currency),
                sa.literal(note[:20] if known else None),
                sa.cast(rank, PROFILE.score.type) if known else sa.null(),  # RFM's score is a code: "555"
                sa.literal("unknown"),
                sa.literal(now, m.profiles.c.updated_at.type),
            ).where(c.id.in_(customer_set(scope))),
        )
    )
    mine = PROFILE.run_id == run_id
    if known:
        conn.execute(m.profiles.update().where(mine, PROFILE.score > 0).values(tier="maintain"))
        conn.execute(
            m.profiles.update()
            .where(mine, sa.or_(PROFILE.value_minor < 0, PROFILE.score < 0))
            .values(tier="below_zero")
        )
        _cut_tiers(crm, conn, mine)
    needs = _needs(crm, conn, mine, currency)
    counts = dict(conn.execute(sa.select(PROFILE.tier, sa.func.count()).where(mine).group_by(PROFILE.tier)).all())
    return (
        {"customers": sum(counts.values()), **{f"tier_{k}": v for k, v in sorted(counts.items())}},
        {"note": note, "currency": currency, "needs": needs, "matrix": matrix(conn, mine)},
    )


def _cut_tiers(crm: CRM, conn: sa.Connection, mine: sa.ColumnElement[bool]) -> None:
    """Top N % by score, then the next M %… among the positive ones (cut points read with one ordered query each)."""
    ranked = sa.and_(mine, PROFILE.tier == "maintain")
    total = conn.execute(sa.select(sa.func.count()).where(ranked)).scalar_one()
    cumulative = assigned = 0
    for name, percent in setting(crm, "tiers"):
        if name not in TIERS:
            raise ValidationError(f"unknown tier {name!r} (one of {', '.join(TIERS)})", field="tiers")
        cumulative += percent
        position = math.ceil(total * cumulative / 100) - assigned  # among those not in a higher tier yet
        if position < 1:
            continue
        cut = conn.execute(
            sa.select(PROFILE.score).where(ranked).order_by(PROFILE.score.desc()).offset(position - 1).limit(1)
        ).scalar()
        if cut is not None:
            assigned += conn.execute(m.profiles.update().where(ranked, PROFILE.score >= cut).values(tier=name)).rowcount


def _needs(crm: CRM, conn: sa.Connection, mine: sa.ColumnElement[bool], currency: str | None) -> dict[str, Any]:
    """Needs group of every profile of the run by the ``needs_method`` set (customers without any evidence are
    ``general``); returns what the report says: the method, its figures and the groups with their sizes."""
    if setting(crm, "needs_method") == "kmeans":
        report = _needs_by_kmeans(crm, conn, mine, currency)
    else:
        _needs_by_rules(crm, conn, mine)
        report = {"method": "rules"}
    conn.execute(
        m.profiles.update()
        .where(mine, PROFILE.needs.is_(None))
        .values(needs="general", needs_reason="no signal: default group")
    )
    sizes = conn.execute(sa.select(PROFILE.needs, sa.func.count()).where(mine).group_by(PROFILE.needs)).all()
    return {
        **report,
        "groups": [
            {"needs": needs, "customers": n}  # biggest first, then by name (not collation)
            for needs, n in sorted(sizes, key=lambda group: (-group[1], group[0]))
        ],
    }


def _needs_by_rules(crm: CRM, conn: sa.Connection, mine: sa.ColumnElement[bool]) -> None:
    """Needs group by the first rule that applies: top category bought, a needs tag, an interaction topic."""
    open_ = sa.and_(mine, PROFILE.needs.is_(None))
    if crm.has_service("analytics"):
        vt = crm.analytics.transactions()
        top = (
            sa.select(vt.c.category)
            .where(vt.c.customer_id == PROFILE.customer_id, vt.c.category.is_not(None))
            .group_by(vt.c.category)
            .order_by(sa.func.sum(vt.c.amount_minor).desc(), vt.c.category)
            .limit(1)
            .scalar_subquery()
        )
        conn.execute(m.profiles.update().where(open_).values(needs=top))
        conn.execute(
            m.profiles.update()
            .where(mine, PROFILE.needs.is_not(None), PROFILE.needs_reason.is_(None))
            .values(needs_reason="category bought most")
        )
    prefix = str(setting(crm, "needs_tag_prefix"))
    tg = core.tags.c
    tag = (
        sa.select(sa.func.min(sa.func.substr(tg.tag, len(prefix) + 1)))
        .where(tg.customer_id == PROFILE.customer_id, tg.tag.startswith(prefix, autoescape=True))
        .scalar_subquery()
    )
    conn.execute(m.profiles.update().where(open_).values(needs=tag))
    conn.execute(
        m.profiles.update()
        .where(mine, PROFILE.needs.is_not(None), PROFILE.needs_reason.is_(None))
        .values(needs_reason=f"tag {prefix}…")
    )
    i = core.interactions.c
    for keyword, group in setting(crm, "topics").items():
        about = sa.exists().where(i.customer_id == PROFILE.customer_id, _mentions(keyword))
        conn.execute(
            m.profiles.update()
            .where(open_, about)
            .values(needs=group, needs_reason=f"interactions about “{keyword}”"[:300])
        )


def _mentions(keyword: str) -> sa.ColumnElement[bool]:
    """An interaction whose subject or summary mentions ``keyword``. SQLite's lower() folds ASCII only: the keyword
    is also looked for in capitals and capitalized."""
    i = core.interactions.c
    patterns = sorted({f"%{form}%" for form in (keyword.lower(), keyword.upper(), keyword.capitalize())})
    return sa.or_(
        *(
            sa.or_(
                sa.func.lower(i.subject).like(pattern),
                i.subject.like(pattern),
                sa.func.lower(i.summary).like(pattern),
                i.summary.like(pattern),
            )
            for pattern in patterns
        )
    )


def _needs_by_kmeans(
    crm: CRM, conn: sa.Connection, mine: sa.ColumnElement[bool], currency: str | None
) -> dict[str, Any]:
    """Needs group by k-means over the rules' evidence (``needs_kmeans``); customers without evidence stay open."""
    try:  # numpy, SciPy and scikit-learn: the optional `kmeans` extra, imported only when asked for
        kmeans = importlib.import_module("crmkit_idic.needs_kmeans")
    except ImportError as exc:
        raise ValidationError(
            f"needs_method 'kmeans' needs scikit-learn, which is not installed ({exc}): "
            "pip install 'crmkit-idic[kmeans]', or set idic.needs_method back to rules",
            field="needs_method",
        ) from exc
    clusters, report = kmeans.cluster(
        kmeans.features(conn, _evidence(crm, mine, currency)), int(setting(crm, "needs_clusters"))
    )
    for found in clusters:
        for start in range(0, len(found.customer_ids), BATCH):
            ids = found.customer_ids[start : start + BATCH].tolist()
            conn.execute(
                m.profiles.update()
                .where(mine, PROFILE.customer_id.in_(ids))
                .values(needs=found.name, needs_reason=found.reason)
            )
    return {"method": "kmeans", **report}


def _evidence(crm: CRM, mine: sa.ColumnElement[bool], currency: str | None) -> list[tuple[str, sa.Select[Any]]]:
    """What k-means clusters on — what the rules read — as ``(customer_id, label, weight)`` queries per kind:
    net spend per category (in the value currency, positive only), ``needs:`` tags, mentions per topic group."""
    sources: list[tuple[str, sa.Select[Any]]] = []
    if currency is not None:
        vt = crm.analytics.transactions()
        spent = sa.func.sum(vt.c.amount_minor)
        sources.append(
            (
                "category",
                sa.select(vt.c.customer_id, vt.c.category, spent)
                .select_from(vt)
                .join(m.profiles, PROFILE.customer_id == vt.c.customer_id)
                .where(mine, vt.c.category.is_not(None), vt.c.currency == currency)
                .group_by(vt.c.customer_id, vt.c.category)
                .having(spent > 0),
            )
        )
    prefix = str(setting(crm, "needs_tag_prefix"))
    tg = core.tags.c
    sources.append(
        (
            "tag",
            sa.select(tg.customer_id, sa.func.substr(tg.tag, len(prefix) + 1), sa.literal(1))
            .join(m.profiles, PROFILE.customer_id == tg.customer_id)
            .where(mine, tg.tag.startswith(prefix, autoescape=True)),
        )
    )
    keywords: dict[str, list[str]] = {}
    for keyword, group in setting(crm, "topics").items():
        keywords.setdefault(group, []).append(keyword)
    i = core.interactions.c
    for group, words in sorted(keywords.items()):
        sources.append(
            (
                "topic",
                sa.select(i.customer_id, sa.literal(group, sa.String), sa.func.count())
                .join(m.profiles, PROFILE.customer_id == i.customer_id)
                .where(mine, sa.or_(*(_mentions(word) for word in words)))
                .group_by(i.customer_id),
            )
        )
    return sources


def matrix(conn: sa.Connection, where: sa.ColumnElement[bool]) -> list[dict[str, Any]]:
    """Customers and value per tier × needs group (value as formatted money, per currency)."""
    rows = conn.execute(
        sa.select(PROFILE.tier, PROFILE.needs, PROFILE.currency, sa.func.count(), sa.func.sum(PROFILE.value_minor))
        .where(where)
        .group_by(PROFILE.tier, PROFILE.needs, PROFILE.currency)
        .order_by(PROFILE.tier, PROFILE.needs)
    )
    return [
        {
            "tier": tier,
            "needs": needs,
            "customers": n,
            "value": Money(currency, int(total)).format() if currency and total is not None else "",
        }
        for tier, needs, currency, n, total in rows
    ]


# -- Interact -------------------------------------------------------------------------------------------------


def _require_differentiated(conn: sa.Connection) -> None:
    """Interact and Customize work on the tiers and needs groups Differentiate writes."""
    sr = m.step_results.c
    if not conn.execute(sa.select(sr.run_id).where(sr.step == "differentiate", sr.status == "done").limit(1)).first():
        raise ValidationError(
            "customers have not been differentiated yet: run the differentiate step first", field="step"
        )


def run_interact(crm: CRM, session: Session, run_id: int, scope: Scope) -> tuple[dict[str, Any], dict[str, Any]]:
    """Channel, best time and rhythm per customer, then the plan: one open contact per customer with a channel."""
    conn = session.connection()
    mine = in_scope(scope)
    _require_differentiated(conn)
    i, cs = core.interactions.c, core.consents.c
    order = {ch: n for n, ch in enumerate(setting(crm, "channel_order"))}
    answered = (
        sa.select(sa.func.count())
        .where(i.customer_id == cs.customer_id, i.channel == cs.channel, i.direction == "inbound")
        .scalar_subquery()
    )
    rank = sa.case(order, value=cs.channel, else_=len(order))
    channel = (
        sa.select(cs.channel)
        .where(cs.customer_id == PROFILE.customer_id, cs.granted.is_(True))
        .order_by(answered.desc(), rank, cs.channel)
        .limit(1)
        .scalar_subquery()
    )
    inbound = sa.and_(i.customer_id == PROFILE.customer_id, i.direction == "inbound")
    first, last = conn.execute(
        sa.select(sa.func.min(i.occurred_at), sa.func.max(i.occurred_at)).where(i.direction == "inbound")
    ).one()
    now = crm.now()
    hour, weekday = local_clock(i.occurred_at, crm.timezone, first or now, last or now)  # the business's clock
    best_hour = sa.select(hour).where(inbound).group_by(hour).order_by(sa.func.count().desc(), hour).limit(1)
    best_day = sa.select(weekday).where(inbound).group_by(weekday).order_by(sa.func.count().desc(), weekday).limit(1)
    rhythm = {tier: days for tier, days in setting(crm, "rhythm_days").items() if days is not None}
    conn.execute(
        m.profiles.update()
        .where(mine)
        .values(
            channel=channel,
            best_hour=best_hour.scalar_subquery(),
            best_weekday=best_day.scalar_subquery(),
            rhythm_days=sa.case(rhythm, value=PROFILE.tier, else_=sa.null()) if rhythm else sa.null(),
            updated_at=crm.now(),
        )
    )
    pl = m.plan_items.c
    cancelled = conn.execute(
        m.plan_items.update()
        .where(pl.status == "open", pl.customer_id.in_(sa.select(PROFILE.customer_id).where(mine)))
        .values(status="cancelled", closed_at=crm.now())
    ).rowcount
    planned = _write_plan(crm, conn, run_id, mine)
    total = conn.execute(sa.select(sa.func.count()).where(mine)).scalar_one()
    no_channel = conn.execute(sa.select(sa.func.count()).where(mine, PROFILE.channel.is_(None))).scalar_one()
    by_channel = dict(
        conn.execute(
            sa.select(pl.channel, sa.func.count())
            .where(pl.run_id == run_id, pl.status == "open")
            .group_by(pl.channel)
            .order_by(pl.channel)
        ).all()
    )
    by_owner = [
        {"owner": owner or "(unassigned)", "contacts": n}
        for owner, n in conn.execute(
            sa.select(pl.owner, sa.func.count()).where(pl.run_id == run_id).group_by(pl.owner).order_by(pl.owner)
        )
    ]
    return (
        {
            "customers": total,
            "planned": planned,
            "no_consented_channel": no_channel,
            "previous_items_cancelled": cancelled,
        },
        {"coverage": round(planned / total, 4) if total else 0.0, "by_channel": by_channel, "by_owner": by_owner},
    )


def _write_plan(crm: CRM, conn: sa.Connection, run_id: int, mine: sa.ColumnElement[bool]) -> int:
    """One plan item per customer with a channel and a rhythm, due at last contact + rhythm (not before today)."""
    c, i = core.customers.c, core.interactions.c
    zone = crm.timezone
    today = crm.today()
    last = sa.select(sa.func.max(i.occurred_at)).where(i.customer_id == PROFILE.customer_id).scalar_subquery()
    default_owner = setting(crm, "default_owner")
    query = (
        sa.select(
            PROFILE.customer_id,
            PROFILE.tier,
            PROFILE.channel,
            PROFILE.rhythm_days,
            PROFILE.best_hour,
            c.owner,
            last.label("last"),
        )
        .join(core.customers, c.id == PROFILE.customer_id)
        .where(mine, PROFILE.channel.is_not(None), PROFILE.rhythm_days.is_not(None))
        .order_by(PROFILE.customer_id)
    )
    planned = 0
    batch: list[dict[str, Any]] = []
    for row in conn.execute(query):
        due = today
        if row.last is not None:
            last_local: date = _aware(row.last).astimezone(zone).date()
            due = max(today, last_local + timedelta(days=row.rhythm_days))
        batch.append(
            {
                "run_id": run_id,
                "customer_id": row.customer_id,
                "owner": row.owner or default_owner,
                "due_on": due,
                "hour": row.best_hour,
                "channel": row.channel,
                "status": "open",
                "purpose": f"{row.tier.replace('_', ' ')}: contact every {row.rhythm_days} days",
            }
        )
        if len(batch) >= BATCH:
            conn.execute(m.plan_items.insert(), batch)
            planned += len(batch)
            batch = []
    if batch:
        conn.execute(m.plan_items.insert(), batch)
        planned += len(batch)
    return planned


def _aware(value: Any) -> datetime:
    """A timestamp read through a scalar subquery (SQLite gives a string or naive UTC datetime)."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value if value.tzinfo else value.replace(tzinfo=ZoneInfo("UTC"))


def close_plan_item(
    conn: sa.Connection, customer_id: int, channel: str, interaction_id: int, now: datetime
) -> int | None:
    """Close (at ``now``) the customer's earliest open plan item on ``channel`` (an interaction was logged); its id
    or None."""
    pl = m.plan_items.c
    item = conn.execute(
        sa.select(pl.id)
        .where(pl.customer_id == customer_id, pl.channel == channel, pl.status == "open")
        .order_by(pl.due_on, pl.id)
        .limit(1)
    ).scalar()
    if item is not None:
        conn.execute(
            m.plan_items.update()
            .where(pl.id == item)
            .values(status="done", interaction_id=interaction_id, closed_at=now)
        )
    return item


# -- Customize ------------------------------------------------------------------------------------------------


def run_customize(crm: CRM, session: Session, run_id: int, scope: Scope) -> tuple[dict[str, Any], dict[str, Any]]:
    """Give each customer in scope the treatment of the first rule (by priority) it meets, with the reason."""
    conn = session.connection()
    mine = in_scope(scope)
    _require_differentiated(conn)
    t = m.treatments.c
    conn.execute(m.profiles.update().where(mine).values(treatment_id=None, next_action=None, reason=None))
    assigned: dict[str, int] = {}
    for rule in conn.execute(sa.select(m.treatments).order_by(t.priority, t.id)).mappings().all():
        where = [mine, PROFILE.treatment_id.is_(None)]
        said = [f"rule “{rule['name']}” (priority {rule['priority']})"]
        if rule["tier"]:
            where.append(PROFILE.tier == rule["tier"])
            said.append(f"tier {rule['tier']}")
        if rule["needs"]:
            where.append(PROFILE.needs == rule["needs"])
            said.append(f"needs {rule['needs']}")
        if rule["condition"]:
            where.append(
                PROFILE.customer_id.in_(sa.select(core.customers.c.id).where(condition(crm, rule["condition"])))
            )
            said.append(f"condition {rule['condition']}")
        action = action_of(rule)
        count = conn.execute(
            m.profiles.update()
            .where(*where)
            .values(treatment_id=rule["id"], next_action=action[:500], reason=", ".join(said)[:500])
        ).rowcount
        assigned[rule["name"]] = count
    for tier in TIERS:
        conn.execute(
            m.profiles.update()
            .where(mine, PROFILE.treatment_id.is_(None), PROFILE.tier == tier)
            .values(next_action=DEFAULT_ACTIONS[tier], reason=f"no treatment rule matched: default for tier {tier}")
        )
    defaulted = conn.execute(sa.select(sa.func.count()).where(mine, PROFILE.treatment_id.is_(None))).scalar_one()
    return (
        {"treated": sum(assigned.values()), "default_action": defaulted},
        {"treatments": [{"treatment": name, "customers": n} for name, n in assigned.items()]},
    )


def action_of(rule: Any) -> str:
    """The next-best-action a treatment gives: its message, else its offer, price list or service level."""
    parts = [
        rule["message"] or rule["offer"],
        f"price list {rule['price_list']}" if rule["price_list"] else None,
        f"service level {rule['service_level']}" if rule["service_level"] else None,
    ]
    return "; ".join(p for p in parts if p)


def condition(crm: CRM, expression: str) -> sa.ColumnElement[bool]:
    """A segment condition in the campaigns language (``ValidationError`` naming ``condition`` if it is wrong)."""
    if not crm.has_service("campaigns"):
        raise ValidationError(
            "conditions use the campaigns segment language: install and enable crmkit-campaigns", field="condition"
        )
    return crm.campaigns.segments.condition(expression, field="condition")
