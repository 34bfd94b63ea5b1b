"""The dispatcher: delivers queued messages after commit, exactly once per person, with retries and backoff.

A message moves ``queued`` → ``claimed`` → ``sending`` → ``sent`` (or back to ``queued`` with a
later ``next_attempt_at`` after a transient failure, or ``failed``). Each step is its own short
transaction, and the adapter is called between them — never inside one:

* **claim**: a batch of due rows is taken with a lease (``FOR UPDATE SKIP LOCKED`` on PostgreSQL;
  SQLite serializes writers with ``BEGIN IMMEDIATE``), so concurrent dispatchers never share a row;
* **sending** is committed *before* the adapter is called, **sent** (with the provider's id)
  right after it returns;
* a dispatcher that stops (crash, kill) leaves rows with an expired lease. ``claimed`` ones were
  never handed to an adapter: they are queued again. ``sending`` ones may or may not have gone out:
  an idempotent adapter gets them again with the same idempotency key (the provider drops the
  duplicate); for others (SMTP) they become ``unconfirmed`` — never sent twice automatically, never
  lost either: ``dispatch --retry-unconfirmed`` queues them again once someone has checked.

Consent, suppression and the address are checked again at send time: an unsubscribe between the
run and the send cancels the message.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections import defaultdict
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import attrs
import sqlalchemy as sa

from crmkit import privacy
from crmkit.plugin_api import core_tables as core
from crmkit_campaigns import hookspecs
from crmkit_campaigns import models as m
from crmkit_campaigns.channels import Adapter, DeliveryError, OutgoingMessage, PermanentError, TransientError
from crmkit_campaigns.objects import DispatchReport, MessageEvent
from crmkit_campaigns.runs import eligibility
from crmkit_campaigns.sqlparts import primary_contact

if TYPE_CHECKING:
    from crmkit.crm import CRM
    from crmkit_campaigns.rendering import Renderer
    from crmkit_campaigns.service import CampaignsService

#: Status literals written into the SQL (not bound), so that SQLite uses the partial indexes on them.
QUEUED = sa.literal_column("'queued'")
IN_FLIGHT = (sa.literal_column("'claimed'"), sa.literal_column("'sending'"))
BATCH = 100


def idempotency_key(campaign_id: int, message_id: int) -> str:
    """The key a message keeps across retries (adapters pass it to providers that deduplicate)."""
    return f"crmkit-{campaign_id}-{message_id}"


def worker_name() -> str:
    """A name unique to this dispatcher: host, process and a random suffix."""
    return f"{socket.gethostname()[:30]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


@attrs.define
class _Tally:
    sent: int = 0
    retrying: int = 0
    failed: int = 0
    recovered: int = 0
    unconfirmed: int = 0
    skipped: int = 0
    errors: list[str] = attrs.field(factory=list)


class Dispatcher:
    """One dispatch pass over the outbox (``crm.campaigns.dispatch()`` makes one); ``clock`` is the CRM's unless
    a test passes its own."""

    def __init__(
        self, crm: CRM, service: CampaignsService, *, clock: Callable[[], datetime] | None = None, batch: int = BATCH
    ) -> None:
        self._crm = crm
        self._service = service
        self._clock = clock or crm.now
        self.batch = batch
        self.worker = worker_name()
        self.settings = service.settings
        self._renderers: dict[tuple[int, bool], Renderer] = {}

    # -- the pass ---------------------------------------------------------------------------------------

    def run(self, *, limit: int | None = None, retry_unconfirmed: bool = False) -> DispatchReport:
        """Recover expired leases, then send due messages until none is left (or ``limit`` were tried)."""
        tally = _Tally()
        adapters = self._service._adapters()
        try:
            self._recover(adapters, tally, retry_unconfirmed)
            now = self._clock()
            quiet = self.settings.next_send_time(now)
            if quiet > now:
                return self._report(tally, quiet_until=quiet)
            down: set[str] = set()
            tried = 0
            while limit is None or tried < limit:
                size = self.batch if limit is None else min(self.batch, limit - tried)
                claimed = self._claim(size, [ch for ch in adapters if ch not in down])
                if not claimed:
                    break
                tried += len(claimed)
                self._deliver(claimed, adapters, down, tally)
            tally.skipped = self._waiting_without_adapter(adapters)
            finished = self._service.finish_completed(self._clock())
        finally:
            for adapter in adapters.values():
                close = getattr(adapter, "close", None)
                if close:
                    close()
        return self._report(tally, finished=finished)

    def _report(
        self, tally: _Tally, *, quiet_until: datetime | None = None, finished: list[int] | None = None
    ) -> DispatchReport:
        return DispatchReport(
            sent=tally.sent,
            retrying=tally.retrying,
            failed=tally.failed,
            recovered=tally.recovered,
            unconfirmed=tally.unconfirmed,
            skipped=tally.skipped,
            quiet_until=quiet_until,
            errors=tuple(tally.errors),
            finished_campaigns=tuple(finished or ()),
        )

    # -- leases -----------------------------------------------------------------------------------------

    def _recover(self, adapters: Mapping[str, Adapter], tally: _Tally, retry_unconfirmed: bool) -> None:
        """Take back rows whose dispatcher stopped: claimed → queued; sending → queued or unconfirmed."""
        now = self._clock()
        msg = m.messages.c
        # "status IN ('claimed', 'sending')" repeats the partial index's condition, so SQLite uses it.
        expired = sa.and_(msg.status.in_(IN_FLIGHT), msg.lease_until < now)
        with self._crm.transaction() as session:
            conn = session.connection()
            tally.recovered += conn.execute(
                m.messages.update()
                .where(expired, msg.status == "claimed")
                .values(status="queued", worker=None, lease_until=None)
            ).rowcount
            stuck = conn.execute(sa.select(msg.id, msg.channel).where(expired, msg.status == "sending")).all()
            by_channel: dict[str, list[int]] = defaultdict(list)
            for message_id, channel in stuck:
                by_channel[channel].append(message_id)
            for channel, ids in by_channel.items():
                adapter = adapters.get(channel)
                if adapter is not None and adapter.idempotent:
                    tally.recovered += conn.execute(
                        m.messages.update()
                        .where(msg.id.in_(ids))
                        .values(status="queued", worker=None, lease_until=None, next_attempt_at=now)
                    ).rowcount
                else:
                    tally.unconfirmed += conn.execute(
                        m.messages.update()
                        .where(msg.id.in_(ids))
                        .values(
                            status="unconfirmed",
                            worker=None,
                            lease_until=None,
                            last_error="outcome unknown: the dispatcher stopped while handing it to the provider; "
                            "check the provider, then `dispatch --retry-unconfirmed` to send it again",
                        )
                    ).rowcount
            if retry_unconfirmed:
                tally.recovered += conn.execute(
                    m.messages.update().where(msg.status == "unconfirmed").values(status="queued", next_attempt_at=now)
                ).rowcount

    def _claim(self, size: int, channels: list[str]) -> list[dict[str, Any]]:
        """Lease up to ``size`` due messages on ``channels`` to this dispatcher."""
        if not channels or size <= 0:
            return []
        now = self._clock()
        msg = m.messages.c
        due = (
            sa.select(msg.id)
            .where(msg.status == QUEUED, msg.next_attempt_at <= now, msg.channel.in_(channels))
            .order_by(msg.next_attempt_at, msg.id)
            .limit(size)
        )
        claim = {
            "status": "claimed",
            "worker": self.worker,
            "lease_until": now + timedelta(seconds=self.settings.lease_seconds),
        }
        with self._crm.transaction() as session:
            conn = session.connection()
            if conn.dialect.name == "postgresql":
                # A materialized CTE runs the locking SELECT once; "id IN (subquery)" could be planned as a
                # semi-join that rescans it and, skipping locked rows, claims more than ``size`` rows.
                chosen = due.with_for_update(skip_locked=True).cte("due").prefix_with("MATERIALIZED")
                statement = m.messages.update().where(msg.id == chosen.c.id)
            else:  # SQLite: BEGIN IMMEDIATE already keeps other writers out
                statement = m.messages.update().where(msg.id.in_(due.scalar_subquery()), msg.status == QUEUED)
            ids = conn.execute(statement.values(claim).returning(msg.id)).scalars().all()
            if not ids:
                return []
            rows = conn.execute(sa.select(m.messages).where(msg.id.in_(ids)).order_by(msg.id)).mappings().all()
        return [dict(row) for row in rows]

    # -- delivery ----------------------------------------------------------------------------------------

    def _deliver(
        self, claimed: list[dict[str, Any]], adapters: Mapping[str, Adapter], down: set[str], tally: _Tally
    ) -> None:
        by_channel: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for row in claimed:
            by_channel[row["channel"]].append(row)
        for channel, rows in by_channel.items():
            adapter = adapters[channel]
            ready = self._prepare(channel, adapter, rows, tally)
            if adapter.idempotent:
                self._send_batch(ready, adapter, down, tally)
                continue
            for row, message in ready:
                if channel in down:
                    break
                self._send_one(row, message, adapter, down, tally)

    def _prepare(
        self, channel: str, adapter: Adapter, rows: list[dict[str, Any]], tally: _Tally
    ) -> list[tuple[dict[str, Any], OutgoingMessage]]:
        """Check eligibility again, read the recipients' values and render their messages."""
        now = self._clock()
        settings = attrs.evolve(self.settings, frequency_cap=None)  # the cap was applied when queuing
        c = core.customers.c
        ids = [row["customer_id"] for row in rows]
        with self._crm.reading() as conn:
            check = dict(
                conn.execute(
                    sa.select(
                        c.id,
                        sa.case(
                            (c.status != "active", "customer_" + c.status),
                            else_=eligibility(
                                channel, adapter.address_kind, settings, now, key=privacy.hash_key(conn, create=False)
                            ),
                        ),
                    ).where(c.id.in_(ids))
                ).all()
            )
            addresses = dict(
                conn.execute(sa.select(c.id, primary_contact(adapter.address_kind)).where(c.id.in_(ids))).all()
            )
            values: dict[int, dict[int, dict[str, Any]]] = {}
            for campaign_id in {row["campaign_id"] for row in rows}:
                renderer = self._renderer(campaign_id, adapter)
                values[campaign_id] = renderer.values(
                    conn, [r["customer_id"] for r in rows if r["campaign_id"] == campaign_id], now
                )
        ready, cancelled = [], []
        for row in rows:
            reason = check.get(row["customer_id"], "customer_missing")
            if reason is not None:
                cancelled.append((row["id"], reason))
                continue
            renderer = self._renderer(row["campaign_id"], adapter)
            customer_values = values[row["campaign_id"]][row["customer_id"]]
            if row["content"] is not None:  # a transactional message (``send_message``) brings its own template
                rendered = renderer.render_content(row["content"], customer_values, row["id"])
            else:
                variant = next(v for v in renderer.campaign.variants if v.id == row["variant_id"])
                rendered = renderer.render(variant, customer_values, row["id"])
            ready.append(
                (
                    row,
                    OutgoingMessage(
                        message_id=row["id"],
                        idempotency_key=idempotency_key(row["campaign_id"], row["id"]),
                        campaign_id=row["campaign_id"],
                        customer_id=row["customer_id"],
                        channel=channel,
                        to=addresses[row["customer_id"]],
                        subject=rendered.subject,
                        text=rendered.text,
                        html=rendered.html,
                        unsubscribe_url=rendered.unsubscribe_url,
                        name=customer_values["name"],
                    ),
                )
            )
        if cancelled:
            with self._crm.transaction() as session:
                conn = session.connection()
                for message_id, reason in cancelled:
                    conn.execute(
                        m.messages.update()
                        .where(m.messages.c.id == message_id, m.messages.c.worker == self.worker)
                        .values(status="cancelled", reason=reason, worker=None, lease_until=None)
                    )
        return ready

    def _renderer(self, campaign_id: int, adapter: Adapter) -> Renderer:
        html = adapter.address_kind == "email"  # a transactional purpose's messages go by several channels
        if (campaign_id, html) not in self._renderers:
            self._renderers[campaign_id, html] = self._service._renderer(
                campaign_id, html=html, signer=self._service._link_signer()
            )
        return self._renderers[campaign_id, html]

    def _mark_sending(self, rows: list[dict[str, Any]]) -> set[int]:
        """Commit ``sending`` (one more attempt) for rows this dispatcher still holds; returns their ids."""
        msg = m.messages.c
        lease = self._clock() + timedelta(seconds=self.settings.lease_seconds)
        with self._crm.transaction() as session:
            return set(
                session.connection()
                .execute(
                    m.messages.update()
                    .where(msg.id.in_([row["id"] for row in rows]), msg.worker == self.worker, msg.status == "claimed")
                    .values(status="sending", attempts=msg.attempts + 1, lease_until=lease)
                    .returning(msg.id)
                )
                .scalars()
            )

    def _send_one(
        self, row: dict[str, Any], message: OutgoingMessage, adapter: Adapter, down: set[str], tally: _Tally
    ) -> None:
        """A non-idempotent adapter: ``sending`` is committed alone, so a crash leaves at most one message unsure."""
        if not self._mark_sending([row]):
            return  # the lease was lost (another dispatcher recovered it): not ours to send
        outcome = self._attempt(row, message, adapter)
        if outcome[0] == "down":
            down.add(message.channel)
        self._record([outcome], [], down, tally)

    def _send_batch(
        self, ready: list[tuple[dict[str, Any], OutgoingMessage]], adapter: Adapter, down: set[str], tally: _Tally
    ) -> None:
        """An idempotent adapter: the batch is marked ``sending`` in one commit and its outcomes in another.

        After a crash in between, each of these messages goes out again with its idempotency key,
        which the provider (or the file outbox) recognises: still delivered once.
        """
        marked = self._mark_sending([row for row, _ in ready])
        outcomes: list[tuple[str, dict[str, Any], OutgoingMessage, str]] = []
        untried: list[dict[str, Any]] = []
        try:
            for row, message in ready:
                if row["id"] not in marked:
                    continue
                if message.channel in down:
                    untried.append(row)
                    continue
                outcome = self._attempt(row, message, adapter)
                outcomes.append(outcome)
                if outcome[0] == "down":
                    down.add(message.channel)
        finally:  # even when an adapter raises something unexpected: what was sent is recorded
            self._record(outcomes, untried, down, tally)

    def _attempt(
        self, row: dict[str, Any], message: OutgoingMessage, adapter: Adapter
    ) -> tuple[str, dict[str, Any], OutgoingMessage, str]:
        """Hand one message to the adapter: ("sent", provider id), ("retry"/"down", error) or ("failed", error)."""
        try:
            return "sent", row, message, adapter.send(message)
        except TransientError as exc:
            return ("down" if exc.channel_down else "retry"), row, message, str(exc)
        except PermanentError as exc:
            return "failed", row, message, str(exc)
        except DeliveryError as exc:
            return "retry", row, message, str(exc)

    def _record(
        self,
        outcomes: list[tuple[str, dict[str, Any], OutgoingMessage, str]],
        untried: list[dict[str, Any]],
        down: set[str],
        tally: _Tally,
    ) -> None:
        """Write the outcomes of attempts (and give back untried rows) in one transaction."""
        if not outcomes and not untried:
            return
        msg = m.messages.c
        retry_at: datetime | None = None
        last_error = None
        went_down: dict[str, str] = {}
        with self._crm.transaction() as session:
            conn = session.connection()
            now = self._clock()
            for kind, row, message, result in outcomes:
                if kind == "down":
                    went_down[message.channel] = result
                    tally.errors.append(f"{message.channel}: {result}")
                mine = sa.and_(msg.id == row["id"], msg.worker == self.worker, msg.status == "sending")
                attempts = row["attempts"] + 1
                if kind == "sent":
                    done = conn.execute(
                        m.messages.update()
                        .where(mine)
                        .values(
                            status="sent",
                            sent_at=now,
                            address=message.to,
                            provider_message_id=result[:250],
                            last_error=None,
                            worker=None,
                            lease_until=None,
                        )
                    ).rowcount
                    if done:
                        self._event(session, "sent", row, now, {"provider_message_id": result})
                    tally.sent += done
                elif kind == "failed" or attempts >= self.settings.max_attempts:
                    error = result if kind == "failed" else f"gave up after {attempts} attempts: {result}"
                    conn.execute(
                        m.messages.update()
                        .where(mine)
                        .values(
                            status="failed",
                            reason="rejected" if kind == "failed" else "gave_up",
                            address=message.to,
                            last_error=error,
                            worker=None,
                            lease_until=None,
                        )
                    )
                    self._event(session, "failed", row, now, {"error": error})
                    tally.failed += 1
                    tally.errors.append(f"message {row['id']}: {error}")
                else:
                    jitter = (row["id"] * 2654435761 % 1000) / 10_000  # 0–10 %: spread retries, no randomness
                    retry_at = now + self.settings.backoff(attempts, jitter)
                    last_error = result
                    conn.execute(
                        m.messages.update()
                        .where(mine)
                        .values(
                            status="queued", next_attempt_at=retry_at, last_error=result, worker=None, lease_until=None
                        )
                    )
                    tally.retrying += 1
            retry_at = retry_at or now + self.settings.backoff(1)
            for channel, error in went_down.items():
                self._release(conn, channel, retry_at, error, tally)
            for row in untried:  # marked sending but never handed over: not an attempt
                conn.execute(
                    m.messages.update()
                    .where(msg.id == row["id"], msg.worker == self.worker)
                    .values(
                        status="queued",
                        attempts=msg.attempts - 1,
                        next_attempt_at=retry_at,
                        last_error=last_error,
                        worker=None,
                        lease_until=None,
                    )
                )
                tally.retrying += 1

    def _release(self, conn: sa.Connection, channel: str, retry_at: datetime, error: str, tally: _Tally) -> None:
        """The channel is down: give back this dispatcher's other claimed messages on it, due when the retry is.

        They were never handed to the adapter, so their attempts are not counted.
        """
        msg = m.messages.c
        tally.retrying += conn.execute(
            m.messages.update()
            .where(msg.worker == self.worker, msg.status == "claimed", msg.channel == channel)
            .values(status="queued", worker=None, lease_until=None, next_attempt_at=retry_at, last_error=error)
        ).rowcount

    def _event(self, session: Any, kind: str, row: Mapping[str, Any], at: datetime, detail: dict[str, Any]) -> None:
        event = MessageEvent(kind, row["id"], row["campaign_id"], row["customer_id"], row["channel"], at, detail)
        self._crm.hooks.call(hookspecs.crmkit_message_event, event=event, session=session)

    # -- wrapping up -------------------------------------------------------------------------------------

    def _waiting_without_adapter(self, adapters: Mapping[str, Adapter]) -> int:
        msg = m.messages.c
        with self._crm.reading() as conn:
            return int(
                conn.execute(
                    sa.select(sa.func.count()).where(
                        msg.status == QUEUED, msg.next_attempt_at <= self._clock(), msg.channel.not_in(list(adapters))
                    )
                ).scalar_one()
            )
