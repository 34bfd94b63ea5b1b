"""Demo data for ``crmkit demo``: a Vietnamese catalogue in VND, price lists, two pipelines with deals,
quotes, a year of orders (repeat buyers and drop-outs, as a real shop has) with payments and a few refunds,
maintenance contracts, appointments and tasks.

Everything goes through the service (so other plugins' hooks — loyalty points — see it) and is
deterministic for a seed; dates are relative to today.
"""

from __future__ import annotations

import random
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING

from crmkit.money import Money

if TYPE_CHECKING:
    from crmkit.crm import CRM

#: The demo's salespeople (users with the sales role): they own deals, quotes, orders, contracts and tasks.
EMPLOYEES = {
    "lan.nguyen": "Nguyễn Thị Lan",
    "minh.tran": "Trần Văn Minh",
    "hoa.le": "Lê Thị Hoa",
    "tuan.pham": "Phạm Anh Tuấn",
}
STAFF = tuple(EMPLOYEES)

#: sku, name, kind, unit, category, list price (VND), unit cost, VAT rate
CATALOGUE = (
    ("CF-ROB-500", "Cà phê Robusta Đắk Lắk rang xay 500g", "product", "gói", "Cà phê", 95_000, 61_000, "0.1"),
    ("CF-ARA-250", "Cà phê Arabica Cầu Đất 250g", "product", "gói", "Cà phê", 120_000, 78_000, "0.1"),
    ("NM-PQ-500", "Nước mắm Phú Quốc 40 độ đạm 500ml", "product", "chai", "Nước mắm", 85_000, 52_000, "0.1"),
    ("NM-PQ-T12", "Nước mắm Phú Quốc thùng 12 chai 500ml", "product", "thùng", "Nước mắm", 960_000, 610_000, "0.1"),
    ("GAO-ST25-5", "Gạo ST25 Sóc Trăng túi 5kg", "product", "túi", "Gạo", 185_000, 140_000, "0.05"),
    ("GAO-ST25-25", "Gạo ST25 Sóc Trăng bao 25kg", "product", "bao", "Gạo", 850_000, 655_000, "0.05"),
    ("TRA-HG-100", "Trà Shan Tuyết Hà Giang hộp 100g", "product", "hộp", "Trà", 150_000, 88_000, "0.1"),
    ("DIEU-BP-500", "Hạt điều rang muối Bình Phước hũ 500g", "product", "hũ", "Đặc sản", 210_000, 150_000, "0.05"),
    ("PIA-ST-4", "Bánh pía Sóc Trăng hộp 4 cái", "product", "hộp", "Đặc sản", 65_000, 41_000, "0.1"),
    ("MAY-ESP-01", "Máy pha cà phê espresso bán tự động", "product", "cái", "Thiết bị", 12_500_000, 9_800_000, "0.1"),
    ("DV-BT-GIO", "Dịch vụ bảo trì máy pha cà phê (theo giờ)", "service", "giờ", "Dịch vụ", 350_000, None, "0.08"),
    ("DV-BT-12T", "Gói bảo trì định kỳ 12 tháng", "service", "gói", "Dịch vụ", 4_800_000, None, "0.08"),
)
RETAIL = ("CF-ROB-500", "CF-ARA-250", "NM-PQ-500", "GAO-ST25-5", "TRA-HG-100", "DIEU-BP-500", "PIA-ST-4")
WHOLESALE = ("NM-PQ-T12", "GAO-ST25-25", "CF-ROB-500", "MAY-ESP-01", "DV-BT-GIO")
#: What wholesale buyers order again and again (machines are sold through deals and quotes).
BULK = tuple(sku for sku in WHOLESALE if sku != "MAY-ESP-01")
PRICES = {row[0]: row[5] for row in CATALOGUE}
#: Each buyer's usual order (gamma-distributed between buyers: shape, mean in đồng); from BULK_FROM they buy wholesale.
BASKET_SHAPE, BASKET_MEAN, BULK_FROM = 4.0, 800_000, 1_500_000
PIPELINES = {
    "Bán hàng B2B": [
        ("Tiếp cận", "0.1"),
        ("Đánh giá nhu cầu", "0.25"),
        ("Báo giá", "0.5"),
        ("Đàm phán", "0.75"),
        ("Thắng", "1", "won"),
        ("Thua", "0", "lost"),
    ],
    "Dịch vụ bảo trì": [
        ("Liên hệ", "0.2"),
        ("Khảo sát", "0.4"),
        ("Đề xuất", "0.6"),
        ("Thắng", "1", "won"),
        ("Thua", "0", "lost"),
    ],
}
LOST_REASONS = ("Giá cao hơn đối thủ", "Khách hoãn ngân sách", "Chọn nhà cung cấp khác", "Không liên lạc được")
PAYMENT_METHODS = ("bank_transfer", "bank_transfer", "cash", "momo", "cod", "card")
APPOINTMENT_SUBJECTS = (
    "Giới thiệu sản phẩm mới",
    "Khảo sát máy pha cà phê",
    "Đàm phán giá đại lý",
    "Bàn giao máy và hướng dẫn sử dụng",
    "Gia hạn hợp đồng bảo trì",
)
TASK_TITLES = (
    "Gọi lại xác nhận đơn hàng",
    "Gửi báo giá sửa đổi",
    "Nhắc thanh toán công nợ",
    "Gửi mẫu cà phê",
    "Hẹn lịch bảo trì định kỳ",
)


