"""``crm.idic``: the plugin's Python API (runs, review queue, unmerge, agenda, treatments, handoff, report).

Commands, hooks and the report are thin callers of this. Every method checks its permission
(``idic.run``, ``idic.review``, ``idic.read``, ``idic.plan``: see :mod:`crmkit_idic.access`); lists and
counts over customers carry ``crm.access.customers(...)`` in their SQL, so a user sees only their scope.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from crmkit.errors import Conflict, NotFound, PermissionDenied, ValidationError
from crmkit.plugin_api import control_character_errors
from crmkit.plugin_api import core_tables as core
from crmkit_idic import models as m
from crmkit_idic import runs
from crmkit_idic.access import MERGE, PLAN, READ, REVIEW, RUN, both, mask_identifier, shown_reasons
from crmkit_idic.config import DEFAULTS, PREFIX, TIERS, check_setting
from crmkit_idic.identify import merge_pair
from crmkit_idic.scoped import is_scoped, rescope
from crmkit_idic.steps import action_of, condition

if TYPE_CHECKING:
    from crmkit import CRM, Customer

TREATMENT_FIELDS = ("offer", "price_list", "service_level", "message")
#: The treatment texts that may hold tab and newlines: the message, and a segment condition laid out on lines.
_MULTILINE = frozenset({"message", "condition"})


class IdicService:
    """The IDIC workflow of one CRM (``crm.idic``)."""

    def __init__(self, crm: CRM) -> None:
        self._crm = crm

    # -- settings -----------------------------------------------------------------------------------------

    def settings(self) -> dict[str, Any]:
        """Every IDIC setting with its current value (``idic.read``)."""
        self._crm.access.require(READ)
        return {name: self._crm.settings.get(PREFIX + name, default) for name, default in DEFAULTS.items()}

    def configure(self, **values: Any) -> dict[str, Any]:
        """Store settings (``auto_merge_threshold=0.97``, ``value_source="pcv"``…); returns them all.

        CRM settings: needs ``settings.admin``. ``default_owner`` must be an active user."""
        self._crm.access.require("settings.admin")
        for name, value in values.items():
            if name not in DEFAULTS:
                raise ValidationError(f"unknown setting (one of {', '.join(DEFAULTS)})", field=name)
            if name.endswith("threshold") and not (isinstance(value, (int, float)) and 0 < value <= 1):
                raise ValidationError("must be a number in (0, 1]", field=name)
            check_setting(name, value)
        if values.get("default_owner") is not None:
            with self._crm.reading() as conn:
                self._crm.users.require_assignable(conn, [values["default_owner"]], field="default_owner")
        for name, value in values.items():
            self._crm.set_setting(PREFIX + name, value)
        return self.settings()

    # -- runs ---------------------------------------------------------------------------------------------

    def run(
        self, *, steps: Sequence[str] | None = None, segment: str | None = None, segment_id: int | None = None
    ) -> runs.IdicRun:
        """Start a run of the given steps (default: all four, in order) over everyone or a segment.

        Needs ``idic.run``: with scope all the run covers every customer (of the segment); with own or team
        only the acting user's customers, and Identify then pairs only two of them. Identify merges, so it
        also needs ``customers.merge`` (checked by the core on every merged customer)."""
        self._crm.access.require(RUN)
        if steps is None or "identify" in steps:
            self._crm.access.require(MERGE)
        return runs.execute(self._crm, runs.start(self._crm, steps=steps, segment=segment, segment_id=segment_id))

    def resume(self, run_id: int) -> runs.IdicRun:
        """Continue a failed or interrupted run from the step it stopped at (``idic.run``).

        A user whose ``idic.run`` scope is not all may resume only their own runs: the run then covers
        their scope, as when they started it."""
        access = self._crm.access
        access.require(RUN)
        run = runs.get(self._crm, run_id)
        principal = access.principal
        if principal.owners(RUN) is not None and run.actor != principal.username:
            detail = f"run {run_id} was started by {run.actor}: only they or a user with scope all may resume it"
            self._crm.audit.denied(principal, RUN, detail)
            raise PermissionDenied(RUN, principal.username, detail)
        if "identify" in run.steps:
            access.require(MERGE)
        return runs.resume(self._crm, run_id)

    def get(self, run_id: int) -> runs.IdicRun:
        """One run with the result of each step (``idic.read``). A user whose scope is not all gets each step's
        counts and report counted again over their customers only (``run.scoped`` names them)."""
        self._crm.access.require(READ)
        return self._shown([runs.get(self._crm, run_id)])[0]

    def runs(self, *, limit: int = 20) -> list[runs.IdicRun]:
        """Recent runs, newest first (``idic.read``; counts as in :meth:`get`)."""
        self._crm.access.require(READ)
        return self._shown(runs.history(self._crm, limit))

    def last_run(self) -> runs.IdicRun | None:
        """The most recent run, or None (``idic.read``; counts as in :meth:`get`)."""
        found = self.runs(limit=1)
        return found[0] if found else None

    def _shown(self, found: list[runs.IdicRun]) -> list[runs.IdicRun]:
        return rescope(self._crm, found) if is_scoped(self._crm) else found

    def status(self) -> dict[str, Any]:
        """Where the workflow stands: the last run, queue size, open plan items, customers per tier (``idic.read``).

        The counts cover the customers in the user's scope (a review pair counts when both are); ``scoped``
        says whether that is fewer than every customer."""
        within = self._crm.access.customers
        r, pl, p = m.reviews.c, m.plan_items.c, m.profiles.c
        pending = sa.and_(r.status == "pending", both(self._crm, r.customer_id, r.other_id, READ))
        planned = sa.and_(pl.status == "open", within(pl.customer_id, READ))
        found = runs.history(self._crm, 1)
        last = found[0] if found else None
        with self._crm.reading() as conn:
            queued = conn.execute(sa.select(sa.func.count()).select_from(m.reviews).where(pending)).scalar_one()
            open_items = conn.execute(sa.select(sa.func.count()).select_from(m.plan_items).where(planned)).scalar_one()
            tiers = dict(
                conn.execute(
                    sa.select(p.tier, sa.func.count()).where(within(p.customer_id, READ)).group_by(p.tier)
                ).all()
            )
        return {
            "last_run": last.id if last else None,
            "status": last.status if last else "never run",
            "next_step": last.next_step if last else None,
            "review_queue": queued,
            "open_plan_items": open_items,
            **{f"tier_{t}": tiers.get(t, 0) for t in TIERS},
            "scoped": is_scoped(self._crm),
        }

    # -- review queue and merges -------------------------------------------------------------------------

    def reviews(self, *, status: str = "pending", limit: int = 50) -> list[dict[str, Any]]:
        """Review items (pairs that may be one customer) with both names, surest first (``idic.review``).

        A pair shows only when both customers are in the user's scope; its reason's e-mails and phones are
        masked unless the user may see the contact details of both."""
        r, ca, cb = m.reviews.c, core.customers.alias("ca"), core.customers.alias("cb")
        query = (
            sa.select(
                r.id,
                r.customer_id,
                ca.c.name.label("name"),
                r.other_id,
                cb.c.name.label("other_name"),
                r.score,
                r.reason,
                r.status,
                ca.c.owner.label("_owner"),
                cb.c.owner.label("_other_owner"),
            )
            .join(ca, ca.c.id == r.customer_id)
            .join(cb, cb.c.id == r.other_id)
            .where(r.status == status, both(self._crm, r.customer_id, r.other_id, REVIEW))
            .order_by(r.score.desc(), r.id)
            .limit(limit)
        )
        with self._crm.reading() as conn:
            return shown_reasons(self._crm, conn.execute(query).mappings(), "_owner", "_other_owner")

    def accept(self, review_id: int) -> dict[str, Any]:
        """A reviewer confirms the pair is one customer: merge it (the older id is kept); returns the merge.

        Needs ``idic.review`` on both customers (else the item is not found) and ``customers.merge``."""
        self._crm.access.require(REVIEW)
        with self._crm.transaction() as session:
            conn = session.connection()
            item = self._pending(conn, review_id)
            one, two = self._current(conn, item.customer_id), self._current(conn, item.other_id)
            merge_id = None
            if one != two:
                merge_id = merge_pair(
                    self._crm,
                    session,
                    min(one, two),
                    max(one, two),
                    score=item.score,
                    reason=f"accepted by {self._crm.actor}: {item.reason}",
                    automatic=False,
                    run_id=item.run_id,
                )
            self._decide(conn, review_id, "accepted")
        return {"review": review_id, "merge": merge_id, "kept": min(one, two), "merged": max(one, two)}

    def reject(self, review_id: int, *, reason: str = "rejected by reviewer") -> None:
        """A reviewer says the pair are different customers: they will never be merged automatically
        (``idic.review`` on both customers)."""
        self._crm.access.require(REVIEW)
        if errors := control_character_errors({"reason": reason}):
            raise ValidationError(errors)
        with self._crm.transaction() as session:
            conn = session.connection()
            item = self._pending(conn, review_id)
            keep_apart(self._crm, conn, item.customer_id, item.other_id, reason)
            self._decide(conn, review_id, "rejected")

    def _pending(self, conn: sa.Connection, review_id: int) -> Any:
        r = m.reviews.c
        item = conn.execute(
            sa.select(m.reviews).where(r.id == review_id, both(self._crm, r.customer_id, r.other_id, REVIEW))
        ).first()
        if item is None:
            raise NotFound("review item", review_id)
        if item.status != "pending":
            raise Conflict(f"review item {review_id} is already {item.status}")
        return item

    def _decide(self, conn: sa.Connection, review_id: int, status: str) -> None:
        conn.execute(
            m.reviews.update()
            .where(m.reviews.c.id == review_id)
            .values(status=status, decided_by=self._crm.actor, decided_at=self._crm.now())
        )

    def _current(self, conn: sa.Connection, customer_id: int) -> int:
        c = core.customers.c
        row = conn.execute(sa.select(c.status, c.merged_into_id).where(c.id == customer_id)).one()
        if row.status == "merged" and row.merged_into_id is not None:
            return int(row.merged_into_id)
        if row.status != "active":
            raise Conflict(f"customer {customer_id} is {row.status}")
        return customer_id

    def merges(self, *, limit: int = 50) -> list[dict[str, Any]]:
        """The merge log (automatic and accepted merges), newest first: what ``unmerge`` can undo (``idic.review``).

        A merge belongs to the customer it kept (the merged record is a tombstone of it now): it shows when
        that customer is in the user's scope, its reason masked unless the user sees their contact details."""
        g, c = m.merge_log.c, core.customers.c
        query = (
            sa.select(
                g.id,
                g.run_id,
                g.customer_id.label("kept_id"),
                g.merged_id,
                g.score,
                g.reason,
                g.automatic,
                g.status,
                g.at,
                c.owner.label("_owner"),
            )
            .join(core.customers, c.id == g.customer_id)
            .where(self._crm.access.customers(g.customer_id, REVIEW))
            .order_by(g.id.desc())
            .limit(limit)
        )
        with self._crm.reading() as conn:
            return shown_reasons(self._crm, conn.execute(query).mappings(), "_owner")

    def unmerge(self, merge_id: int) -> dict[str, Any]:
        """Undo a merge of the log through the core (``crm.customers.unmerge`` of its merge): the merged customer
        is back with exactly the rows that came from it, in every plugin; the pair is then kept apart.

        Needs ``idic.review`` and ``customers.merge`` on both customers (outside the scope, the merge is not found).
        """
        self._crm.access.require(REVIEW)
        g = m.merge_log.c
        with self._crm.transaction() as session:
            conn = session.connection()
            log = conn.execute(
                sa.select(g.core_merge_id, g.status).where(
                    g.id == merge_id, self._crm.access.customers(g.customer_id, REVIEW)
                )
            ).first()
            if log is None:
                raise NotFound("IDIC merge", merge_id)
            if log.status != "merged":
                raise Conflict(f"merge {merge_id} was already undone")
            done = self._crm.customers.unmerge(log.core_merge_id)
        return {
            "merge": merge_id,
            "restored": done.restored_id,
            "kept": done.kept_id,
            "rows_moved_back": done.rows_moved_back,
        }

    def unmerged(self, conn: sa.Connection, kept_id: int, restored_id: int, core_merge_id: int) -> None:
        """A merge was undone (here or by ``crmkit customers unmerge``): its log entry says so, and the pair is kept
        apart so no run merges it again."""
        g = m.merge_log.c
        conn.execute(
            m.merge_log.update()
            .where(g.core_merge_id == core_merge_id, g.status == "merged")
            .values(status="undone", undone_at=self._crm.now())
        )
        d = m.do_not_merge.c  # pairs given back by the journal name the restored customer on either side: low first
        conn.execute(
            m.do_not_merge.update()
            .where(d.customer_id > d.other_id, sa.or_(d.customer_id == restored_id, d.other_id == restored_id))
            .values(customer_id=d.other_id, other_id=d.customer_id)
        )
        keep_apart(self._crm, conn, kept_id, restored_id, f"merge {core_merge_id} undone by {self._crm.actor}")

    # -- interact ----------------------------------------------------------------------------------------

    def agenda(self, employee: str | None = None, day: date | str | None = None) -> list[dict[str, Any]]:
        """The open plan items of ``employee`` (None: of every employee) due on ``day`` (local date, default today)
        or earlier (``idic.read``): only items about customers in the user's scope — a salesperson with scope
        own sees their own customers' contacts, a manager with team their team's."""
        when = self._crm.today() if day is None else _day(day)
        pl, c = m.plan_items.c, core.customers.c
        query = (
            sa.select(
                pl.id,
                pl.due_on,
                pl.hour,
                pl.customer_id,
                c.name,
                pl.owner,
                pl.channel,
                pl.purpose,
                m.profiles.c.next_action,
            )
            .join(core.customers, c.id == pl.customer_id)
            .outerjoin(m.profiles, m.profiles.c.customer_id == pl.customer_id)
            .where(pl.status == "open", pl.due_on <= when, self._crm.access.customers(pl.customer_id, READ))
            .order_by(pl.due_on, pl.hour, pl.id)
        )
        if employee is not None:
            query = query.where(pl.owner == employee)
        with self._crm.reading() as conn:
            return [dict(row) for row in conn.execute(query).mappings()]

    # -- customize ---------------------------------------------------------------------------------------

    def add_treatment(
        self,
        name: str,
        *,
        tier: str | None = None,
        needs: str | None = None,
        condition_: str | None = None,
        priority: int = 100,
        **what: str | None,
    ) -> dict[str, Any]:
        """A treatment rule: customers of ``tier`` × ``needs`` (None: any) meeting ``condition_`` (a campaigns
        segment expression) get this offer / price list / service level / message. Checked now (``idic.plan``)."""
        self._crm.access.require(PLAN)
        if errors := control_character_errors(
            {"name": name, "needs": needs, "condition": condition_, **what}, _MULTILINE
        ):
            raise ValidationError(errors)
        name = (name or "").strip()
        if not name or len(name) > 200:
            raise ValidationError("a name of 1 to 200 characters is required", field="name")
        if tier is not None and tier not in TIERS:
            raise ValidationError(f"unknown tier {tier!r} (one of {', '.join(TIERS)})", field="tier")
        unknown = set(what) - set(TREATMENT_FIELDS)
        if unknown:
            raise ValidationError(f"unknown treatment field(s) {', '.join(sorted(unknown))}", field=sorted(unknown)[0])
        if not any(what.get(f) for f in TREATMENT_FIELDS):
            raise ValidationError(f"say what the treatment is: one of {', '.join(TREATMENT_FIELDS)}", field="message")
        if not isinstance(priority, int) or isinstance(priority, bool):
            raise ValidationError("must be a whole number", field="priority")
        if condition_:
            condition(self._crm, condition_)  # an unknown field or a syntax error is refused now, not at run time
        row = {
            "name": name,
            "tier": tier,
            "needs": needs or None,
            "condition": condition_ or None,
            "priority": priority,
            "created_at": self._crm.now(),
            **{f: what.get(f) for f in TREATMENT_FIELDS},
        }
        with self._crm.transaction() as session:
            conn = session.connection()
            if conn.execute(sa.select(m.treatments.c.id).where(m.treatments.c.name == name)).first():
                raise Conflict(f"a treatment named {name!r} already exists")
            row["id"] = conn.execute(m.treatments.insert().values(row).returning(m.treatments.c.id)).scalar_one()
            self._crm.audit.record(session, "create", "idic_treatment", row["id"], changes=row)
        return row

    def treatments(self) -> list[dict[str, Any]]:
        """Every treatment rule, in the order they are tried (priority, then creation) (``idic.read``)."""
        self._crm.access.require(READ)
        t = m.treatments.c
        with self._crm.reading() as conn:
            return [dict(r) for r in conn.execute(sa.select(m.treatments).order_by(t.priority, t.id)).mappings()]

    def remove_treatment(self, name: str) -> None:
        """Delete a treatment rule (customers keep their next-best-action until the next Customize) (``idic.plan``)."""
        self._crm.access.require(PLAN)
        with self._crm.transaction() as session:
            conn = session.connection()
            treatment = self._treatment(conn, name)
            conn.execute(
                m.profiles.update().where(m.profiles.c.treatment_id == treatment["id"]).values(treatment_id=None)
            )
            conn.execute(m.treatments.delete().where(m.treatments.c.id == treatment["id"]))
            self._crm.audit.record(session, "delete", "idic_treatment", treatment["id"], changes={"name": name})

    def _treatment(self, conn: sa.Connection, name: str) -> dict[str, Any]:
        row = conn.execute(sa.select(m.treatments).where(m.treatments.c.name == name)).mappings().first()
        if row is None:
            raise NotFound("treatment", name)
        return dict(row)

    def handoff(self, name: str, *, channel: str = "email") -> dict[str, Any]:
        """Hand a treatment to campaigns: a segment of its customers and a draft campaign carrying its message,
        created together (one transaction). Needs ``idic.plan`` (and what campaigns asks for its segment and draft)."""
        self._crm.access.require(PLAN)
        if not self._crm.has_service("campaigns"):
            raise ValidationError("handoff needs the campaigns plugin (crmkit-campaigns)", field="treatment")
        with self._crm.transaction() as session:
            treatment = self._treatment(session.connection(), name)
            quoted = name.replace("\\", "\\\\").replace('"', '\\"')
            segment = self._crm.campaigns.segments.create(
                f"IDIC: {name}", f'idic_treatment = "{quoted}"', description=f"customers given IDIC treatment {name}"
            )
            campaign = self._crm.campaigns.create(
                f"IDIC: {name}",
                channel=channel,
                subject=treatment["offer"] or name,
                body=action_of(treatment),
                segment=segment.id,
            )
        return {
            "treatment": name,
            "segment_id": segment.id,
            "campaign_id": campaign.id,
            "campaign_status": campaign.status,
        }

    # -- profile, report ----------------------------------------------------------------------------------

    def profile_section(self, conn: sa.Connection, customer: Customer) -> dict[str, Any] | None:
        """The customer 360 section: identifiers, tier, needs group, channel and time, plan, treatment (its name,
        None for the tier's default) and next-best-action.

        None (no section) when the user's ``idic.read`` scope does not reach the customer; e-mails, phones and
        social handles among the identifiers are masked unless the user may see the customer's contact details."""
        access = self._crm.access
        if not (access.allowed(READ) and access.covers(customer.owner, READ)):
            return None
        customer_id = customer.id
        i, p, pl = m.identifiers.c, m.profiles.c, m.plan_items.c
        found = (
            conn.execute(
                sa.select(i.kind, i.value, i.source).where(i.customer_id == customer_id).order_by(i.kind, i.value)
            )
            .mappings()
            .all()
        )
        t = m.treatments.c
        profile = (
            conn.execute(
                sa.select(m.profiles, t.name.label("treatment"))
                .outerjoin(m.treatments, t.id == p.treatment_id)
                .where(p.customer_id == customer_id)
            )
            .mappings()
            .first()
        )
        plan = (
            conn.execute(
                sa.select(pl.due_on, pl.channel, pl.owner, pl.purpose)
                .where(pl.customer_id == customer_id, pl.status == "open")
                .order_by(pl.due_on)
            )
            .mappings()
            .all()
        )
        identifiers = [dict(r) for r in found]
        if not access.sees_contacts_of(customer.owner):
            identifiers = [{**r, "value": mask_identifier(r["kind"], r["value"])} for r in identifiers]
        section: dict[str, Any] = {"identifiers": identifiers, "plan": [dict(r) for r in plan]}
        if profile is not None:
            section.update(
                {
                    k: profile[k]
                    for k in (
                        "tier",
                        "needs",
                        "needs_reason",
                        "channel",
                        "best_hour",
                        "best_weekday",
                        "rhythm_days",
                        "treatment",
                        "next_action",
                        "reason",
                    )
                }
            )
        return section

    def report(self, path: str | Path, run_id: int | None = None, *, locale: str | None = None) -> Path:
        """Write the HTML report of a run (default: the last one) and return its path (``idic.read``; a user
        whose scope is not all gets the figures of their customers, and the page says so). It is written in
        ``locale`` (vi or en), else the business setting ``locale``, else Vietnamese."""
        from crmkit.plugin_api import plugin_translator
        from crmkit_idic.report import render

        self._crm.access.require(READ)
        run = self.get(run_id) if run_id is not None else self.last_run()
        if run is None:
            raise NotFound("IDIC run", "(none yet: run `crmkit idic run` first)")
        target = Path(path)
        target.write_text(render(self._crm, run, plugin_translator(self._crm, "idic", locale)), encoding="utf-8")
        return target


def keep_apart(crm: CRM, conn: sa.Connection, one: int, two: int, reason: str) -> bool:
    """Record that two customers must never be merged automatically (idempotent); False when they already were."""
    low, high = min(one, two), max(one, two)
    d = m.do_not_merge.c
    if conn.execute(sa.select(d.customer_id).where(d.customer_id == low, d.other_id == high)).first() is not None:
        return False
    conn.execute(
        m.do_not_merge.insert().values(
            customer_id=low, other_id=high, reason=reason[:500], created_by=crm.actor, created_at=crm.now()
        )
    )
    return True


def _day(value: date | str) -> date:
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise ValidationError(f"not a date (YYYY-MM-DD): {value!r}", field="date") from None
