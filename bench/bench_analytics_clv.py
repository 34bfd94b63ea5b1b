"""CLV for 1,000,000 customers: read the summary, fit BG/NBD + Gamma-Gamma, predict, store — target under 60 s.

Purchase histories are simulated from the BG/NBD and Gamma-Gamma models with known parameters
(so the fit can be checked against them) and written as the per-customer aggregates crmkit keeps.
Timed: ``crm.analytics.clv()`` end to end (summary read from SQL, both fits, P(alive), discounted
expected purchases month by month over a year, spend, CLV, 1M snapshot rows written), on SQLite and,
with ``--postgres``, PostgreSQL. Also printed: the fit and the prediction alone, in memory.

    python bench/bench_analytics_clv.py --size full [--postgres postgresql://crmkit:crmkit@127.0.0.1:5432/postgres]
"""

from __future__ import annotations

import shutil
import sqlite3
import sys
import tempfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._report import parse_args, report, scale, timed  # noqa: E402

AS_OF = datetime(2026, 1, 1, tzinfo=timezone.utc)
TARGET_S = 60.0
WEEK_US = 7 * 86400 * 1_000_000


def simulate(customers: int) -> dict[str, np.ndarray]:
    """Per-customer aggregates drawn from BG/NBD (r=0.5, α=6, a=0.8, b=2.5) and Gamma-Gamma (p=6, q=4, γ=15)."""
    from crmkit_analytics import btyd

    rng = np.random.default_rng(11)
    truth = btyd.BGNBD(0.5, 6.0, 0.8, 2.5, 0.0, 0)
    T = rng.uniform(1, 104, customers)
    x, t_x, T = btyd.simulate_bgnbd(truth, T, rng)
    spend = btyd.simulate_gamma_gamma(btyd.GammaGamma(6.0, 4.0, 15.0, 0.0, 0), x + 1, rng) * 10_000  # VND
    first_us = ((AS_OF.timestamp() * 1e6) - T * WEEK_US).astype(np.int64)
    return {"x": x, "t_x": t_x, "T": T, "first_us": first_us, "last_us": first_us + (t_x * WEEK_US).astype(np.int64),
            "count": (x + 1).astype(np.int64), "total": np.maximum(np.rint(spend * (x + 1)), 1).astype(np.int64)}


def text(us: np.ndarray) -> list[str]:
    stamps = np.datetime_as_string(us.astype("datetime64[us]"), unit="us")
    return np.char.replace(stamps, "T", " ").tolist()


def rows(data: dict[str, np.ndarray]) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    n = len(data["x"])
    now = AS_OF.replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds")
    people = [(i, "person", f"Khách hàng {i}", f"khach hang {i}", "customer", "{}", "active", now, now)
              for i in range(1, n + 1)]
    values = list(zip(range(1, n + 1), ["VND"] * n, text(data["first_us"]), text(data["last_us"]),
                      data["count"].tolist(), data["total"].tolist(), [now] * n))
    return people, values


CUSTOMERS = "customers (id, kind, name, name_key, lifecycle_stage, attributes, status, created_at, updated_at)"
VALUES = ("analytics_customer_value (customer_id, currency, first_purchase_at, last_purchase_at, purchase_count, "
          "total_minor, updated_at)")


def load_sqlite(path: Path, data: dict[str, np.ndarray]) -> None:
    people, values = rows(data)
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("BEGIN")
    conn.executemany(f"INSERT INTO {CUSTOMERS} VALUES (?,?,?,?,?,?,?,?,?)", people)
    conn.executemany(f"INSERT INTO {VALUES} VALUES (?,?,?,?,?,?,?)", values)
    conn.execute("COMMIT")
    conn.close()


def load_postgres(url: str, data: dict[str, np.ndarray]) -> None:
    import psycopg

    from bench.datagen import libpq_url

    people, values = rows(data)
    with psycopg.connect(libpq_url(url)) as conn, conn.cursor() as cur:
        for target, batch in ((CUSTOMERS, people), (VALUES, values)):
            with cur.copy(f"COPY {target} FROM STDIN") as copy:
                for row in batch:
                    copy.write_row(row)
        cur.execute(f"SELECT setval('customers_id_seq', {len(people)})")


def measure(crm: Any, label: str, customers: int) -> None:
    with timed() as t:
        run = crm.analytics.clv(as_of=AS_OF, horizon_days=365, discount_rate="0.10")
    fit = run.parameters["bgnbd"]
    report(f"analytics CLV fit + prediction, {customers:,} customers ({label})", t[0], "s",
           target=f"< {TARGET_S:.0f} s", ok=t[0] < TARGET_S,
           fitted=f"r={fit['r']:.3f} alpha={fit['alpha']:.2f} a={fit['a']:.3f} b={fit['b']:.3f} (true 0.5/6/0.8/2.5)")


def main() -> None:
    args = parse_args(__doc__.splitlines()[0])
    customers = scale(args.size, tiny=2_000, small=100_000, full=1_000_000)
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="crmkit-bench-clv-"))
    workdir.mkdir(parents=True, exist_ok=True)
    from crmkit import CRM
    from crmkit_analytics import btyd

    data = simulate(customers)
    with timed() as t:
        model = btyd.fit_bgnbd(data["x"], data["t_x"], data["T"])
    report(f"BG/NBD fit alone, {customers:,} customers (in memory)", t[0], "s", target="(part of the 60 s)", ok=True,
           fitted=f"r={model.r:.3f} alpha={model.alpha:.2f} a={model.a:.3f} b={model.b:.3f}")
    with timed() as t:
        btyd.discounted_expected_purchases(model, data["x"], data["t_x"], data["T"], horizon=365 / 7,
                                           step=365 / 12 / 7, rate_per_unit=0.0018)
    report("expected purchases, 12 monthly steps (in memory)", t[0], "s", target="(part of the 60 s)", ok=True)

    path = workdir / f"clv-{args.size}.db"
    path.unlink(missing_ok=True)
    CRM(f"sqlite:///{path}", plugins=["analytics"], upgrade=True).close()
    load_sqlite(path, data)
    crm = CRM(f"sqlite:///{path}", plugins=["analytics"])
    measure(crm, "SQLite", customers)
    crm.close()

    if args.postgres:
        from sqlalchemy.engine import make_url

        from crmkit.storage import create_engine

        name = f"crmkit_bench_clv_{args.size}"
        admin = create_engine(args.postgres, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
        url = make_url(args.postgres).set(database=name).render_as_string(hide_password=False)
        CRM(url, plugins=["analytics"], upgrade=True).close()
        load_postgres(url, data)
        crm = CRM(url, plugins=["analytics"])
        measure(crm, "PostgreSQL", customers)
        crm.close()
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()
    if not args.workdir:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
