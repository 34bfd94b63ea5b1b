"""Mailing labels (``crm.sales.labels``): printable address sheets for chosen customers, a tag, or everyone.

Addresses are read through ``crm.customers`` (the core owns them), so a user prints labels for the
customers they may read (``customers.read`` scope); printing needs ``sales.labels.print``. A customer
without a postal address — or whose address the user may not see (``customers.contact_details``) —
gets no label and, when chosen by id, is listed as skipped.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import attrs

from crmkit.errors import ValidationError
from crmkit.plugin_api import Customer
from crmkit_sales.base import Part
from crmkit_sales.permissions import LABELS_PRINT
from crmkit_sales.render import LAYOUTS, address_lines, labels_html

PAGE = 1000


@attrs.frozen
class LabelSheet:
    """The HTML of the sheets, how many labels it holds, the customers labelled, and those (chosen by id) left out
    for want of an address one may see."""

    html: str
    count: int
    skipped: tuple[int, ...]
    labelled: tuple[int, ...] = ()


class Labels(Part):
    """Address labels in the Vietnamese format (street; ward, district; province) on A4 sheets."""

    def render(
        self,
        *,
        customer_ids: Sequence[int] | None = None,
        tag: str | None = None,
        everyone: bool = False,
        layout: str = "3x8",
        locale: str | None = None,
    ) -> LabelSheet:
        """Labels for ``customer_ids``, customers tagged ``tag``, or ``everyone`` with a postal address; the page in
        ``locale``, else the business's language."""
        from crmkit.plugin_api import plugin_translator

        self.require(LABELS_PRINT)
        if sum((customer_ids is not None, tag is not None, everyone)) != 1:
            raise ValidationError("choose customer ids, a tag, or everyone", field="customers")
        if layout not in LAYOUTS:
            raise ValidationError(f"must be one of {', '.join(LAYOUTS)}", field="layout")
        labels: list[list[str]] = []
        labelled: list[int] = []
        skipped: list[int] = []
        for customer in self._customers(customer_ids, tag):
            if customer.addresses and self.crm.access.sees_contacts_of(customer.owner):
                labels.append([customer.name, *address_lines(customer.addresses[0], country=self.crm.default_country)])
                labelled.append(customer.id)
            elif customer_ids is not None:
                skipped.append(customer.id)
        page = labels_html(labels, LAYOUTS[layout], plugin_translator(self.crm, "sales", locale))
        return LabelSheet(page, len(labels), tuple(skipped), tuple(labelled))

    def _customers(self, customer_ids: Sequence[int] | None, tag: str | None) -> Iterator[Customer]:
        if customer_ids is not None:
            seen: set[int] = set()
            for customer_id in customer_ids:
                customer = self.crm.customers.get(customer_id)
                if customer.id not in seen and customer.status == "active":
                    seen.add(customer.id)
                    yield customer
            return
        after = None
        while True:
            page = self.crm.customers.find(tag=tag, after=after, limit=PAGE)
            yield from page
            if page.next_cursor is None:
                return
            after = page.next_cursor
