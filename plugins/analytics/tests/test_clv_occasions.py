"""CLV on purchase occasions, through the CRM: the published CDNOW figures, local days, the hold-out check, bad input.

The CDNOW cohort (the 1-in-10 sample shipped in the `lifetimes` wheel, CDNOW_sample.txt: 2,357 customers, 6,919
orders, January 1997 – June 1998) is written by a purchase source other than sales — the test source's
``crmkit_value_transactions`` — with each order placed at a local time of its day in the business's time zone,
as `crmkit sales orders import` reads a date. Published figures: BG/NBD (Fader, Hardie & Lee 2005) r 0.243,
α 4.414, a 0.793, b 2.426, LL −9582.4; Pareto/NBD (the same paper's comparison) r 0.553, α 10.578, s 0.606,
β 11.669, LL −9595.0; Gamma-Gamma (Fader & Hardie 2013) p 6.25, q 3.74, γ 15.44.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pytest
import sqlalchemy as sa
from click.testing import CliRunner, Result

from crmkit import ValidationError
from crmkit.cli.context import CLIContext
from crmkit.cli.main import cli
from crmkit.core.tables import customers
from crmkit_analytics import btyd
from crmkit_analytics.models import clv as clv_table
from crmkit_analytics.models import customer_value
from crmkit_analytics.testing import SOURCE, Shop, cdnow_file

CALIBRATION_END, HOLDOUT_END = date(1997, 9, 30), date(1998, 6, 30)


def run(crm: Any, *args: str) -> Result:
    url = crm.engine.url.render_as_string(hide_password=False)
    return CliRunner().invoke(cli, ["--db", url, *args], obj=CLIContext(plugins=["analytics", SOURCE]))


def cdnow_orders() -> list[tuple[int, date, Decimal]]:
    """CDNOW_sample.txt as (customer, day, dollars): one row per order line as published (several a day at times)."""
    rows = []
    for line in cdnow_file("CDNOW_sample.txt").read_text().splitlines():
        _, cid, day, _, dollars = line.split()
        rows.append((int(cid), datetime.strptime(day, "%Y%m%d").date(), Decimal(dollars)))
    return rows


def load_cdnow(crm: Any, zone: str, tmp_path: Path) -> None:
    """CDNOW as a shop migrating its history would load it: customers, then `crmkit sales orders import` of a CSV
    with each order at a local time of its day (00:00, 12:30, 23:59 in turn; a day's orders kept apart)."""
    from crmkit.core.transfer import import_customers

    crm.set_setting("timezone", zone)
    orders = cdnow_orders()
    people = tmp_path / "customers.csv"
    people.write_text("external_id,name\n" + "".join(f"cdnow-{c},CDNOW {c}\n" for c in sorted({o[0] for o in orders})))
    assert import_customers(crm, people).inserted == 2357
    hours = ["00:00", "12:30", "23:59"]
    history = tmp_path / "cdnow.csv"
    history.write_text(
        "reference,customer_external_id,placed_at,currency,total\n"
        + "".join(
            f"cdnow-{n},cdnow-{cid},{day.isoformat()} {hours[n % 3]},USD,{dollars}\n"
            for n, (cid, day, dollars) in enumerate(orders)
        )
    )
    result = CliRunner().invoke(
        cli,
        ["--format", "json", "sales", "orders", "import", str(history)],
        obj=CLIContext(crm=crm),
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)[0]["inserted"] == 6919


def sales_crm(crm_factory: Any) -> Any:
    return crm_factory(plugins=["analytics", "sales"])


def cli_on(crm: Any, *args: str) -> Result:
    return CliRunner().invoke(cli, list(args), obj=CLIContext(crm=crm))


def cdnow_id(crm: Any, cid: int) -> int:
    """The CRM id of CDNOW customer ``cid``."""
    with crm.reading() as conn:
        return int(
            conn.execute(sa.select(customers.c.id).where(customers.c.external_id == f"cdnow-{cid}")).scalar_one()
        )


def published_days() -> dict[int, dict[date, int]]:
    """Each customer's purchase days with the day's cents, straight from the file (what the papers count)."""
    days: dict[int, dict[date, int]] = defaultdict(lambda: defaultdict(int))
    for cid, day, dollars in cdnow_orders():
        days[cid][day] += int(dollars * 100)
    return days


@pytest.mark.parametrize("zone", ["Asia/Ho_Chi_Minh", "America/New_York"])
def test_clv_reproduces_the_published_cdnow_models(crm_factory: Any, zone: str, tmp_path: Path) -> None:
    crm = sales_crm(crm_factory)
    load_cdnow(crm, zone, tmp_path)
    result = cli_on(
        crm,
        "--format",
        "json",
        "analytics",
        "clv",
        "--as-of",
        "1997-09-30",
        "--horizon-days",
        "273",
        "--discount-rate",
        "0",
        "--top",
        "3000",
    )
    assert result.exit_code == 0, result.output
    answer = json.loads(result.output)
    p = answer["run"]["parameters"]
    assert p["calibration_end"] == "1997-09-30" and p["time_zone"] == zone and p["occasions"] == "local day"
    bg, pareto, gg = p["bgnbd"], p["pareto_nbd"], p["gamma_gamma"]
    assert bg["customers"] == 2357
    assert (round(bg["r"], 3), round(bg["alpha"], 3), round(bg["a"], 3), round(bg["b"], 3)) == (
        0.243,
        4.414,
        0.793,
        2.426,
    )
    assert round(bg["log_likelihood"], 1) == -9582.4
    assert (round(pareto["r"], 3), round(pareto["alpha"], 2), round(pareto["s"], 3), round(pareto["beta"], 1)) == (
        0.553,
        10.58,
        0.606,
        11.7,
    )
    assert round(pareto["log_likelihood"], 1) == -9595.0
    assert bg["better"] and not pareto["better"] and bg["bic"] < pareto["bic"]  # as the paper finds
    assert set(bg["standard_errors"]) == {"r", "alpha", "a", "b"} and all(v > 0 for v in bg["standard_errors"].values())
    assert (round(gg["p"], 2), round(gg["q"], 2), round(gg["gamma"], 2), gg["currency"]) == (6.25, 3.74, 15.44, "USD")
    assert gg["customers"] == 946  # the repeat buyers
    # P(X(t) = n) sums to one
    assert sum(p["purchase_count_distribution"]["probabilities"]) == pytest.approx(1.0)

    rows = {r["customer_id"]: r for r in answer["customers"]}
    assert len(rows) == 2357
    rows = {cid: rows[cdnow_id(crm, cid)] for cid in (1, 2, 3, 4, 1000)}
    days = published_days()
    for cid in (1, 2, 3, 4, 1000):  # x, t_x and T as the published summary (cdnow_customers_summary.csv)
        mine = sorted(d for d in days[cid] if d <= CALIBRATION_END)
        assert rows[cid]["frequency"] == len(mine) - 1
        assert rows[cid]["recency_weeks"] == pytest.approx((mine[-1] - mine[0]).days / 7)
        assert rows[cid]["age_weeks"] == pytest.approx((CALIBRATION_END - mine[0]).days / 7)
    assert (rows[1]["frequency"], round(rows[1]["recency_weeks"], 2), round(rows[1]["age_weeks"], 2)) == (
        2,
        30.43,
        38.86,
    )
    # one-time buyers expect the population mean pγ/(q−1) per purchase, in dollars
    one_timer = next(r for r in answer["customers"] if r["frequency"] == 0)
    assert Decimal(one_timer["expected_spend"]) == pytest.approx(Decimal("35.17"), abs=Decimal("0.01"))
    # a repeat buyer's E[M | x, z̄] uses the mean of the repeat days only
    cid = 1
    mine = sorted(d for d in days[cid] if d <= CALIBRATION_END)
    zbar = sum(days[cid][d] for d in mine[1:]) / (len(mine) - 1) / 100
    expected = gg["p"] * (gg["gamma"] + 2 * zbar) / (gg["p"] * 2 + gg["q"] - 1)
    assert float(rows[cid]["expected_spend"]) == pytest.approx(expected, abs=0.006)
    assert rows[cid]["currency"] == "USD"

    table = cli_on(crm, "analytics", "clv", "--latest", "--top", "3")
    assert table.exit_code == 0, table.output
    assert f"r={bg['r']!r}" in table.output and f"LL={bg['log_likelihood']!r}" in table.output  # full precision
    assert "← better (lower BIC), predicting" in table.output and "gamma in USD" in table.output
    history = json.loads(cli_on(crm, "--format", "json", "analytics", "runs", "--measure", "clv").output)
    assert history[0]["parameters"]["pareto_nbd"]["s"] == pareto["s"]  # the run keeps every figure


def test_the_hold_out_check_counts_what_customers_really_bought(crm_factory: Any, tmp_path: Path) -> None:
    analytics_crm = sales_crm(crm_factory)
    load_cdnow(analytics_crm, "America/New_York", tmp_path)
    check = analytics_crm.analytics.clv_check(calibration_end="1997-09-30", holdout_end="1998-06-30")
    days = published_days()
    cohort = {cid: sorted(d) for cid, d in days.items() if min(d) <= CALIBRATION_END}
    actual = sum(1 for mine in cohort.values() for d in mine if CALIBRATION_END < d <= HOLDOUT_END)
    assert check["customers"] == 2357 and check["holdout_weeks"] == 39
    assert check["total"]["actual"] == actual
    assert check["total"]["predicted"] == pytest.approx(actual, rel=0.15)  # the paper: close in total
    groups = {g["frequency"]: g for g in check["by_frequency"]}
    assert list(groups) == ["0", "1", "2", "3", "4", "5", "6", "7+"]
    assert sum(g["customers"] for g in groups.values()) == 2357
    one_time = [cid for cid, mine in cohort.items() if len([d for d in mine if d <= CALIBRATION_END]) == 1]
    assert groups["0"]["customers"] == len(one_time)
    assert groups["0"]["actual"] == pytest.approx(
        sum(len([d for d in cohort[c] if CALIBRATION_END < d <= HOLDOUT_END]) for c in one_time) / len(one_time)
    )
    # predictions rise with the calibration frequency, as the purchases do
    predicted = [g["predicted"] for g in groups.values()]
    assert predicted == sorted(predicted)
    assert 0 < check["mean_absolute_error"] < 2
    weekly = check["weekly"]
    assert weekly[-1]["ending"] == "1998-06-30" and len(weekly) == 78
    assert weekly[-1]["actual"] == sum(len(mine) - 1 for mine in cohort.values())
    assert [w["actual"] for w in weekly] == sorted(w["actual"] for w in weekly)
    assert weekly[-1]["predicted"] == pytest.approx(weekly[-1]["actual"], rel=0.1)

    result = cli_on(
        analytics_crm, "analytics", "clv-check", "--calibration-end", "1997-09-30", "--holdout-end", "1998-06-30"
    )
    assert result.exit_code == 0, result.output
    assert "mean absolute error per customer" in result.output and "1998-06-30" in result.output
    as_csv = cli_on(
        analytics_crm,
        "--format",
        "csv",
        "analytics",
        "clv-check",
        "--calibration-end",
        "1997-09-30",
        "--holdout-end",
        "1998-06-30",
    )
    assert as_csv.output.splitlines()[0] == "frequency,customers,actual,predicted"
    assert as_csv.output.splitlines()[-1].startswith(f"total,2357,{actual},")
    report = cli_on(
        analytics_crm,
        "--locale",
        "en",
        "analytics",
        "report",
        "--out",
        str(tmp_path / "r.html"),
        "--as-of",
        "1998-06-30",
        "--holdout",
        "1997-09-30",
        "1998-06-30",
        "--charts",
        str(tmp_path / "c"),
    )
    assert report.exit_code == 0, report.output
    page = re.sub(r'src="data:[^"]*"', "", (tmp_path / "r.html").read_text())  # the text, not the inlined images
    assert "Lifetime value model against a hold-out" in page and "repeat purchases expected" in page
    assert "NaN" not in page
    assert (tmp_path / "c" / "clv_tracking.svg").exists() and (tmp_path / "c" / "clv_holdout.png").exists()
    vietnamese = cli_on(
        analytics_crm,
        "--locale",
        "vi",
        "analytics",
        "report",
        "--out",
        str(tmp_path / "vi.html"),
        "--as-of",
        "1998-06-30",
        "--holdout",
        "1997-09-30",
        "1998-06-30",
    )
    assert vietnamese.exit_code == 0, vietnamese.output
    page = re.sub(r'src="data:[^"]*"', "", (tmp_path / "vi.html").read_text())
    assert "<h2>Mô hình giá trị vòng đời so với giai đoạn kiểm tra</h2>" in page
    assert f"thực tế {actual:,}".replace(",", ".") in page and "sai số tuyệt đối trung bình" in page
    assert "<th>Dự báo, mỗi khách</th>" in page or ">Dự báo, mỗi khách<" in page
    assert "repeat purchases expected" not in page and "Predicted per customer" not in page


# --- occasions by local day --------------------------------------------------------------------------------


def _values(crm: Any, customer_id: int) -> dict[str, Any]:
    with crm.reading() as conn:
        return dict(
            conn.execute(sa.select(customer_value).where(customer_value.c.customer_id == customer_id)).mappings().one()
        )


def test_orders_of_one_local_day_are_one_occasion_kept_incrementally(
    analytics_crm: Any, shop: Any, people: Any
) -> None:
    analytics_crm.set_setting("timezone", "America/New_York")
    an, binh = people(2)
    ny = ZoneInfo("America/New_York")
    # 2026-03-08 is the day New York moves its clocks forward: 00:30 and 23:30 are 22 hours apart, one day
    first = shop.buy(an, datetime(2026, 3, 8, 0, 30, tzinfo=ny), 100_000, "USD")
    shop.buy(an, datetime(2026, 3, 8, 23, 30, tzinfo=ny), 50_000, "USD")
    shop.buy(an, datetime(2026, 3, 9, 0, 5, tzinfo=ny), 0, "USD")  # a free item: an occasion
    shop.buy(an, datetime(2026, 3, 20, 10, 0, tzinfo=ny), 70_000, "USD")
    shop.refund(first, 30_000)  # netted on its day
    mine = _values(analytics_crm, an)
    assert (mine["occasions"], mine["first_occasion_minor"], mine["occasions_minor"]) == (3, 120_000, 190_000)
    assert mine["last_day"] - mine["first_day"] == 12 and mine["purchase_count"] == 3  # paid orders, for RFM
    analytics_crm.analytics.rebuild()
    assert _values(analytics_crm, an) == {**mine, "updated_at": _values(analytics_crm, an)["updated_at"]}
    shop.buy(binh, datetime(2026, 3, 10, 9, 0, tzinfo=ny), 40_000, "USD")
    shop.buy(binh, datetime(2026, 3, 30, 9, 0, tzinfo=ny), 60_000, "USD")
    run_ = analytics_crm.analytics.clv(as_of="2026-04-30", currency="USD")
    rows = {r["customer_id"]: r for r in analytics_crm.analytics.customers("clv")}
    assert rows[an]["frequency"] == 2 and rows[an]["recency_weeks"] == pytest.approx(12 / 7)
    assert rows[an]["age_weeks"] == pytest.approx((date(2026, 4, 30) - date(2026, 3, 8)).days / 7)
    assert run_.parameters["occasions"] == "local day" and run_.parameters["time_zone"] == "America/New_York"
    analytics_crm.analytics.configure(clv_occasions="transaction")
    analytics_crm.analytics.clv(as_of="2026-04-30", currency="USD")
    rows = {r["customer_id"]: r for r in analytics_crm.analytics.customers("clv")}
    assert rows[an]["frequency"] == 3  # four orders: the same day's two now count apart


def test_the_time_zone_decides_the_day_of_an_order(analytics_crm: Any, shop: Any, people: Any) -> None:
    """23:30 UTC on 30 September is 1 October in Vietnam: outside a calibration ending on the 30th there."""
    an, binh = people(2)
    for cid in (an, binh):
        shop.buy(cid, datetime(2026, 6, 1, 3, 0, tzinfo=UTC), 100_000)
        shop.buy(cid, datetime(2026, 7, 1, 3, 0, tzinfo=UTC), 100_000)
    shop.buy(an, datetime(2026, 9, 30, 23, 30, tzinfo=UTC), 100_000)
    analytics_crm.analytics.clv(as_of="2026-09-30")
    rows = {r["customer_id"]: r for r in analytics_crm.analytics.customers("clv")}
    assert rows[an]["frequency"] == 1 and rows[an]["age_weeks"] == pytest.approx(121 / 7)
    analytics_crm.analytics.clv(as_of="2026-10-01")
    rows = {r["customer_id"]: r for r in analytics_crm.analytics.customers("clv")}
    assert rows[an]["frequency"] == 2


# --- bad input -------------------------------------------------------------------------------------------


def test_bad_input_gets_one_clear_message(analytics_crm: Any, shop: Any, people: Any) -> None:
    an, binh, chau = people(3)
    for cid in (an, binh):
        shop.buy(cid, days_ago=200)
        shop.buy(cid, days_ago=100)
    with pytest.raises(
        ValidationError, match=r"as_of: no purchases in VND on or before .*the as-of date is before every"
    ):
        analytics_crm.analytics.clv(as_of="2001-01-01")
    today = analytics_crm.today().isoformat()
    with pytest.raises(ValidationError, match="holdout_end: the hold-out must come after the calibration period"):
        analytics_crm.analytics.clv_check(calibration_end=today, holdout_end=today)
    with pytest.raises(ValidationError, match="calibration_end: not a date"):
        analytics_crm.analytics.clv_check(calibration_end="30/09/1997", holdout_end=today)
    result = run(
        analytics_crm, "analytics", "clv-check", "--calibration-end", "2026-09-30", "--holdout-end", "2026-01-01"
    )
    assert result.exit_code != 0 and "the two would overlap" in result.output
    refund = Shop(analytics_crm).buy(chau, days_ago=50, amount=100_000)
    with analytics_crm.transaction() as session:  # a refund recorded as its own transaction, a day later
        from crmkit.testing import purchases

        session.connection().execute(
            purchases.insert().values(
                customer_id=chau,
                occurred_at=datetime.now(UTC) - timedelta(days=20),
                amount_minor=-40_000,
                currency="VND",
            )
        )
    analytics_crm.analytics.refresh([chau])
    assert refund
    with pytest.raises(ValidationError, match=rf"customer {chau} \(Lê Minh Châu 2\) has a day whose refunds exceed"):
        analytics_crm.analytics.clv()
    shop.buy(an, days_ago=10, currency="USD", amount=1000)
    with pytest.raises(ValidationError, match="several currencies .*never added"):
        analytics_crm.analytics.clv()


# --- the project's simulators ----------------------------------------------------------------------------


def test_fits_from_simulated_orders_equal_the_models_on_the_same_summary(analytics_crm: Any, shop: Any) -> None:
    """Orders drawn from BG/NBD and Gamma-Gamma (the project's simulators), loaded as purchases: the CRM's fits are
    the models' fits on the per-day summary, and recover the truth; the first purchase's amount is left out."""
    rng = np.random.default_rng(5)
    truth = btyd.BGNBD(0.7, 6.0, 0.9, 3.0, 0.0, 0)
    n = 1500
    x, t_x, T = btyd.simulate_bgnbd(truth, rng.integers(26, 60, n) * 7.0, rng)
    zbar = btyd.simulate_gamma_gamma(btyd.GammaGamma(5.0, 4.0, 20.0, 0.0, 0), np.maximum(x, 1), rng)
    end = date(2026, 6, 30)
    ids = [analytics_crm.customers.add(name=f"Khách mô phỏng {i}").id for i in range(n)]
    rows = []
    for cid, xi, txi, Ti, z in zip(ids, x, t_x, T, zbar):
        first = end - timedelta(days=int(Ti * 7))
        last_day = int(np.floor(txi * 7))
        days = sorted({0, last_day, *rng.integers(1, max(last_day, 1), int(xi) - 1).tolist()}) if xi else [0]
        days = days[:1] + days[1:][-int(xi) :] if xi else days
        amounts = [int(rng.integers(1, 500)) * 1000] + [round(z * 1000)] * (len(days) - 1)  # the first differs
        rows += [
            {
                "customer_id": cid,
                "currency": "VND",
                "amount_minor": amount,
                "occurred_at": datetime(d.year, d.month, d.day, 10, tzinfo=ZoneInfo("Asia/Ho_Chi_Minh")),
            }
            for d, amount in zip((first + timedelta(days=k) for k in days), amounts)
        ]
    Shop(analytics_crm).insert_quietly(rows)
    analytics_crm.analytics.rebuild()
    run_ = analytics_crm.analytics.clv(as_of=end.isoformat())
    got = {r["customer_id"]: r for r in analytics_crm.analytics.export("clv")}
    xs = np.array([got[c]["frequency"] for c in ids], dtype=float)
    txs = np.array([got[c]["recency_weeks"] for c in ids])
    Ts = np.array([got[c]["age_weeks"] for c in ids])
    same = btyd.fit_bgnbd(xs, txs, Ts)
    fit = run_.parameters["bgnbd"]
    assert fit["r"] == pytest.approx(same.r, rel=1e-6) and fit["b"] == pytest.approx(same.b, rel=1e-6)
    for name in ("r", "alpha"):
        assert fit[name] == pytest.approx(getattr(truth, name), rel=0.3), name
    zs = np.array([round(z * 1000) / 1000 for z in zbar])  # what the repeat days cost, in đồng / 1000
    repeat = xs > 0
    spend = btyd.fit_gamma_gamma(xs[repeat], zs[repeat] * 1000)
    gg = run_.parameters["gamma_gamma"]
    assert gg["p"] == pytest.approx(spend.p, rel=1e-6) and gg["gamma"] == pytest.approx(spend.gamma, rel=1e-6)


# --- concurrency and a kill -9 -------------------------------------------------------------------------------


def test_orders_of_one_day_written_at_once_make_one_occasion(analytics_crm: Any, people: Any) -> None:
    """Two tills record the same customer's orders of one day at the same moment: one occasion, both amounts."""
    (an,) = people(1)
    shop = Shop(analytics_crm)
    when = datetime(2026, 5, 4, 3, 0, tzinfo=UTC)
    start = threading.Barrier(4)

    def till(k: int) -> int:
        start.wait()
        return shop.buy(an, when + timedelta(minutes=k), 10_000 * (k + 1))

    with ThreadPoolExecutor(4) as pool:
        assert len({order.result() for order in [pool.submit(till, k) for k in range(4)]}) == 4  # none failed
    mine = _values(analytics_crm, an)
    assert (mine["occasions"], mine["first_occasion_minor"], mine["purchase_count"]) == (1, 100_000, 4)


#: Computes CLV inside a transaction it never commits, says so, and waits to be killed.
WORKER = """
import sys, time
from pathlib import Path
import crmkit
from crmkit_analytics.testing import SOURCE
url, ready = sys.argv[1], Path(sys.argv[2])
crm = crmkit.CRM(url, plugins=["analytics", SOURCE])
with crm.transaction():
    crm.analytics.clv(as_of="2026-06-30", horizon_days=30)
    ready.touch()
    time.sleep(120)
"""


def test_a_killed_clv_run_leaves_the_previous_one_whole(analytics_crm: Any, people: Any, tmp_path: Path) -> None:
    ids = people(6)
    rows = [
        {
            "customer_id": cid,
            "currency": "VND",
            "amount_minor": 100_000 * (1 + (i + k) % 3),
            "occurred_at": datetime(2026, 1, 5, tzinfo=UTC) + timedelta(days=9 * i + 23 * k),
        }
        for i, cid in enumerate(ids)
        for k in range(1 + i % 4)
    ]
    Shop(analytics_crm).insert_quietly(rows)
    before = analytics_crm.analytics.clv(as_of="2026-06-30")
    snapshot = analytics_crm.analytics.export("clv")
    ready = tmp_path / "ready"
    url = analytics_crm.engine.url.render_as_string(hide_password=False)
    worker = subprocess.Popen([sys.executable, "-c", WORKER, url, str(ready)], stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not ready.exists() and worker.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert ready.exists(), worker.stderr.read() if worker.stderr else ""
    os.kill(worker.pid, signal.SIGKILL)
    worker.wait(timeout=30)
    assert analytics_crm.analytics.latest("clv").id == before.id
    assert analytics_crm.analytics.export("clv") == snapshot
    with analytics_crm.reading() as conn:
        runs_ = set(conn.execute(sa.select(clv_table.c.run_id).distinct()).scalars())
    assert runs_ == {before.id}
    again = analytics_crm.analytics.clv(as_of="2026-06-30")  # computed as if never tried
    assert again.parameters["bgnbd"] == before.parameters["bgnbd"]
