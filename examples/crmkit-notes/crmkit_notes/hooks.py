"""The plugin's hook implementations: thin glue between crmkit's events and ``crm.notes``.

Export, erasure and merges of the ``notes`` table need no hook: ``plugin.py`` declares it in ``personal_data``.

Each implementation takes only the arguments it needs (pluggy passes the rest to others).
"""

from __future__ import annotations

import random
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from marshmallow import fields, validate

from crmkit import Permission, hookimpl
from crmkit.plugin_api import customers
from crmkit_notes.models import notes
from crmkit_notes.service import PERMISSIONS, NotesService

if TYPE_CHECKING:
    from crmkit import CRM, Customer

#: Languages a customer may prefer to be addressed in (``customer.attributes["preferred_language"]``).
LANGUAGES = ("vi", "en", "zh", "ko", "ja", "fr")

DEMO_NOTES = (
    "Khách hỏi về chương trình khuyến mãi tháng này.",
    "Gọi lại sau 17h, khách bận họp buổi chiều.",
    "Prefers e-mail over phone calls.",
    "Asked for a quote for 50 units; follow up next week.",
    "Khách phàn nàn giao hàng chậm, đã xin lỗi và tặng voucher.",
    "Met at the Hà Nội trade fair; interested in the premium plan.",
)


@hookimpl
def crmkit_services(crm: CRM) -> dict[str, Any]:
    return {"notes": NotesService(crm)}


@hookimpl
def crmkit_permissions() -> list[Permission]:
    return PERMISSIONS


@hookimpl
def crmkit_customer_fields() -> dict[str, fields.Field]:
    return {"preferred_language": fields.String(validate=validate.OneOf(LANGUAGES), allow_none=True)}


@hookimpl
def crmkit_customer_profile(crm: CRM, customer: Customer) -> dict[str, Any]:
    return {"notes": crm.notes.summary(customer.id)}


@hookimpl
def crmkit_segment_fields() -> dict[str, Any]:
    count = sa.select(sa.func.count()).where(notes.c.customer_id == customers.c.id).scalar_subquery()
    return {"note_count": count}


@hookimpl
def crmkit_demo_populate(crm: CRM, customer_ids: list[int], seed: int) -> None:
    rng = random.Random(seed)  # noqa: S311 - demo data, repeatable by seed
    now = crm.now()
    chosen = rng.sample(customer_ids, k=len(customer_ids) // 3)
    crm.notes.add_many(
        {
            "customer_id": cid,
            "text": rng.choice(DEMO_NOTES),
            "created_at": now - timedelta(minutes=rng.randrange(525_600)),
        }
        for cid in sorted(chosen)
        for _ in range(rng.randint(1, 3))
    )


@hookimpl
def crmkit_demo_overview(crm: CRM) -> dict[str, list[str]]:
    with crm.reading() as conn:
        total, about = conn.execute(sa.select(sa.func.count(), sa.func.count(sa.distinct(notes.c.customer_id)))).one()
    return {"Notes": [f"{total} notes about {about} customers"]}
