"""``crmkit worker`` processes: exactly one delivery per event across two workers, a kill -9 taken over after the
lease, a graceful SIGTERM, and scheduled jobs run once per period across workers."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from datetime import timedelta
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

import crmkit
from crmkit import Job, Plugin, hookimpl
from crmkit.core import tables as t
from crmkit.core.types import utcnow
from crmkit.core.webhooks import is_sealed, new_secret, secret_key, stored_key
from crmkit.testing import WebhookReceiver
from crmkit.worker import Worker

CRMKIT = str(Path(sys.executable).with_name("crmkit"))
#: The test databases are made without plugins: the worker processes leave every installed one out.
ENV = {**os.environ, "CRMKIT_DISABLE_PLUGINS": ",".join(ep.name for ep in entry_points(group="crmkit.plugins"))}


def spawn(crm: Any, *options: str) -> subprocess.Popen[str]:
    url = crm.engine.url.render_as_string(hide_password=False)
    return subprocess.Popen(
        [CRMKIT, "--db", url, "--format", "json", "worker", *options],
        env=ENV,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish(process: subprocess.Popen[str], timeout: float = 120) -> str:
    out, err = process.communicate(timeout=timeout)
    assert process.returncode == 0, err[-3000:]
    return out


def events(crm: Any, receiver: WebhookReceiver, n: int) -> list[str]:
    """A subscription to the receiver and ``n`` interaction.logged events (one transaction); their ids."""
    crm.set_setting("webhooks.allow_private_urls", True)
    receiver.secret = crm.webhooks.subscribe(receiver.url, ["interaction.logged"]).secret
    customer = crm.customers.add(name="Nguyễn Văn An")
    crm.interactions.log_many([{"customer_id": customer.id, "channel": "phone"}] * n)
    with crm.reading() as conn:
        return list(conn.execute(sa.select(t.webhook_events.c.id)).scalars())


def statuses(crm: Any) -> Counter[str]:
    with crm.reading() as conn:
        return Counter(conn.execute(sa.select(t.webhook_deliveries.c.status)).scalars())


def wait_for(condition: Any, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_two_worker_processes_deliver_each_event_exactly_once(crm: Any) -> None:
    with WebhookReceiver(delay=0.003) as receiver:
        ids = events(crm, receiver, 400)
        workers = [spawn(crm, "--once", "--batch", "10", "--concurrency", "2", "--name", f"w{i}") for i in (1, 2)]
        for worker in workers:
            finish(worker)
    assert sorted(receiver.ids()) == sorted(ids)  # every event, none twice
    assert all(r.signed for r in receiver.received)
    assert statuses(crm) == {"delivered": 400}
    with crm.reading() as conn:
        by = Counter(conn.execute(sa.select(t.webhook_attempts.c.worker)).scalars())
    assert set(by) == {"w1", "w2"}  # both took part


def test_a_killed_worker_s_claims_are_delivered_by_another_after_the_lease(crm: Any) -> None:
    with WebhookReceiver(delay=0.01) as receiver:
        ids = events(crm, receiver, 150)
        doomed = spawn(crm, "--batch", "20", "--concurrency", "1", "--lease", "2", "--name", "doomed")
        wait_for(lambda: len(receiver.received) >= 30)
        os.kill(doomed.pid, signal.SIGKILL)
        doomed.wait(timeout=30)
        with crm.reading() as conn:
            held = conn.execute(
                sa.select(sa.func.count()).where(t.webhook_deliveries.c.claimed_by == "doomed")
            ).scalar_one()
        assert held > 0  # it died holding claims…
        time.sleep(2.2)  # …which are due again once its lease has run out
        finish(spawn(crm, "--once", "--name", "survivor"))
    received = Counter(receiver.ids())
    assert set(received) == set(ids)  # every event delivered
    twice = {event for event, n in received.items() if n > 1}
    assert len(twice) <= 20  # only the killed worker's last batch can arrive twice, under the same webhook-id
    bodies = {}
    for r in receiver.received:
        assert bodies.setdefault(r.id, r.body) == r.body  # a duplicate is the same message: receivers dedupe on the id
    assert statuses(crm) == {"delivered": 150}


def test_sigterm_finishes_the_delivery_in_flight_releases_the_rest_and_exits_0(crm: Any) -> None:
    with WebhookReceiver(delay=0.05) as receiver:
        events(crm, receiver, 100)
        worker = spawn(crm, "--batch", "50", "--concurrency", "1", "--lease", "600", "--name", "calm")
        wait_for(lambda: len(receiver.received) >= 5)
        worker.send_signal(signal.SIGTERM)
        out = finish(worker, timeout=30)
    sent = len(receiver.ids())
    assert 5 <= sent < 100
    assert f'"delivered": {sent}' in out
    assert statuses(crm) == {"delivered": sent, "pending": 100 - sent}  # everything it sent is recorded…
    with crm.reading() as conn:
        d = t.webhook_deliveries.c
        held = conn.execute(sa.select(sa.func.count()).where(d.claimed_by.is_not(None))).scalar_one()
        due = conn.execute(
            sa.select(sa.func.count()).where(d.status == "pending", d.next_attempt_at <= utcnow())
        ).scalar_one()
    assert held == 0 and due == 100 - sent  # …and the rest is released, due now rather than after the lease


class Nightly:
    """A plugin with one job that counts its runs."""

    def __init__(self, runs: list[str]) -> None:
        self.runs = runs

    @hookimpl
    def crmkit_jobs(self) -> list[Job]:
        def run(crm: Any) -> None:
            time.sleep(0.05)  # long enough for the other worker to try meanwhile
            self.runs.append(crm.access.principal.username)

        return [Job("nightly.report", timedelta(hours=24), run, "the nightly report")]


def test_a_job_runs_once_per_period_across_workers(crm: Any) -> None:
    runs: list[str] = []
    url = crm.engine.url
    crms = [crmkit.CRM(url, plugins=[Plugin("nightly", hooks=Nightly(runs))]) for _ in range(2)]
    try:
        now = utcnow()
        workers = [Worker(c, name=f"w{i}", clock=lambda: now) for i, c in enumerate(crms)]
        barrier = threading.Barrier(2)

        def work(worker: Worker) -> None:
            barrier.wait()
            for _ in range(3):
                worker.run_due_jobs()

        threads = [threading.Thread(target=work, args=(w,)) for w in workers]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        assert runs == ["system"]  # once, as the system
        later = Worker(crms[1], clock=lambda: now + timedelta(hours=24, seconds=1))
        assert later.run_due_jobs() == 2 and later.run_due_jobs() == 0  # with the core's api.idempotency_purge
        assert runs == ["system", "system"]
        with crm.reading() as conn:
            row = conn.execute(sa.select(t.jobs).where(t.jobs.c.name == "nightly.report")).mappings().one()
        assert row["claimed_by"] is None and row["last_error"] is None
        assert row["next_run_at"] == now + timedelta(hours=48, seconds=1)
    finally:
        for c in crms:
            c.close()


class Failing:
    @hookimpl
    def crmkit_jobs(self) -> list[Job]:
        def run(crm: Any) -> None:
            raise RuntimeError("the report server is down")

        return [Job("failing.sync", timedelta(minutes=5), run)]


def test_a_failing_job_is_recorded_and_the_worker_goes_on(crm: Any) -> None:
    failing = crmkit.CRM(crm.engine.url, plugins=[Plugin("failing", hooks=Failing())])
    try:
        assert Worker(failing).run(once=True).jobs == 2  # with the core's api.idempotency_purge
        with crm.reading() as conn:
            error = conn.execute(sa.select(t.jobs.c.last_error).where(t.jobs.c.name == "failing.sync")).scalar_one()
        assert error == "RuntimeError: the report server is down"
        assert Worker(failing).run_due_jobs() == 0  # not before its next time
    finally:
        failing.close()


@pytest.mark.crmkit_plugins("sales", "loyalty", "campaigns")
def test_the_bundled_plugins_jobs_run_in_the_worker(crm: Any) -> None:
    worker = Worker(crm)
    assert {job.name for job in worker.jobs} == {
        "loyalty.expire",
        "loyalty.evaluate-tiers",
        "campaigns.run-due",
        "campaigns.dispatch",
        "api.idempotency_purge",
    }
    assert worker.run(once=True).jobs == 5
    with crm.reading() as conn:
        assert conn.execute(sa.select(t.jobs.c.name, t.jobs.c.last_error)).all() and not any(
            conn.execute(sa.select(t.jobs.c.last_error)).scalars()
        )
    assert {e.plugin for e in crm.events.types.values()} == {"core", "sales", "loyalty", "campaigns"}


def clear_secret_events(crm: Any, receiver: WebhookReceiver, n: int) -> int:
    """A subscription as versions before wrapping stored it (its ``whsec_`` secret in clear), and ``n`` events; its id."""
    crm.set_setting("webhooks.allow_private_urls", True)
    receiver.secret = new_secret()
    with crm.transaction() as session:
        subscription_id = (
            session.connection()
            .execute(
                t.webhook_subscriptions.insert()
                .values(
                    url=receiver.url,
                    events=["interaction.logged"],
                    secret=receiver.secret,
                    description="",
                    active=True,
                    created_at=utcnow(),
                    updated_at=utcnow(),
                )
                .returning(t.webhook_subscriptions.c.id)
            )
            .scalar_one()
        )
    customer = crm.customers.add(name="Trần Thị Bình")
    crm.interactions.log_many([{"customer_id": customer.id, "channel": "phone"}] * n)
    return subscription_id


def stored_secret(crm: Any, subscription_id: int) -> str:
    with crm.reading() as conn:
        return conn.execute(
            sa.select(t.webhook_subscriptions.c.secret).where(t.webhook_subscriptions.c.id == subscription_id)
        ).scalar_one()


def test_two_workers_meeting_a_clear_secret_wrap_it_once_and_sign_every_delivery(crm: Any) -> None:
    with WebhookReceiver(delay=0.003) as receiver:
        subscription_id = clear_secret_events(crm, receiver, 60)
        workers = [spawn(crm, "--once", "--batch", "5", "--concurrency", "2", "--name", f"w{i}") for i in (1, 2)]
        for worker in workers:
            finish(worker)
    assert len(receiver.ids()) == 60 and all(r.signed for r in receiver.received)
    assert is_sealed(stored_secret(crm, subscription_id))
    assert stored_key(stored_secret(crm, subscription_id)) == secret_key(receiver.secret)


def test_a_worker_killed_after_meeting_a_clear_secret_leaves_it_readable_and_the_rest_signed(crm: Any) -> None:
    with WebhookReceiver(delay=0.01) as receiver:
        subscription_id = clear_secret_events(crm, receiver, 40)
        doomed = spawn(crm, "--batch", "1", "--concurrency", "1", "--lease", "1", "--name", "doomed")
        wait_for(lambda: len(receiver.received) >= 1)
        os.kill(doomed.pid, signal.SIGKILL)
        doomed.wait(timeout=30)
        assert stored_key(stored_secret(crm, subscription_id)) == secret_key(receiver.secret)  # clear or wrapped
        time.sleep(1.2)
        finish(spawn(crm, "--once", "--name", "survivor"))
    assert set(receiver.ids()) == {r.id for r in receiver.received} and all(r.signed for r in receiver.received)
    assert statuses(crm) == {"delivered": 40} and is_sealed(stored_secret(crm, subscription_id))
