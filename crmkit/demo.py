"""A demo CRM a newcomer can read: a real organisation, realistic Vietnamese and English customers, an overview.

``build_demo(crm)`` first staffs the demo business, Sao Mai: a company with branches in
Hà Nội and TP.HCM, each with a sales and a customer-care team, plus marketing and
accounting; every employee the demo names is a user with a default role (a manager per
branch, sales people, support, a marketer, a read-only accountant) and no password — try
them with ``crmkit --user lan.nguyen …``. It then makes a few thousand people and
organizations (companies, distributors, retailers; people belonging to them) with phones,
e-mails, addresses, consents and owners (the sales people of the customer's region), plus
interactions on every channel over the last 18 months — deterministic from the seed — and
lets each plugin add its own demo data (``crmkit_demo_populate``). Customers go in through
the bulk importer and interactions through ``crm.interactions.log_many``, so every hook
fires as in real use. ``overview(crm)`` summarizes any CRM with SQL aggregates.
"""

from __future__ import annotations

import csv
import json
import random
import tempfile
import time
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime, timedelta, tzinfo
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs

from crmkit.core.phones import PhoneError, normalize_phone
from crmkit.core.text import fold
from crmkit.errors import Conflict, ValidationError

if TYPE_CHECKING:
    import sqlalchemy as sa

    from crmkit.crm import CRM

#: Customers written per transaction (the progress callback is called after each batch).
BATCH = 250
#: Every demo customer's external id starts with this.
PREFIX = "DEMO"
HISTORY_DAYS = 548  # 18 months
RECENT_DAYS = 90

# -- the world the demo customers live in -------------------------------------------------------------------

#: (province, city, landline area code, weight, {district: wards})
PROVINCES: tuple[tuple[str, str, str, int, dict[str, tuple[str, ...]]], ...] = (
    (
        "TP. Hồ Chí Minh",
        "TP. Hồ Chí Minh",
        "28",
        30,
        {
            "Quận 1": ("Phường Bến Nghé", "Phường Bến Thành", "Phường Đa Kao", "Phường Nguyễn Thái Bình"),
            "Quận 3": ("Phường Võ Thị Sáu", "Phường 9", "Phường 14"),
            "Quận 7": ("Phường Tân Phong", "Phường Tân Phú", "Phường Tân Hưng"),
            "Quận Bình Thạnh": ("Phường 22", "Phường 25", "Phường 15"),
            "Quận Phú Nhuận": ("Phường 2", "Phường 7", "Phường 10"),
            "Quận Tân Bình": ("Phường 2", "Phường 4", "Phường 12"),
            "Thành phố Thủ Đức": ("Phường Thảo Điền", "Phường An Phú", "Phường Linh Trung"),
        },
    ),
    (
        "Hà Nội",
        "Hà Nội",
        "24",
        24,
        {
            "Quận Ba Đình": ("Phường Điện Biên", "Phường Kim Mã", "Phường Ngọc Hà"),
            "Quận Hoàn Kiếm": ("Phường Hàng Bạc", "Phường Tràng Tiền", "Phường Hàng Trống"),
            "Quận Đống Đa": ("Phường Láng Hạ", "Phường Ô Chợ Dừa", "Phường Văn Miếu"),
            "Quận Cầu Giấy": ("Phường Dịch Vọng", "Phường Yên Hòa", "Phường Nghĩa Đô"),
            "Quận Tây Hồ": ("Phường Quảng An", "Phường Xuân La", "Phường Nhật Tân"),
            "Quận Hai Bà Trưng": ("Phường Bạch Đằng", "Phường Lê Đại Hành", "Phường Bách Khoa"),
        },
    ),
    (
        "Đà Nẵng",
        "Đà Nẵng",
        "236",
        8,
        {
            "Quận Hải Châu": ("Phường Thạch Thang", "Phường Hòa Cường Bắc", "Phường Phước Ninh"),
            "Quận Sơn Trà": ("Phường An Hải Bắc", "Phường Mân Thái"),
            "Quận Ngũ Hành Sơn": ("Phường Mỹ An", "Phường Khuê Mỹ"),
        },
    ),
    (
        "Hải Phòng",
        "Hải Phòng",
        "225",
        6,
        {
            "Quận Lê Chân": ("Phường An Biên", "Phường Dư Hàng Kênh"),
            "Quận Ngô Quyền": ("Phường Máy Tơ", "Phường Lạch Tray"),
        },
    ),
    (
        "Cần Thơ",
        "Cần Thơ",
        "292",
        5,
        {
            "Quận Ninh Kiều": ("Phường Tân An", "Phường An Hòa", "Phường Xuân Khánh"),
            "Quận Cái Răng": ("Phường Lê Bình", "Phường Hưng Phú"),
        },
    ),
    (
        "Bình Dương",
        "Thủ Dầu Một",
        "274",
        5,
        {
            "Thành phố Thủ Dầu Một": ("Phường Phú Cường", "Phường Hiệp Thành"),
            "Thành phố Dĩ An": ("Phường Dĩ An", "Phường Đông Hòa"),
        },
    ),
    (
        "Đồng Nai",
        "Biên Hòa",
        "251",
        4,
        {"Thành phố Biên Hòa": ("Phường Tân Hiệp", "Phường Trảng Dài", "Phường Quyết Thắng")},
    ),
    (
        "Khánh Hòa",
        "Nha Trang",
        "258",
        4,
        {"Thành phố Nha Trang": ("Phường Lộc Thọ", "Phường Vĩnh Hải", "Phường Tân Lập")},
    ),
    (
        "Thừa Thiên Huế",
        "Huế",
        "234",
        3,
        {"Thành phố Huế": ("Phường Phú Hội", "Phường Vĩnh Ninh", "Phường Thuận Thành")},
    ),
    ("Quảng Ninh", "Hạ Long", "203", 3, {"Thành phố Hạ Long": ("Phường Bãi Cháy", "Phường Hồng Gai")}),
    ("Lâm Đồng", "Đà Lạt", "263", 3, {"Thành phố Đà Lạt": ("Phường 1", "Phường 10")}),
    ("Nghệ An", "Vinh", "238", 3, {"Thành phố Vinh": ("Phường Hưng Bình", "Phường Lê Lợi")}),
    ("Bắc Ninh", "Bắc Ninh", "222", 2, {"Thành phố Bắc Ninh": ("Phường Suối Hoa", "Phường Vũ Ninh")}),
)
STREETS = (
    "Lê Lợi",
    "Nguyễn Huệ",
    "Trần Hưng Đạo",
    "Hai Bà Trưng",
    "Lý Thường Kiệt",
    "Điện Biên Phủ",
    "Nguyễn Trãi",
    "Lê Duẩn",
    "Hùng Vương",
    "Quang Trung",
    "Phan Chu Trinh",
    "Võ Văn Tần",
    "Nguyễn Thị Minh Khai",
    "Trần Phú",
    "Lê Thánh Tôn",
    "Bạch Đằng",
    "Pasteur",
    "Nguyễn Văn Cừ",
    "Hoàng Diệu",
    "Phạm Ngũ Lão",
    "Nguyễn Đình Chiểu",
)
#: Abroad: (country, city, phone generator prefix and digits, street names)
ABROAD = (
    ("SG", "Singapore", ("+65 8", "+65 9"), 7, ("Orchard Road", "Tanjong Pagar Road", "Serangoon Road")),
    ("AU", "Sydney", ("+61 4",), 8, ("George Street", "Pitt Street", "Oxford Street")),
    ("GB", "London", ("+44 74", "+44 75", "+44 77", "+44 78"), 8, ("Baker Street", "Camden Road", "King's Road")),
    (
        "US",
        "San Francisco",
        ("+1 415 2", "+1 415 3", "+1 415 5"),
        6,
        ("Market Street", "Valencia Street", "Mission Street"),
    ),
)
VN_MOBILE = (
    "32",
    "33",
    "34",
    "35",
    "36",
    "37",
    "38",
    "39",
    "56",
    "58",
    "59",
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
    "90",
    "91",
    "93",
    "94",
    "96",
    "97",
    "98",
)

