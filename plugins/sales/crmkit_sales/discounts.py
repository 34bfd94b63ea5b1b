"""Voucher codes at the till: another plugin (loyalty) turns a code into a discount through the
``crmkit_order_discounts`` hook, and sales spreads it over the order's lines.

A discount comes off the lines' amounts **before VAT**, like every discount of a sales line (prices
are before VAT): it is spread over the lines in proportion to their net amounts (largest remainder,
so the shares add up to the discount exactly, to the minor unit), and each line's tax is computed
again on its new net amount with the rounding rule of :mod:`crmkit_sales.pricing`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

import attrs

from crmkit.errors import ValidationError
from crmkit.money import Money
from crmkit_sales import hookspecs
from crmkit_sales.objects import Line
from crmkit_sales.pricing import totals

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from crmkit.crm import CRM

MAX_CODES = 10


@attrs.frozen
class OrderDraft:
    """An order about to be placed, priced, before its vouchers (what ``crmkit_order_discounts`` receives)."""

    customer_id: int
    currency: str
    placed_at: datetime
    lines: tuple[Line, ...]
    subtotal_minor: int
    discount_minor: int
    tax_minor: int
    total_minor: int

    @property
    def net_minor(self) -> int:
        """The amount before VAT, after the lines' own discounts: what vouchers can take off at most."""
        return sum(line.net_minor for line in self.lines)


@attrs.frozen
class Discount:
    """A voucher applied to an order: its ``code``, the ``amount_minor`` taken off before VAT, and a ``label``."""

    code: str
    amount_minor: int
    label: str


def voucher_codes(value: Any) -> tuple[str, ...]:
    """The voucher codes given for an order (a code or a list of codes), stripped; refuses blanks and repeats."""
    if value is None:
        return ()
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, Iterable) or isinstance(items, Mapping):
        raise ValidationError("give voucher codes as a list of texts", field="vouchers")
    codes: list[str] = []
    for item in items:
        code = item.strip() if isinstance(item, str) else None
        if not code or len(code) > 64:
            raise ValidationError(f"{item!r} is not a voucher code (1 to 64 characters)", field="vouchers")
        if code.upper() in (c.upper() for c in codes):
            raise ValidationError(f"voucher {code} is given twice", field="vouchers")
        codes.append(code)
    if len(codes) > MAX_CODES:
        raise ValidationError(f"at most {MAX_CODES} vouchers on one order", field="vouchers")
    return tuple(codes)


def apply_vouchers(
    crm: CRM,
    session: Session,
    *,
    customer_id: int,
    currency: str,
    placed_at: datetime,
    lines: Sequence[Line],
    codes: Sequence[str],
) -> tuple[list[Line], tuple[Discount, ...]]:
    """Ask the plugins (``crmkit_order_discounts``) for the discounts of ``codes`` and spread them over ``lines``.

    ``ValidationError`` (field ``vouchers``) for a code no plugin knows, one two plugins claim, an amount that is
    not a positive whole number of minor units, or vouchers worth more than the order before VAT.
    """
    draft = OrderDraft(
        customer_id=customer_id,
        currency=currency,
        placed_at=placed_at,
        lines=tuple(lines),
        **attrs.asdict(totals(lines)),
    )
    answers = crm.hooks.call(hookspecs.crmkit_order_discounts, order_draft=draft, codes=tuple(codes), session=session)
    found: dict[str, Discount] = {}
    for answer in answers or ():
        for item in answer or ():
            discount = _discount(item)
            key = discount.code.upper()
            if key in found:
                raise ValidationError(f"voucher {discount.code} is claimed by two plugins", field="vouchers")
            found[key] = discount
    wanted = {code.upper(): code for code in codes}
    unknown = [code for key, code in wanted.items() if key not in found]
    if unknown:
        raise ValidationError(f"unknown voucher code {', '.join(unknown)}", field="vouchers")
    discounts = tuple(found[key] for key in wanted)
    amount = sum(d.amount_minor for d in discounts)
    if amount > draft.net_minor:
        worth = ", ".join(f"{d.code} {Money(currency, d.amount_minor).format()}" for d in discounts)
        raise ValidationError(
            f"vouchers worth {Money(currency, amount).format()} ({worth}) are more than the order's "
            f"{Money(currency, draft.net_minor).format()} before VAT",
            field="vouchers",
        )
    return spread(lines, amount, currency), discounts


def spread(lines: Sequence[Line], amount: int, currency: str) -> list[Line]:
    """``lines`` with ``amount`` more discount, in proportion to their net amounts (largest remainder, ties to the
    first line); each changed line's tax and total are computed again (a percentage it had is dropped: its
    ``discount_minor`` then holds both)."""
    net = sum(line.net_minor for line in lines)
    if amount <= 0 or net <= 0:
        return list(lines)
    shares = [amount * line.net_minor // net for line in lines]
    order = sorted(range(len(lines)), key=lambda i: (-(amount * lines[i].net_minor % net), i))
    for i in order[: amount - sum(shares)]:
        shares[i] += 1
    result = []
    for line, share in zip(lines, shares, strict=True):
        if share == 0:
            result.append(line)
            continue
        new_net = line.net_minor - share
        tax = Money(currency, new_net).times(line.tax_rate).minor
        result.append(
            attrs.evolve(
                line,
                discount_percent=None,
                discount_minor=line.discount_minor + share,
                net_minor=new_net,
                tax_minor=tax,
                total_minor=new_net + tax,
            )
        )
    return result


def _discount(item: Any) -> Discount:
    """A discount line as a plugin returned it (a mapping or an object with ``code``, ``amount_minor``, ``label``)."""
    get = item.get if isinstance(item, Mapping) else lambda name: getattr(item, name, None)
    code, amount, label = get("code"), get("amount_minor"), get("label")
    if not isinstance(code, str) or isinstance(amount, bool) or not isinstance(amount, int) or amount <= 0:
        raise ValidationError(f"a plugin returned a bad discount for voucher {code!r}: {amount!r}", field="vouchers")
    return Discount(code=code, amount_minor=amount, label=str(label or code))
