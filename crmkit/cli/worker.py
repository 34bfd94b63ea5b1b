"""``crmkit worker``: deliver webhooks and run scheduled jobs until stopped (a thin caller of :mod:`crmkit.worker`)."""

from __future__ import annotations

import logging
import signal
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import click

from crmkit.cli.context import pass_crm
from crmkit.cli.output import emit

if TYPE_CHECKING:
    from crmkit.crm import CRM


@click.command("worker")
@click.option("--once", is_flag=True, help="Deliver what is due and run due jobs, then exit (for cron and tests).")
@click.option("--name", help="This worker's name in claims and the delivery log (default: host:pid).")
@click.option(
    "--batch", type=click.IntRange(1, 1000), default=50, show_default=True, help="Deliveries claimed at a time."
)
@click.option(
    "--concurrency", type=click.IntRange(1, 64), default=4, show_default=True, help="Deliveries sent at once."
)
@click.option(
    "--lease",
    type=click.FloatRange(min=0.1),
    default=60.0,
    show_default=True,
    help="Seconds a claim holds: a killed worker's work is taken over after it.",
)
@click.option(
    "--poll",
    type=click.FloatRange(min=0.01),
    default=1.0,
    show_default=True,
    help="Seconds to wait when nothing is due.",
)
@pass_crm
def worker(crm: CRM, once: bool, name: str | None, batch: int, concurrency: int, lease: float, poll: float) -> None:
    """Deliver webhooks and run the plugins' scheduled jobs (due campaigns, dispatch, tier evaluation, point expiry).

    Run one or more under a process manager (systemd); SIGTERM or Ctrl-C stops claiming, finishes the
    deliveries in flight, releases the rest and exits 0.
    """
    from crmkit.worker import Worker

    logging.basicConfig(format="%(asctime)s %(name)s %(levelname)s: %(message)s", level=logging.INFO)
    runner = Worker(crm, name=name, batch=batch, concurrency=concurrency, lease=timedelta(seconds=lease), poll=poll)

    def stop(signum: int, frame: Any) -> None:
        runner.stop()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    tally = runner.run(once=once)
    emit(
        [
            {
                "worker": runner.name,
                "delivered": tally.delivered,
                "failed": tally.failed,
                "dead": tally.dead,
                "jobs": tally.jobs,
            }
        ],
        ("worker", "delivered", "failed", "dead", "jobs"),
    )
