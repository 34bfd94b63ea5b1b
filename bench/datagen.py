"""Deterministic crmkit databases at benchmark scale: customers and interactions, fast.

Writes exactly the rows ``crm.users.add`` (the employees who own customers and log
interactions: owners are users), ``crm.customers.add`` and ``crm.interactions.log`` would
write (users, customers, contact points, addresses, tags, consents, memberships, search keys
from ``crmkit.core.search.search_keys``, the audit log, interactions) with explicit ids and
bulk inserts: raw ``sqlite3`` ``executemany`` in big transactions on SQLite, ``COPY`` on
PostgreSQL. Secondary indexes and foreign keys are dropped during the load and rebuilt
after it, so 1M customers and 10M interactions take minutes.

Generated SQLite files are cached (keyed by size, seed and a fingerprint of the schema
and of this generator), and so are PostgreSQL databases, so repeated runs reuse them::

    python bench/datagen.py --customers 100000 --interactions 1000000 --out /tmp/crm.db
    python bench/datagen.py --size full --postgres postgresql://crmkit:crmkit@127.0.0.1:5432/postgres
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import re
import sqlite3
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from crmkit.core.search import search_keys  # noqa: E402
from crmkit.core.text import fold  # noqa: E402

#: (customers, interactions) of the standard data set at each benchmark size.
DATASETS = {"tiny": (2_000, 20_000), "small": (100_000, 1_000_000), "full": (1_000_000, 10_000_000)}
DEFAULT_SEED = 20261123
DEFAULT_CACHE = ROOT / "bench" / "out"
ACTOR = "system"  # what the audit log records when no user is acting (crmkit.crm.SYSTEM_ACTOR)
SOURCE = "import"  # the ``source`` recorded with generated consents
BATCH = 20_000
#: Bump when the generated data changes, so that cached databases are generated again.
VERSION = 4

# -- pools ------------------------------------------------------------------------------------------

VN_FAMILY = (
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
    "Lý",
)
VN_FAMILY_WEIGHTS = (38, 11, 9.5, 7, 5, 5, 4.5, 3.9, 3.9, 2.1, 2, 1.4, 1.3, 1.3, 1, 0.5)
VN_MIDDLE = {
    "male": ("Văn", "Hữu", "Đức", "Minh", "Quốc", "Thanh", "Công", "Hoàng", "Gia", "Văn"),
    "female": ("Thị", "Ngọc", "Thu", "Thanh", "Minh", "Kim", "Bảo", "Hồng", "Thị"),
}
VN_GIVEN = {
    "male": (
        "An",
        "Bình",
        "Cường",
        "Dũng",
        "Đạt",
        "Hải",
        "Hiếu",
        "Hùng",
        "Huy",
        "Khoa",
        "Long",
        "Minh",
        "Nam",
        "Phong",
        "Phúc",
        "Quân",
        "Sơn",
        "Tài",
        "Thắng",
        "Trung",
        "Tuấn",
        "Việt",
        "Vinh",
        "Đông",
    ),
    "female": (
        "An",
        "Anh",
        "Chi",
        "Dung",
        "Giang",
        "Hà",
        "Hạnh",
        "Hoa",
        "Hương",
        "Lan",
        "Linh",
        "Mai",
        "My",
        "Ngân",
        "Nhung",
        "Oanh",
        "Phương",
        "Quỳnh",
        "Thảo",
        "Trang",
        "Trinh",
        "Vân",
        "Yến",
        "Uyên",
    ),
}
EN_GIVEN = {
    "male": ("James", "John", "Robert", "Michael", "David", "William", "Thomas", "Daniel", "Andrew", "Peter"),
    "female": ("Mary", "Emma", "Olivia", "Sarah", "Emily", "Jessica", "Anna", "Laura", "Sophie", "Grace"),
}
EN_FAMILY = (
    "Smith",
    "Johnson",
    "Williams",
    "Brown",
    "Jones",
    "Miller",
    "Davis",
    "Wilson",
    "Taylor",
    "Clark",
    "Walker",
    "Wright",
    "Green",
    "Baker",
    "Hill",
)
ORG_WORDS = (
    "Sao Mai",
    "Hòa Phát",
    "Minh Long",
    "Thành Công",
    "Phú Quý",
    "Đại Việt",
    "Bình Minh",
    "Hưng Thịnh",
    "Golden Lotus",
    "Blue Ocean",
    "Saigon Trade",
    "Mekong Foods",
    "Red River",
    "An Khang",
    "Tân Tiến",
)
ORG_FORMS = ("Công ty TNHH {}", "Công ty Cổ phần {}", "{} Co., Ltd", "Nhà phân phối {}", "Cửa hàng {}", "{} JSC")
ORG_DOMAINS = ("com.vn", "vn", "com")
MAIL_DOMAINS = ("gmail.com", "gmail.com", "gmail.com", "yahoo.com", "outlook.com", "fpt.vn", "vnpt.vn", "icloud.com")
MOBILE_PREFIXES = (
    "90",
    "91",
    "93",
    "94",
    "96",
    "97",
    "98",
    "32",
    "33",
    "34",
    "35",
    "36",
    "37",
    "38",
    "39",
    "70",
    "76",
    "77",
    "78",
    "79",
    "81",
    "82",
    "83",
    "84",
    "85",
    "86",
    "88",
)
VN_CITIES = (
    "Hà Nội",
    "TP. Hồ Chí Minh",
    "Đà Nẵng",
    "Hải Phòng",
    "Cần Thơ",
    "Biên Hòa",
    "Nha Trang",
    "Huế",
    "Vũng Tàu",
    "Buôn Ma Thuột",
    "Quy Nhơn",
    "Thủ Dầu Một",
)
EN_PLACES = (("US", "New York"), ("US", "San Francisco"), ("GB", "London"), ("SG", "Singapore"), ("AU", "Sydney"))
STREETS = (
    "Lê Lợi",
    "Nguyễn Huệ",
    "Trần Hưng Đạo",
    "Hai Bà Trưng",
    "Lý Thường Kiệt",
    "Điện Biên Phủ",
    "Cách Mạng Tháng 8",
)
#: The employees (users, created first) who own customers and log interactions, with their display names.
STAFF = {
    "lan.nguyen": "Nguyễn Thị Lan",
    "minh.tran": "Trần Quang Minh",
    "hoa.le": "Lê Thị Hoa",
    "tuan.pham": "Phạm Anh Tuấn",
    "sarah.lee": "Sarah Lee",
    "david.clark": "David Clark",
    "thao.vu": "Vũ Phương Thảo",
    "khoa.do": "Đỗ Đăng Khoa",
    "mai.bui": "Bùi Thị Mai",
    "nam.hoang": "Hoàng Văn Nam",
    "linh.dang": "Đặng Thùy Linh",
    "peter.hill": "Peter Hill",
}
#: The organisation: branches, each with its teams (a tree), and every employee in one team.
BRANCHES, TEAMS_PER_BRANCH, USERS = 10, 9, 1_000


def _organisation() -> tuple[list[tuple[str, str | None]], dict[str, str], dict[str, str]]:
    """The teams in creation order ``(name, parent)``, then every user's display name and team (deterministic):
    ``STAFF`` first, then generated employees ``nv0013``… with Vietnamese names, round-robin over the teams."""
    teams: list[tuple[str, str | None]] = [(f"Chi nhánh {b:02d}", None) for b in range(1, BRANCHES + 1)]
    teams += [
        (f"CN{b:02d} · Nhóm {n}", f"Chi nhánh {b:02d}")
        for b in range(1, BRANCHES + 1)
        for n in range(1, TEAMS_PER_BRANCH + 1)
    ]
    leaves = [name for name, parent in teams if parent is not None]
    rng = random.Random("staff")
    names = dict(STAFF)
    while len(names) < USERS:
        gender = rng.choice(("male", "female"))
        names[f"nv{len(names) + 1:04d}"] = " ".join(
            (rng.choice(VN_FAMILY), rng.choice(VN_MIDDLE[gender]), rng.choice(VN_GIVEN[gender]))
        )
    return teams, names, {username: leaves[n % len(leaves)] for n, username in enumerate(names)}


TEAMS, DISPLAY_NAMES, TEAM_OF = _organisation()
EMPLOYEES = tuple(DISPLAY_NAMES)
#: Audit entries the organisation writes before the first customer's (team, user and membership entries).
ORG_AUDIT = len(TEAMS) + 2 * len(EMPLOYEES)
TAGS = ("vip", "wholesale", "newsletter", "b2b", "zalo", "facebook-lead", "returning", "tết-2025")
ROLES = ("Giám đốc", "Kế toán", "Purchasing manager", "Chủ cửa hàng", "Nhân viên mua hàng")
PERSON_STAGES = ("lead", "prospect", "customer", "customer", "customer", "churned")
ORG_STAGES = ("customer", "distributor", "retailer", "partner", "prospect")
CHANNELS = ("email", "phone", "sms", "chat", "social", "web", "in_person", "post", "fax")
CHANNEL_WEIGHTS = (30, 25, 10, 15, 8, 7, 3, 1, 1)
SUBJECTS = (
    "Hỏi giá sản phẩm",
    "Xác nhận đơn hàng",
    "Khiếu nại giao hàng",
    "Order follow-up",
    "Newsletter reply",
    "Yêu cầu báo giá",
    "Đổi trả hàng",
    "Warranty question",
    "Cập nhật địa chỉ",
    "Meeting request",
    "Chăm sóc sau bán hàng",
    "Chương trình khuyến mãi",
    None,
    None,
)
SUMMARIES = (
    "Khách hỏi về giá sỉ cho đơn hàng tháng sau; đã gửi bảng giá.",
    "Customer asked for delivery status; tracking number sent.",
    "Khách phàn nàn giao hàng trễ 2 ngày, đã xin lỗi và tặng mã giảm giá.",
    "Called to confirm the appointment for Thursday.",
    "Đã tư vấn gói dịch vụ mới, khách sẽ suy nghĩ thêm.",
    None,
    None,
    None,
    None,
)
OUTCOMES = ("resolved", "follow-up", "no answer", "order placed", "complaint", "information sent", None, None)

CUSTOMER_COLUMNS = (
    "id",
    "external_id",
    "kind",
    "name",
    "given_name",
    "family_name",
    "name_key",
    "birth_date",
    "gender",
    "lifecycle_stage",
    "owner",
    "country",
    "city",
    "province",
    "attributes",
    "status",
    "merged_into_id",
    "created_at",
    "updated_at",
)
SCALARS = (
    "external_id",
    "kind",
    "name",
    "given_name",
    "family_name",
    "birth_date",
    "gender",
    "lifecycle_stage",
    "owner",
    "country",
    "city",
    "province",
)
ADDRESS_FIELDS = ("label", "line1", "line2", "ward", "district", "city", "province", "postal_code", "country")
INTERACTION_COLUMNS = (
    "id",
    "customer_id",
    "channel",
    "direction",
    "occurred_at",
    "subject",
    "summary",
    "outcome",
    "rating",
    "employee",
    "sender",
    "created_at",
)
USER_COLUMNS = (
    "id",
    "username",
    "display_name",
    "email",
    "phone",
    "active",
    "locale",
    "timezone",
    "password_hash",
    "failed_logins",
    "locked_until",
    "last_login_at",
    "created_at",
    "updated_at",
)
TABLES: dict[str, tuple[str, ...]] = {
    "teams": ("id", "name", "parent_id", "created_at"),
    "users": USER_COLUMNS,
    "team_members": ("team_id", "user_id"),
    "customers": CUSTOMER_COLUMNS,
    "customer_contact_points": ("id", "customer_id", "kind", "value", "label", "position"),
    "customer_addresses": ("id", "customer_id", *ADDRESS_FIELDS, "position"),
    "customer_tags": ("customer_id", "tag"),
    "customer_consents": ("customer_id", "channel", "granted", "at", "source"),
    "customer_memberships": ("person_id", "organization_id", "role"),
    "customer_search_keys": ("key", "customer_id", "owner"),
    "audit_log": ("id", "at", "actor", "action", "entity", "entity_id", "customer_id", "changes"),
    "interactions": INTERACTION_COLUMNS,
}

USERS_AT = datetime(2020, 12, 1, tzinfo=UTC)
CUSTOMERS_FROM = datetime(2021, 1, 1, tzinfo=UTC)
CUSTOMERS_UNTIL = datetime(2023, 1, 1, tzinfo=UTC)
INTERACTIONS_FROM = datetime(2023, 1, 1, tzinfo=UTC)
INTERACTIONS_UNTIL = datetime(2026, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Spec:
    """What to generate: ``customers`` customers and ``interactions`` interactions from ``seed``."""

    customers: int
    interactions: int
    seed: int = DEFAULT_SEED

    @classmethod
    def for_size(cls, size: str, seed: int = DEFAULT_SEED) -> Spec:
        """The standard data set of a benchmark size (``tiny``, ``small``, ``full``)."""
        customers, interactions = DATASETS[size]
        return cls(customers, interactions, seed)

    @property
    def key(self) -> str:
        """Names the cached database: sizes, seed, and a fingerprint of the schema and this generator."""
        return f"c{self.customers}_i{self.interactions}_s{self.seed}_{fingerprint()}"


def fingerprint() -> str:
    """A short hash of ``VERSION`` and of the core files that decide the schema and the search keys.

    A cached database whose fingerprint differs is stale and is generated again.
    """
    digest = hashlib.sha1(str(VERSION).encode())
    sources = [
        ROOT / "crmkit/core/tables.py",
        ROOT / "crmkit/core/search.py",
        ROOT / "crmkit/core/text.py",
        *sorted((ROOT / "crmkit/migrations/versions").glob("*.py")),
    ]
    for path in sources:
        digest.update(path.read_bytes())
    return digest.hexdigest()[:10]


# -- what gets generated ---------------------------------------------------------------------------


class _Clock:
    """Timestamps as SQLAlchemy stores them on SQLite (``YYYY-MM-DD HH:MM:SS.ffffff``, UTC), cheaply."""

    def __init__(self) -> None:
        self._days: dict[int, str] = {}

    def text(self, epoch_us: int) -> str:
        seconds, micros = divmod(epoch_us, 1_000_000)
        day, second = divmod(seconds, 86_400)
        prefix = self._days.get(day)
        if prefix is None:
            prefix = self._days[day] = (date(1970, 1, 1) + timedelta(days=day)).isoformat()
        hours, rest = divmod(second, 3600)
        return f"{prefix} {hours:02d}:{rest // 60:02d}:{rest % 60:02d}.{micros:06d}"


def _epoch_us(moment: datetime) -> int:
    return int(moment.timestamp()) * 1_000_000


def add_staff(crm: Any) -> None:
    """Create the organisation through the API — ``TEAMS``, then every employee in their team: what
    ``user_rows`` writes directly. Benchmarks adding ``customer_values`` through the API call it first
    (owners are users)."""
    for name, parent in TEAMS:
        crm.teams.add(name, parent=parent)
    for username, display_name in DISPLAY_NAMES.items():
        crm.users.add(username, display_name, teams=[TEAM_OF[username]])


def user_rows() -> dict[str, list[tuple[Any, ...]]]:
    """The ``teams``, ``users``, ``team_members`` and ``audit_log`` rows of ``add_staff``, ids from 1
    (customers' audit entries follow)."""
    stamp = _Clock().text(_epoch_us(USERS_AT))
    team_ids = {name: n for n, (name, _) in enumerate(TEAMS, start=1)}
    teams = [(team_ids[name], name, team_ids.get(parent or ""), stamp) for name, parent in TEAMS]
    audit = [
        (n, stamp, ACTOR, "create", "team", name, None, json.dumps({"parent": parent}))
        for n, (name, parent) in enumerate(TEAMS, start=1)
    ]
    users, members = [], []
    for user_id, (username, display_name) in enumerate(DISPLAY_NAMES.items(), start=1):
        users.append((user_id, username, display_name, None, None, True, None, None, None, 0, None, None, stamp, stamp))
        members.append((team_ids[TEAM_OF[username]], user_id))
        changes = {"display_name": display_name, "email": None, "phone": None, "locale": None, "timezone": None}
        audit.append((len(audit) + 1, stamp, ACTOR, "create", "user", username, None, json.dumps(changes)))
        audit.append(
            (len(audit) + 1, stamp, ACTOR, "join", "team", TEAM_OF[username], None, json.dumps({"user": username}))
        )
    return {"teams": teams, "users": users, "team_members": members, "audit_log": audit}


def customer_values(spec: Spec) -> Iterator[tuple[int, dict[str, Any]]]:
    """``(id, values)`` for every customer in id order.

    ``values`` is what ``CustomerSchema`` returns for that customer (normalized: E.164
    phones, lower-case e-mails, sorted tags), i.e. what ``crm.customers.add(**values)``
    stores.
    """
    rng = random.Random(f"{spec.seed}-customers")
    family_cum = list(_cumulative(VN_FAMILY_WEIGHTS))
    organizations: list[int] = []
    for cid in range(1, spec.customers + 1):
        kind_roll = rng.random()
        values: dict[str, Any]
        if kind_roll < 0.07:
            values = _organization(rng, cid)
            organizations.append(cid)
        else:
            values = _person(rng, cid, vietnamese=kind_roll >= 0.22, family_cum=family_cum)
            if organizations and rng.random() < 0.1:
                values["organizations"] = [{"organization_id": rng.choice(organizations), "role": rng.choice(ROLES)}]
        if rng.random() < 0.7:
            values["external_id"] = f"CUS-{cid:08d}"
        if rng.random() < 0.7:
            values["owner"] = rng.choice(EMPLOYEES)
        if rng.random() < 0.3:
            values["addresses"] = [
                {
                    "line1": f"{rng.randint(1, 300)} {rng.choice(STREETS)}",
                    "ward": f"Phường {rng.randint(1, 20)}",
                    "district": f"Quận {rng.randint(1, 12)}",
                    "city": rng.choice(VN_CITIES),
                    "country": "VN",
                }
            ]
        if rng.random() < 0.25:
            values["tags"] = sorted(set(rng.sample(TAGS, rng.randint(1, 2))))
        if rng.random() < 0.4:
            values["consents"] = {"email": rng.random() < 0.8, "sms": rng.random() < 0.5}
        yield cid, values


def _cumulative(weights: Sequence[float]) -> Iterator[float]:
    total = 0.0
    for weight in weights:
        total += weight
        yield total


def _phone(rng: random.Random, cid: int, salt: int) -> str:
    """A valid Vietnamese mobile number in E.164, unique per (customer, salt) below 10M customers."""
    return f"+84{rng.choice(MOBILE_PREFIXES)}{(cid * 7_777_777 + salt) % 10_000_000:07d}"


def _person(rng: random.Random, cid: int, *, vietnamese: bool, family_cum: list[float]) -> dict[str, Any]:
    gender = "female" if rng.random() < 0.52 else "male"
    if vietnamese:
        family = rng.choices(VN_FAMILY, cum_weights=family_cum)[0]
        middle, given = rng.choice(VN_MIDDLE[gender]), rng.choice(VN_GIVEN[gender])
        name = f"{family} {middle} {given}"
        f_family, f_middle, f_given = fold(family), fold(middle), fold(given)
        local = rng.choice(
            (f"{f_given}.{f_family}", f"{f_family}{f_middle}{f_given}", f"{f_given}{f_family[0]}{f_middle[0]}")
        )
        country, city = "VN", rng.choice(VN_CITIES)
    else:
        given, family = rng.choice(EN_GIVEN[gender]), rng.choice(EN_FAMILY)
        name = f"{given} {family}"
        local = rng.choice((f"{given}.{family}", f"{given[0]}{family}")).lower()
        country, city = rng.choice(EN_PLACES)
    values: dict[str, Any] = {
        "kind": "person",
        "name": name,
        "given_name": given,
        "family_name": family,
        "lifecycle_stage": rng.choice(PERSON_STAGES),
        "country": country,
        "city": city,
    }
    if rng.random() < 0.8:
        values["gender"] = gender
    if rng.random() < 0.6:
        values["birth_date"] = date(1950, 1, 1) + timedelta(days=rng.randrange(20_000))
    if rng.random() < 0.75:
        values["emails"] = [f"{local}{cid}@{rng.choice(MAIL_DOMAINS)}"]
    if rng.random() < 0.92:
        values["phones"] = [_phone(rng, cid, 1)]
        if rng.random() < 0.08:
            values["phones"].append(_phone(rng, cid, 5_000_004))
    return values


def _organization(rng: random.Random, cid: int) -> dict[str, Any]:
    words = rng.choice(ORG_WORDS)
    slug = fold(words).replace(" ", "")
    values: dict[str, Any] = {
        "kind": "organization",
        "name": rng.choice(ORG_FORMS).format(words),
        "lifecycle_stage": rng.choice(ORG_STAGES),
        "country": "VN",
        "city": rng.choice(VN_CITIES),
    }
    if rng.random() < 0.9:
        values["emails"] = [f"contact{cid}@{slug}.{rng.choice(ORG_DOMAINS)}"]
    if rng.random() < 0.95:
        values["phones"] = [_phone(rng, cid, 3)]
    return values


def interaction_batches(spec: Spec, batch: int = BATCH * 5) -> Iterator[list[tuple[Any, ...]]]:
    """Rows of the interactions table (``INTERACTION_COLUMNS``), oldest first, in batches.

    Customers are skewed as in real life: 70% of contacts spread over everyone, 27% over an
    active 5%, 3% over a handful of big accounts (thousands each).
    """
    rng = random.Random(f"{spec.seed}-interactions")
    n, total = spec.customers, spec.interactions
    if n == 0:
        return
    active = [rng.randint(1, n) for _ in range(max(1, n // 20))]
    whales = [rng.randint(1, n) for _ in range(max(1, n // 10_000))]
    clock = _Clock()
    start = _epoch_us(INTERACTIONS_FROM)
    step = (_epoch_us(INTERACTIONS_UNTIL) - start) // max(total, 1)
    channel_cum = list(_cumulative(CHANNEL_WEIGHTS))
    for first in range(1, total + 1, batch):
        size = min(batch, total + 1 - first)
        rolls = [rng.random() for _ in range(size)]
        customers = [
            rng.randint(1, n) if r < 0.7 else (rng.choice(active) if r < 0.97 else rng.choice(whales)) for r in rolls
        ]
        channels = rng.choices(CHANNELS, cum_weights=channel_cum, k=size)
        directions = rng.choices(("inbound", "outbound"), k=size)
        subjects = rng.choices(SUBJECTS, k=size)
        summaries = rng.choices(SUMMARIES, k=size)
        outcomes = rng.choices(OUTCOMES, k=size)
        ratings = [rng.randint(1, 5) if r < 0.2 else None for r in rng.choices(rolls, k=size)]
        employees = rng.choices(EMPLOYEES, k=size)
        times = [clock.text(start + (first + k) * step + rng.randrange(step or 1)) for k in range(size)]
        yield [
            (
                first + k,
                customers[k],
                channels[k],
                directions[k],
                times[k],
                subjects[k],
                summaries[k],
                outcomes[k],
                ratings[k],
                employees[k],
                None,
                times[k],
            )
            for k in range(size)
        ]


def customer_rows(spec: Spec, batch: int = BATCH) -> Iterator[dict[str, list[tuple[Any, ...]]]]:
    """Rows of every core table ``crm.customers.add`` writes, per table, in batches of customers."""
    clock = _Clock()
    # what ``json.dumps(to_jsonable(values))`` gives for these values (dates are the only non-JSON type), 4x faster
    changes = json.JSONEncoder(default=date.isoformat).encode
    start = _epoch_us(CUSTOMERS_FROM)
    step = (_epoch_us(CUSTOMERS_UNTIL) - start) // max(spec.customers, 1)
    point_id = address_id = 0
    tables: dict[str, list[tuple[Any, ...]]] = {name: [] for name in TABLES if name not in ("users", "interactions")}
    for cid, values in customer_values(spec):
        now = clock.text(start + cid * step)
        name = values["name"]
        birth = values.get("birth_date")
        tables["customers"].append(
            (
                cid,
                values.get("external_id"),
                values["kind"],
                name,
                values.get("given_name"),
                values.get("family_name"),
                fold(name)[:400],
                birth.isoformat() if birth else None,
                values.get("gender"),
                values["lifecycle_stage"],
                values.get("owner"),
                values.get("country"),
                values.get("city"),
                values.get("province"),
                "{}",
                "active",
                None,
                now,
                now,
            )
        )
        for kind in ("email", "phone"):
            for position, value in enumerate(values.get(kind + "s", ())):
                point_id += 1
                tables["customer_contact_points"].append((point_id, cid, kind, value, None, position))
        for position, address in enumerate(values.get("addresses", ())):
            address_id += 1
            tables["customer_addresses"].append((address_id, cid, *(address.get(f) for f in ADDRESS_FIELDS), position))
        tables["customer_tags"].extend((cid, tag) for tag in values.get("tags", ()))
        tables["customer_consents"].extend(
            (cid, channel, int(granted), now, SOURCE) for channel, granted in values.get("consents", {}).items()
        )
        tables["customer_memberships"].extend(
            (cid, m["organization_id"], m["role"]) for m in values.get("organizations", ())
        )
        owner = values.get("owner")
        tables["customer_search_keys"].extend(
            (key, cid, owner) for key in search_keys(name, values.get("emails", ()), values.get("phones", ()))
        )
        tables["audit_log"].append((ORG_AUDIT + cid, now, ACTOR, "create", "customer", str(cid), cid, changes(values)))
        if cid % batch == 0:
            yield tables
            tables = {name: [] for name in tables}
    if tables["customers"]:
        yield tables


# -- writing -----------------------------------------------------------------------------------------


class _Loader(Protocol):
    def write(self, table: str, rows: list[tuple[Any, ...]]) -> None: ...


def fill(loader: _Loader, spec: Spec, *, progress: bool = False) -> None:
    """Write the whole data set through ``loader`` (the users, then customers, then interactions)."""
    for table, rows in user_rows().items():
        loader.write(table, rows)
    done = 0
    for tables in customer_rows(spec):
        for table, rows in tables.items():
            if rows:
                loader.write(table, rows)
        done, before = done + len(tables["customers"]), done
        _milestone(progress, "customers", before, done, spec.customers)
    done = 0
    for rows in interaction_batches(spec):
        loader.write("interactions", rows)
        done, before = done + len(rows), done
        _milestone(progress, "interactions", before, done, spec.interactions)


def _milestone(enabled: bool, what: str, before: int, done: int, total: int) -> None:
    """Say how far generation got, once per tenth of the work."""
    if enabled and before * 10 // total != done * 10 // total:
        _say(enabled, f"{what} {done:,}/{total:,}")


_STARTED = time.perf_counter()


def _say(enabled: bool, text: str) -> None:
    if enabled:
        print(f"  datagen [{time.perf_counter() - _STARTED:6.1f} s]: {text}", file=sys.stderr, flush=True)


class _SQLiteLoader:
    """executemany into a raw sqlite3 connection, committing every ~1M rows."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        self.pending = 0
        self.sql = {
            t: f"INSERT INTO {t} ({', '.join(_quote(c) for c in cols)}) VALUES ({', '.join('?' * len(cols))})"
            for t, cols in TABLES.items()
        }
        conn.execute("BEGIN")

    def write(self, table: str, rows: list[tuple[Any, ...]]) -> None:
        self.conn.executemany(self.sql[table], rows)
        self.pending += len(rows)
        if self.pending >= 1_000_000:
            self.conn.execute("COMMIT")
            self.conn.execute("BEGIN")
            self.pending = 0

    def finish(self) -> None:
        self.conn.execute("COMMIT")


def _quote(column: str) -> str:
    return f'"{column}"' if column == "key" else column


def build_sqlite(path: Path, spec: Spec, *, progress: bool = False) -> None:
    """Create a crmkit database at ``path`` (schema by ``CRM``) and fill it with ``spec``'s data."""
    from crmkit import CRM

    CRM(f"sqlite:///{path}", plugins=[]).close()
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode=OFF")
        conn.execute("PRAGMA synchronous=OFF")
        conn.execute("PRAGMA cache_size=-1000000")
        conn.execute("PRAGMA temp_store=MEMORY")
        indexes = conn.execute(
            f"SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL "
            f"AND tbl_name IN ({', '.join('?' * len(TABLES))})",
            list(TABLES),
        ).fetchall()
        for name, _ in indexes:
            conn.execute(f"DROP INDEX {name}")
        loader = _SQLiteLoader(conn)
        fill(loader, spec, progress=progress)
        loader.finish()
        _say(progress, "building indexes")
        for _, sql in indexes:
            conn.execute(sql)
        conn.execute("PRAGMA analysis_limit=1000")
        conn.execute("ANALYZE")
        conn.execute("PRAGMA journal_mode=WAL")
    finally:
        conn.close()


def build(url: str, spec: Spec, *, progress: bool = False) -> None:
    """Fill the crmkit database at ``url`` (SQLite or PostgreSQL; empty, schema created if missing)."""
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        build_sqlite(Path(parsed.database or ""), spec, progress=progress)
    else:
        build_postgres(url, spec, progress=progress)


def sqlite_database(spec: Spec, directory: str | Path | None = None, *, progress: bool = True) -> Path:
    """The path of a SQLite database holding ``spec``'s data, generated unless cached in ``directory``."""
    folder = Path(directory) if directory else DEFAULT_CACHE
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"crm_{spec.key}.db"
    if path.exists():
        return path
    generation = re.compile(rf"crm_c{spec.customers}_i{spec.interactions}_s{spec.seed}_[0-9a-f]{{10}}\.db(-wal|-shm)?")
    for stale in folder.iterdir():
        if generation.fullmatch(stale.name):
            stale.unlink()  # an older generation of the same data set
    partial = folder / f"{path.name}.{os.getpid()}.partial"
    partial.unlink(missing_ok=True)
    try:
        build_sqlite(partial, spec, progress=progress)
        os.replace(partial, path)
    finally:
        for leftover in (partial, Path(f"{partial}-wal"), Path(f"{partial}-shm")):
            leftover.unlink(missing_ok=True)
    return path


class _PostgresLoader:
    """COPY into PostgreSQL, one COPY per batch and table."""

    def __init__(self, conn: Any) -> None:
        self.conn = conn
        self.sql = {t: f"COPY {t} ({', '.join(_quote(c) for c in cols)}) FROM STDIN" for t, cols in TABLES.items()}

    def write(self, table: str, rows: list[tuple[Any, ...]]) -> None:
        with self.conn.cursor() as cur, cur.copy(self.sql[table]) as copy:
            for row in rows:
                copy.write_row(row)


def build_postgres(url: str, spec: Spec, *, progress: bool = False) -> None:
    """Create the crmkit schema in the (empty) database at ``url`` and fill it with ``spec``'s data."""
    import psycopg

    from crmkit import CRM

    CRM(url, plugins=[]).close()
    with psycopg.connect(libpq_url(url)) as conn:
        conn.execute("SET TIME ZONE 'UTC'")
        conn.execute("SET maintenance_work_mem = '512MB'")
        tables = list(TABLES)
        foreign_keys = conn.execute(
            "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) FROM pg_constraint "
            "WHERE contype = 'f' AND conrelid::regclass::text = ANY(%s)",
            (tables,),
        ).fetchall()
        indexes = conn.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = current_schema() AND tablename = ANY(%s) "
            "AND indexname NOT IN (SELECT conname FROM pg_constraint)",
            (tables,),
        ).fetchall()
        for table, name, _ in foreign_keys:
            conn.execute(f"ALTER TABLE {table} DROP CONSTRAINT {name}")
        for name, _ in indexes:
            conn.execute(f"DROP INDEX {name}")
        fill(_PostgresLoader(conn), spec, progress=progress)
        conn.commit()
        _say(progress, "building indexes and foreign keys")
        for _, sql in indexes:
            conn.execute(sql)
        for table, name, definition in foreign_keys:
            conn.execute(f"ALTER TABLE {table} ADD CONSTRAINT {name} {definition}")
        for table in (
            "teams",
            "users",
            "customers",
            "customer_contact_points",
            "customer_addresses",
            "audit_log",
            "interactions",
        ):
            conn.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), COALESCE(MAX(id), 0) + 1, false) FROM {table}"
            )
        conn.commit()
        conn.autocommit = True
        conn.execute("VACUUM ANALYZE")


def libpq_url(url: str) -> str:
    """A SQLAlchemy-style PostgreSQL URL as libpq understands it (no ``+driver``)."""
    from sqlalchemy.engine import make_url

    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def postgres_database(spec: Spec, server_url: str, *, progress: bool = True) -> str:
    """The URL of a PostgreSQL database holding ``spec``'s data on the server of ``server_url``.

    The database is named after ``spec.key`` and gets that name only once complete (it is
    built under a temporary name), so a later run reuses it; older generations of the same
    size are dropped when nobody uses them.
    """
    import psycopg
    from sqlalchemy.engine import make_url

    name = f"crmkit_bench_{spec.key}"
    family = f"crmkit_bench_c{spec.customers}_i{spec.interactions}_s{spec.seed}_"
    server = make_url(server_url)
    with psycopg.connect(libpq_url(server_url), autocommit=True) as admin:
        found = admin.execute("SELECT datname FROM pg_database WHERE starts_with(datname, %s)", (family,)).fetchall()
        if (name,) in found:
            return server.set(database=name).render_as_string(hide_password=False)
        for (stale,) in found:
            if re.fullmatch(re.escape(family) + "[0-9a-f]{10}", stale):
                try:
                    admin.execute(f'DROP DATABASE "{stale}"')
                except psycopg.errors.ObjectInUse:
                    pass  # another run is using it; a later run drops it
        temporary = f"{name}_t{os.getpid()}"
        admin.execute(f'DROP DATABASE IF EXISTS "{temporary}"')
        admin.execute(f'CREATE DATABASE "{temporary}"')
        try:
            build_postgres(
                server.set(database=temporary).render_as_string(hide_password=False), spec, progress=progress
            )
            admin.execute(f'ALTER DATABASE "{temporary}" RENAME TO "{name}"')
        except psycopg.errors.DuplicateDatabase:  # a concurrent run finished first: use its copy
            admin.execute(f'DROP DATABASE "{temporary}"')
        except BaseException:
            admin.execute(f'DROP DATABASE IF EXISTS "{temporary}" WITH (FORCE)')
            raise
    return server.set(database=name).render_as_string(hide_password=False)


#: How a plugin benchmark's ``fill`` writes rows: ``write(table, columns, rows)``.
Write = Callable[[str, Sequence[str], Sequence[tuple[Any, ...]]], None]


def plugin_sqlite_database(
    path: Path, spec: Spec, plugin: str, tables: Sequence[str], fill: Callable[[Write], None]
) -> Path:
    """A SQLite file with ``spec``'s customers, ``plugin``'s schema and the rows ``fill`` writes into ``tables``
    (their indexes dropped while it writes, then rebuilt): built once under a temporary name, then reused."""
    from crmkit import CRM

    if path.exists():
        return path
    partial = path.with_name(f"{path.name}.{os.getpid()}.partial")
    build_sqlite(partial, Spec(spec.customers, 0, spec.seed))
    CRM(f"sqlite:///{partial}", plugins=[plugin], upgrade=True).close()
    conn = sqlite3.connect(partial, isolation_level=None)
    try:
        for pragma in ("journal_mode=OFF", "synchronous=OFF", "cache_size=-1000000", "temp_store=MEMORY"):
            conn.execute(f"PRAGMA {pragma}")
        marks = ", ".join("?" * len(tables))
        indexes = conn.execute(
            f"SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL AND tbl_name IN ({marks})",
            list(tables),
        ).fetchall()
        for name, _ in indexes:
            conn.execute(f"DROP INDEX {name}")
        conn.execute("BEGIN")
        fill(
            lambda table, columns, rows: conn.executemany(
                f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})", rows
            )
        )
        conn.execute("COMMIT")
        for _, sql in indexes:
            conn.execute(sql)
        conn.execute("ANALYZE")
        conn.execute("PRAGMA journal_mode=WAL")
    finally:
        conn.close()
    os.replace(partial, path)
    return path


def plugin_postgres_database(
    name: str, server_url: str, spec: Spec, plugin: str, tables: Sequence[str], fill: Callable[[Write], None]
) -> str:
    """The URL of database ``name``: ``spec``'s customers, ``plugin``'s schema and the rows ``fill`` writes into
    ``tables`` through ``COPY`` (indexes rebuilt after, id sequences moved past the rows); built once, then reused."""
    import psycopg
    from sqlalchemy.engine import make_url

    from crmkit import CRM

    url = make_url(server_url).set(database=name).render_as_string(hide_password=False)
    with psycopg.connect(libpq_url(server_url), autocommit=True) as admin:
        if admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            return url
        building = f"{name}_t{os.getpid()}"
        admin.execute(f'CREATE DATABASE "{building}"')
        partial = make_url(server_url).set(database=building).render_as_string(hide_password=False)
        try:
            build_postgres(partial, Spec(spec.customers, 0, spec.seed))
            CRM(partial, plugins=[plugin], upgrade=True).close()
            with psycopg.connect(libpq_url(partial)) as conn:
                conn.execute("SET TIME ZONE 'UTC'")
                conn.execute("SET maintenance_work_mem = '512MB'")
                indexes = conn.execute(
                    "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = ANY(%s) "
                    "AND indexname NOT IN (SELECT conname FROM pg_constraint)",
                    (list(tables),),
                ).fetchall()
                for index, _ in indexes:
                    conn.execute(f"DROP INDEX {index}")

                def write(table: str, columns: Sequence[str], rows: Sequence[tuple[Any, ...]]) -> None:
                    with conn.cursor() as cur, cur.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
                        for row in rows:
                            copy.write_row(row)

                fill(write)
                for table in tables:
                    conn.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), MAX(id)) FROM {table}")
                for _, sql in indexes:
                    conn.execute(sql)
                conn.commit()
                conn.autocommit = True
                conn.execute("VACUUM ANALYZE")
            admin.execute(f'ALTER DATABASE "{building}" RENAME TO "{name}"')
        except BaseException:
            admin.execute(f'DROP DATABASE IF EXISTS "{building}" WITH (FORCE)')
            raise
    return url


