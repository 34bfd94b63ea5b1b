"""IDIC Identify over 1,000,000 customers with 3,000,000 identifiers, 5 % of them duplicates with known truth.

Every customer has an e-mail, a phone and an external id (3 identifiers each). Duplicates (5 % of the
customers) repeat a real customer's e-mail (60 %), phone (30 %) or both (10 %), under the same name
written with or without accents. Hard negatives test precision: 1 % of customers share a family
member's phone under another name (they must be queued, never merged), and groups of five share a
company switchboard number (a shared identifier: no match at all). The generator writes straight into
the core tables (sqlite3 executemany) of a database crmkit created; then ``crm.idic.run(steps=["identify"])``
is timed — gathering, matching, the automatic merges through ``crm.customers.merge_many`` and the review
queue. Precision and recall compare the merge log with the generator's truth.
Targets: under 120 s on SQLite; precision ≥ 0.99.

    python bench/bench_idic_identify.py --size full
"""

from __future__ import annotations

import random
import sqlite3
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._report import parse_args, peak_rss_mib, report, scale, timed

FAMILY = [
    "Nguyễn",
    "Trần",
    "Lê",
    "Phạm",
    "Hoàng",
    "Huỳnh",
    "Phan",
    "Vũ",
    "Võ",
    "Đặng",
    "Bùi",
    "Đỗ",
    "Hồ",
    "Ngô",
    "Dương",
]
MIDDLE = ["Văn", "Thị", "Minh", "Đức", "Thu", "Ngọc", "Quốc", "Thanh", "Hữu", "Bảo"]
GIVEN = [
    "An",
    "Bình",
    "Châu",
    "Dũng",
    "Hà",
    "Hải",
    "Hoa",
    "Khang",
    "Lan",
    "Long",
    "Mai",
    "Nam",
    "Phúc",
    "Quân",
    "Sơn",
    "Tâm",
    "Thảo",
    "Trang",
    "Tuấn",
    "Vy",
    "Yến",
    "Khoa",
    "Linh",
    "Nhung",
    "Phong",
    "Thắng",
]
NOW = "2026-11-01 00:00:00.000000"


def generate(path: Path, customers: int, seed: int = 7) -> dict[int, int]:
    """Fill the core tables; returns the truth: customer id → the id of the person it really is."""
    from crmkit.core.text import fold

    rng = random.Random(seed)
    duplicates, families, company = customers * 5 // 100, customers // 100, customers // 500
    originals = customers - duplicates - families - company
    truth: dict[int, int] = {}
    rows: list[tuple[Any, ...]] = []
    points: list[tuple[Any, ...]] = []
    names: dict[int, str] = {}
    phones: dict[int, str] = {}
    emails: dict[int, str] = {}

    def add(cid: int, name: str, email: str, phone: str, external: str, who: int) -> None:
        truth[cid] = who
        rows.append((cid, external, "person", name, fold(name), "customer", "{}", "active", NOW, NOW))
        points.append((cid, "email", email, 0))
        points.append((cid, "phone", phone, 0))

    for cid in range(1, originals + 1):
        name = f"{rng.choice(FAMILY)} {rng.choice(MIDDLE)} {rng.choice(GIVEN)}"
        names[cid], emails[cid], phones[cid] = name, f"kh{cid}@example.vn", f"+849{cid:08d}"
        add(cid, name, emails[cid], phones[cid], f"crm-{cid}", cid)
    cid = originals
    for n in range(duplicates):
        cid += 1
        who = rng.randint(1, originals)
        name = names[who] if rng.random() < 0.5 else fold(names[who]).title()
        kind = rng.random()
        email = emails[who] if kind < 0.7 else f"dup{n}@example.vn"
        phone = phones[who] if kind >= 0.6 else f"+848{cid:08d}"
        add(cid, name, email, phone, f"pos-{n}", who)
    for n in range(families):
        cid += 1
        relative = rng.randint(1, originals)
        name = f"{rng.choice([f for f in FAMILY if f not in names[relative]])} {rng.choice(MIDDLE)} {rng.choice(GIVEN)}"
        add(cid, name, f"family{n}@example.vn", phones[relative], f"fam-{n}", cid)
    for n in range(company):
        cid += 1
        name = f"{rng.choice(FAMILY)} {rng.choice(MIDDLE)} {rng.choice(GIVEN)}"
        add(cid, name, f"staff{n}@example.vn", f"+8428{n // 5:08d}", f"co-{n}", cid)
    db = sqlite3.connect(path)
    db.executemany(
        "INSERT INTO customers (id, external_id, kind, name, name_key, lifecycle_stage, attributes, status, "
        "created_at, updated_at) VALUES (?,?,?,?,?,?,?,?,?,?)",
        rows,
    )
    db.executemany("INSERT INTO customer_contact_points (customer_id, kind, value, position) VALUES (?,?,?,?)", points)
    db.commit()
    db.close()
    return truth


def main() -> None:
    args = parse_args(__doc__.splitlines()[0])
    customers = scale(args.size, tiny=1_000, small=100_000, full=1_000_000)
    from crmkit import CRM

    with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
        path = Path(tmp) / "idic.db"
        CRM(f"sqlite:///{path}", plugins=["idic"]).close()
        with timed() as made:
            truth = generate(path, customers)
        print(f"generated {customers:,} customers, {3 * customers:,} identifiers in {made[0]:.1f} s", flush=True)
        crm = CRM(f"sqlite:///{path}", plugins=["idic"])
        with timed() as took:
            run = crm.idic.run(steps=["identify"])
        counts = run.result("identify").counts
        merges = crm.idic.merges(limit=10 * customers)
        correct = sum(1 for m in merges if truth[m["kept_id"]] == truth[m["merged_id"]])
        expected = len(truth) - len(set(truth.values()))
        precision = correct / len(merges) if merges else 1.0
        recall = correct / expected if expected else 1.0
        crm.close()
    print(f"counts: {counts}", flush=True)
    limit = 120 * customers / 1_000_000  # the target scales with the size: 120 s per million customers
    report(
        "idic identify, SQLite",
        took[0],
        "s",
        target=f"< {limit:g} s (120 s per 1M customers / 3M identifiers)",
        ok=took[0] < limit,
        customers=customers,
        identifiers=counts["identifiers"],
        merged=counts["merged"],
        queued=counts["queued"],
        peak_rss_mib=f"{peak_rss_mib():.0f}",
    )
    report(
        "idic identify precision",
        precision,
        "",
        target=">= 0.99",
        ok=precision >= 0.99,
        recall=f"{recall:.4f}",
        correct=correct,
        expected=expected,
    )


if __name__ == "__main__":
    main()
