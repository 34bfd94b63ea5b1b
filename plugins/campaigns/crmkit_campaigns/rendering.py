"""Rendering a campaign's message for its recipients: the placeholders' values (read in batches), the
template, tracked links, the unsubscribe link every message carries, and the HTML part of e-mails."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime, tzinfo
from typing import TYPE_CHECKING, Any

import attrs
import sqlalchemy as sa

from crmkit.errors import CRMError
from crmkit.plugin_api import core_tables as core
from crmkit_campaigns import templates
from crmkit_campaigns.channels import URL, html_body, split_trailing
from crmkit_campaigns.objects import Campaign, Variant
from crmkit_campaigns.segment_sql import Field
from crmkit_campaigns.signing import Signer, click_url, links
from crmkit_campaigns.sqlparts import primary_contact

if TYPE_CHECKING:
    from crmkit.crm import CRM

#: Placeholders every template may use, with their types (plugins' segment fields are added).
BASE_VARIABLES = {
    "first_name": "text",
    "name": "text",
    "given_name": "text",
    "family_name": "text",
    "email": "text",
    "phone": "text",
    "city": "text",
    "province": "text",
    "customer_id": "number",
    "birth_date": "date",
    "campaign_name": "text",
    "unsubscribe_url": "text",
    "today": "date",
}
_TEMPLATE_TYPES = {"text": "text", "number": "number", "date": "date", "datetime": "datetime"}
#: Placeholders whose value this CRM makes (not a customer): a link in them is a link.
SYSTEM_LINKS = frozenset({"unsubscribe_url"})
UNSUBSCRIBE_FOOTER = "\n\n--\nKhông muốn nhận tin nữa? / Unsubscribe: {url}"


def variables(fields: Mapping[str, Field]) -> dict[str, str]:
    """Placeholder name → type: the base ones and every plugin segment field (``points_balance``…)."""
    found = dict(BASE_VARIABLES)
    for name, field in fields.items():
        if field.source == "plugin" and name not in found:
            found[name] = _TEMPLATE_TYPES.get(field.type, "any")
    return found


@attrs.frozen
class Rendered:
    """One rendered message."""

    subject: str | None
    text: str
    html: str | None
    unsubscribe_url: str


class Renderer:
    """Renders one campaign's variants; reads its recipients' values in one query per batch."""

    def __init__(
        self,
        crm: CRM,
        campaign: Campaign,
        fields: Mapping[str, Field],
        *,
        zone: tzinfo,
        base_url: str,
        signer: Signer,
        html: bool,
    ) -> None:
        self._crm = crm
        self.campaign = campaign
        self.zone = zone
        self.base_url = base_url
        self.signer = signer
        self.html = html
        known = variables(fields)
        self.known = known
        self.templates = {
            v.id: (
                templates.parse(v.subject, known, field="subject") if v.subject else None,
                templates.parse(v.body, known, field="body"),
            )
            for v in campaign.variants
        }
        used = set().union(
            *(body.names | (subject.names if subject else set()) for subject, body in self.templates.values())
        )
        self.plugin_fields = {
            name: fields[name].expression for name in sorted(used) if name in fields and fields[name].source == "plugin"
        }
        self.loyalty = "points_balance" in used and crm.has_service("loyalty")

    def values(self, conn: sa.Connection, customer_ids: Iterable[int], now: datetime) -> dict[int, dict[str, Any]]:
        """Placeholder values of each customer, read together."""
        c = core.customers.c
        ids = sorted(set(customer_ids))
        if not ids:
            return {}
        query = sa.select(
            c.id,
            c.name,
            c.given_name,
            c.family_name,
            c.city,
            c.province,
            c.birth_date,
            primary_contact("email").label("email"),
            primary_contact("phone").label("phone"),
            *(expression.label(f"f_{name}") for name, expression in self.plugin_fields.items()),
        ).where(c.id.in_(ids))
        found = {}
        for row in conn.execute(query).mappings():
            values = {
                "customer_id": row["id"],
                "name": row["name"],
                "given_name": row["given_name"],
                "family_name": row["family_name"],
                "first_name": row["given_name"] or row["name"],
                "email": row["email"],
                "phone": row["phone"],
                "city": row["city"],
                "province": row["province"],
                "birth_date": row["birth_date"],
                "campaign_name": self.campaign.name,
                "today": now.astimezone(self.zone).date(),
            }
            values.update({name: row[f"f_{name}"] for name in self.plugin_fields})
            found[row["id"]] = values
        if self.loyalty:  # in points, as loyalty shows them (its segment field counts units)
            for customer_id, values in found.items():
                try:
                    values["points_balance"] = self._crm.loyalty.balance(customer_id)
                except CRMError:
                    values["points_balance"] = None  # no loyalty program yet: the template's default applies
        return found

    def render(self, variant: Variant, values: Mapping[str, Any], message_id: int) -> Rendered:
        """The message for one customer: tracked links, an unsubscribe link, and an HTML part for e-mail."""
        subject_template, body_template = self.templates[variant.id]
        return self._render(subject_template, body_template, values, message_id)

    def render_content(self, content: Mapping[str, Any], values: Mapping[str, Any], message_id: int) -> Rendered:
        """A transactional message (``send_message``) from its own template and values (``content``): those values
        are the customer's kind — a link among them stays plain text, never rewritten or signed."""
        own = content.get("values") or {}
        known = {**BASE_VARIABLES, **dict.fromkeys(own, "text")}
        subject = templates.parse(content["subject"], known, field="subject") if content.get("subject") else None
        body = templates.parse(content["body"], known, field="body")
        return self._render(subject, body, {**values, **own}, message_id)

    def _render(
        self,
        subject_template: templates.Template | None,
        body_template: templates.Template,
        values: Mapping[str, Any],
        message_id: int,
    ) -> Rendered:
        urls = links(self.signer, self.base_url, message_id)
        values = {**values, "unsubscribe_url": urls["unsubscribe"]}
        currency = self.campaign.currency
        pieces = body_template.pieces(values, currency=currency, zone=self.zone)
        if "unsubscribe_url" not in body_template.names:
            pieces.append((UNSUBSCRIBE_FOOTER.format(url=urls["unsubscribe"]), None))
        text, linked = self._link(pieces, message_id, urls["unsubscribe"])
        subject = subject_template.render(values, currency=currency, zone=self.zone) if subject_template else None
        return Rendered(
            subject, text, html_body(text, urls["open"], linked) if self.html else None, urls["unsubscribe"]
        )

    def _link(
        self, pieces: list[tuple[str, str | None]], message_id: int, unsubscribe: str
    ) -> tuple[str, list[tuple[int, int]]]:
        """The text with the links the template's author wrote made tracked, and where the links are in it.

        A URL is a link only when its scheme, host and the ``/`` ending the host come from the template's own
        text (or are the unsubscribe URL): a URL in a customer's value (a name ``An https://evil.example``), or
        one whose host a value completes, stays plain text — never signed, never clickable in the HTML part."""
        text = "".join(piece for piece, _ in pieces)
        authored = bytearray(len(text))  # 1 where the template's author (or this CRM) wrote the character
        at = 0
        for piece, name in pieces:
            if name is None or name in SYSTEM_LINKS:
                authored[at : at + len(piece)] = b"\x01" * len(piece)
            at += len(piece)
        out: list[str] = []
        linked: list[tuple[int, int]] = []
        last = length = 0
        for found in URL.finditer(text):
            url = split_trailing(found.group())[0]
            start = found.start()
            if 0 in authored[start : start + _origin_length(url)]:
                continue  # a customer's text: left as it is
            link = (
                url
                if url == unsubscribe or url.startswith(self.base_url + "/")
                else click_url(self.signer, self.base_url, message_id, url)
            )
            out.append(text[last:start])
            length += start - last
            out.append(link)
            linked.append((length, length + len(link)))
            length += len(link)
            last = start + len(url)
        out.append(text[last:])
        return "".join(out), linked


def _origin_length(url: str) -> int:
    """How much of ``url`` names where it leads: ``https://host/`` (with the ``/``, ``?`` or ``#`` ending the host)."""
    host = len(url.split("://", 1)[0]) + 3
    ends = [i for i in (url.find(c, host) for c in "/?#") if i != -1]
    return min(ends) + 1 if ends else len(url)