FAMILY = (
    ("Nguyễn", 38),
    ("Trần", 11),
    ("Lê", 9),
    ("Phạm", 7),
    ("Hoàng", 5),
    ("Huỳnh", 4),
    ("Phan", 4),
    ("Vũ", 4),
    ("Võ", 3),
    ("Đặng", 3),
    ("Bùi", 3),
    ("Đỗ", 3),
    ("Hồ", 2),
    ("Ngô", 2),
    ("Dương", 2),
    ("Lý", 1),
)
MIDDLE = {
    "male": ("Văn", "Văn", "Hữu", "Đức", "Minh", "Quang", "Thành", "Xuân", "Hoàng"),
    "female": ("Thị", "Thị", "Ngọc", "Thu", "Thanh", "Kim", "Minh", "Phương", "Bảo"),
}
GIVEN = {
    "male": (
        "An",
        "Bình",
        "Cường",
        "Dũng",
        "Hùng",
        "Khang",
        "Long",
        "Minh",
        "Nam",
        "Phúc",
        "Quân",
        "Sơn",
        "Thắng",
        "Tuấn",
        "Việt",
        "Đạt",
        "Hiếu",
        "Huy",
        "Khoa",
        "Trung",
        "Tài",
        "Lộc",
        "Đông",
        "Hải",
    ),
    "female": (
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
        "Phương",
        "Thảo",
        "Trang",
        "Vân",
        "Yến",
        "Thư",
        "Hằng",
        "Loan",
        "Ánh",
        "Tuyết",
    ),
}
EN_GIVEN = {
    "male": ("James", "Oliver", "William", "Noah", "Liam", "Thomas", "Daniel", "Michael", "David", "Lucas"),
    "female": ("Emma", "Olivia", "Sophia", "Charlotte", "Amelia", "Grace", "Emily", "Chloe", "Hannah", "Lucy"),
}
EN_FAMILY = (
    "Smith",
    "Johnson",
    "Brown",
    "Taylor",
    "Wilson",
    "Davies",
    "Evans",
    "Walker",
    "Wright",
    "Thompson",
    "Clarke",
    "Hughes",
    "Martin",
    "Nguyen",
    "Tran",
    "Lee",
    "Anderson",
    "Campbell",
)
EMAIL_DOMAINS = ("example.com", "example.net", "example.org")

