"""Rewards and redemption: balance and stock checks, cancellation, and concurrent redemptions of the same points."""

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import sqlalchemy as sa
from loyalty_testkit import ledger_count

from crmkit import Conflict, NotFound, ValidationError
from crmkit_loyalty.models import redemptions

HERE = Path(__file__).resolve().parent


@pytest.fixture
def shop(loyal):
    """The default program with a voucher (200 points, unlimited) and a limited product (100 points, 2 in stock)."""
    loyal.loyalty.programs.add_reward("voucher-100k", "Voucher 100.000 ₫", 200, kind="discount", value_minor=100_000)
    loyal.loyalty.programs.add_reward("arabica-250", "Cà phê Arabica Cầu Đất 250g", 100, stock=2)
    return loyal


def _redemption_count(crm):
    with crm.reading() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(redemptions)).scalar_one()


def test_redemption_takes_points_and_stock_together_and_cancelling_gives_both_back(shop):
    an = shop.customers.add(name="Nguyễn Văn An")
    shop.loyalty.grant(an.id, 500, "quà khai trương")
    redemption = shop.loyalty.redeem(an.id, "arabica-250", quantity=2)
    assert (redemption.points, redemption.status, redemption.reward_name) == (
        200,
        "completed",
        "Cà phê Arabica Cầu Đất 250g",
    )
    assert redemption.code.startswith("LY") and len(redemption.code) == 12
    assert shop.loyalty.balance(an.id) == 300
    assert [r.stock for r in shop.loyalty.programs.rewards() if r.code == "arabica-250"] == [0]
    cancelled = shop.loyalty.cancel_redemption(redemption.id, note="hết hàng giao")
    assert cancelled.status == "cancelled" and cancelled.cancelled_at is not None
    assert shop.loyalty.balance(shop.customers.get(an.id).id) == 500
    assert [r.stock for r in shop.loyalty.programs.rewards() if r.code == "arabica-250"] == [2]
    with pytest.raises(Conflict, match="already cancelled"):
        shop.loyalty.cancel_redemption(redemption.id)
    assert shop.loyalty.jobs.verify() == []


def test_redeeming_more_than_the_balance_is_refused_and_writes_nothing(shop):
    an = shop.customers.add(name="Nguyễn Văn An")
    shop.loyalty.grant(an.id, 150, "quà")
    before = ledger_count(shop)
    with pytest.raises(ValidationError, match="not enough points: the balance is 150, 200 needed") as caught:
        shop.loyalty.redeem(an.id, "voucher-100k")
    assert "points" in caught.value.errors
    assert (ledger_count(shop), _redemption_count(shop), shop.loyalty.balance(an.id)) == (before, 0, 150)


def test_a_reward_out_of_stock_is_refused_and_writes_nothing(shop):
    an = shop.customers.add(name="Nguyễn Văn An")
    shop.loyalty.grant(an.id, 1000, "quà")
    before = ledger_count(shop)
    with pytest.raises(ValidationError, match=r"out of stock \(2 left\)") as caught:
        shop.loyalty.redeem(an.id, "arabica-250", quantity=3)
    assert "reward" in caught.value.errors
    assert (ledger_count(shop), _redemption_count(shop), shop.loyalty.balance(an.id)) == (before, 0, 1000)


BAD_REDEMPTIONS = [
    ({"reward": "xe-may"}, NotFound, "reward 'xe-may'"),
    ({"program": "vip"}, NotFound, "loyalty program 'vip'"),
    ({"customer_id": 987654}, NotFound, "customer 987654"),
    ({"quantity": 0}, ValidationError, "quantity: must be a whole number"),
    ({"quantity": 1.5}, ValidationError, "quantity: must be a whole number"),
]


def test_bad_redemptions_are_refused(shop):
    an = shop.customers.add(name="Nguyễn Văn An")
    shop.loyalty.grant(an.id, 1000, "quà")
    for kwargs, error, message in BAD_REDEMPTIONS:
        call = {"customer_id": an.id, "reward": "voucher-100k", **kwargs}
        with pytest.raises(error, match=message):
            shop.loyalty.redeem(call.pop("customer_id"), call.pop("reward"), **call)
    assert shop.loyalty.balance(an.id) == 1000 and _redemption_count(shop) == 0


