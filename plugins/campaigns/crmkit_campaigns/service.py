"""``crm.campaigns``: campaigns from draft to done, their channels, runs, dispatch, tracking and reports.

The command line and the HTTP API (tracking routes included) are thin callers of this service. Every write is one
transaction; nothing is sent inside one (runs write the outbox, :meth:`dispatch` delivers after commit).

Every public method checks its permission (``crmkit_campaigns.permissions``) for the acting user;
the plain ``crm`` is the system and may do everything. A run prepared by a user targets only the
customers in that user's ``campaigns.send`` scope; a scheduled campaign runs, when its time comes,
with the scope of the user who scheduled it. Lists, previews and reports reach only the customers
in scope, and addresses are masked where the user may not see contact details.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from time import monotonic
from typing import TYPE_CHECKING, Any

import attrs
import marshmallow
import sqlalchemy as sa
from marshmallow import fields, validate

from crmkit.errors import Conflict, CRMError, NotFound, ValidationError
from crmkit.plugin_api import (
    SYSTEM,
    CleanSchema,
    has_purchases,
    mask_email,
    mask_phone,
    purchases,
    redact_options,
    to_jsonable,
)
from crmkit.plugin_api import core_tables as core
from crmkit_campaigns import config, hookspecs, occasions, reports, runs, signing, templates, transactional
from crmkit_campaigns import models as m
from crmkit_campaigns.channels import Adapter, build_adapter, check_config
from crmkit_campaigns.dispatch import Dispatcher
from crmkit_campaigns.objects import (
    PENDING_STATUSES,
    TRANSITIONS,
    Campaign,
    DispatchReport,
    Preview,
    RunResult,
    Variant,
)
from crmkit_campaigns.permissions import CHANNELS, MANAGE, READ, REPORTS, SEND, SUPPRESSIONS
from crmkit_campaigns.rendering import Renderer, variables
from crmkit_campaigns.segment_sql import Clock, shift
from crmkit_campaigns.segments import Segments
from crmkit_campaigns.shown import shown_rows
from crmkit_campaigns.signing import Signer, load_signer
from crmkit_campaigns.sqlparts import bucket, split_bounds
from crmkit_campaigns.tracking import Tracking

if TYPE_CHECKING:
    from contextlib import AbstractContextManager

    from sqlalchemy.orm import Session

    from crmkit.core.access import Principal
    from crmkit.crm import CRM

CampaignRef = int | str
#: Seconds a service keeps its signing keys before reading them again (a rotation reaches a running server).
SIGNER_TTL = 60.0
MAX_HOLDOUT = 50  # percent; also stated as plain numbers in the metadata below (apispec would write Decimals)


class CampaignSchema(CleanSchema):
    """What creating or changing a campaign accepts (money in integer minor units of ``currency``)."""

    MULTILINE = frozenset({"body", "objective"})

    name = fields.String(required=True, validate=validate.Length(min=1, max=200))
    channel = fields.String(required=True, validate=validate.Length(min=1, max=30))
    segment = fields.Raw(load_default=None, allow_none=True)
    objective = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=500))
    owner = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=100))
    currency = fields.String(load_default=None, allow_none=True, validate=validate.Regexp(r"^[A-Za-z]{3}$"))
    budget_minor = fields.Integer(load_default=None, allow_none=True, strict=True, validate=validate.Range(min=0))
    cost_fixed_minor = fields.Integer(load_default=0, strict=True, validate=validate.Range(min=0))
    cost_per_message_minor = fields.Integer(load_default=0, strict=True, validate=validate.Range(min=0))
    holdout_percent = fields.Decimal(
        load_default=Decimal(0),
        places=2,
        validate=validate.Range(min=0, max=MAX_HOLDOUT),
        metadata={"default": 0, "minimum": 0, "maximum": MAX_HOLDOUT},
    )
    attribution_days = fields.Integer(load_default=7, strict=True, validate=validate.Range(min=1, max=365))
    occasion = fields.String(load_default=None, allow_none=True, validate=occasions.validate)
    days_before = fields.Integer(load_default=0, strict=True, validate=validate.Range(min=0, max=60))
    subject = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=300))
    body = fields.String(required=True, validate=validate.Length(min=1, max=20_000))

    @marshmallow.pre_load
    def _strip(self, data: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        return {k: v.strip() if isinstance(v, str) and k not in ("body", "subject") else v for k, v in data.items()}


class VariantSchema(CleanSchema):
    """What a message variant accepts."""

    MULTILINE = frozenset({"body"})

    name = fields.String(
        required=True, validate=validate.Regexp(r"^[A-Za-z0-9_-]{1,50}$", error="letters, digits, - and _ (at most 50)")
    )
    weight = fields.Integer(load_default=1, strict=True, validate=validate.Range(min=1, max=1000))
    subject = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=300))
    body = fields.String(required=True, validate=validate.Length(min=1, max=20_000))


@attrs.frozen
class DueReport:
    """What ``run_due`` did: the runs it prepared and the campaigns it could not run (with why)."""

    runs: Sequence[RunResult]
    errors: Mapping[str, str]


class CampaignsService:
    """The campaigns of one CRM (``crm.campaigns``); segments at ``.segments``, events at ``.tracking``."""

    def __init__(self, crm: CRM) -> None:
        self._crm = crm
        self.segments = Segments(crm)
        self.tracking = Tracking(crm)
        self._schema = CampaignSchema()
        self._variant_schema = VariantSchema()
        self._signer: Signer | None = None
        self._signer_read = 0.0

    # -- settings and channels ---------------------------------------------------------------------------

    @property
    def settings(self) -> config.Settings:
        """The campaigns settings of this CRM (defaults filled in)."""
        return config.read(self._crm.settings)

    def configure(self, key: str, value: Any) -> Any:
        """Change one setting (``timezone``, ``quiet_hours``, ``frequency_cap``…, see ``config``); returns it as stored.

        Needs ``campaigns.channels.manage``.
        """
        self._crm.access.require(CHANNELS)
        key = key.removeprefix(config.PREFIX)
        stored = config.stored_form(key, value)
        self._store(key, stored)
        return stored

    def set_channel(self, channel: str, adapter: str, **options: Any) -> dict[str, Any]:
        """Deliver ``channel`` with a built-in adapter (``smtp``, ``webhook``, ``file``) and its options
        (``campaigns.channels.manage``)."""
        self._crm.access.require(CHANNELS)
        self._check_channel(channel)
        cleaned = check_config(channel, {"adapter": adapter, **options})
        channels = {**self.settings.channels, channel: cleaned}
        self._store("channels", channels)
        return cleaned

    def remove_channel(self, channel: str) -> None:
        """Forget the configured adapter of ``channel`` (a plugin's adapter, if any, serves it again)
        (``campaigns.channels.manage``)."""
        self._crm.access.require(CHANNELS)
        channels = dict(self.settings.channels)
        if channels.pop(channel, None) is None:
            raise NotFound("configured channel", channel)
        self._store("channels", channels)

    def _store(self, key: str, value: Any) -> None:
        """Write a campaigns setting; ``campaigns.channels.manage`` governs them (checked by the callers too).
        The founding day is the CRM's own setting (``crmkit.vncalendar``), which loyalty reads too."""
        self._crm.set_setting(config.CORE_KEYS.get(key, config.PREFIX + key), value, permission=CHANNELS)

    def adapters(self) -> dict[str, Adapter]:
        """A fresh adapter per channel: plugins' (``crmkit_channel_adapters``), then the configured ones on top
        (``campaigns.channels.manage``)."""
        self._crm.access.require(CHANNELS)
        return self._adapters()

    def _adapters(self) -> dict[str, Adapter]:
        found: dict[str, Adapter] = self._crm.hooks.collect(
            hookspecs.crmkit_channel_adapters
        )  # a channel claimed twice: refused
        for channel, options in self.settings.channels.items():
            found[channel] = build_adapter(channel, options)
        return found

    def adapter(self, channel: str) -> Adapter:
        """The adapter delivering ``channel``; ``ValidationError`` when none is set up (``campaigns.channels.manage``)."""
        self._crm.access.require(CHANNELS)
        return self._adapter(channel)

    def _adapter(self, channel: str) -> Adapter:
        found = self._adapters()
        if channel not in found:
            ready = ", ".join(sorted(found)) or "none"
            raise ValidationError(
                f"no adapter delivers channel {channel!r} (channels ready: {ready}); set one up with "
                f"`crmkit campaigns channel set {channel} …`",
                field="channel",
            )
        return found[channel]

    def channel_list(self) -> list[dict[str, Any]]:
        """Every channel with an adapter: which one, from where, what address it sends to, its options with
        secrets hidden (``campaigns.channels.manage``)."""
        self._crm.access.require(CHANNELS)
        configured = self.settings.channels
        return [
            {
                "channel": channel,
                "adapter": adapter.name,
                "address_kind": adapter.address_kind,
                "idempotent": adapter.idempotent,
                "source": "settings" if channel in configured else "plugin",
                "options": redact_options({k: v for k, v in configured.get(channel, {}).items() if k != "adapter"}),
            }
            for channel, adapter in sorted(self._adapters().items())
        ]

    def signer(self) -> Signer:
        """The tracking-link signer, holding the secret key (``campaigns.channels.manage``; the tracking
        routes act as the system)."""
        self._crm.access.require(CHANNELS)
        return self._link_signer()

    def _link_signer(self) -> Signer:
        """The signer (its key is created on first use, in its own transaction), read again after
        ``SIGNER_TTL`` so a long-running server sees a rotation and drops expired keys."""
        now = monotonic()
        if self._signer is None or now - self._signer_read > SIGNER_TTL:
            self._signer, self._signer_read = load_signer(self._crm), now
        return self._signer

    def rotate_signing_key(self, grace: timedelta = signing.DEFAULT_GRACE) -> int:
        """Sign new links (and the webhook token) with a new key; older keys verify for ``grace`` more
        (``campaigns.channels.manage``). Returns the new key's id."""
        self._crm.access.require(CHANNELS)
        new_id = signing.rotate(self._crm, grace)
        self._signer = None
        return new_id

    def signing_keys(self) -> list[dict[str, Any]]:
        """The signing keys with their dates and state, never their material (``campaigns.channels.manage``)."""
        self._crm.access.require(CHANNELS)
        return signing.key_list(self._crm)

    def webhook_token(self) -> str:
        """The bearer token providers must send to ``POST /campaigns/t/events``
        (``campaigns.channels.manage``)."""
        self._crm.access.require(CHANNELS)
        return self._link_signer().webhook_token()

    # -- campaigns -----------------------------------------------------------------------------------------

    def create(
        self,
        name: str,
        *,
        channel: str,
        body: str,
        subject: str | None = None,
        segment: CampaignRef | None = None,
        **options: Any,
    ) -> Campaign:
        """Create a draft campaign with one message variant ("A").

        ``options``: ``objective``, ``owner``, ``currency`` (default: the CRM's ``currency`` setting, else VND),
        ``budget_minor``, ``cost_fixed_minor``, ``cost_per_message_minor``, ``holdout_percent`` (0–50),
        ``attribution_days``, ``occasion`` (``birthday``, ``first_purchase``, ``tet``, ``founding_day``,
        ``valentine``, ``womens_day``…) and ``days_before``. The template is checked now: an unknown
        placeholder is a ``ValidationError`` naming its line and column.

        Needs ``campaigns.manage``. ``owner`` (default: the acting user) must be an active user within
        its scope.
        """
        self._crm.access.require(MANAGE)
        values = self._validate(
            self._schema,
            {"name": name, "channel": channel, "body": body, "subject": subject, "segment": segment, **options},
        )
        self._check_channel(values["channel"])
        currency = (values["currency"] or str(self._crm.settings.get("currency") or "VND")).upper()
        segment_id = self._segment_id(values["segment"])
        values["occasion"] = self._check_occasion(values["occasion"])
        known = variables(self.segments._fields())
        self._check_templates(values["subject"], values["body"], known)
        principal = self._crm.access.principal
        if values["owner"] is None and not principal.is_system:
            values["owner"] = principal.username
        now = self._crm.now()
        row = {
            k: values[k]
            for k in (
                "name",
                "objective",
                "owner",
                "channel",
                "budget_minor",
                "cost_fixed_minor",
                "cost_per_message_minor",
                "attribution_days",
                "occasion",
                "days_before",
            )
        }
        row.update(
            status="draft",
            segment_id=segment_id,
            currency=currency,
            holdout_bp=int(values["holdout_percent"] * 100),
            created_by=self._crm.actor,
            created_at=now,
            updated_at=now,
        )
        with self._crm.transaction() as session:
            conn = session.connection()
            self._check_owner(conn, row["owner"])
            if conn.execute(sa.select(m.campaigns.c.id).where(m.campaigns.c.name == row["name"])).first():
                raise Conflict(f"a campaign named {row['name']!r} already exists")
            campaign_id = conn.execute(m.campaigns.insert().values(row).returning(m.campaigns.c.id)).scalar_one()
            conn.execute(
                m.variants.insert().values(
                    campaign_id=campaign_id, name="A", weight=1, subject=values["subject"], body=values["body"]
                )
            )
            self._crm.audit.record(
                session, "create", "campaign", campaign_id, changes={**row, "subject": values["subject"]}
            )
            return self._load(conn, campaign_id)

    def update(self, campaign: CampaignRef, **changes: Any) -> Campaign:
        """Change a draft campaign's settings (not its messages: see :meth:`set_variant`).

        Needs ``campaigns.manage`` over the campaign's owner (and the new owner, when it changes).
        """
        self._crm.access.require(MANAGE)
        allowed = set(CampaignSchema().fields) - {"body", "subject", "name"}
        unknown = sorted(set(changes) - allowed)
        if unknown:
            raise ValidationError(
                f"cannot change {', '.join(unknown)} (changeable: {', '.join(sorted(allowed))})", field=unknown[0]
            )
        with self._crm.transaction() as session:
            conn = session.connection()
            current = self._load(conn, campaign, for_update=True)
            self._require_managed(current)
            self._require_status(current, "draft", "changed")
            merged = {
                "name": current.name,
                "channel": current.channel,
                "body": current.variants[0].body,
                "segment": current.segment_id,
                "objective": current.objective,
                "owner": current.owner,
                "currency": current.currency,
                "budget_minor": current.budget_minor,
                "cost_fixed_minor": current.cost_fixed_minor,
                "cost_per_message_minor": current.cost_per_message_minor,
                "holdout_percent": current.holdout_percent,
                "attribution_days": current.attribution_days,
                "occasion": current.occasion,
                "days_before": current.days_before,
                **changes,
            }
            values = self._validate(self._schema, merged)
            self._check_channel(values["channel"])
            values["occasion"] = self._check_occasion(values["occasion"])
            row = {k: values[k] for k in changes if k not in ("segment", "holdout_percent", "currency")}
            if "owner" in changes:
                self._check_owner(conn, values["owner"])
            if "segment" in changes:
                row["segment_id"] = self._segment_id(values["segment"])
            if "holdout_percent" in changes:
                row["holdout_bp"] = int(values["holdout_percent"] * 100)
            if "currency" in changes:
                row["currency"] = values["currency"].upper()
            conn.execute(
                m.campaigns.update().where(m.campaigns.c.id == current.id).values(**row, updated_at=self._crm.now())
            )
            self._crm.audit.record(session, "update", "campaign", current.id, changes=changes)
            return self._load(conn, current.id)

    def set_variant(
        self, campaign: CampaignRef, name: str, *, body: str, subject: str | None = None, weight: int = 1
    ) -> Campaign:
        """Add or replace a message variant of a draft campaign; customers are split by ``weight`` (A/B).

        Needs ``campaigns.manage`` over the campaign's owner.
        """
        self._crm.access.require(MANAGE)
        values = self._validate(
            self._variant_schema, {"name": name, "body": body, "subject": subject, "weight": weight}
        )
        self._check_templates(values["subject"], values["body"], variables(self.segments._fields()))
        with self._crm.transaction() as session:
            conn = session.connection()
            current = self._load(conn, campaign, for_update=True)
            self._require_managed(current)
            self._require_status(current, "draft", "changed")
            v = m.variants.c
            existing = next((x for x in current.variants if x.name == values["name"]), None)
            if existing:
                conn.execute(
                    m.variants.update()
                    .where(v.id == existing.id)
                    .values(weight=values["weight"], subject=values["subject"], body=values["body"])
                )
            else:
                conn.execute(m.variants.insert().values(campaign_id=current.id, **values))
            self._crm.audit.record(session, "variant", "campaign", current.id, changes=values)
            return self._load(conn, current.id)

    def remove_variant(self, campaign: CampaignRef, name: str) -> Campaign:
        """Remove a variant of a draft campaign (the last one stays); ``campaigns.manage`` over its owner."""
        self._crm.access.require(MANAGE)
        with self._crm.transaction() as session:
            conn = session.connection()
            current = self._load(conn, campaign, for_update=True)
            self._require_managed(current)
            self._require_status(current, "draft", "changed")
            target = next((x for x in current.variants if x.name == name), None)
            if target is None:
                raise NotFound("variant", name)
            if len(current.variants) == 1:
                raise Conflict("a campaign keeps at least one variant")
            conn.execute(m.variants.delete().where(m.variants.c.id == target.id))
            self._crm.audit.record(session, "remove_variant", "campaign", current.id, changes={"name": name})
            return self._load(conn, current.id)

    def get(self, campaign: CampaignRef) -> Campaign:
        """A campaign by id or name, with its variants (``campaigns.read``)."""
        self._crm.access.require(READ)
        return self._get(campaign)

    def _get(self, campaign: CampaignRef) -> Campaign:
        with self._crm.reading() as conn:
            return self._load(conn, campaign)

    def list(self, *, status: str | None = None, limit: int | None = None) -> list[Campaign]:
        """Campaigns, newest first (optionally of one status, the latest ``limit``); ``campaigns.read``."""
        self._crm.access.require(READ)
        return self._list(status, limit)

    def _list(self, status: str | None = None, limit: int | None = None) -> list[Campaign]:
        if status is not None and status not in TRANSITIONS:
            raise ValidationError(f"must be one of {', '.join(TRANSITIONS)}", field="status")
        query = sa.select(m.campaigns.c.id).order_by(m.campaigns.c.id.desc()).limit(limit)
        if status:
            query = query.where(m.campaigns.c.status == status)
        with self._crm.reading() as conn:
            return [self._load(conn, campaign_id) for campaign_id in conn.execute(query).scalars()]

    # -- the lifecycle ---------------------------------------------------------------------------------------

    def schedule(self, campaign: CampaignRef, at: datetime | None = None) -> Campaign:
        """draft → scheduled: ``run-due`` sends it from ``at`` (default now); an occasion campaign is active from then.

        Scheduling decides a send, so it needs ``campaigns.manage`` over the campaign's owner *and*
        ``campaigns.send``: when its time comes the campaign runs with the scheduling user's scope.
        """
        self._crm.access.require(MANAGE)
        self._crm.access.require(SEND)
        when = at or self._crm.now()
        if when.tzinfo is None:
            raise ValidationError("give a time with its time zone (e.g. 2025-01-20T09:00+07:00)", field="at")
        principal = self._crm.access.principal
        with self._crm.transaction() as session:
            conn = session.connection()
            current = self._load(conn, campaign, for_update=True)
            self._require_managed(current)
            self._adapter(current.channel)
            self._move(
                session,
                current,
                "scheduled",
                scheduled_at=when,
                scheduled_by=None if principal.is_system else principal.username,
            )
            return self._load(conn, current.id)

    def unschedule(self, campaign: CampaignRef) -> Campaign:
        """scheduled → draft (to change it); ``campaigns.manage`` over its owner."""
        self._crm.access.require(MANAGE)
        with self._crm.transaction() as session:
            conn = session.connection()
            current = self._load(conn, campaign, for_update=True)
            self._require_managed(current)
            self._move(session, current, "draft", scheduled_at=None, scheduled_by=None)
            return self._load(conn, current.id)

    def cancel(self, campaign: CampaignRef) -> Campaign:
        """Stop a campaign: messages not yet handed to a provider are cancelled (in flight ones finish).

        Needs ``campaigns.manage`` over its owner.
        """
        self._crm.access.require(MANAGE)
        with self._crm.transaction() as session:
            conn = session.connection()
            current = self._load(conn, campaign, for_update=True)
            self._require_managed(current)
            self._move(session, current, "cancelled", finished_at=self._crm.now())
            msg = m.messages.c
            conn.execute(
                m.messages.update()
                .where(msg.campaign_id == current.id, msg.status.in_(("queued", "claimed")))
                .values(status="cancelled", reason="campaign_cancelled", worker=None, lease_until=None)
            )
            return self._load(conn, current.id)

    def run(self, campaign: CampaignRef, *, now: datetime | None = None, kind: str = "manual") -> RunResult:
        """Prepare a one-off campaign's messages now (draft/scheduled → running); again later adds only newcomers.

        Nothing is sent here: ``dispatch`` delivers. A campaign whose audience holds nobody who may
        receive it raises ``ValidationError`` (excluded counts by reason) and writes nothing.

        Needs ``campaigns.send``: the run targets only the customers in its scope (the audience is
        fixed now; dispatching later sends what was prepared).
        """
        self._crm.access.require(SEND)
        now = now or self._crm.now()
        with self._crm.transaction() as session:
            conn = session.connection()
            current = self._load(conn, campaign, for_update=True)
            if current.occasion:
                raise Conflict(
                    f"campaign {current.name!r} is an occasion campaign: activate it with `schedule`; "
                    f"`run-due` sends it each day"
                )
            if current.status in ("done", "cancelled"):
                raise Conflict(f"campaign {current.name!r} is {current.status}: it cannot run again")
            adapter = self._adapter(current.channel)
            first = current.status != "running"
            if current.status == "draft":
                self._move(session, current, "scheduled", scheduled_at=now)
                current = self._load(conn, current.id)
            segment = self._segment_expression(conn, current)
            audience = self.segments.audience(expression=segment, now=now, permission=SEND)
            result = runs.prepare(
                self._crm,
                session,
                current,
                audience=audience,
                address_kind=adapter.address_kind,
                settings=self.settings,
                period="",
                kind=kind,
                now=now,
                expression=segment,
                require_recipients=first,
            )
            if first:
                self._move(session, current, "running", started_at=now)
            self._crm.audit.record(session, "run", "campaign", current.id, changes=attrs.asdict(result))
            return result

    def run_due(self, *, now: datetime | None = None) -> DueReport:
        """What cron calls: run scheduled one-off campaigns whose time came, and today's occasions.

        Each campaign runs in its own transaction; one that cannot run is reported, the others still run.
        Needs ``campaigns.send``; each campaign runs as the user who scheduled it (their scope, checked
        now: a user since disabled or without ``campaigns.send`` is reported), or as the system when
        the system scheduled it.
        """
        self._crm.access.require(SEND)
        now = now or self._crm.now()
        c = m.campaigns.c
        with self._crm.reading() as conn:
            due = conn.execute(
                sa.select(c.id, c.occasion, c.scheduled_by)
                .where(
                    c.scheduled_at <= now,
                    sa.or_(c.status == "scheduled", sa.and_(c.status == "running", c.occasion.is_not(None))),
                )
                .order_by(c.scheduled_at, c.id)
            ).all()
        results: list[RunResult] = []
        errors: dict[str, str] = {}
        for campaign_id, occasion, scheduled_by in due:
            try:
                with self._acting_for(scheduled_by):
                    if occasion:
                        results.extend(self._run_occasion(campaign_id, now))
                    else:
                        results.append(self.run(campaign_id, now=now, kind="scheduled"))
            except CRMError as exc:
                errors[self._get(campaign_id).name] = str(exc)
        return DueReport(results, errors)

    def _acting_for(self, username: str | None) -> AbstractContextManager[Principal]:
        """Act as the user who scheduled a campaign (their permissions and scope as they are now), or the system."""
        if username is None:
            return self._crm.access.acting(SYSTEM)
        return self._crm.access.acting(self._crm.users.principal(username))

    def _run_occasion(self, campaign_id: int, now: datetime) -> list[RunResult]:
        """Handle the local days not yet handled for an occasion campaign (one transaction)."""
        self._crm.access.require(SEND)
        settings = self.settings
        clock = Clock(now, settings.zone)
        with self._crm.transaction() as session:
            conn = session.connection()
            current = self._load(conn, campaign_id, for_update=True)
            if current.status not in ("scheduled", "running"):
                return []  # cancelled since run-due looked
            adapter = self._adapter(current.channel)
            segment = self._segment_expression(conn, current)
            audience = self.segments.audience(expression=segment, now=now, permission=SEND)
            checked = conn.execute(
                sa.select(m.campaigns.c.occasion_checked_through).where(m.campaigns.c.id == current.id)
            ).scalar_one()
            started = (current.scheduled_at or now).astimezone(settings.zone).date()
            source = purchases(self._crm) if current.occasion == "first_purchase" else None
            results = []
            for day in occasions.days_to_process(checked, started, clock.today):
                target = shift(day, days=current.days_before)
                who = occasions.condition(
                    current.occasion or "", target, clock=clock, founding_day=settings.founding_day, purchases=source
                )
                if who is None:
                    continue
                result = runs.prepare(
                    self._crm,
                    session,
                    current,
                    audience=sa.and_(audience, who),
                    address_kind=adapter.address_kind,
                    settings=settings,
                    period=str(target.year),
                    kind="occasion",
                    now=now,
                    occasion_date=target,
                    expression=segment,
                    require_recipients=False,
                )
                if result.run_id is not None:
                    results.append(result)
            if current.status == "scheduled":
                self._move(session, current, "running", started_at=now)
            conn.execute(
                m.campaigns.update().where(m.campaigns.c.id == current.id).values(occasion_checked_through=clock.today)
            )
            if results:
                self._crm.audit.record(
                    session, "run", "campaign", current.id, changes={"runs": [attrs.asdict(r) for r in results]}
                )
            return results

    def dispatch(
        self,
        *,
        limit: int | None = None,
        retry_unconfirmed: bool = False,
        now: datetime | None = None,
        batch: int = 100,
    ) -> DispatchReport:
        """Deliver due messages after commit, with retries and backoff (safe to run from several processes).

        Needs ``campaigns.send`` (any scope: it sends what runs prepared, for whoever prepared them).
        """
        self._crm.access.require(SEND)
        self._link_signer()  # its key is made outside any transaction
        clock = (lambda: now) if now is not None else None  # None: the CRM's clock
        return Dispatcher(self._crm, self, clock=clock, batch=batch).run(
            limit=limit, retry_unconfirmed=retry_unconfirmed
        )

    def send_message(
        self,
        customer_id: int,
        *,
        purpose: str,
        reference: str,
        body: str,
        subject: str | None = None,
        values: Mapping[str, str] | None = None,
        channel: str | None = None,
        session: Session | None = None,
    ) -> transactional.SendResult:
        """Queue one transactional message (a survey, a receipt) to a customer on the first channel of
        ``campaigns.transactional_channels`` (or ``channel``) they may be reached on — consent, suppression, an
        address, the frequency cap and quiet hours as for campaigns; else nothing goes and the result says why.
        ``body``/``subject`` are templates (placeholders of campaigns plus ``values``); the same ``reference``
        is queued once. In ``session``'s transaction when given (``campaigns.send``)."""
        self._crm.access.require(SEND)
        arguments = {
            "purpose": purpose,
            "reference": reference,
            "subject": subject,
            "body": body,
            "values": dict(values or {}),
            "channels": [channel] if channel else None,
        }
        if session is not None:
            return transactional.send(self._crm, self, session, customer_id, **arguments)
        with self._crm.transaction() as own:
            return transactional.send(self._crm, self, own, customer_id, **arguments)

    def finish_completed(self, now: datetime) -> list[int]:
        """running → done for every one-off campaign none of whose messages waits or is in flight; their ids
        (``campaigns.send``)."""
        self._crm.access.require(SEND)
        c, msg = m.campaigns.c, m.messages.c
        pending = sa.exists().where(msg.campaign_id == c.id, msg.status.in_(PENDING_STATUSES))
        finished = []
        with self._crm.transaction() as session:
            conn = session.connection()
            for campaign_id in (
                conn.execute(
                    sa.select(c.id).where(c.status == "running", c.occasion.is_(None), ~pending).order_by(c.id)
                )
                .scalars()
                .all()
            ):
                current = self._load(conn, campaign_id, for_update=True)
                if current.status != "running":
                    continue  # a concurrent dispatcher finished it first
                self._move(session, current, "done", finished_at=now)
                self._crm.events.emit(
                    session,
                    "campaign.finished",
                    lambda: {"campaign": to_jsonable(self._load(conn, campaign_id))},  # noqa: B023 - emit calls it now
                )
                finished.append(campaign_id)
        return finished

    # -- previews, messages, suppressions, reports -------------------------------------------------------------

    def preview(
        self, campaign: CampaignRef, customer_id: int, *, variant: str | None = None, now: datetime | None = None
    ) -> Preview:
        """The message one customer would get (their variant unless one is named), and whether they would get it.

        Needs ``campaigns.read`` over the customer (``NotFound`` outside its scope) and ``customers.read``;
        the address and contact placeholders are masked where the user may not see contact details.
        """
        self._crm.access.require(READ)
        now = now or self._crm.now()
        current = self._get(campaign)
        customer = self._crm.customers.get(customer_id)
        chosen = self._variant_of(current, customer.id, variant)
        adapter = self._adapter(current.channel)
        settings = self.settings
        segment = current.segment and self.segments._get(current.segment).expression
        with self._crm.reading() as conn:
            self._crm.access.require_customer(conn, customer.id, READ)
            where = sa.and_(core.customers.c.id == customer.id, self.segments.unscoped(expression=segment, now=now))
            in_audience = conn.execute(sa.select(core.customers.c.id).where(where)).first() is not None
            reason = conn.execute(
                sa.select(runs.eligibility(current.channel, adapter.address_kind, settings, now)).where(
                    core.customers.c.id == customer.id
                )
            ).scalar()
            renderer = self._renderer(current.id, html=adapter.address_kind == "email", signer=self._link_signer())
            values = renderer.values(conn, [customer.id], now)[customer.id]
        if not self._crm.access.sees_contacts_of(customer.owner):
            values = {
                **values,
                "email": values["email"] and mask_email(values["email"]),
                "phone": values["phone"] and mask_phone(values["phone"]),
            }
        if not in_audience:
            reason = "not_in_audience"
        elif (
            reason is None
            and variant is None
            and bucket(customer.id, current.id, "holdout") < current.holdout_percent * 100
        ):
            reason = "holdout"
        rendered = renderer.render(chosen, values, 0)
        to = customer.email if adapter.address_kind == "email" else customer.phone
        return Preview(
            current.id,
            customer.id,
            chosen.name,
            to,
            rendered.subject,
            rendered.text,
            rendered.html,
            reason is None,
            reason,
        )

    def renderer(self, campaign_id: int, *, html: bool, signer: Signer) -> Renderer:
        """A renderer of the campaign's variants (``campaigns.read``)."""
        self._crm.access.require(READ)
        return self._renderer(campaign_id, html=html, signer=signer)

    def _renderer(self, campaign_id: int, *, html: bool, signer: Signer) -> Renderer:
        """The renderer the dispatcher and previews use."""
        settings = self.settings
        return Renderer(
            self._crm,
            self._get(campaign_id),
            self.segments._fields(),
            zone=settings.zone,
            base_url=settings.base_url,
            signer=signer,
            html=html,
        )

    def messages(self, campaign: CampaignRef, *, status: str | None = None, limit: int = 50) -> list[dict[str, Any]]:
        """A campaign's messages (newest first), e.g. the ``failed`` or ``unconfirmed`` ones.

        Needs ``campaigns.read``: only messages to customers in its scope, addresses masked where the
        user may not see contact details.
        """
        self._crm.access.require(READ)
        if not 1 <= limit <= 10_000:
            raise ValidationError("must be between 1 and 10000", field="limit")
        current = self._get(campaign)
        msg, c = m.messages.c, core.customers.c
        query = (
            sa.select(
                msg.id,
                msg.customer_id,
                msg.status,
                msg.reason,
                msg.attempts,
                msg.next_attempt_at,
                msg.sent_at,
                msg.address,
                msg.provider_message_id,
                msg.last_error,
                msg.delivered_at,
                msg.opened_at,
                msg.clicked_at,
                msg.responded_at,
                msg.unsubscribed_at,
                c.owner,
            )
            .join(core.customers, c.id == msg.customer_id)
            .where(msg.campaign_id == current.id, self._crm.access.owner_filter(c.owner, READ))
            .order_by(msg.id.desc())
            .limit(limit)
        )
        if status:
            query = query.where(msg.status == status)
        with self._crm.reading() as conn:
            return shown_rows(self._crm, conn.execute(query).mappings())

    def customer_messages(self, customer_id: int, *, limit: int = 10) -> list[dict[str, Any]]:
        """One customer's latest campaign messages, newest first, whatever became of them (queued, sent,
        held out, excluded and why; when it was delivered, opened, clicked…): the customer 360's panel.

        Needs ``campaigns.read``: a customer outside its scope has no messages here (the 360 page itself
        decides whether the customer shows); addresses masked where the user may not see contact details.
        """
        self._crm.access.require(READ)
        msg, c, cmp = m.messages.c, core.customers.c, m.campaigns.c
        query = (
            sa.select(
                msg.id,
                msg.campaign_id,
                cmp.name.label("campaign"),
                msg.channel,
                msg.status,
                msg.reason,
                msg.address,
                msg.queued_at,
                msg.sent_at,
                msg.delivered_at,
                msg.bounced_at,
                msg.opened_at,
                msg.clicked_at,
                msg.responded_at,
                msg.unsubscribed_at,
                c.owner,
            )
            .join(m.campaigns, cmp.id == msg.campaign_id)
            .join(core.customers, c.id == msg.customer_id)
            .where(msg.customer_id == customer_id, self._crm.access.owner_filter(c.owner, READ))
            .order_by(msg.id.desc())
            .limit(limit)
        )
        with self._crm.reading() as conn:
            return shown_rows(self._crm, conn.execute(query).mappings())

    def suppress(
        self, *, reason: str, address: str | None = None, customer_id: int | None = None, channel: str | None = None
    ) -> int:
        """Put an address or a customer on the suppression list (of one channel, or all); returns its id.

        Needs ``campaigns.suppressions.manage`` over the customer; an address alone (no customer) needs
        it with scope ``all``.
        """
        scope = self._crm.access.require(SUPPRESSIONS)
        if not reason or not reason.strip():
            raise ValidationError("say why (e.g. 'asked by phone not to be contacted')", field="reason")
        if address is None and customer_id is None:
            raise ValidationError("give an address or a customer id", field="address")
        if channel is not None and channel not in self._crm.channels:
            raise ValidationError(f"unknown channel {channel!r}", field="channel")
        if customer_id is None and scope != "all":
            raise ValidationError(
                "give the customer the address belongs to: your scope of "
                f"{SUPPRESSIONS} reaches only customers' entries",
                field="customer_id",
            )
        if customer_id is not None:
            customer_id = self._crm.customers.get(customer_id).id
        normalized = self._normalize_address(address) if address else None
        with self._crm.transaction() as session:
            if customer_id is not None:
                self._crm.access.require_customer(session.connection(), customer_id, SUPPRESSIONS)
            new_id = (
                session.connection()
                .execute(
                    m.suppressions.insert()
                    .values(
                        channel=channel,
                        address=normalized,
                        customer_id=customer_id,
                        reason=reason.strip()[:200],
                        created_by=self._crm.actor,
                        created_at=self._crm.now(),
                    )
                    .returning(m.suppressions.c.id)
                )
                .scalar_one()
            )
            self._crm.audit.record(
                session,
                "suppress",
                "suppression",
                new_id,
                customer_id=customer_id,
                changes={"address": normalized, "channel": channel, "reason": reason},
            )
        return int(new_id)

    def unsuppress(self, suppression_id: int) -> None:
        """Take an entry off the suppression list (``campaigns.suppressions.manage`` over its customer)."""
        scope = self._crm.access.customers(m.suppressions.c.customer_id, SUPPRESSIONS)
        with self._crm.transaction() as session:
            conn = session.connection()
            row = (
                conn.execute(sa.select(m.suppressions).where(m.suppressions.c.id == suppression_id, scope))
                .mappings()
                .first()
            )
            if row is None:
                raise NotFound("suppression", suppression_id)
            conn.execute(m.suppressions.delete().where(m.suppressions.c.id == suppression_id))
            self._crm.audit.record(
                session,
                "unsuppress",
                "suppression",
                suppression_id,
                customer_id=row["customer_id"],
                changes={"address": row["address"], "channel": row["channel"]},
            )

    def suppressions(self, *, limit: int = 100, customer_id: int | None = None) -> list[dict[str, Any]]:
        """The suppression list (or one customer's entries), newest first.

        Needs ``campaigns.read``: entries of customers in its scope (entries of an address alone need
        scope ``all``), addresses masked where the user may not see contact details.
        """
        self._crm.access.require(READ)
        s, c = m.suppressions.c, core.customers.c
        query = (
            sa.select(m.suppressions, c.owner.label("customer_owner"))
            .outerjoin(core.customers, c.id == s.customer_id)
            .where(self._crm.access.customers(s.customer_id, READ))
            .order_by(s.id.desc())
            .limit(limit)
        )
        if customer_id is not None:
            query = query.where(s.customer_id == customer_id)
        with self._crm.reading() as conn:
            return shown_rows(self._crm, conn.execute(query).mappings(), owner="customer_owner")

    def report(self, campaign: CampaignRef) -> reports.CampaignReport:
        """ROI, rates and lift over the holdout of one campaign, per variant (see ``reports``).

        Needs ``campaigns.reports.read``; a user with a narrower scope than ``all`` gets the figures of
        the customers in it (the report's ``scoped_to`` names the user).
        """
        self._crm.access.require(REPORTS)
        return reports.campaign_report(self._crm, self._get(campaign))

    def compare(self, campaigns: Sequence[CampaignRef] | None = None) -> list[reports.CampaignReport]:
        """Reports of several campaigns (default: every campaign that has run); ``campaigns.reports.read``."""
        self._crm.access.require(REPORTS)
        if campaigns is None:
            chosen = [c for c in self._list() if c.status in ("running", "done", "cancelled")]
        else:
            chosen = [self._get(c) for c in campaigns]
        return [reports.campaign_report(self._crm, c) for c in chosen]

    # -- internals ---------------------------------------------------------------------------------------

    def _load(self, conn: sa.Connection, campaign: CampaignRef, *, for_update: bool = False) -> Campaign:
        c = m.campaigns.c
        key = c.id == campaign if isinstance(campaign, int) else c.name == str(campaign).strip()
        query = (
            sa.select(m.campaigns, m.segments.c.name.label("segment_name"))
            .outerjoin(m.segments, m.segments.c.id == c.segment_id)
            .where(key)
        )
        if for_update and conn.dialect.name == "postgresql":
            query = query.with_for_update(of=m.campaigns)
        row = conn.execute(query).mappings().first()
        if row is None:
            raise NotFound("campaign", campaign)
        v = m.variants.c
        found = conn.execute(sa.select(m.variants).where(v.campaign_id == row["id"]).order_by(v.id)).mappings().all()
        return Campaign(
            id=row["id"],
            name=row["name"],
            status=row["status"],
            channel=row["channel"],
            segment=row["segment_name"],
            segment_id=row["segment_id"],
            currency=row["currency"],
            cost_fixed_minor=row["cost_fixed_minor"],
            cost_per_message_minor=row["cost_per_message_minor"],
            holdout_percent=Decimal(row["holdout_bp"]) / 100,
            attribution_days=row["attribution_days"],
            created_by=row["created_by"],
            created_at=row["created_at"],
            updated_at=row["updated_at"],
            objective=row["objective"],
            owner=row["owner"],
            budget_minor=row["budget_minor"],
            occasion=row["occasion"],
            days_before=row["days_before"],
            scheduled_at=row["scheduled_at"],
            started_at=row["started_at"],
            finished_at=row["finished_at"],
            scheduled_by=row["scheduled_by"],
            variants=tuple(Variant(r["id"], r["name"], r["weight"], r["subject"], r["body"]) for r in found),
        )

    def _move(self, session: Session, campaign: Campaign, status: str, **values: Any) -> None:
        """Change a campaign's status if the move is legal (``Conflict`` otherwise), and audit it."""
        if status not in TRANSITIONS[campaign.status]:
            allowed = ", ".join(TRANSITIONS[campaign.status]) or "none: it is final"
            raise Conflict(
                f"campaign {campaign.name!r} is {campaign.status}: it cannot become {status} "
                f"(from {campaign.status}: {allowed})"
            )
        session.connection().execute(
            m.campaigns.update()
            .where(m.campaigns.c.id == campaign.id)
            .values(status=status, updated_at=self._crm.now(), **values)
        )
        self._crm.audit.record(
            session, "status", "campaign", campaign.id, changes={"from": campaign.status, "to": status, **values}
        )

    def _require_managed(self, campaign: Campaign) -> None:
        """``PermissionDenied`` unless ``campaigns.manage``'s scope reaches the campaign's owner."""
        self._crm.access.require_owned(campaign.owner, MANAGE, f"campaign {campaign.name!r}")

    def _check_owner(self, conn: sa.Connection, owner: str | None) -> None:
        """A campaign's owner is an active user the acting user may give campaigns to."""
        if owner is not None:
            self._crm.users.require_assignable(conn, [owner], field="owner")
        if not self._crm.access.covers(owner, MANAGE):
            whom = repr(owner) if owner else "a campaign without an owner"
            raise ValidationError(f"{whom} is outside your scope of {MANAGE}", field="owner")

    @staticmethod
    def _require_status(campaign: Campaign, status: str, what: str) -> None:
        if campaign.status != status:
            raise Conflict(f"campaign {campaign.name!r} is {campaign.status}: only a {status} campaign can be {what}")

    def _segment_expression(self, conn: sa.Connection, campaign: Campaign) -> str | None:
        if campaign.segment_id is None:
            return None
        return conn.execute(
            sa.select(m.segments.c.expression).where(m.segments.c.id == campaign.segment_id)
        ).scalar_one()

    def _segment_id(self, segment: Any) -> int | None:
        if segment is None:
            return None
        try:
            return self.segments._get(segment if isinstance(segment, int) else str(segment)).id
        except NotFound:
            raise ValidationError(
                f"no saved segment {segment!r} (create it with `crmkit campaigns segments create`)", field="segment"
            ) from None

    def _check_channel(self, channel: str) -> None:
        if channel not in self._crm.channels:
            raise ValidationError(
                f"unknown channel {channel!r} (known: {', '.join(self._crm.channels)})", field="channel"
            )

    def _check_occasion(self, occasion: str | None) -> str | None:
        """The occasion in its stored form (``crmkit.vncalendar``'s spellings), if this CRM can run it."""
        occasion = None if occasion is None else occasions.normalize(occasion)
        if occasion == "first_purchase" and not has_purchases(self._crm):
            raise ValidationError(
                "first-purchase anniversaries need purchase data: install a plugin providing "
                "crmkit_value_transactions (crmkit-sales)",
                field="occasion",
            )
        if occasion == "founding_day" and self.settings.founding_day is None:
            raise ValidationError(
                "set the founding day first: crmkit campaigns config founding_day DD/MM", field="occasion"
            )
        return occasion

    @staticmethod
    def _check_templates(subject: str | None, body: str, known: Mapping[str, str]) -> None:
        if subject:
            templates.parse(subject, known, field="subject")
        templates.parse(body, known, field="body")

    @staticmethod
    def _variant_of(campaign: Campaign, customer_id: int, name: str | None) -> Variant:
        if name is not None:
            found = next((v for v in campaign.variants if v.name == name), None)
            if found is None:
                raise NotFound("variant", name)
            return found
        drawn = bucket(customer_id, campaign.id, "variant")
        bounds = split_bounds([v.weight for v in campaign.variants])
        return next((v for bound, v in zip(bounds, campaign.variants) if drawn < bound), campaign.variants[-1])

    def _normalize_address(self, address: str) -> str:
        from crmkit.plugin_api import normalize_email, normalize_phone

        text = address.strip()
        try:
            return normalize_email(text) if "@" in text else normalize_phone(text, self._crm.default_country)
        except ValueError as exc:
            raise ValidationError(str(exc), field="address") from None

    @staticmethod
    def _validate(schema: marshmallow.Schema, data: Mapping[str, Any]) -> dict[str, Any]:
        try:
            return schema.load(dict(data))
        except marshmallow.ValidationError as exc:
            raise ValidationError(exc.messages_dict) from None