VN_BRANDS = (
    "Minh Phát",
    "Hoàng Long",
    "Đại Việt",
    "Phú Thịnh",
    "An Khang",
    "Thành Công",
    "Sao Mai",
    "Hưng Thịnh",
    "Tân Phát",
    "Kim Ngân",
    "Bình Minh",
    "Hải Đăng",
    "Phương Nam",
    "Trường Sơn",
    "Nam Á",
    "Việt Tiến",
    "Hòa Bình",
    "Ánh Dương",
    "Thiên Long",
    "Đông Á",
    "Phúc Lộc",
    "Trung Nguyên",
    "Hồng Hà",
    "Bảo Châu",
)
EN_BRANDS = (
    "Mekong",
    "Saigon",
    "Lotus",
    "Pacific",
    "Golden Bridge",
    "Red River",
    "Lighthouse",
    "Silk Road",
    "Bamboo",
    "Highland",
    "Jade",
    "Coral Bay",
)
#: (lifecycle stage, weight, Vietnamese name patterns, English name patterns)
ORG_KINDS = (
    ("distributor", 25, ("Nhà phân phối {}", "Công ty Cổ phần Phân phối {}"), ("{} Distribution JSC",)),
    (
        "retailer",
        35,
        ("Cửa hàng Tạp hóa {}", "Siêu thị mini {}", "Cửa hàng Điện máy {}", "Nhà thuốc {}"),
        ("{} Retail", "{} Mart"),
    ),
    (
        "customer",
        25,
        ("Công ty TNHH Thương mại {}", "Công ty TNHH Dịch vụ {}", "Công ty Cổ phần Sản xuất {}"),
        ("{} Trading Co., Ltd", "{} Coffee Roasters"),
    ),
    ("partner", 5, ("Công ty TNHH Vận tải {}",), ("{} Logistics",)),
    ("prospect", 10, ("Công ty TNHH Xây dựng {}", "Khách sạn {}"), ("{} Hospitality Group",)),
)
ROLES = {
    "vi": ("Giám đốc", "Kế toán trưởng", "Trưởng phòng mua hàng", "Nhân viên kinh doanh", "Chủ cửa hàng"),
    "en": ("Director", "Chief Accountant", "Purchasing Manager", "Sales Executive", "Store Owner"),
}

PERSON_STAGES = (("lead", 22), ("prospect", 18), ("customer", 48), ("churned", 12))
TAGS = (
    ("vip", 6),
    ("newsletter", 25),
    ("khách quen", 12),
    ("online", 18),
    ("tết-2025", 10),
    ("hội chợ", 6),
    ("referral", 7),
    ("zalo", 15),
)
CONSENT_SOURCES = ("web form", "hợp đồng", "hội chợ Vietnam Expo", "cửa hàng", "hotline", "ứng dụng di động")

# -- the demo business: Sao Mai and its people ---------------------------------------------------------------

COMPANY = "Sao Mai"
#: (team, parent): company → branches → teams.
TEAMS = (
    (COMPANY, None),
    ("Hà Nội", COMPANY),
    ("TP.HCM", COMPANY),
    ("Kinh doanh Hà Nội", "Hà Nội"),
    ("CSKH Hà Nội", "Hà Nội"),
    ("Kinh doanh TP.HCM", "TP.HCM"),
    ("CSKH TP.HCM", "TP.HCM"),
    ("Marketing", COMPANY),
    ("Kế toán", COMPANY),
)
#: (username, display name, team, default role): every employee the demo (and the bundled plugins' demos) names.
STAFF = (
    ("minh.tran", "Trần Quang Minh", "Hà Nội", "manager"),
    ("lan.nguyen", "Nguyễn Thị Lan", "Kinh doanh Hà Nội", "sales"),
    ("huong.le", "Lê Thu Hương", "Kinh doanh Hà Nội", "sales"),
    ("duc.hoang", "Hoàng Minh Đức", "Kinh doanh Hà Nội", "sales"),
    ("hoa.le", "Lê Thị Hoa", "Kinh doanh Hà Nội", "sales"),
    ("ngoc.do", "Đỗ Bảo Ngọc", "CSKH Hà Nội", "support"),
    ("tuan.bui", "Bùi Anh Tuấn", "CSKH Hà Nội", "support"),
    ("quang.pham", "Phạm Nhật Quang", "TP.HCM", "manager"),
    ("thao.vo", "Võ Phương Thảo", "Kinh doanh TP.HCM", "sales"),
    ("trang.dang", "Đặng Thu Trang", "Kinh doanh TP.HCM", "sales"),
    ("tuan.pham", "Phạm Anh Tuấn", "Kinh doanh TP.HCM", "sales"),
    ("sarah.jones", "Sarah Jones", "Kinh doanh TP.HCM", "sales"),
    ("mai.phan", "Phan Thị Mai", "CSKH TP.HCM", "support"),
    ("kevin.brown", "Kevin Brown", "CSKH TP.HCM", "support"),
    ("yen.vu", "Vũ Hải Yến", "Marketing", "marketing"),
    ("hanh.ngo", "Ngô Thị Hạnh", "Kế toán", "read-only"),
)
#: Provinces the Hà Nội branch serves; the TP.HCM branch serves the rest (and customers abroad).
NORTH = frozenset({"Hà Nội", "Hải Phòng", "Quảng Ninh", "Bắc Ninh", "Nghệ An"})
#: The sales people of each branch: they own the customers of its region.
SALES = {
    branch: tuple(user for user, _, team, role in STAFF if role == "sales" and team == f"Kinh doanh {branch}")
    for branch in ("Hà Nội", "TP.HCM")
}
OWNERS = (*SALES["Hà Nội"], *SALES["TP.HCM"])
SUPPORT = tuple(user for user, _, _, role in STAFF if role == "support")

