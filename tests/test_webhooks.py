"""Webhooks: subscriptions, the outbox written in the change's transaction, signed delivery to a real local
receiver, retries, dead letters, replay, the SSRF guard, erasure, and the CLI."""

from __future__ import annotations

import json
from datetime import timedelta
from importlib.metadata import entry_points
from typing import Any

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

import crmkit
from crmkit import NotFound, Plugin, ValidationError, hookimpl
from crmkit.core import tables as t
from crmkit.core.types import utcnow
from crmkit.core.webhooks import new_secret, secret_key, stored_key
from crmkit.testing import WebhookReceiver, add_user
from crmkit.worker import Worker

#: Every installed plugin: a CLI run on a test database (made without plugins) must leave them all out.
ALL_PLUGINS = ",".join(ep.name for ep in entry_points(group="crmkit.plugins"))


@pytest.fixture
def local(crm: Any) -> Any:
    """The CRM with private URLs allowed, so subscriptions may point at the local receiver."""
    crm.set_setting("webhooks.allow_private_urls", True)
    return crm


def deliver(crm: Any, *, after: timedelta = timedelta(0)) -> Any:
    """One worker pass, with the clock ``after`` from now; its tally."""
    return Worker(crm, clock=lambda: utcnow() + after).run(once=True)


def count(crm: Any, table: sa.Table) -> int:
    with crm.reading() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one())


def test_events_are_delivered_signed_with_the_customer_as_json(local: Any) -> None:
    with WebhookReceiver() as receiver:
        subscription = local.webhooks.subscribe(
            receiver.url, ["customer.created", "customer.updated", "interaction.logged", "consent.changed"]
        )
        receiver.secret = subscription.secret
        assert subscription.secret.startswith("whsec_") and local.webhooks.get(subscription.id).secret is None
        an = local.customers.add(name="Nguyễn Văn An", emails=["an@example.vn"])
        local.customers.update(an.id, city="Huế")
        local.interactions.log_many(
            [{"customer_id": an.id, "channel": "phone"}, {"customer_id": an.id, "channel": "sms"}]
        )
        local.customers.set_consent(an.id, "email", True, source="web form")
        assert deliver(local).delivered == 5
    assert all(r.signed for r in receiver.received)
    bodies = [r.body for r in receiver.received]
    assert sorted(b["type"] for b in bodies) == [
        "consent.changed",
        "customer.created",
        "customer.updated",
        "interaction.logged",
        "interaction.logged",
    ]
    created = next(b for b in bodies if b["type"] == "customer.created")
    assert created["id"] == receiver.received[bodies.index(created)].id
    assert created["timestamp"].endswith("+00:00")
    assert created["data"]["customer"]["name"] == "Nguyễn Văn An"
    assert created["data"]["customer"]["emails"] == ["an@example.vn"]  # the system's view: not masked
    assert next(b for b in bodies if b["type"] == "customer.updated")["data"]["changed"] == ["city"]
    deliveries = local.webhooks.deliveries(subscription.id)
    assert {d.status for d in deliveries} == {"delivered"} and all(d.last_status == 200 for d in deliveries)
    [attempt] = local.webhooks.attempts(deliveries[0].id)
    assert attempt.status_code == 200 and attempt.error is None and attempt.duration_ms >= 0


def test_nothing_is_written_when_no_subscription_listens(local: Any) -> None:
    local.webhooks.subscribe("http://127.0.0.1:9/hook", ["interaction.logged"])
    paused = local.webhooks.subscribe("http://127.0.0.1:9/paused", ["customer.created"], active=False)
    local.customers.add(name="Trần Thị Bình")
    assert count(local, t.webhook_events) == 0 and count(local, t.webhook_deliveries) == 0
    local.webhooks.update(paused.id, active=True)
    local.customers.add(name="Lê Văn Cường")
    assert count(local, t.webhook_events) == 1 and count(local, t.webhook_deliveries) == 1


class Veto:
    @hookimpl
    def crmkit_customer_created(self, customer: Any) -> None:
        if customer.name == "Refused":
            raise ValidationError("refused by the test", field="name")