def test_a_reward_no_longer_offered_and_a_non_member_are_refused(shop):
    shop.loyalty.programs.update("default", auto_enroll=False)
    guest = shop.customers.add(name="Khách vãng lai")
    with pytest.raises(ValidationError, match="not a member"):
        shop.loyalty.redeem(guest.id, "voucher-100k")
    an = shop.customers.add(name="Nguyễn Văn An")
    shop.loyalty.grant(an.id, 1000, "quà")
    shop.loyalty.programs.update_reward("voucher-100k", active=False)
    with pytest.raises(ValidationError, match="no longer offered"):
        shop.loyalty.redeem(an.id, "voucher-100k")
    assert [r.code for r in shop.loyalty.programs.rewards()] == ["arabica-250"]


def test_reward_validation(shop):
    with pytest.raises(ValidationError) as caught:
        shop.loyalty.programs.add_reward("Bad Code", "", 0, kind="car")
    assert set(caught.value.errors) == {"code", "name", "points_cost", "kind"}
    with pytest.raises(Conflict, match="already exists"):
        shop.loyalty.programs.add_reward("voucher-100k", "Voucher", 10)


def _threads(count, work):
    barrier = threading.Barrier(count)
    outcomes, errors = [], []

    def run():
        barrier.wait()
        try:
            outcomes.extend(work())
        except Exception as exc:  # noqa: BLE001 - reported by the test
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    return outcomes


def _attempts(crm, customer_id, reward, count):
    def work():
        outcomes = []
        for _ in range(count):
            try:
                crm.loyalty.redeem(customer_id, reward)
                outcomes.append(True)
            except ValidationError:
                outcomes.append(False)
        return outcomes

    return work


def test_concurrent_redemptions_from_threads_never_spend_the_same_points_twice(loyal):
    loyal.loyalty.programs.add_reward("gift", "Quà tặng", 70)
    an = loyal.customers.add(name="Nguyễn Văn An")
    loyal.loyalty.grant(an.id, 1000, "quà")
    outcomes = _threads(8, _attempts(loyal, an.id, "gift", 4))
    assert outcomes.count(True) == 1000 // 70
    assert loyal.loyalty.balance(an.id) == 1000 - 14 * 70 == 20
    assert loyal.loyalty.jobs.verify() == []


def test_concurrent_redemptions_from_processes_never_spend_the_same_points_twice(loyal, tmp_path):
    loyal.loyalty.programs.add_reward("gift", "Quà tặng", 60)
    an = loyal.customers.add(name="Nguyễn Văn An")
    loyal.loyalty.grant(an.id, 500, "quà")
    url = loyal.engine.url.render_as_string(hide_password=False)
    go = tmp_path / "go"
    workers = []
    for n in range(2):
        ready = tmp_path / f"ready{n}"
        command = [sys.executable, str(HERE / "redeem_worker.py"), url, str(an.id), "gift", "6", str(ready), str(go)]
        workers.append(
            (
                ready,
                subprocess.Popen(
                    command,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    text=True,
                    env={**os.environ, "PYTHONPATH": str(HERE)},
                ),
            )
        )
    deadline = time.monotonic() + 60
    while not all(ready.exists() for ready, _ in workers) and time.monotonic() < deadline:
        time.sleep(0.02)
    go.touch()
    won = lost = 0
    for _, process in workers:
        out, err = process.communicate(timeout=120)
        assert process.returncode == 0, err
        their_wins, their_losses = map(int, out.split())
        won, lost = won + their_wins, lost + their_losses
    assert (won, lost) == (500 // 60, 12 - 8)
    assert loyal.loyalty.balance(an.id) == 500 - 8 * 60
    assert loyal.loyalty.jobs.verify() == []


def test_concurrent_redemptions_never_take_more_than_the_stock(shop):
    buyers = [shop.customers.add(name=f"Khách {n}") for n in range(6)]
    for buyer in buyers:
        shop.loyalty.grant(buyer.id, 300, "quà")
    queue = list(buyers)
    lock = threading.Lock()

    def work():
        with lock:
            buyer = queue.pop()
        try:
            shop.loyalty.redeem(buyer.id, "arabica-250")
            return [True]
        except ValidationError:
            return [False]

    outcomes = _threads(6, work)
    assert outcomes.count(True) == 2
    assert sorted(shop.loyalty.balance(b.id) for b in buyers) == [200, 200, 300, 300, 300, 300]
    assert [r.stock for r in shop.loyalty.programs.rewards() if r.code == "arabica-250"] == [0]
    assert shop.loyalty.jobs.verify() == []
