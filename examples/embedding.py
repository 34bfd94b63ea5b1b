"""Embedding crmkit in your own application: a CRM object per database, no global state.

    python examples/embedding.py [DIRECTORY]     (databases go to DIRECTORY, default: a temporary one)

It opens a CRM on a SQLite file (a PostgreSQL URL works the same), adds Vietnamese and
English customers, logs interactions, searches, reads a timeline and a customer 360,
records who made a change, handles crmkit's exceptions, and shows that two CRMs in one
process (the second on an Engine the application already had) share neither data nor plugins.
"""

from __future__ import annotations

import sys
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa

import crmkit
from crmkit import CRM, Customer, Plugin, hookimpl


class Welcome:
    """A plugin defined inline by the application: queues a welcome message for each new customer."""

    def __init__(self) -> None:
        self.queued: list[str] = []

    @hookimpl
    def crmkit_customer_created(self, customer: Customer) -> None:
        self.queued.append(customer.name)

    @hookimpl
    def crmkit_services(self) -> dict[str, Any]:
        return {"welcome": self}  # reached as crm.welcome


def main(folder: Path) -> None:
    """Run the walk-through on databases inside ``folder``."""
    shop = CRM(f"sqlite:///{folder / 'shop.db'}", plugins=[Plugin("welcome", hooks=Welcome())], actor="website")

    an = shop.customers.add(
        name="Nguyễn Văn An",
        phone="0912 345 678",
        email="an.nguyen@example.vn",
        city="Hà Nội",
        tags=["vip"],
        consents={"sms": True},
    )
    emily = shop.customers.add(name="Emily Carter", email="emily.carter@example.com", phone="+44 20 7946 0958")
    print(f"added #{an.id} {an.name} {an.phone} and #{emily.id} {emily.name} {emily.phone}")

    start = datetime(2025, 3, 3, 2, 0, tzinfo=UTC)
    shop.interactions.log(
        an.id,
        "phone",
        direction="outbound",
        occurred_at=start,
        subject="Tư vấn gói cước",
        outcome="interested",
        employee="lan",
    )
    shop.interactions.log(an.id, "email", occurred_at=start + timedelta(days=2), subject="Hỏi lại báo giá", rating=5)
    shop.interactions.log(emily.id, "chat", occurred_at=start + timedelta(hours=5), subject="Delivery time")

    for query in ("nguyen van an", "carter", "0958"):
        print(f"find {query!r}: {[c.name for c in shop.customers.find(query)]}")

    print("timeline of", an.name)
    for item in shop.interactions.timeline(an.id):
        print(f"  {item.occurred_at:%Y-%m-%d %H:%M} {item.channel:<6} {item.direction:<8} {item.subject}")
    profile = shop.customers.profile(an.id)
    print(f"profile: {profile.customer.name}, {profile.customer.city}, interactions {dict(profile.interaction_counts)}")

    with shop.acting_as("lan@shop.vn"):  # e.g. the employee logged in to your application
        shop.customers.update(an.id, lifecycle_stage="customer")
    latest = shop.audit.entries(customer_id=an.id, limit=1).items[0]
    print(f"audit: {latest.actor} did {latest.action} on customer {latest.entity_id}")

    try:
        shop.customers.add(name="Bad Input", email="not-an-email")
    except crmkit.ValidationError as exc:
        print(f"ValidationError: {exc} (fields: {sorted(exc.errors)})")
    try:
        shop.customers.get(10_000)
    except crmkit.NotFound as exc:
        print(f"NotFound: {exc}")
    print(f"welcome messages queued: {shop.welcome.queued}")

    # A second CRM in the same process, on an Engine the application already has.
    engine = sa.create_engine(f"sqlite:///{folder / 'branch.db'}")
    branch = CRM(engine, plugins=[])
    branch.customers.add(name="Trần Thị Bích")
    print(
        f"branch sees {[c.name for c in branch.customers.find()]}; shop sees {[c.name for c in shop.customers.find()]}"
    )
    print(
        f"branch plugins: {[i.name for i in branch.plugin_info()]}; has welcome: {branch.has_service('welcome')}; "
        f"welcome messages queued: {shop.welcome.queued}"
    )
    branch.close()
    engine.dispose()  # the application owns its engine
    shop.close()


if __name__ == "__main__":
    if len(sys.argv) > 1:
        main(Path(sys.argv[1]))
    else:
        with tempfile.TemporaryDirectory() as tmp:
            main(Path(tmp))