def test_the_outbox_is_written_in_the_change_s_transaction(local: Any, crm_factory: Any) -> None:
    vetoing = crmkit.CRM(local.engine.url, plugins=[Plugin("veto", hooks=Veto())])
    try:
        vetoing.webhooks.subscribe("http://127.0.0.1:9/hook", ["customer.created"])
        with pytest.raises(ValidationError, match="refused by the test"):
            vetoing.customers.add(name="Refused")
        with pytest.raises(RuntimeError):
            with vetoing.transaction():
                vetoing.customers.add(name="Rolled back")
                assert count(vetoing, t.webhook_events) == 1  # inside the transaction the event is there…
                raise RuntimeError("the caller gives up")
        assert count(vetoing, t.webhook_events) == 0 and count(vetoing, t.webhook_deliveries) == 0  # …and gone with it
        with vetoing.transaction():
            vetoing.customers.add(name="Kept")
            vetoing.customers.add(name="Kept too")
        assert count(vetoing, t.webhook_events) == 2 and count(vetoing, t.webhook_deliveries) == 2
    finally:
        vetoing.close()


def test_a_failed_delivery_is_retried_with_backoff_and_logged(local: Any) -> None:
    with WebhookReceiver(answer=lambda body, tries: 500 if tries == 0 else 204) as receiver:
        subscription = local.webhooks.subscribe(receiver.url, ["customer.created"])
        receiver.secret = subscription.secret
        local.customers.add(name="Phạm Thị Dung")
        assert deliver(local).failed == 1
        [delivery] = local.webhooks.deliveries()
        assert (delivery.status, delivery.attempts, delivery.last_status) == ("pending", 1, 500)
        assert utcnow() <= delivery.next_attempt_at <= utcnow() + timedelta(seconds=6)  # first retry: within 5 s
        assert deliver(local, after=timedelta(seconds=6)).delivered == 1
    [delivery] = local.webhooks.deliveries()
    assert (delivery.status, delivery.attempts, delivery.last_status) == ("delivered", 2, 204)
    assert [a.status_code for a in local.webhooks.attempts(delivery.id)] == [500, 204]
    assert "HTTP 500" in (local.webhooks.attempts(delivery.id)[0].error or "")
    assert len(set(receiver.ids())) == 1 and all(r.signed for r in receiver.received)


def test_after_three_days_of_failures_a_delivery_is_dead_and_replay_sends_it_again(local: Any) -> None:
    healthy = False
    with WebhookReceiver(answer=lambda body, tries: 200 if healthy else 503) as receiver:
        subscription = local.webhooks.subscribe(receiver.url, ["customer.created"])
        customer = local.customers.add(name="Hoàng Văn Em")
        assert deliver(local, after=timedelta(days=2)).failed == 1  # within 3 days: retried later
        assert deliver(local, after=timedelta(days=3, hours=1)).dead == 1
        [dead] = local.webhooks.dead()
        assert (dead.status, dead.attempts, dead.subscription_id) == ("dead", 2, subscription.id)
        assert deliver(local, after=timedelta(days=4)).delivered == 0  # dead: never tried again
        healthy = True
        assert local.webhooks.replay(dead.event_id) == 1
        assert deliver(local).delivered == 1
    assert receiver.ids() == [dead.event_id]  # the same webhook-id: a receiver that got it already drops it
    assert receiver.received[-1].body["data"]["customer"]["id"] == customer.id
    with pytest.raises(NotFound):
        local.webhooks.replay("evt_missing")
    with pytest.raises(ValidationError) as refused:
        local.webhooks.replay()
    assert "event_id" in refused.value.errors