#: channel: (weight, share inbound, chance of a satisfaction rating, mean rating shift)
CHANNEL_MIX = {
    "phone": (26, 0.6, 0.45, -0.2),
    "email": (24, 0.5, 0.35, 0.0),
    "chat": (15, 0.9, 0.6, 0.3),
    "sms": (9, 0.2, 0.1, 0.0),
    "social": (10, 0.8, 0.3, -0.3),
    "web": (7, 1.0, 0.4, 0.1),
    "in_person": (7, 0.7, 0.5, 0.5),
    "post": (1, 0.2, 0.0, 0.0),
    "fax": (1, 0.5, 0.0, 0.0),
}
TOPICS = {
    "vi": (
        ("Hỏi giá sản phẩm", "Khách hỏi giá và thời gian giao hàng.", "quote sent"),
        ("Tư vấn gói dịch vụ", "Tư vấn gói dịch vụ phù hợp nhu cầu.", "follow-up"),
        ("Xác nhận đơn hàng", "Xác nhận đơn hàng và địa chỉ giao.", "order placed"),
        ("Khiếu nại giao hàng chậm", "Đơn giao trễ 3 ngày, đã xin lỗi và theo dõi.", "escalated"),
        ("Yêu cầu xuất hóa đơn VAT", "Gửi hóa đơn VAT qua email.", "resolved"),
        ("Đổi trả hàng", "Hướng dẫn thủ tục đổi trả trong 7 ngày.", "resolved"),
        ("Hỏi về chương trình khuyến mãi", "Giới thiệu khuyến mãi tháng này.", "resolved"),
        ("Gia hạn hợp đồng", "Trao đổi điều khoản gia hạn hợp đồng năm.", "follow-up"),
        ("Báo giá số lượng lớn", "Gửi báo giá chiết khấu cho đơn sỉ.", "quote sent"),
        ("Chúc mừng sinh nhật", "Gửi lời chúc và mã giảm giá sinh nhật.", "closed"),
        ("Nhắc lịch hẹn", "Nhắc lịch hẹn tư vấn tại cửa hàng.", "no answer"),
    ),
    "en": (
        ("Price enquiry", "Asked for prices and delivery times.", "quote sent"),
        ("Service plan advice", "Walked through the plans that fit.", "follow-up"),
        ("Order confirmation", "Confirmed the order and delivery address.", "order placed"),
        ("Late delivery complaint", "Order arrived 3 days late; apologised, tracking it.", "escalated"),
        ("VAT invoice request", "Sent the VAT invoice by e-mail.", "resolved"),
        ("Return request", "Explained the 7-day return process.", "resolved"),
        ("Promotion question", "Explained this month's promotion.", "resolved"),
        ("Contract renewal", "Discussed the yearly renewal terms.", "follow-up"),
        ("Bulk quote", "Sent a wholesale discount quote.", "quote sent"),
    ),
}


@attrs.frozen
class DemoStats:
    """What ``build_demo`` made."""

    customers: int
    people: int
    organizations: int
    memberships: int
    interactions: int
    seconds: float
    customer_ids: tuple[int, ...] = attrs.field(repr=False)


def build_demo(
    crm: CRM,
    *,
    customers: int = 3000,
    seed: int = 42,
    now: datetime | None = None,
    progress: Callable[[int], None] | None = None,
) -> DemoStats:
    """Fill an empty CRM with ``customers`` demo customers and their interactions, deterministic from ``seed``.

    Customers go in through the bulk importer (``import_customers``: validated, hooks
    fired); memberships and interactions through ``crm.customers.update`` and
    ``crm.interactions.log_many``, a batch per transaction. Times are spread over the 18 months
    before ``now`` (default: today 00:00 UTC, so two runs on one day are identical).
    ``progress(n)`` reports ``n`` more steps of ``2 * customers`` (imported, then given a
    history). Plugins then add theirs through ``crmkit_demo_populate``.
    """
    if customers < 1:
        raise ValidationError("the demo needs at least one customer", field="customers")
    if crm.customers.find(limit=1).items:
        raise Conflict(
            "the database already holds customers: run the demo on an empty database "
            "(`crmkit demo --reset` recreates a SQLite file)"
        )
    started = time.perf_counter()
    add_staff(crm)
    world = _World(
        random.Random(seed), now or crm.now().replace(hour=0, minute=0, second=0, microsecond=0), crm.timezone
    )
    records = world.customers(customers)
    ids = _import(crm, records, progress)
    memberships = interactions = 0
    for start in range(0, len(records), BATCH):
        batch = records[start : start + BATCH]
        with crm.transaction():
            for record in batch:
                if record.organization is not None:
                    crm.customers.update(
                        ids[record.row["external_id"]],
                        organizations=[{"organization_id": ids[record.organization], "role": record.role}],
                    )
                    memberships += 1
            interactions += len(
                crm.interactions.log_many(
                    [
                        {**contact, "customer_id": ids[record.row["external_id"]]}
                        for record in batch
                        for contact in record.interactions
                    ]
                )
            )
        if progress is not None:
            progress(len(batch))
    customer_ids = [ids[r.row["external_id"]] for r in records]
    crm.hooks.demo_populate(customer_ids, seed)
    organizations = sum(r.row["kind"] == "organization" for r in records)
    return DemoStats(
        len(records),
        len(records) - organizations,
        organizations,
        memberships,
        interactions,
        time.perf_counter() - started,
        tuple(customer_ids),
    )


def add_staff(crm: CRM) -> None:
    """Create Sao Mai's teams and users (``TEAMS``, ``STAFF``) that do not exist yet, in one transaction.

    Users get no password: the demo is tried with ``crmkit --user NAME`` (or ``crm.as_user``),
    and an administrator sets passwords (``crm.users.set_password``) before anyone signs in.
    """
    crm.roles.apply_defaults()
    with crm.transaction():
        teams = {team.name for team in crm.teams.list()}
        for team, parent in TEAMS:
            if team not in teams:
                crm.teams.add(team, parent=parent)
        users = {user.username for user in crm.users.list()}
        for username, display_name, team, role in STAFF:
            if username not in users:
                crm.users.add(
                    username,
                    display_name,
                    teams=[team],
                    roles=[role],
                    locale="vi",
                    email=f"{username}@saomai.example.com",
                )


