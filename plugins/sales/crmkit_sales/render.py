"""HTML a person sends or prints: the quote document and sheets of mailing labels.

Everything shown is escaped. A quote is written in one language, its labels through the sales catalog and its
amounts, quantities, rates and dates in that locale's style (vi ``1.500.000 ₫``, ``15/08/2026``; en
``₫1,500,000``, ``Aug 15, 2026``). Address labels carry addresses only.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal
from html import escape
from typing import TYPE_CHECKING, Any

import attrs

from crmkit.money import Money
from crmkit.plugin_api import Address, Customer
from crmkit_sales.objects import Quote
from crmkit_sales.pricing import tax_summary

if TYPE_CHECKING:
    from crmkit.plugin_api import Translator

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
    words = [
        _hundreds(group, index < top) + _SCALES[index] for index, group in reversed(list(enumerate(groups))) if group
    ]
    text = ("âm " if amount < 0 else "") + " ".join(words) + " đồng"
    return text[0].upper() + text[1:]


def quote_html(
    quote: Quote, customer: Customer, seller: Mapping[str, Any], t: Translator, *, printable: bool = False
) -> str:
    """The quote as a standalone HTML document in ``t``'s language (``<html lang>``, labels through the sales
    catalog, amounts, quantities, rates and dates in the locale's style); ``printable`` adds the A4 print layout.
    A VND quote in Vietnamese also says its total in words, as Vietnamese invoices do."""
    from crmkit_sales.console import QUOTE_STATUSES

    money = lambda minor: escape(t.format_money(Money(quote.currency, minor)))  # noqa: E731
    number = lambda value: escape(t.format_number(value))  # noqa: E731
    percent = lambda ratio: escape(t.format_percent(ratio))  # noqa: E731
    _ = t.gettext
    rows = []
    for line in quote.lines:
        discount = (
            percent(line.discount_percent / 100)
            if line.discount_percent is not None
            else (money(line.discount_minor) if line.discount_minor else "")
        )
        rows.append(
            f"<tr><td class=num>{line.position}</td><td>{escape(line.sku)}</td><td>{escape(line.name)}</td>"
            f"<td>{escape(line.unit)}</td><td class=num>{number(line.quantity)}</td>"
            f"<td class=num>{money(line.unit_price_minor)}</td><td class=num>{discount}</td>"
            f"<td class=num>{percent(line.tax_rate)}</td><td class=num>{money(line.net_minor)}</td></tr>"
        )
    vat_rows = "".join(
        f"<tr><td class=num>{percent(rate)}</td><td class=num>{money(net)}</td><td class=num>{money(tax)}</td></tr>"
        for rate, net, tax in tax_summary(quote.lines)
    )
    seller_lines = [f"<strong>{escape(str(seller.get('name') or ''))}</strong>"]
    for key, label in (
        ("address", None),
        ("tax_code", "Tax code: %(value)s"),
        ("phone", "Phone: %(value)s"),
        ("email", "E-mail: %(value)s"),
        ("bank_account", "Bank account: %(value)s"),
    ):
        if seller.get(key):
            seller_lines.append(escape(_(label) % {"value": seller[key]} if label else str(seller[key])))
    customer_lines = [f"<strong>{escape(customer.name)}</strong>"]
    if customer.addresses:
        customer_lines.append(escape(", ".join(address_lines(customer.addresses[0]))))
    if customer.attributes.get("tax_code"):
        customer_lines.append(escape(_("Tax code: %(value)s") % {"value": customer.attributes["tax_code"]}))
    customer_lines += [escape(v) for v in (customer.phone, customer.email) if v]
    words = (
        f"<p class=words>{escape(_('In words: %(words)s.') % {'words': vnd_in_words(quote.total_minor)})}</p>"
        if quote.currency == "VND" and t.locale == "vi"
        else ""
    )
    notes = f"<div class=notes>{escape(quote.notes)}</div>" if quote.notes else ""
    css = _BASE_CSS + _QUOTE_CSS + (_PRINT_CSS if printable else "")
    status = _(QUOTE_STATUSES[quote.status]) if quote.status in QUOTE_STATUSES else quote.status
    title = _("Quotation %(number)s — %(customer)s") % {"number": quote.number, "customer": customer.name}
    return f"""<!DOCTYPE html>
<html lang="{t.locale}"><head><meta charset="utf-8">
<title>{escape(title)}</title>
<style>{css}</style></head>
<body><div class="doc">
<div class="head"><div class="seller">{"<br>".join(seller_lines)}</div>
<div class="meta"><h1>{escape(_("QUOTATION"))}</h1>
{escape(_("No.:"))} <strong>{escape(quote.number)}</strong><br>
{escape(_("Date:"))} {escape(t.format_date(quote.issued_on))}<br>
{escape(_("Valid until:"))} {escape(t.format_date(quote.valid_until))}<br>
<span class="status">{escape(status)}</span></div></div>
<div class="parties">{escape(_("To:"))}<br>{"<br>".join(customer_lines)}</div>
<table class="lines"><thead><tr><th>#</th><th>{escape(_("SKU"))}</th><th>{escape(_("Description"))}</th>
<th>{escape(_("Unit"))}</th><th class=num>{escape(_("Qty"))}</th><th class=num>{escape(_("Unit price"))}</th>
<th class=num>{escape(_("Discount"))}</th><th class=num>{escape(_("VAT"))}</th><th class=num>{escape(_("Amount"))}</th>
</tr></thead>
<tbody>{"".join(rows)}</tbody></table>
<table class="totals">
<tr><td>{escape(_("Subtotal"))}</td><td class=num>{money(quote.subtotal_minor)}</td></tr>
<tr><td>{escape(_("Discount"))}</td><td class=num>-{money(quote.discount_minor)}</td></tr>
<tr><td>{escape(_("VAT"))}</td><td class=num>{money(quote.tax_minor)}</td></tr>
<tr class="grand"><td>{escape(_("Total"))}</td><td class=num>{money(quote.total_minor)}</td></tr>
</table>
{words}
<table class="vat"><thead><tr><th>{escape(_("VAT rate"))}</th><th>{escape(_("Taxable amount"))}</th>
<th>{escape(_("VAT amount"))}</th></tr></thead>
<tbody>{vat_rows}</tbody></table>
{notes}
<div class="sign"><div>{escape(_("Customer"))}<br><em>{escape(_("(signature and full name)"))}</em></div>
<div>{escape(_("For the seller"))}<br><em>{escape(_("(signature and seal)"))}</em></div></div>
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


def labels_html(labels: Sequence[Sequence[str]], layout: LabelLayout, t: Translator) -> str:
    """Printable sheets of address labels (each label: its lines, first in bold) on A4 with print CSS; the page's
    language and title are ``t``'s."""
    per_sheet = layout.columns * layout.rows
    sheets = []
    for start in range(0, max(len(labels), 1), per_sheet):
        cells = []
        for lines in labels[start : start + per_sheet]:
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
<html lang="{t.locale}"><head><meta charset="utf-8">
<title>{escape(t.gettext("Address labels (%(count)s)") % {"count": t.format_number(len(labels))})}</title>
<style>{css}</style></head>
<body>{"".join(sheets)}</body></html>
"""