def test_replay_of_a_time_range_to_one_subscription(local: Any) -> None:
    with WebhookReceiver() as receiver, WebhookReceiver() as other:
        first = local.webhooks.subscribe(receiver.url, ["customer.created"])
        local.webhooks.subscribe(other.url, ["customer.created", "customer.updated"])
        start = utcnow()
        for name in ("A", "B", "C"):
            local.customers.add(name=name)
        deliver(local)
        assert len(receiver.ids()) == 3 and len(other.ids()) == 3
        assert local.webhooks.replay(since=start, until=utcnow() + timedelta(seconds=1), subscription_id=first.id) == 3
        assert local.webhooks.replay(since=utcnow() + timedelta(hours=1)) == 0
        deliver(local)
    assert sorted(receiver.ids()) == sorted(other.ids() * 2)


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8000/hook",
        "http://localhost/hook",
        "http://10.1.2.3/hook",
        "http://169.254.169.254/latest/meta-data",
        "http://[::1]/hook",
        "http://0.0.0.0/",
        "http://192.168.1.10/hook",
        "ftp://example.com/hook",
        "not a url",
    ],
)
def test_urls_to_this_machine_or_private_networks_are_refused_by_default(crm: Any, url: str) -> None:
    with pytest.raises(ValidationError) as refused:
        crm.webhooks.subscribe(url, ["customer.created"])
    assert "url" in refused.value.errors
    assert crm.webhooks.list() == []


def test_the_ssrf_guard_is_checked_again_when_delivering(local: Any) -> None:
    with WebhookReceiver() as receiver:
        local.webhooks.subscribe(receiver.url, ["customer.created"])
        local.customers.add(name="Vũ Thị Giang")
        local.set_setting("webhooks.allow_private_urls", False)
        assert deliver(local).failed == 1
        assert receiver.received == []
    [delivery] = local.webhooks.deliveries()
    assert delivery.last_status is None and "local or private address" in (delivery.last_error or "")


def test_unknown_event_types_and_bad_fields_are_refused_naming_them(local: Any) -> None:
    with pytest.raises(
        ValidationError, match="unknown event type 'customer.craeted'; did you mean 'customer.created'"
    ) as e:
        local.webhooks.subscribe("http://127.0.0.1:9/", ["customer.craeted"])
    assert "events" in e.value.errors
    for kwargs, field in (({"secret": "not-a-secret"}, "secret"), ({"description": "x" * 301}, "description")):
        with pytest.raises(ValidationError) as e:
            local.webhooks.subscribe("http://127.0.0.1:9/", ["customer.created"], **kwargs)
        assert field in e.value.errors
    with pytest.raises(ValidationError) as e:
        local.webhooks.subscribe("http://127.0.0.1:9/", [])
    assert "events" in e.value.errors
    subscription = local.webhooks.subscribe("http://127.0.0.1:9/", ["customer.created"])
    with pytest.raises(ValidationError) as e:
        local.webhooks.update(subscription.id, secret="whsec_x")
    assert "secret" in e.value.errors
    with pytest.raises(NotFound):
        local.webhooks.get(subscription.id + 1)
    with pytest.raises(ValueError, match="not declared"):
        with local.transaction() as session:
            local.events.emit(session, "order.placed", {})  # sales is not enabled here


def test_erasure_redacts_the_customer_s_stored_payloads(local: Any) -> None:
    with WebhookReceiver(answer=lambda body, tries: 500) as receiver:
        local.webhooks.subscribe(
            receiver.url, ["customer.created", "customer.updated", "customer.erased", "interaction.logged"]
        )
        an = local.customers.add(name="Đỗ Văn Hải", phones=["0912345678"])
        other = local.customers.add(name="Someone Else")
        local.interactions.log(an.id, "phone", subject="private matter")
        deliver(local)  # every one fails: they stay pending with their payload…
        local.customers.erase(an.id)
        receiver._answer = lambda body, tries: 200
        deliver(local, after=timedelta(minutes=30))
    sent = {
        (r.body["type"], json.dumps(r.body["data"], ensure_ascii=False)) for r in receiver.received if r.status == 200
    }
    assert ("customer.created", '{"redacted": true}') in sent  # …and they go out redacted
    assert ("interaction.logged", '{"redacted": true}') in sent
    assert ("customer.erased", json.dumps({"customer": {"id": an.id}})) in sent
    assert not any("Đỗ Văn Hải" in data or "0912345678" in data or "private matter" in data for _, data in sent)
    assert any("Someone Else" in data for _, data in sent)  # another customer's events are untouched
    assert other.id != an.id