def populate(crm: CRM, customer_ids: list[int], seed: int) -> None:
    """Fill the sales plugin for the demo customers (a few hundred orders; deterministic for ``seed``)."""
    if not customer_ids:
        return
    rng = random.Random(seed)
    sales = crm.sales
    now = crm.now()
    _staff(crm)
    if sales.seller().get("tax_code") is None:
        sales.set_seller(
            name="Công ty TNHH Đặc Sản Việt",
            address="25 Lê Lợi, Phường Bến Nghé, Quận 1, TP. Hồ Chí Minh",
            tax_code="0312345678",
            phone="028 3822 1234",
            email="banhang@dacsanviet.vn",
            bank_account="Vietcombank 0071 0001 23456",
        )
    for sku, name, kind, unit, category, price, cost, rate in CATALOGUE:
        sales.products.add(
            sku=sku,
            name=name,
            kind=kind,
            unit=unit,
            category=category,
            price_minor=price,
            currency="VND",
            cost_minor=cost,
            tax_rate=rate,
        )
    today = now.astimezone(sales.orders.timezone).date()
    trade = sales.pricelists.add(
        name="Giá đại lý & bán lẻ",
        currency="VND",
        valid_from=today - timedelta(days=400),
        group_condition={"field": "lifecycle_stage", "op": "in", "value": ["distributor", "retailer"]},
    )
    for sku, price, *tiers in (
        ("NM-PQ-T12", 870_000, ("10", 830_000)),
        ("GAO-ST25-25", 790_000, ("20", 760_000)),
        ("CF-ROB-500", 82_000, ("50", 78_000)),
        ("MAY-ESP-01", 11_400_000),
    ):
        sales.pricelists.set_price(trade.id, sku, price)
        for min_quantity, tier_price in tiers:
            sales.pricelists.set_price(trade.id, sku, tier_price, min_quantity=min_quantity)
    promo = sales.pricelists.add(
        name="Khuyến mãi quà Tết",
        currency="VND",
        group_tag="vip",
        valid_from=today - timedelta(days=20),
        valid_until=today + timedelta(days=25),
    )
    for sku, price in (("TRA-HG-100", 129_000), ("DIEU-BP-500", 179_000), ("PIA-ST-4", 55_000)):
        sales.pricelists.set_price(promo.id, sku, price)
    for name, stages in PIPELINES.items():
        sales.pipelines.add(
            name, [{"name": s[0], "probability": s[1], "outcome": s[2] if len(s) > 2 else None} for s in stages]
        )
    buyers = rng.sample(customer_ids, min(len(customer_ids), 300))
    _orders(crm, rng, buyers, now)
    _deals_and_quotes(crm, rng, customer_ids, now)
    _contracts(crm, rng, buyers, today)
    _agenda(crm, rng, customer_ids, now)


def _staff(crm: CRM) -> None:
    """The salespeople as users (role sales), unless they exist already."""
    known = {user.username for user in crm.users.list()}
    for username, name in EMPLOYEES.items():
        if username not in known:
            crm.users.add(username, name, roles=["sales"])


#: How the demo's buyers buy, the story a real shop's history tells (and BG/NBD models): each buys at a rate
#: of their own (gamma-distributed: one purchase every 30 days on average, some weekly, some yearly) and may
#: drop out after any purchase (a beta-distributed chance, 25% on average: some stay, many never come back).
PURCHASE_RATE_SHAPE, DAYS_BETWEEN_PURCHASES = 1.0, 30.0
DROP_OUT_BETA = (0.5, 1.5)
MAX_ORDERS = 40


