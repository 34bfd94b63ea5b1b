"""``crmkit worker``: delivers the webhook outbox and runs the plugins' scheduled jobs, in as many processes as you like.

Work is claimed with leases in the database — ``FOR UPDATE SKIP LOCKED`` on PostgreSQL, the write
lock on SQLite — so workers on several machines share it without a queue server. A claimed
delivery's ``next_attempt_at`` moves to the end of its lease: when a worker dies, its claims are
simply due again once the lease runs out. Delivery is at least once (receivers dedupe on
``webhook-id``); a delivery that gets no 2xx is retried with exponential backoff and full jitter
for 3 days (:data:`crmkit.core.webhooks.RETRY_FOR`), then dead-lettered.
"""

from __future__ import annotations

import http.client
import json
import logging
import os
import random
import socket
import ssl
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import attrs
import sqlalchemy as sa

from crmkit import __version__
from crmkit.core import tables as t
from crmkit.core.access import SYSTEM
from crmkit.core.jobs import Job
from crmkit.core.stored_answers import PURGE_JOB
from crmkit.core.webhooks import RETRY_FOR, check_url, is_sealed, seal_clear, sign, stored_key
from crmkit.errors import PluginError, ValidationError

if TYPE_CHECKING:
    from crmkit.crm import CRM

log = logging.getLogger("crmkit.worker")
#: The first retry waits up to 5 s, each next one up to 6 times longer, never more than 6 hours (full jitter below).
FIRST_RETRY = 5.0
RETRY_CAP = 6 * 3600.0
TIMEOUT = 10.0
_ERROR_LENGTH = 500


def backoff(attempt: int) -> timedelta:
    """How long to wait after failed attempt number ``attempt`` (1-based): uniform in [0, min(6 h, 5 s × 6^(n-1))]."""
    ceiling = min(RETRY_CAP, FIRST_RETRY * 6 ** min(attempt - 1, 10))
    return timedelta(seconds=random.uniform(0, ceiling))  # noqa: S311 - retry jitter, not a secret


@attrs.define
class Tally:
    """What a worker did: deliveries that got a 2xx, that failed (to be retried), dead-lettered; jobs run."""

    delivered: int = 0
    failed: int = 0
    dead: int = 0
    jobs: int = 0


@attrs.frozen
class _Claimed:
    delivery_id: int
    attempts: int
    created_at: datetime
    event_id: str
    body: bytes
    url: str
    key: bytes


@attrs.frozen
class _Outcome:
    claimed: _Claimed
    at: datetime
    status_code: int | None
    error: str | None
    duration_ms: int

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


class _Sender:
    """POSTs with one keep-alive connection per host and thread; never follows redirects; checks the host
    against the SSRF guard each time it opens a connection (DNS can change)."""

    def __init__(self, allow_private: bool, timeout: float) -> None:
        self._allow_private = allow_private
        self._timeout = timeout
        self._local = threading.local()

    def post(self, url: str, body: bytes, headers: dict[str, str]) -> tuple[int | None, str | None]:
        """``(HTTP status, error)``: the status is None when no answer came (refused, timed out, guard)."""
        parts = urlsplit(url)
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        connections: dict[str, http.client.HTTPConnection] = self._local.__dict__.setdefault("connections", {})
        origin = f"{parts.scheme}://{parts.netloc}"
        for reused in (origin in connections, False):
            try:
                conn = connections.get(origin) or self._connect(url, origin, connections)
            except ValidationError as exc:
                return None, f"refused: {exc}"
            try:
                conn.request("POST", path, body, headers)
                response = conn.getresponse()
                answer = response.read()
            except (OSError, http.client.HTTPException) as exc:
                conn.close()
                connections.pop(origin, None)
                if reused and isinstance(exc, (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError)):
                    continue  # the server closed an idle keep-alive connection: once more on a new one
                return None, f"{type(exc).__name__}: {exc}"[:_ERROR_LENGTH]
            if response.will_close:
                conn.close()
                connections.pop(origin, None)
            if 200 <= response.status < 300:
                return response.status, None
            return response.status, f"HTTP {response.status}: {answer[:200].decode(errors='replace')}"[:_ERROR_LENGTH]
        raise AssertionError("unreachable")

    def _connect(
        self, url: str, origin: str, connections: dict[str, http.client.HTTPConnection]
    ) -> http.client.HTTPConnection:
        scheme, host, port = check_url(url, allow_private=self._allow_private)
        conn: http.client.HTTPConnection
        if scheme == "https":
            conn = http.client.HTTPSConnection(host, port, timeout=self._timeout, context=ssl.create_default_context())
        else:
            conn = http.client.HTTPConnection(host, port, timeout=self._timeout)
        connections[origin] = conn
        return conn

    def close(self) -> None:
        for conn in self._local.__dict__.get("connections", {}).values():
            conn.close()


