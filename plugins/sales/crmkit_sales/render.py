"""HTML a person sends or prints: the quote document and sheets of mailing labels.

Everything shown is escaped; amounts use :meth:`crmkit.money.Money.format` (``1.500.000 ₫``);
dates are day-first (15/08/2026) as in Vietnam.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date
from decimal import Decimal
from html import escape
from typing import Any

import attrs

from crmkit.core.models import Address, Customer
from crmkit.money import Money
from crmkit_sales.objects import Quote
from crmkit_sales.pricing import tax_summary

STATUS_LABELS = {"draft": "Nháp / Draft", "sent": "Đã gửi / Sent", "accepted": "Đã chấp nhận / Accepted",
                 "declined": "Từ chối / Declined", "expired": "Hết hạn / Expired"}

_BASE_CSS = """
body { font-family: "Noto Sans", "Segoe UI", Arial, sans-serif; color: #222; }
table { border-collapse: collapse; }
"""

_QUOTE_CSS = """
.doc { max-width: 800px; margin: 24px auto; font-size: 14px; }
.head { display: flex; justify-content: space-between; gap: 24px; border-bottom: 2px solid #0b5; padding-bottom: 12px; }
.seller strong { font-size: 17px; }
h1 { font-size: 22px; margin: 0 0 4px; color: #085; text-align: right; }
.meta { text-align: right; }
.parties { margin: 16px 0; }
.lines { width: 100%; margin-top: 8px; }
.lines th { background: #eef7f1; text-align: left; }
.lines th, .lines td { border: 1px solid #cfd8d3; padding: 6px 8px; vertical-align: top; }
.num { text-align: right; white-space: nowrap; }
.totals { margin-left: auto; margin-top: 12px; min-width: 320px; }
.totals td { padding: 4px 8px; }
.totals tr.grand td { font-weight: bold; font-size: 16px; border-top: 2px solid #222; }
.vat { margin-top: 12px; font-size: 13px; }
.vat th, .vat td { border: 1px solid #cfd8d3; padding: 4px 8px; }
.words { margin-top: 8px; font-style: italic; }
.notes { margin-top: 16px; white-space: pre-line; }
.sign { display: flex; justify-content: space-between; margin-top: 40px; text-align: center; }
.sign div { width: 45%; min-height: 90px; }
.status { display: inline-block; padding: 2px 8px; border: 1px solid #085; border-radius: 4px; color: #085; }
"""

_PRINT_CSS = """
@page { size: A4; margin: 15mm 12mm; }
@media print {
  .doc { max-width: none; margin: 0; font-size: 11pt; }
  .lines thead { display: table-header-group; }
  .lines tr, .totals, .sign { page-break-inside: avoid; }
  a { color: inherit; text-decoration: none; }
}
"""


def _decimal(value: Decimal, currency: str) -> str:
    """A quantity or rate, with the decimal mark of the document's locale (``2,5`` in a VND document)."""
    text = f"{value:f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text.replace(".", ",") if currency == "VND" else text


def _day(value: date) -> str:
    return value.strftime("%d/%m/%Y")


def address_lines(address: Address, *, country: str = "VN") -> list[str]:
    """A postal address in Vietnamese order: street, ward and district, then province (or city)."""
    lines = [address.line1]
    if address.line2:
        lines.append(address.line2)
    local = ", ".join(part for part in (address.ward, address.district) if part)
    if local:
        lines.append(local)
    region = address.province or address.city
    last = " ".join(part for part in (region, address.postal_code) if part)
    if last:
        lines.append(last)
    if address.country and address.country.upper() != country:
        lines.append(address.country.upper())
    return lines


_DIGITS = ("không", "một", "hai", "ba", "bốn", "năm", "sáu", "bảy", "tám", "chín")
_SCALES = ("", " nghìn", " triệu", " tỷ", " nghìn tỷ", " triệu tỷ")


def _hundreds(n: int, full: bool) -> str:
    hundreds, rest = divmod(n, 100)
    tens, units = divmod(rest, 10)
    words: list[str] = []
    if full or hundreds:
        words += [_DIGITS[hundreds], "trăm"]
    if tens > 1:
        words += [_DIGITS[tens], "mươi"]
    elif tens == 1:
        words.append("mười")
    elif units and (full or hundreds):
        words.append("lẻ")
    if units:
        if units == 1 and tens > 1:
            words.append("mốt")
        elif units == 5 and tens >= 1:
            words.append("lăm")
        elif units == 4 and tens > 1:
            words.append("tư")
        else:
            words.append(_DIGITS[units])
    return " ".join(words)


def vnd_in_words(amount: int) -> str:
    """An amount of đồng in Vietnamese words, as invoices print it (``1.500.000`` → "Một triệu năm trăm nghìn đồng")."""
    if amount == 0:
        return "Không đồng"
    groups: list[int] = []
    n = abs(amount)
    while n:
        n, group = divmod(n, 1000)
        groups.append(group)
    if len(groups) > len(_SCALES):
        raise ValueError(f"{amount} is too large to write in words")
    top = len(groups) - 1
    words = [_hundreds(group, index < top) + _SCALES[index] for index, group in reversed(list(enumerate(groups))) if group]
    text = ("âm " if amount < 0 else "") + " ".join(words) + " đồng"
    return text[0].upper() + text[1:]


def quote_html(quote: Quote, customer: Customer, seller: Mapping[str, Any], *, printable: bool = False) -> str:
    """The quote as a standalone HTML document; ``printable`` adds the A4 print layout."""
    money = lambda minor: escape(Money(quote.currency, minor).format())  # noqa: E731
    cur = quote.currency
    rows = []
    for line in quote.lines:
        discount = f"{_decimal(line.discount_percent, cur)}%" if line.discount_percent is not None else (
            money(line.discount_minor) if line.discount_minor else "")
        rows.append(
            f"<tr><td class=num>{line.position}</td><td>{escape(line.sku)}</td><td>{escape(line.name)}</td>"
            f"<td>{escape(line.unit)}</td><td class=num>{_decimal(line.quantity, cur)}</td>"
            f"<td class=num>{money(line.unit_price_minor)}</td><td class=num>{discount}</td>"
            f"<td class=num>{_decimal(line.tax_rate * 100, cur)}%</td><td class=num>{money(line.net_minor)}</td></tr>")
    vat_rows = "".join(
        f"<tr><td class=num>{_decimal(rate * 100, cur)}%</td><td class=num>{money(net)}</td><td class=num>{money(tax)}</td></tr>"
        for rate, net, tax in tax_summary(quote.lines))
    seller_lines = [f"<strong>{escape(str(seller.get('name') or ''))}</strong>"]
    for key, label in (("address", ""), ("tax_code", "MST / Tax code: "), ("phone", "ĐT / Phone: "),
                       ("email", "Email: "), ("bank_account", "TK / Bank: ")):
        if seller.get(key):
            seller_lines.append(escape(label + str(seller[key])))
    customer_lines = [f"<strong>{escape(customer.name)}</strong>"]
    if customer.addresses:
        customer_lines.append(escape(", ".join(address_lines(customer.addresses[0]))))
    if customer.attributes.get("tax_code"):
        customer_lines.append(escape(f"MST / Tax code: {customer.attributes['tax_code']}"))
    customer_lines += [escape(v) for v in (customer.phone, customer.email) if v]
    words = f"<p class=words>Bằng chữ: {escape(vnd_in_words(quote.total_minor))}.</p>" if cur == "VND" else ""
    notes = f"<div class=notes>{escape(quote.notes)}</div>" if quote.notes else ""
    css = _BASE_CSS + _QUOTE_CSS + (_PRINT_CSS if printable else "")
    return f"""<!DOCTYPE html>
<html lang="vi"><head><meta charset="utf-8">
<title>Báo giá {escape(quote.number)} — {escape(customer.name)}</title>
<style>{css}</style></head>
<body><div class="doc">
<div class="head"><div class="seller">{"<br>".join(seller_lines)}</div>
<div class="meta"><h1>BÁO GIÁ / QUOTATION</h1>
Số / No.: <strong>{escape(quote.number)}</strong><br>
Ngày / Date: {_day(quote.issued_on)}<br>
Hiệu lực đến / Valid until: {_day(quote.valid_until)}<br>
<span class="status">{escape(STATUS_LABELS.get(quote.status, quote.status))}</span></div></div>
<div class="parties">Kính gửi / To:<br>{"<br>".join(customer_lines)}</div>
<table class="lines"><thead><tr><th>#</th><th>Mã / SKU</th><th>Hàng hóa, dịch vụ / Description</th><th>ĐVT / Unit</th>
<th class=num>SL / Qty</th><th class=num>Đơn giá / Unit price</th><th class=num>Chiết khấu / Discount</th>
<th class=num>VAT</th><th class=num>Thành tiền / Amount</th></tr></thead>
<tbody>{"".join(rows)}</tbody></table>
<table class="totals">
<tr><td>Cộng tiền hàng / Subtotal</td><td class=num>{money(quote.subtotal_minor)}</td></tr>
<tr><td>Chiết khấu / Discount</td><td class=num>-{money(quote.discount_minor)}</td></tr>
<tr><td>Thuế GTGT / VAT</td><td class=num>{money(quote.tax_minor)}</td></tr>
<tr class="grand"><td>Tổng cộng / Total</td><td class=num>{money(quote.total_minor)}</td></tr>
</table>
{words}
<table class="vat"><thead><tr><th>Thuế suất / VAT rate</th><th>Tiền hàng / Taxable</th><th>Tiền thuế / VAT</th></tr></thead>
<tbody>{vat_rows}</tbody></table>
{notes}
<div class="sign"><div>Khách hàng / Customer<br><em>(ký, ghi rõ họ tên)</em></div>
<div>Đại diện bên bán / For the seller<br><em>(ký, đóng dấu)</em></div></div>
</div></body></html>
"""


@attrs.frozen
class LabelLayout:
    """A sheet of labels: columns × rows on A4, each label's size in millimetres."""

    columns: int
    rows: int
    width_mm: Decimal
    height_mm: Decimal


#: A4 label sheets: 3×8 (70 × 37 mm, e.g. Avery 3474) and 3×7 (70 × 42.3 mm, e.g. Avery 3652).
LAYOUTS = {
    "3x8": LabelLayout(3, 8, Decimal("70"), Decimal("37.125")),
    "3x7": LabelLayout(3, 7, Decimal("70"), Decimal("42.4")),
}


def labels_html(labels: Sequence[Sequence[str]], layout: LabelLayout) -> str:
    """Printable sheets of address labels (each label: its lines, first in bold) on A4 with print CSS."""
    per_sheet = layout.columns * layout.rows
    sheets = []
    for start in range(0, max(len(labels), 1), per_sheet):
        cells = []
        for lines in labels[start:start + per_sheet]:
            body = "<br>".join([f"<strong>{escape(lines[0])}</strong>", *(escape(x) for x in lines[1:])])
            cells.append(f'<div class="label">{body}</div>')
        sheets.append(f'<section class="sheet">{"".join(cells)}</section>')
    css = f"""{_BASE_CSS}
@page {{ size: A4; margin: 0; }}
body {{ margin: 0; }}
.sheet {{ width: 210mm; height: 297mm; box-sizing: border-box; display: grid;
  grid-template-columns: repeat({layout.columns}, {layout.width_mm}mm);
  grid-template-rows: repeat({layout.rows}, {layout.height_mm}mm);
  justify-content: center; align-content: center; page-break-after: always; break-after: page; }}
.sheet:last-child {{ page-break-after: auto; break-after: auto; }}
.label {{ box-sizing: border-box; padding: 4mm 5mm; overflow: hidden; font-size: 10pt; line-height: 1.3; }}
@media screen {{ .sheet {{ outline: 1px solid #ccc; margin: 8mm auto; }} .label {{ outline: 1px dashed #ddd; }} }}
"""
    return f"""<!DOCTYPE html>
<html lang="vi"><head><meta charset="utf-8"><title>Nhãn địa chỉ / Address labels ({len(labels)})</title>
<style>{css}</style></head>
<body>{"".join(sheets)}</body></html>
"""