def _import(crm: CRM, records: Sequence[_Record], progress: Callable[[int], None] | None) -> dict[str, int]:
    """Write the customers with the bulk importer; returns their ids by external id."""
    import sqlalchemy as sa

    from crmkit.core import tables as t
    from crmkit.core.transfer import import_customers

    with tempfile.TemporaryDirectory(prefix="crmkit-demo-") as folder:
        source = Path(folder) / "crmkit-demo.jsonl"
        with source.open("w", encoding="utf-8") as out:
            for record in records:
                out.write(json.dumps(record.row, ensure_ascii=False) + "\n")
        summary = import_customers(
            crm,
            source,
            reject_path=Path(folder) / "rejects.csv",
            batch_size=BATCH,
            default_country="VN",
            progress=progress,
        )
        if summary.rejected:  # a bug in the generator, not bad luck: say which row and why
            with open(Path(folder) / "rejects.csv", encoding="utf-8-sig") as rejects:
                first = next(csv.DictReader(rejects))
            raise Conflict(
                f"demo data rejected ({summary.rejected} rows), e.g. row {first['reject_row']}: "
                f"{first['reject_reason']}"
            )
    external_ids = [r.row["external_id"] for r in records]
    c = t.customers.c
    with crm.reading() as conn:
        found = dict(conn.execute(sa.select(c.external_id, c.id).where(c.external_id.like(f"{PREFIX}-%"))).all())
    return {external_id: found[external_id] for external_id in external_ids}


@attrs.frozen
class _Record:
    row: dict[str, Any]  # the import columns
    interactions: list[dict[str, Any]]
    organization: str | None = None  # external id of the organization (made earlier) this person belongs to
    role: str | None = None