class Worker:
    """One worker process's loop: claim due deliveries in batches, POST them, record the outcome; run due jobs.

    ``clock`` gives "now" for scheduling (the CRM's, ``crm.now``, unless a test moves its own forward instead of
    sleeping); ``lease`` is how long a
    claim holds before another worker may take it over.
    """

    def __init__(
        self,
        crm: CRM,
        *,
        name: str | None = None,
        batch: int = 50,
        concurrency: int = 4,
        lease: timedelta = timedelta(seconds=60),
        poll: float = 1.0,
        timeout: float = TIMEOUT,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        if batch < 1 or concurrency < 1:
            raise ValidationError("must be at least 1", field="batch" if batch < 1 else "concurrency")
        if lease <= timedelta(0):
            raise ValidationError("must be positive", field="lease")
        self.crm = crm
        self.name = name or f"{socket.gethostname()}:{os.getpid()}"
        self.batch = batch
        self.lease = lease
        self.poll = poll
        self.clock = clock or crm.now
        self.tally = Tally()
        self.jobs = self._declared_jobs()
        self._stopping = threading.Event()
        self._sender = _Sender(crm.webhooks.allow_private_urls, timeout)
        self._pool = ThreadPoolExecutor(concurrency, thread_name_prefix="crmkit-webhook")
        self._jobs_checked = 0.0
        self._job_rows_added = False

    def stop(self) -> None:
        """Stop claiming; the deliveries in flight finish and the rest of the batch is released (signal-safe)."""
        self._stopping.set()

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    def run(self, *, once: bool = False) -> Tally:
        """Work until :meth:`stop` (or, with ``once``, until nothing is due: for cron and tests); returns the tally."""
        try:
            while not self.stopping:
                delivered = self.deliver_batch()
                if once and not delivered:
                    self.run_due_jobs()
                    break
                if time.monotonic() - self._jobs_checked >= self.poll:
                    self.run_due_jobs()
                if not delivered:
                    self._stopping.wait(self.poll)
        finally:
            self._pool.shutdown(wait=True)
            self._sender.close()
        return self.tally

    # -- webhooks ---------------------------------------------------------------------------------------------

    def deliver_batch(self) -> int:
        """Claim up to ``batch`` due deliveries, POST them, record each attempt; how many were claimed."""
        claimed = self._claim()
        if not claimed:
            return 0
        outcomes = list(self._pool.map(self._send, claimed))
        done = [outcome for outcome in outcomes if outcome is not None]
        unsent = [item.delivery_id for item, outcome in zip(claimed, outcomes) if outcome is None]
        self._record(done, unsent)
        return len(claimed)

    def _claim(self) -> list[_Claimed]:
        now = self.clock()
        d, e, s = t.webhook_deliveries.c, t.webhook_events.c, t.webhook_subscriptions.c
        due = (
            sa.select(
                d.id,
                d.attempts,
                d.created_at,
                e.id.label("event_id"),
                e.type,
                e.occurred_at,
                e.data,
                s.url,
                s.id.label("subscription_id"),
                s.secret,
            )
            .select_from(t.webhook_deliveries)
            .join(t.webhook_events, e.id == d.event_id)
            .join(t.webhook_subscriptions, s.id == d.subscription_id)
            .where(d.status == "pending", d.next_attempt_at <= now, s.active.is_(True))
            .order_by(d.next_attempt_at, d.id)
            .limit(self.batch)
            .with_for_update(skip_locked=True, of=t.webhook_deliveries)
        )
        with self.crm.transaction() as session:
            conn = session.connection()
            rows = conn.execute(due).all()
            if not rows:
                return []
            until = now + self.lease
            conn.execute(
                t.webhook_deliveries.update()
                .where(d.id.in_([row.id for row in rows]))
                .values(claimed_by=self.name, lease_until=until, next_attempt_at=until)
            )
        clear = {row.subscription_id: row.secret for row in rows if not is_sealed(row.secret)}
        if clear:  # subscriptions made before secrets were wrapped: wrapped on first use
            seal_clear(self.crm, clear)
        return [
            _Claimed(row.id, row.attempts, row.created_at, row.event_id, _body(row), row.url, stored_key(row.secret))
            for row in rows
        ]

    def _send(self, item: _Claimed) -> _Outcome | None:
        """POST one delivery, signed; None when the worker is stopping and it was not sent."""
        if self.stopping:
            return None
        timestamp = int(time.time())
        headers = {
            "content-type": "application/json",
            "user-agent": f"crmkit-webhooks/{__version__}",
            "webhook-id": item.event_id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": sign(item.key, item.event_id, timestamp, item.body),
        }
        at = self.clock()
        started = time.perf_counter()
        status, error = self._sender.post(item.url, item.body, headers)
        return _Outcome(item, at, status, error, round((time.perf_counter() - started) * 1000))

    def _record(self, done: list[_Outcome], unsent: list[int]) -> None:
        """Each attempt's outcome and log entry, and the release of what was not sent, in one transaction."""
        d = t.webhook_deliveries.c
        mine = t.webhook_deliveries.update().where(d.id == sa.bindparam("_id"), d.claimed_by == self.name)
        updates = []
        for outcome in done:
            item, attempts = outcome.claimed, outcome.claimed.attempts + 1
            retry_at = outcome.at + backoff(attempts)
            status = "delivered" if outcome.ok else ("dead" if retry_at > item.created_at + RETRY_FOR else "pending")
            self.tally.delivered += status == "delivered"
            self.tally.failed += status == "pending"
            self.tally.dead += status == "dead"
            updates.append(
                {
                    "_id": item.delivery_id,
                    "_status": status,
                    "_attempts": attempts,
                    "_next": retry_at,
                    "_code": outcome.status_code,
                    "_error": outcome.error,
                    "_delivered": outcome.at if outcome.ok else None,
                }
            )
            if status == "dead":
                log.warning(
                    "webhook delivery %s (event %s) is dead after %s attempts: %s",
                    item.delivery_id,
                    item.event_id,
                    attempts,
                    outcome.error,
                )
        with self.crm.transaction() as session:
            conn = session.connection()
            if updates:
                conn.execute(
                    mine.values(
                        status=sa.bindparam("_status"),
                        attempts=sa.bindparam("_attempts"),
                        next_attempt_at=sa.bindparam("_next"),
                        last_status=sa.bindparam("_code"),
                        last_error=sa.bindparam("_error"),
                        delivered_at=sa.bindparam("_delivered"),
                        claimed_by=None,
                        lease_until=None,
                    ),
                    updates,
                )
                conn.execute(
                    t.webhook_attempts.insert(),
                    [
                        {
                            "delivery_id": o.claimed.delivery_id,
                            "at": o.at,
                            "worker": self.name,
                            "status_code": o.status_code,
                            "error": o.error,
                            "duration_ms": o.duration_ms,
                        }
                        for o in done
                    ],
                )
            if unsent:
                conn.execute(
                    mine.values(next_attempt_at=self.clock(), claimed_by=None, lease_until=None),
                    [{"_id": delivery_id} for delivery_id in unsent],
                )

    # -- jobs --------------------------------------------------------------------------------------------------

    def _declared_jobs(self) -> list[Job]:
        """The core's own jobs, then every plugin's (``crmkit_jobs``); a name declared twice is refused."""
        jobs: dict[str, Job] = {PURGE_JOB.name: PURGE_JOB}
        for plugin, declared in self.crm.hooks.jobs():
            for job in declared:
                if not isinstance(job, Job):
                    raise PluginError(plugin, f"crmkit_jobs returned {job!r}, not a crmkit.Job", hook="crmkit_jobs")
                if job.name in jobs:
                    raise PluginError(plugin, f"job {job.name} is declared twice", hook="crmkit_jobs")
                jobs[job.name] = job
        return list(jobs.values())

    def _add_job_rows(self) -> None:
        """A row per declared job (due now) the first time any worker sees it."""
        j = t.jobs.c
        with self.crm.reading() as conn:
            known = set(conn.execute(sa.select(j.name)).scalars())
        for job in self.jobs:
            if job.name in known:
                continue
            try:
                with self.crm.transaction() as session:
                    session.connection().execute(t.jobs.insert().values(name=job.name, next_run_at=self.clock()))
            except sa.exc.IntegrityError:
                pass  # another worker added it meanwhile

    def run_due_jobs(self) -> int:
        """Run every job whose time came and that no other worker holds; how many ran."""
        self._jobs_checked = time.monotonic()
        if not self._job_rows_added:
            self._add_job_rows()
            self._job_rows_added = True
        ran = 0
        for job in self.jobs:
            if self.stopping:
                break
            if self._claim_job(job):
                self._run_job(job)
                ran += 1
        self.tally.jobs += ran
        return ran

    def _claim_job(self, job: Job) -> bool:
        now = self.clock()
        j = t.jobs.c
        with self.crm.transaction() as session:
            claimed = session.connection().execute(
                t.jobs.update()
                .where(j.name == job.name, j.next_run_at <= now, sa.or_(j.lease_until.is_(None), j.lease_until < now))
                .values(claimed_by=self.name, lease_until=now + self.lease, last_started_at=now)
            )
            return claimed.rowcount == 1

    def _run_job(self, job: Job) -> None:
        started = self.clock()
        error = None
        try:
            with self.crm.access.acting(SYSTEM):
                job.run(self.crm)
        except Exception as exc:  # a failing job is recorded and runs again at its next time
            error = f"{type(exc).__name__}: {exc}"[:_ERROR_LENGTH]
            log.exception("job %s failed", job.name)
        j = t.jobs.c
        with self.crm.transaction() as session:
            session.connection().execute(
                t.jobs.update()
                .where(j.name == job.name, j.claimed_by == self.name)
                .values(
                    next_run_at=started + job.every,
                    claimed_by=None,
                    lease_until=None,
                    last_finished_at=self.clock(),
                    last_error=error,
                )
            )


def _body(row: Any) -> bytes:
    """The JSON body of an event: ``{"id", "type", "timestamp", "data"}`` (compact, UTF-8)."""
    envelope = {"id": row.event_id, "type": row.type, "timestamp": row.occurred_at.isoformat(), "data": row.data}
    return json.dumps(envelope, ensure_ascii=False, separators=(",", ":")).encode()