def test_merge_emits_the_kept_customer(local: Any) -> None:
    local.webhooks.subscribe("http://127.0.0.1:9/", ["customer.merged"])
    kept, merged = local.customers.add(name="Bùi Thị Lan"), local.customers.add(name="Bui Thi Lan")
    local.customers.merge(kept.id, merged.id)
    with local.reading() as conn:
        [(customer_id, data)] = conn.execute(sa.select(t.webhook_events.c.customer_id, t.webhook_events.c.data)).all()
    assert customer_id == kept.id and data["merged_id"] == merged.id and data["customer"]["id"] == kept.id


def test_managing_webhooks_needs_webhooks_admin(local: Any) -> None:
    add_user(local, "lan", roles=["manager"])
    add_user(local, "root", roles=["administrator"])
    with pytest.raises(crmkit.PermissionDenied, match="webhooks.admin"):
        local.as_user("lan").webhooks.list()
    assert local.as_user("root").webhooks.subscribe("http://127.0.0.1:9/", ["customer.created"]).id


def test_the_cli_manages_subscriptions_and_shows_deliveries(local: Any) -> None:
    from crmkit.cli.main import cli

    url = local.engine.url.render_as_string(hide_password=False)

    def run(*args: str) -> Any:
        result = CliRunner().invoke(
            cli, ["--db", url, *args], catch_exceptions=False, env={"CRMKIT_DISABLE_PLUGINS": ALL_PLUGINS}
        )
        assert result.exit_code == 0, result.output
        return result.output

    local.close()
    created = json.loads(
        run(
            "webhooks",
            "add",
            "http://127.0.0.1:9/hook",
            "--event",
            "customer.created",
            "--description",
            "shop",
            "--format",
            "json",
        )
    )
    assert created["secret"].startswith("whsec_") and created["events"] == ["customer.created"]
    assert "secret" not in json.loads(run("webhooks", "show", str(created["id"]), "--format", "json"))
    assert "customer.created" in run("webhooks", "list")
    assert "order.placed" not in run("webhooks", "events") and "interaction.logged" in run("webhooks", "events")
    assert json.loads(run("webhooks", "update", str(created["id"]), "--paused", "--format", "json"))["active"] is False
    assert json.loads(run("webhooks", "deliveries", "--format", "json")) == []
    assert json.loads(run("webhooks", "dead", "--format", "json")) == []
    assert "queued 0 deliveries" in run("webhooks", "replay", "--since", "2026-01-01T00:00:00Z")
    assert "removed" in run("webhooks", "remove", str(created["id"]))
    result = CliRunner().invoke(
        cli,
        ["--db", url, "webhooks", "add", "http://127.0.0.1:9/", "--event", "custmer.created"],
        env={"CRMKIT_DISABLE_PLUGINS": ALL_PLUGINS},
    )
    assert result.exit_code != 0 and "did you mean 'customer.created'" in result.output


def test_imports_emit_created_and_updated_events(local: Any, tmp_path: Any) -> None:
    from crmkit.core.transfer import import_customers
    from crmkit.testing import write_csv

    local.webhooks.subscribe("http://127.0.0.1:9/", ["customer.created", "customer.updated"])
    first = write_csv(tmp_path / "first.csv", ["external_id", "name"], [["KH-1", "An"], ["KH-2", "Bình"]])
    import_customers(local, first)
    second = write_csv(tmp_path / "second.csv", ["external_id", "name", "city"], [["KH-1", "An", "Huế"]])
    import_customers(local, second)
    with local.reading() as conn:
        rows = conn.execute(sa.select(t.webhook_events.c.type, t.webhook_events.c.data)).all()
    assert sorted((type_, data["customer"]["name"]) for type_, data in rows) == [  # event ids are random: no order
        ("customer.created", "An"),
        ("customer.created", "Bình"),
        ("customer.updated", "An"),
    ]
    assert [data["changed"] for type_, data in rows if type_ == "customer.updated"] == [["city"]]