class _World:
    """Draws demo customers from one seeded random generator (same seed, same customers)."""

    def __init__(self, rng: random.Random, now: datetime, zone: tzinfo) -> None:
        self.rng = rng
        self.now = now
        self.zone = zone  # the business's (crm.timezone): demo interactions happen in its business hours
        self.used_emails: set[str] = set()
        self.used_names: set[str] = set()
        self.made = 0

    def pick(self, weighted: Sequence[tuple[Any, int]]) -> Any:
        return self.rng.choices([item for item, _ in weighted], weights=[w for _, w in weighted])[0]

    def external_id(self, kind: str) -> str:
        self.made += 1
        return f"{PREFIX}-{kind}-{self.made:06d}"

    def customers(self, count: int) -> list[_Record]:
        """Organizations first (about one in nine), then people, a few of them entered twice."""
        organizations = [self.organization() for _ in range(count // 9)]
        records = list(organizations)
        while len(records) < count:
            record = self.person(organizations)
            records.append(record)
            if len(records) < count and self.rng.random() < 0.01:
                records.append(self.duplicate_of(record))
        return records

    # -- places and contact points ---------------------------------------------------------------

    def place(self) -> tuple[dict[str, Any], str]:
        """Columns of a Vietnamese address (street, ward, district, city, province) and its landline area code."""
        province, city, area, _, districts = self.rng.choices(PROVINCES, weights=[p[3] for p in PROVINCES])[0]
        district = self.rng.choice(sorted(districts))
        columns = {
            "address_line1": f"{self.rng.randint(1, 320)} {self.rng.choice(STREETS)}",
            "ward": self.rng.choice(districts[district]),
            "district": district,
            "city": city,
            "province": province,
            "country": "VN",
        }
        return columns, area

    def phone(self, prefixes: Sequence[str], digits: int, country: str = "VN") -> str:
        """A number libphonenumber accepts (drawn again until it does)."""
        while True:
            number = self.rng.choice(prefixes) + "".join(str(self.rng.randrange(10)) for _ in range(digits))
            try:
                normalize_phone(number, country)
            except PhoneError:
                continue
            return number

    def owner(self, province: str | None) -> str:
        """A sales person of the branch serving ``province``."""
        return self.rng.choice(SALES["Hà Nội" if province in NORTH else "TP.HCM"])

    def mobile(self) -> str:
        number = self.phone(["0" + p for p in VN_MOBILE], 7)
        return f"{number[:4]} {number[4:7]} {number[7:]}" if self.rng.random() < 0.6 else number

    def email(self, local: str, domain: str) -> str:
        candidate, n = f"{local}@{domain}", 1
        while candidate in self.used_emails:
            n += 1
            candidate = f"{local}{n}@{domain}"
        self.used_emails.add(candidate)
        return candidate

    def when(self) -> datetime:
        """A business-hours moment (the business's time zone) in the last 18 months, recent days more likely."""
        days = int(HISTORY_DAYS * self.rng.random() ** 1.3)
        local = (self.now.astimezone(self.zone) - timedelta(days=days + 1)).replace(
            hour=self.rng.randint(8, 19), minute=self.rng.randrange(60), second=0, microsecond=0
        )
        return local.astimezone(UTC)

    # -- organizations and people -------------------------------------------------------------------

    def organization(self) -> _Record:
        stage, _, vi_patterns, en_patterns = self.rng.choices(ORG_KINDS, weights=[k[1] for k in ORG_KINDS])[0]
        lang = "en" if self.rng.random() < 0.2 else "vi"
        address, area = self.place()
        patterns, brands = (en_patterns, EN_BRANDS) if lang == "en" else (vi_patterns, VN_BRANDS)
        name = self.rng.choice(patterns).format(self.rng.choice(brands))
        if name in self.used_names:
            name = f"{name} {address['city']}"
        if name in self.used_names:
            name = f"{name} {len(self.used_names)}"
        self.used_names.add(name)
        slug = "".join(ch for ch in fold(name).replace("cong ty", "") if ch.isalnum())[:24]
        row = {
            "external_id": self.external_id("ORG"),
            "kind": "organization",
            "name": name,
            "lifecycle_stage": stage,
            "owner": self.owner(address.get("province")),
            **address,
            "email": self.email("lienhe" if lang == "vi" else "info", f"{slug}.example.com"),
            "phone": self.phone([f"0{area}"], 10 - len(area)),
            "tags": sorted({"b2b", *(["khách sỉ"] if stage == "distributor" else [])}),
            "consent_email": True,
            "consent_phone": True,
            "attr_language": lang,
        }
        return _Record(row, self.history(stage, organization=True, lang=lang))

    def person(self, organizations: Sequence[_Record]) -> _Record:
        rng = self.rng
        gender = "female" if rng.random() < 0.52 else "male"
        abroad = None
        if rng.random() < 0.18:  # English-speaking: expats in Vietnam, and some customers abroad
            lang = "en"
            given, family = rng.choice(EN_GIVEN[gender]), rng.choice(EN_FAMILY)
            name = f"{given} {family}"
            local = f"{fold(given)}.{fold(family)}"
            abroad = rng.choice(ABROAD) if rng.random() < 0.35 else None
        else:
            lang = "vi"
            family, given = self.pick(FAMILY), rng.choice(GIVEN[gender])
            name = f"{family} {rng.choice(MIDDLE[gender])} {given}"
            words = fold(name).split()
            local = rng.choice(
                (f"{words[-1]}.{words[0]}", "".join(words), words[-1] + "".join(w[0] for w in words[:-1]))
            )
        local += str(rng.randint(70, 99)) if rng.random() < 0.5 else ""
        stage = self.pick(PERSON_STAGES)
        row: dict[str, Any] = {
            "external_id": self.external_id("P"),
            "kind": "person",
            "name": name,
            "given_name": given,
            "family_name": family,
            "gender": gender,
            "lifecycle_stage": stage,
            "attr_language": lang,
        }
        if rng.random() < 0.85:
            row["birth_date"] = (date(1960, 1, 1) + timedelta(days=rng.randrange(45 * 365))).isoformat()
        if rng.random() < 0.9:
            row["email"] = self.email(local, rng.choice(EMAIL_DOMAINS))
        if abroad is not None:
            country, city, prefixes, digits, streets = abroad
            row.update(
                country=country,
                city=city,
                phone=self.phone(prefixes, digits, country),
                address_line1=f"{rng.randint(1, 200)} {rng.choice(streets)}",
            )
        else:
            address, _ = self.place()
            if rng.random() >= 0.75:
                address = {k: v for k, v in address.items() if k not in ("address_line1", "ward", "district")}
            row.update(address, phone=self.mobile())
        if rng.random() < 0.85:
            row["owner"] = self.owner(row.get("province"))
        row["tags"] = sorted({self.pick(TAGS) for _ in range(rng.choice((0, 1, 1, 2, 3)))})
        for channel in ("email", "sms", "phone"):
            if rng.random() < 0.6:
                row[f"consent_{channel}"] = rng.random() > 0.12
        organization = role = None
        if organizations and rng.random() < 0.1:
            employer = rng.choice(organizations)
            organization = employer.row["external_id"]
            role = rng.choice(ROLES[employer.row["attr_language"]])
        return _Record(row, self.history(stage, organization=False, lang=lang), organization, role)

    def duplicate_of(self, original: _Record) -> _Record:
        """The same person entered again (name typed without accents, same phone): for duplicate detection."""
        row = {k: v for k, v in original.row.items() if not k.startswith(("email", "address", "ward", "district"))}
        row.update(external_id=self.external_id("DUP"), name=fold(row["name"]).title(), lifecycle_stage="lead")
        return _Record(row, self.history("lead", organization=False, lang=row["attr_language"])[:1])

    # -- interactions --------------------------------------------------------------------------------

    def history(self, stage: str, *, organization: bool, lang: str) -> list[dict[str, Any]]:
        """The contacts with one customer: channel, direction, time, subject, outcome, maybe a rating."""
        rng = self.rng
        low, high = (
            (3, 12)
            if organization
            else {"lead": (0, 2), "prospect": (1, 4), "customer": (2, 8), "churned": (1, 5)}.get(stage, (1, 4))
        )
        contacts = []
        for _ in range(rng.randint(low, high)):
            channel = rng.choices(list(CHANNEL_MIX), weights=[m[0] for m in CHANNEL_MIX.values()])[0]
            _, inbound, rated, shift = CHANNEL_MIX[channel]
            subject, summary, outcome = rng.choice(TOPICS[lang])
            employee = rng.choice(OWNERS + SUPPORT)
            contact: dict[str, Any] = {
                "channel": channel,
                "direction": "inbound" if rng.random() < inbound else "outbound",
                "occurred_at": self.when(),
                "subject": subject,
                "summary": summary,
                "outcome": outcome,
                "employee": employee,
            }
            if contact["direction"] == "inbound" and rng.random() < rated:
                quality = shift + (0.4 if employee in SUPPORT else 0.0) - (0.8 if outcome == "escalated" else 0.0)
                contact["rating"] = max(1, min(5, round(rng.gauss(3.9 + quality, 0.9))))
            contacts.append(contact)
        return contacts


# -- the overview --------------------------------------------------------------------------------------------


def overview(crm: CRM, *, now: datetime | None = None) -> dict[str, list[str]]:
    """``{section title: lines}`` a person wants to read about this CRM, computed with SQL aggregates.

    Totals, the team (users, their team and role, the customers they own), customers by
    province and lifecycle stage, recent interactions per channel, satisfaction per channel,
    the busiest employees, a sample customer 360, an accent-insensitive search, possible
    duplicates — then every plugin's section.
    """
    import sqlalchemy as sa

    from crmkit.core import tables as t

    c, i = t.customers.c, t.interactions.c
    now = now or crm.now()
    recent = now - timedelta(days=RECENT_DAYS)
    active = c.status == "active"
    sections: dict[str, list[str]] = {}
    with crm.reading() as conn:
        kinds = dict(conn.execute(sa.select(c.kind, sa.func.count()).where(active).group_by(c.kind)).all())
        members = conn.execute(sa.select(sa.func.count()).select_from(t.memberships)).scalar_one()
        total_interactions = conn.execute(sa.select(sa.func.count()).select_from(t.interactions)).scalar_one()
        first, last = conn.execute(sa.select(sa.func.min(i.occurred_at), sa.func.max(i.occurred_at))).one()
        sections["Customers"] = _aligned(
            [
                ("people", _n(kinds.get("person", 0))),
                ("organizations", _n(kinds.get("organization", 0))),
                ("people in organizations", _n(members)),
                ("interactions", _n(total_interactions) + (f"  ({_day(first)} → {_day(last)})" if first else "")),
            ]
        )
        owned = dict(
            conn.execute(
                sa.select(c.owner, sa.func.count()).where(active, c.owner.is_not(None)).group_by(c.owner)
            ).all()
        )
        people = _team_lines(crm, owned)
        if people:
            sections["Team"] = people
        place = sa.func.coalesce(c.province, c.city)
        by_province = conn.execute(
            sa.select(place, sa.func.count())
            .where(active)
            .group_by(place)
            .order_by(sa.func.count().desc(), place)
            .limit(10)
        ).all()
        sections["Customers by province (top 10)"] = _bars([(name or "—", n) for name, n in by_province])
        stages = dict(
            conn.execute(sa.select(c.lifecycle_stage, sa.func.count()).where(active).group_by(c.lifecycle_stage)).all()
        )
        from crmkit.core.models import LIFECYCLE_STAGES

        sections["Lifecycle stages"] = _bars([(s, stages[s]) for s in LIFECYCLE_STAGES if stages.get(s)])
        channels = conn.execute(
            sa.select(i.channel, sa.func.count())
            .where(i.occurred_at >= recent)
            .group_by(i.channel)
            .order_by(sa.func.count().desc(), i.channel)
        ).all()
        sections[f"Interactions by channel, last {RECENT_DAYS} days"] = _bars(channels)
        ratings = conn.execute(
            sa.select(i.channel, sa.func.avg(i.rating), sa.func.count(i.rating))
            .where(i.rating.is_not(None))
            .group_by(i.channel)
            .order_by(sa.func.avg(i.rating).desc(), i.channel)
        ).all()
        sections["Average satisfaction per channel (1–5)"] = _aligned(
            [
                (channel, f"{float(avg):.2f} {_stars(float(avg))}  ({_n(n)} rating{'s' if n != 1 else ''})")
                for channel, avg, n in ratings
            ]
        )
        busiest = conn.execute(
            sa.select(i.employee, sa.func.count(), sa.func.avg(i.rating))
            .where(i.occurred_at >= recent, i.employee.is_not(None))
            .group_by(i.employee)
            .order_by(sa.func.count().desc(), i.employee)
            .limit(5)
        ).all()
        names = dict(
            conn.execute(
                sa.select(t.users.c.username, t.users.c.display_name).where(
                    t.users.c.username.in_([row[0] for row in busiest])
                )
            ).all()
        )
        sections[f"Busiest employees, last {RECENT_DAYS} days"] = _aligned(
            [
                (
                    f"{names[employee]} ({employee})" if employee in names else employee,
                    f"{_n(n)} interactions" + (f", satisfaction {float(avg):.2f}" if avg is not None else ""),
                )
                for employee, n, avg in busiest
            ]
        )
        sample_id = conn.execute(
            sa.select(i.customer_id)
            .join(t.customers, c.id == i.customer_id)
            .where(active, c.kind == "person", c.country == "VN", i.occurred_at >= recent)
            .group_by(i.customer_id)
            .order_by(sa.func.count().desc(), i.customer_id)
            .limit(1)
        ).scalar()
    if sample_id is not None:
        profile = crm.customers.profile(sample_id)
        sections[f"Customer 360: {profile.customer.name} (crmkit customers profile {sample_id})"] = _profile_lines(
            profile, crm.timezone
        )
    sections['Accent-insensitive search: crmkit customers find "nguyen van"'] = _search_lines(crm, "nguyen van")
    pairs = crm.customers.duplicate_pairs(limit=3)
    if pairs:
        sections["Possible duplicates (crmkit customers duplicates ID, then merge)"] = [
            f"{p.customer_id} ~ {p.other_id}: {p.reason}" for p in pairs
        ]
    sections.update(crm.hooks.demo_overview())
    return sections


def _team_lines(crm: CRM, owned: dict[str, int], limit: int = 24) -> list[str]:
    """Each active user — name, username, team, role, customers owned — in the order of the team tree
    (the first ``limit`` of them)."""
    teams = {team.name: team.parent for team in crm.teams.list()}

    def path(team: str | None) -> tuple[str, ...]:
        trail: list[str] = []
        while team is not None and team not in trail:
            trail.append(team)
            team = teams.get(team)
        return tuple(reversed(trail))

    parents = set(teams.values())
    ranks = {
        role: n for n, role in enumerate(("administrator", "manager", "sales", "support", "marketing", "read-only"))
    }

    def order(user: Any) -> tuple[Any, ...]:  # branches first, then the other teams; in each, by role and name
        where = min((path(team)[:2] for team in user.teams), default=("~",))
        return (
            where[-1] not in parents,
            where,
            min((ranks.get(r, 9) for r in user.roles), default=9),
            fold(user.display_name),
        )

    users = sorted(crm.users.list(active=True), key=order)
    rows = [
        (
            u.display_name,
            u.username,
            ", ".join(u.teams) or "—",
            ", ".join(u.roles) or "—",
            f"{_n(owned[u.username])} customers" if owned.get(u.username) else "",
        )
        for u in users[:limit]
    ]
    widths = [max((len(row[k]) for row in rows), default=0) for k in range(4)]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, [*widths, 0])).rstrip() for row in rows]
    if len(users) > limit:
        lines.append(f"… and {_n(len(users) - limit)} more (crmkit users list)")
    return lines