def purchase_times(rng: random.Random, now: datetime, days: int = 364) -> list[datetime]:
    """One buyer's order times, oldest first: the first on a random day of the last ``days``, then at their
    own rate until they drop out (after a purchase) or today comes."""
    rate = rng.gammavariate(PURCHASE_RATE_SHAPE, 1 / (PURCHASE_RATE_SHAPE * DAYS_BETWEEN_PURCHASES))  # per day
    drop_out = rng.betavariate(*DROP_OUT_BETA)
    ago = [rng.uniform(0, days)]
    while len(ago) < MAX_ORDERS and rng.random() >= drop_out:
        following = ago[-1] - rng.expovariate(rate)
        if following <= 0:
            break
        ago.append(following)
    return [now - timedelta(days=d) for d in ago]


def _orders(crm: CRM, rng: random.Random, buyers: list[int], now: datetime) -> None:
    sales = crm.sales
    for customer_id in buyers:
        # each buyer keeps to a basket of their own (a household a few hundred thousand đồng, a restaurant buying
        # sacks and crates some millions); one order is bigger, the next a top-up
        basket = rng.gammavariate(BASKET_SHAPE, BASKET_MEAN / BASKET_SHAPE)
        assortment = BULK if basket > BULK_FROM else RETAIL
        for placed in purchase_times(rng, now):
            skus = rng.sample(assortment, rng.randint(1, 3))
            spend = rng.expovariate(1 / basket)
            lines = [{"sku": sku, "quantity": max(1, round(spend / len(skus) / PRICES[sku]))} for sku in skus]
            if rng.random() < 0.15:
                lines[0]["discount_percent"] = rng.choice((5, 10))
            with crm.acting_as(rng.choice(STAFF)):
                order = sales.orders.place(customer_id=customer_id, lines=lines, placed_at=placed, owner=crm.actor)
                roll = rng.random()
                if roll < 0.05:
                    sales.orders.cancel(order.id, reason="Khách đổi ý trước khi giao")
                    continue
                if roll < 0.85:
                    sales.payments.record(
                        order.id,
                        order.total_minor,
                        method=rng.choice(PAYMENT_METHODS),
                        paid_at=placed + timedelta(days=rng.randint(0, 5)),
                    )
                elif roll < 0.95:
                    sales.payments.record(
                        order.id,
                        order.total_minor // 2,
                        method="bank_transfer",
                        paid_at=placed + timedelta(days=1),
                        reference="Đặt cọc 50%",
                    )
                if placed < now - timedelta(days=7):
                    sales.orders.deliver(order.id, at=placed + timedelta(days=rng.randint(1, 4)))
                if 0.05 <= roll < 0.09:
                    sales.orders.refund(order.id, order.total_minor // 4, reason="Hàng lỗi, hoàn một phần")


def _deals_and_quotes(crm: CRM, rng: random.Random, customer_ids: list[int], now: datetime) -> None:
    sales = crm.sales
    for n, customer_id in enumerate(rng.sample(customer_ids, min(len(customer_ids), 120))):
        pipeline = sales.pipelines.get("Bán hàng B2B" if n % 3 else "Dịch vụ bảo trì")
        open_stages = [s for s in pipeline.stages if s.outcome is None]
        opened = now - timedelta(days=rng.randint(5, 200))
        owner = rng.choice(STAFF)
        with crm.acting_as(owner):
            deal = sales.deals.add(
                customer_id=customer_id,
                pipeline=pipeline.id,
                owner=owner,
                currency="VND",
                opened_at=opened,
                title=rng.choice(
                    (
                        "Cung cấp cà phê cho chuỗi quán",
                        "Đơn hàng nước mắm cho nhà hàng",
                        "Gạo ST25 cho bếp ăn",
                        "Máy pha cà phê cho văn phòng",
                        "Hợp đồng bảo trì thiết bị",
                    )
                ),
                amount_minor=rng.randrange(5_000_000, 250_000_000, 500_000),
                expected_close=(now + timedelta(days=rng.randint(-10, 150))).date(),
                source=rng.choice(("Website", "Giới thiệu", "Hội chợ", "Zalo OA", "Gọi điện")),
            )
            steps = rng.randint(0, len(open_stages) - 1)
            moment = opened
            for stage in open_stages[1 : steps + 1]:
                moment += timedelta(days=rng.randint(2, 15))
                sales.deals.move(deal.id, stage.id, at=min(moment, now))
            fate = rng.random()
            if fate < 0.3:
                sales.deals.win(
                    deal.id, reason="Khách ký hợp đồng", at=min(moment + timedelta(days=rng.randint(3, 20)), now)
                )
            elif fate < 0.5:
                sales.deals.lose(deal.id, reason=rng.choice(LOST_REASONS), at=min(moment + timedelta(days=9), now))
            if n % 3 == 1:
                quote = sales.quotes.create(
                    customer_id=customer_id,
                    deal_id=deal.id,
                    owner=owner,
                    notes=("Giá đã bao gồm vận chuyển nội thành TP.HCM.\nThanh toán: chuyển khoản trong 7 ngày."),
                    lines=[
                        {"sku": sku, "quantity": rng.choice((1, 2, 3) if sku == "MAY-ESP-01" else (2, 5, 10, 20))}
                        for sku in rng.sample(WHOLESALE, 2)
                    ],
                )
                if fate < 0.5:
                    sales.quotes.send(quote.id)
                if fate < 0.3:
                    sales.quotes.accept(quote.id)
                    sales.quotes.place_order(quote.id)


def _contracts(crm: CRM, rng: random.Random, buyers: list[int], today: date) -> None:
    for n, customer_id in enumerate(buyers[:25]):
        start = today - timedelta(days=rng.randint(30, 700))
        years = rng.choice((1, 2))
        end = start + timedelta(days=365 * years)
        crm.sales.contracts.add(
            customer_id=customer_id,
            number=f"HĐ-{start.year}-{n + 1:04d}",
            title="Hợp đồng bảo trì máy pha cà phê",
            start_date=start,
            end_date=end,
            renewal_date=end - timedelta(days=30),
            value_minor=4_800_000 * years,
            currency="VND",
            owner=rng.choice(STAFF),
            status="active" if end >= today else "expired",
        )


def _agenda(crm: CRM, rng: random.Random, customer_ids: list[int], now: datetime) -> None:
    sales = crm.sales
    zone = sales.appointments.timezone
    for customer_id in rng.sample(customer_ids, min(len(customer_ids), 40)):
        day = (now + timedelta(days=rng.randint(-7, 14))).astimezone(zone).date()
        starts = datetime(
            day.year, day.month, day.day, rng.choice((8, 9, 10, 14, 15, 16)), rng.choice((0, 30)), tzinfo=zone
        )
        channel = rng.choice(("in_person", "in_person", "phone", "video"))
        appointment = sales.appointments.add(
            customer_id=customer_id,
            employee=rng.choice(STAFF),
            subject=rng.choice(APPOINTMENT_SUBJECTS),
            starts_at=starts,
            duration_minutes=rng.choice((30, 45, 60, 90)),
            channel=channel,
            place="Văn phòng khách hàng" if channel == "in_person" else ("Google Meet" if channel == "video" else None),
        )
        if starts < now:
            sales.appointments.record_outcome(
                appointment.id,
                rng.choice(("Khách đồng ý đặt thử 20 thùng", "Cần gửi thêm báo giá", "Khách hẹn gặp lại sau Tết")),
            )
    for customer_id in rng.sample(customer_ids, min(len(customer_ids), 50)):
        due = now + timedelta(days=rng.randint(-10, 10), hours=rng.randint(0, 8))
        task = sales.tasks.add(
            customer_id=customer_id,
            employee=rng.choice(STAFF),
            title=rng.choice(TASK_TITLES),
            due_at=due,
            priority=rng.choice(("low", "normal", "normal", "high")),
        )
        if due < now and rng.random() < 0.5:
            sales.tasks.complete(task.id, outcome="Đã xử lý")


def overview(crm: CRM) -> dict[str, list[str]]:
    """Sections for the demo overview: pipeline by stage, revenue by month, top products, overdue tasks."""
    reports = crm.sales.reports
    pipelines = crm.sales.pipelines.list()
    sections: dict[str, list[str]] = {}
    if pipelines:
        sections["Sales pipeline by stage"] = [
            f"{pipelines[0].name} · {row.stage}: {row.current} now, {row.reached} reached"
            + (f", {row.conversion_to_next}% went on" if row.conversion_to_next is not None else "")
            for row in reports.funnel(pipelines[0].id)
        ]
    months = reports.revenue_by_month()[-6:]
    sections["Revenue by month"] = [
        f"{r.month}: {Money(r.currency, r.revenue_minor)} ({r.orders} orders)" for r in months
    ]
    sections["Top products"] = [
        f"{r.rank}. {r.name}: {Money(r.currency, r.revenue_minor)} ({r.quantity} sold)"
        for r in reports.top_products(limit=5)
    ]
    overdue = crm.sales.tasks.overdue()
    sections["Overdue tasks"] = [f"{len(overdue)} overdue"] + [
        f"{t.due_at.astimezone(crm.sales.tasks.timezone):%d/%m %H:%M} {t.employee}: {t.title}" for t in overdue[:5]
    ]
    return sections