def warm(url: str) -> str:
    """Read a database once into the operating system's page cache, as a running server would hold it.

    Benchmarks of random lookups call this before timing, so that they measure crmkit and
    the database rather than whichever pages the OS happened to evict; returns what was read.
    """
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    started = time.perf_counter()
    if parsed.get_backend_name() == "sqlite":
        size = 0
        with open(parsed.database or "", "rb", buffering=0) as file:
            while chunk := file.read(16 << 20):
                size += len(chunk)
    else:
        import psycopg

        with psycopg.connect(libpq_url(url), autocommit=True) as conn:
            conn.execute("CREATE EXTENSION IF NOT EXISTS pg_prewarm")
            size = (
                conn.execute(
                    "SELECT sum(pg_prewarm(c.oid::regclass, 'read')) * current_setting('block_size')::bigint FROM pg_class c "
                    "WHERE c.relkind IN ('r', 'i') AND c.relnamespace = current_schema()::regnamespace"
                ).fetchone()[0]
                or 0
            )
    return f"page cache warmed: read {size / 2**30:.2f} GiB in {time.perf_counter() - started:.1f} s"


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: generate (or find cached) a data set in SQLite or PostgreSQL and print where it is."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", choices=tuple(DATASETS), help="a standard data set (default: full)")
    parser.add_argument("--customers", type=int)
    parser.add_argument("--interactions", type=int)
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--out", help="SQLite file to write (not cached)")
    parser.add_argument("--cache", default=str(DEFAULT_CACHE), help="folder of cached SQLite databases")
    parser.add_argument("--postgres", help="PostgreSQL server URL: generate a (cached) database on it instead")
    args = parser.parse_args(argv)
    base = Spec.for_size(args.size or "full", args.seed)
    spec = Spec(
        args.customers if args.customers is not None else base.customers,
        args.interactions if args.interactions is not None else base.interactions,
        args.seed,
    )
    if args.postgres:
        print(postgres_database(spec, args.postgres))
    elif args.out:
        out = Path(args.out)
        if out.exists():
            parser.error(f"{out} exists; choose a new file")
        build_sqlite(out, spec, progress=True)
        print(out)
    else:
        print(sqlite_database(spec, args.cache))
    return 0


if __name__ == "__main__":
    sys.exit(main())