def _profile_lines(profile: Any, zone: tzinfo) -> list[str]:
    customer = profile.customer
    address = customer.addresses[0] if customer.addresses else None
    consents = ", ".join(f"{ch} {'✓' if c.granted else '✗'}" for ch, c in sorted(customer.consents.items()))
    counts = ", ".join(f"{ch} {n}" for ch, n in sorted(profile.interaction_counts.items(), key=lambda x: (-x[1], x[0])))
    facts = [
        ("phone", ", ".join(customer.phones)),
        ("email", ", ".join(customer.emails)),
        (
            "address",
            ", ".join(p for p in (address.line1, address.ward, address.district, address.province) if p)
            if address
            else "",
        ),
        ("born", f"{customer.birth_date:%d/%m/%Y}" if customer.birth_date else ""),
        ("stage / owner", f"{customer.lifecycle_stage} / {customer.owner or '—'}"),
        ("tags", ", ".join(customer.tags)),
        ("consents", consents),
        ("interactions", f"{sum(profile.interaction_counts.values())} ({counts})"),
    ]
    lines = _aligned([(k, v) for k, v in facts if v])
    lines.append(f"latest ({zone}):")
    for item in profile.interactions[:5]:
        rating = f" {'★' * item.rating}" if item.rating else ""
        lines.append(
            f"  {item.occurred_at.astimezone(zone):%d/%m/%Y %H:%M}  {item.channel:<9}  {item.direction:<8}  "
            f"{item.subject or ''} — {item.outcome or ''}{rating}"
        )
    for title, data in profile.sections.items():
        summary = _short(data)
        if summary:
            lines.append(f"{title}: {summary}")
    return lines