@pytest.mark.crmkit_plugins("sales", "loyalty")
def test_plugins_emit_their_events_in_their_transactions(crm: Any) -> None:
    crm.set_setting("webhooks.allow_private_urls", True)
    crm.webhooks.subscribe(
        "http://127.0.0.1:9/",
        ["order.placed", "order.refunded", "deal.stage_changed", "points.earned", "points.redeemed"],
    )
    crm.loyalty.programs.create("default", "Khách hàng thân thiết", point_value_minor=500)
    crm.loyalty.programs.add_reward("arabica-250", "Cà phê Arabica Cầu Đất 250g", 10, stock=5)
    crm.sales.products.add(
        sku="CF-ARA-250",
        name="Cà phê Arabica Cầu Đất 250g",
        category="Cà phê",
        price_minor=120_000,
        currency="VND",
        tax_rate="0.1",
    )
    crm.sales.pipelines.add("B2B", [{"name": "Tiếp cận", "probability": "0.2"}])
    an = crm.customers.add(name="Nguyễn Văn An")
    order = crm.sales.place_order(customer_id=an.id, lines=[{"sku": "CF-ARA-250", "quantity": "3"}])
    crm.sales.payments.record(order.id, order.total_minor)
    crm.sales.orders.refund(order.id, 10_000, reason="Hàng lỗi")
    crm.sales.deals.add(customer_id=an.id, pipeline="B2B", title="Cà phê văn phòng", amount_minor=20_000_000)
    crm.loyalty.redeem(an.id, "arabica-250")
    with crm.reading() as conn:
        rows = conn.execute(
            sa.select(t.webhook_events.c.type, t.webhook_events.c.customer_id, t.webhook_events.c.data).order_by(
                t.webhook_events.c.id
            )
        ).all()
    by_type = {row.type: row for row in rows}
    assert (
        sorted(by_type) == ["deal.stage_changed", "order.placed", "order.refunded", "points.earned", "points.redeemed"]
        and len(rows) == 5
    )
    assert {row.customer_id for row in rows} == {an.id}
    placed = by_type["order.placed"].data["order"]
    assert placed["total_minor"] == order.total_minor and isinstance(placed["total_minor"], int)  # money: minor units
    moved = by_type["deal.stage_changed"].data
    assert moved["old_stage"] is None and moved["new_stage"]["name"] == "Tiếp cận"
    assert by_type["points.earned"].data["entry"]["kind"] == "earn"


def test_a_signing_secret_is_stored_wrapped_and_an_old_clear_one_keeps_working_and_is_wrapped(local: Any) -> None:
    def stored() -> dict[int, str]:
        with local.reading() as conn:
            return dict(conn.execute(sa.select(t.webhook_subscriptions.c.id, t.webhook_subscriptions.c.secret)).all())

    with WebhookReceiver() as receiver, WebhookReceiver() as older:
        new = local.webhooks.subscribe(receiver.url, ["customer.created"])
        receiver.secret = new.secret
        old_secret = new_secret()  # as a version before wrapping stored it: in clear
        with local.transaction() as session:
            old_id = (
                session.connection()
                .execute(
                    t.webhook_subscriptions.insert()
                    .values(
                        url=older.url,
                        events=["customer.created"],
                        secret=old_secret,
                        description="",
                        active=True,
                        created_at=utcnow(),
                        updated_at=utcnow(),
                    )
                    .returning(t.webhook_subscriptions.c.id)
                )
                .scalar_one()
            )
        older.secret = old_secret
        key_text = new.secret.removeprefix("whsec_")
        assert stored()[old_id] == old_secret and stored()[new.id].startswith("wrapped:")
        assert key_text not in stored()[new.id] and new.secret not in str(_audit(local))
        local.customers.add(name="Nguyễn Văn An")
        assert deliver(local).delivered == 2
    assert [r.signed for r in receiver.received] == [r.signed for r in older.received] == [True]
    after = stored()
    assert all(value.startswith("wrapped:") for value in after.values())  # the old row was wrapped on first use
    assert old_secret.removeprefix("whsec_") not in after[old_id]
    assert stored_key(after[old_id]) == secret_key(old_secret)


def _audit(crm: Any) -> list[Any]:
    with crm.reading() as conn:
        return [tuple(row) for row in conn.execute(sa.select(t.audit_log)).all()]
