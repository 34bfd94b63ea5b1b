"""Quotes: status workflow, versions, one-step conversion to an order, and the document a person sends."""

from __future__ import annotations

from datetime import timedelta

import pytest

from crmkit import Conflict, ValidationError
from crmkit_sales import models as m

from .conftest import Shop, count

pytestmark = pytest.mark.crmkit_plugins("sales")


def test_quote_workflow_versions_and_order_in_one_step(shop: Shop) -> None:
    quotes = shop.crm.sales.quotes
    draft = quotes.create(
        customer_id=shop.dist.id,
        valid_days=15,
        lines=[{"sku": "CF-ROB-500", "quantity": 20, "discount_percent": 5}, {"sku": "DV-BT-GIO", "quantity": 3}],
    )
    assert (draft.number, draft.version, draft.status) == ("Q-000001", 1, "draft")
    assert draft.valid_until - draft.issued_on == timedelta(days=15)
    for illegal in (quotes.accept, quotes.decline, quotes.expire):
        with pytest.raises(ValidationError) as error:
            illegal(draft.id)
        assert "status" in error.value.errors and "it is draft" in str(error.value)
    with pytest.raises(ValidationError, match="only an accepted quote"):
        quotes.place_order(draft.id)

    edited = quotes.revise(draft.id, lines=[{"sku": "CF-ROB-500", "quantity": 30}])  # a draft changes in place
    assert (edited.id, edited.version, edited.total_minor) == (draft.id, 1, 3_135_000)
    sent = quotes.send(draft.id)
    assert sent.status == "sent" and sent.sent_at is not None
    with pytest.raises(ValidationError, match="it is sent"):
        quotes.send(draft.id)

    second = quotes.revise(
        draft.id,
        lines=[{"sku": "CF-ROB-500", "quantity": 30}, {"sku": "GAO-ST25-5", "quantity": 4}],
        notes="Thêm gạo theo yêu cầu",
    )
    assert (second.number, second.version, second.status, second.root_id) == ("Q-000001-v2", 2, "draft", draft.id)
    assert second.total_minor == 3_135_000 + 777_000
    with pytest.raises(ValidationError, match="latest version"):
        quotes.accept(draft.id)
    history = quotes.versions(second.id)
    assert [(q.version, q.status, q.superseded_at is not None) for q in history] == [
        (1, "sent", True),
        (2, "draft", False),
    ]
    assert [q.total_minor for q in history] == [3_135_000, 3_912_000]
    assert [q.id for q in quotes.list(customer_id=shop.dist.id)] == [second.id]
    assert len(quotes.list(customer_id=shop.dist.id, latest=False)) == 2

    quotes.send(second.id)
    accepted = quotes.accept(second.id)
    assert accepted.status == "accepted" and accepted.decided_at is not None
    order = quotes.place_order(second.id, shipping_name="Kho Mekong", shipping_address="88 Trần Hưng Đạo, Quận 5")
    assert (order.quote_id, order.customer_id, order.total_minor) == (second.id, shop.dist.id, 3_912_000)
    assert [(line.sku, line.quantity, line.unit_price_minor) for line in order.lines] == [
        (line.sku, line.quantity, line.unit_price_minor) for line in second.lines
    ]
    assert quotes.get(second.id).order_id == order.id
    with pytest.raises(Conflict, match="already became order"):
        quotes.place_order(second.id)
    with pytest.raises(Conflict, match="can no longer change"):
        quotes.revise(second.id, notes="sửa")
    assert count(shop.crm, m.orders) == 1


def test_quotes_expire_and_an_expired_one_cannot_be_accepted(shop: Shop) -> None:
    quotes = shop.crm.sales.quotes
    issued = shop.crm.today() - timedelta(days=40)
    old = quotes.create(
        customer_id=shop.an.id,
        issued_on=issued,
        valid_until=issued + timedelta(days=30),
        lines=[{"sku": "GAO-ST25-5", "quantity": 1}],
    )
    fresh = quotes.create(customer_id=shop.an.id, lines=[{"sku": "GAO-ST25-5", "quantity": 1}])
    quotes.send(old.id)
    quotes.send(fresh.id)
    with pytest.raises(ValidationError) as error:
        quotes.accept(old.id)
    assert "valid_until" in error.value.errors
    assert quotes.expire_due() == 1
    assert (quotes.get(old.id).status, quotes.get(fresh.id).status) == ("expired", "sent")
    renewed = quotes.revise(old.id, valid_until=shop.crm.today() + timedelta(days=10))
    assert (renewed.version, renewed.status, renewed.total_minor) == (2, "draft", old.total_minor)
    assert quotes.decline(quotes.send(renewed.id).id).status == "declined"


def test_quote_document_html_and_printable(shop: Shop) -> None:
    sales = shop.crm.sales
    sales.set_seller(
        name="Công ty TNHH Đặc Sản Việt", address="25 Lê Lợi, Quận 1, TP. Hồ Chí Minh", tax_code="0312345678"
    )
    quote = sales.quotes.create(
        customer_id=shop.an.id,
        notes="Giao trong 3 ngày <script>alert(1)</script>",
        lines=[{"sku": "CF-ROB-500", "quantity": "2.5", "discount_percent": 10}, {"sku": "GAO-ST25-5", "quantity": 5}],
    )
    html = sales.quotes.render_html(quote.id).replace("\u00a0", " ")  # Vietnamese, the default
    for expected in (
        '<html lang="vi">',
        "BÁO GIÁ",
        "MST: 0312345678",
        "Công ty TNHH Đặc Sản Việt",
        "Nguyễn Văn An",
        "12 Lý Thường Kiệt, Phường Hàng Bài, Quận Hoàn Kiếm, Hà Nội",
        "Q-000001",
        "Cà phê Robusta 500g",
        "2,5",
        "10%",
        "95.000 ₫",
        "925.000 ₫",
        "Tổng cộng",
        "1.206.375 ₫",
        "Bằng chữ: Một triệu hai trăm lẻ sáu nghìn ba trăm bảy mươi lăm đồng",
        f"Ngày: {quote.issued_on:%d/%m/%Y}",
        "&lt;script&gt;alert(1)&lt;/script&gt;",
    ):
        assert expected in html, expected
    english = sales.quotes.render_html(quote.id, locale="en")
    for expected in (
        '<html lang="en">',
        "QUOTATION",
        "Tax code: 0312345678",
        "2.5",
        "₫95,000",
        "₫1,206,375",
        "Total",
        "Valid until:",
    ):
        assert expected in english, expected
    assert "BÁO GIÁ" not in english and "Bằng chữ" not in english
    assert "<script>" not in html and "@page" not in html
    printable = sales.quotes.render_html(quote.id, printable=True)
    assert "@page { size: A4" in printable and "@media print" in printable

    usd = sales.quotes.create(customer_id=shop.bob.id, currency="USD", lines=[{"sku": "TEA-GIFT", "quantity": 2}])
    usd_html = sales.quotes.render_html(usd.id)
    assert "25,00\u00a0US$" in usd_html and "Bằng chữ" not in usd_html  # only đồng are written in words
    assert "$25.00" in sales.quotes.render_html(usd.id, locale="en")