def _search_lines(crm: CRM, query: str) -> list[str]:
    page = crm.customers.find(query, limit=6)
    lines = [f"{c.id:>6}  {c.name}" + (f"  ({c.province or c.city})" if c.province or c.city else "") for c in page]
    return lines or ["(no match)"]


def _aligned(pairs: Sequence[tuple[str, str]]) -> list[str]:
    width = max((len(k) for k, _ in pairs), default=0)
    return [f"{k.ljust(width)}  {v}" for k, v in pairs] or ["(none yet)"]


def _bars(rows: Sequence[tuple[str, int]] | Sequence[sa.Row[Any]], width: int = 30) -> list[str]:
    """Labelled counts with a proportional bar (names are stored NFC, so ``ljust`` aligns Vietnamese too)."""
    if not rows:
        return ["(none yet)"]
    top = max(n for _, n in rows)
    total = sum(n for _, n in rows)
    label = max(len(str(k)) for k, _ in rows)
    digits = max(len(_n(n)) for _, n in rows)
    return [
        f"{str(k).ljust(label)}  {_n(n).rjust(digits)}  {n / total:>4.0%}  {'█' * max(1, round(width * n / top))}"
        for k, n in rows
    ]


def _stars(value: float) -> str:
    return "★" * round(value) + "☆" * (5 - round(value))


def _n(value: int) -> str:
    return f"{value:,}"


def _day(value: datetime) -> str:
    return f"{value:%d/%m/%Y}"


def _short(data: Any, limit: int = 90) -> str:
    """A plugin's profile section in one line: its plain values (a list shows its only item, or its length)."""
    from crmkit.core.jsonable import to_jsonable

    value = to_jsonable(data)
    if isinstance(value, list):
        value = value[0] if len(value) == 1 else {"entries": len(value)}
    if isinstance(value, dict):
        text = ", ".join(f"{k} {v}" for k, v in value.items() if v is not None and not isinstance(v, (dict, list)))
    else:
        text = "" if value is None else str(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


# -- resetting a demo database ----------------------------------------------------------------------------------


def delete_sqlite_database(url: str) -> bool:
    """Delete the SQLite file (and its WAL files) that ``url`` names; False when it did not exist.

    Raises ``Conflict`` for other databases: those are emptied by their administrator, not by a demo.
    """
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        raise Conflict(
            f"--reset only deletes SQLite files; point --db at an empty {parsed.get_backend_name()} database"
        )
    if parsed.database in (None, "", ":memory:"):
        return False
    path = Path(parsed.database)
    existed = path.exists()
    for suffix in ("", "-wal", "-shm", "-journal"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    return existed
