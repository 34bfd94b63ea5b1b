"""A case's links beyond its customer: the organization's contact who raised it, the order or product it concerns
(checked through sales' public API — ``crm.sales`` — when sales is installed, kept as given otherwise) and its
attachments, stored as references (a URL or a storage key: the file itself lives elsewhere).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import attrs
import sqlalchemy as sa

from crmkit import NotFound, ValidationError
from crmkit.plugin_api import control_character_errors, customers, memberships, to_jsonable
from crmkit_service.models import attachments

if TYPE_CHECKING:
    from crmkit import CRM
    from crmkit_service.service import ServiceService

READ, WRITE = "service.read", "service.write"


def checked_links(
    crm: CRM, conn: sa.Connection, customer_id: int, contact_id: int | None, order_id: int | None, product: str | None
) -> dict[str, Any]:
    """The ``contact_id``, ``order_id`` and ``product`` columns of a case of ``customer_id``, checked: the contact
    is a member of the organization, the order is the customer's (or the contact's) and the product is in the
    catalogue — both through ``crm.sales`` when it is installed. ``ValidationError`` naming the field otherwise."""
    if contact_id is not None:
        kind = conn.execute(sa.select(customers.c.kind).where(customers.c.id == customer_id)).scalar()
        if kind != "organization":
            raise ValidationError(
                f"customer {customer_id} is not an organization: only an organization's case has a contact",
                field="contact_id",
            )
        member = conn.execute(
            sa.select(memberships.c.person_id).where(
                memberships.c.person_id == contact_id, memberships.c.organization_id == customer_id
            )
        ).scalar()
        if member is None:
            raise ValidationError(
                f"customer {contact_id} is not a member of organization {customer_id}", field="contact_id"
            )
    sales = crm.sales if crm.has_service("sales") else None
    if order_id is not None and sales is not None:
        try:
            order = sales.orders.fetch(conn, order_id)
        except NotFound:
            raise ValidationError(f"no order {order_id}", field="order_id") from None
        if order.customer_id not in (customer_id, contact_id):
            raise ValidationError(f"order {order_id} is not customer {customer_id}'s", field="order_id")
    if product is not None:
        product = product.strip() or None
    if product is not None:
        if errors := control_character_errors({"product": product}):
            raise ValidationError(errors)
        if sales is not None:
            try:
                product = sales.products.fetch(conn, product).sku
            except NotFound:
                raise ValidationError(f"no product {product!r} in the catalogue", field="product") from None
        elif len(product) > 100:
            raise ValidationError("longer than 100 characters", field="product")
    return {"contact_id": contact_id, "order_id": order_id, "product": product}


@attrs.frozen
class Attachment:
    """A file attached to a case, by reference: ``url`` or ``storage_key`` says where it is kept."""

    id: int
    case_id: int
    customer_id: int
    name: str
    url: str | None
    storage_key: str | None
    size: int | None
    content_type: str | None
    created_by: str
    created_at: datetime


class Attachments:
    """``crm.service.attachments``: references to files on a case (listed in its show, exported and erased)."""

    def __init__(self, crm: CRM, service: ServiceService) -> None:
        self._crm = crm
        self._service = service

    def add(
        self,
        case_id: int,
        name: str,
        *,
        url: str | None = None,
        storage_key: str | None = None,
        size: int | None = None,
        content_type: str | None = None,
    ) -> Attachment:
        """Attach a file by reference (exactly one of ``url`` — http or https — and ``storage_key``); needs
        ``service.write`` on the case. Bad values are a ``ValidationError`` naming the field, nothing written."""
        self._crm.access.require(WRITE)
        values = _checked(name, url, storage_key, size, content_type)
        with self._crm.transaction() as session:
            conn = session.connection()
            case = self._service._one(conn, case_id, WRITE, lock=True)
            row = {
                **values,
                "case_id": case.id,
                "customer_id": case.customer_id,
                "created_by": self._crm.actor,
                "created_at": self._crm.now(),
            }
            new_id: int = conn.execute(attachments.insert().values(**row).returning(attachments.c.id)).scalar_one()
            attachment = Attachment(id=new_id, **row)
            self._crm.audit.record(
                session,
                "create",
                "case_attachment",
                new_id,
                customer_id=case.customer_id,
                changes={"case_id": case.id, "name": attachment.name},
            )
            self._crm.events.emit(
                session,
                "case.attachment_added",
                lambda: {"case_id": case.id, "attachment": to_jsonable(attachment)},
                customer_id=case.customer_id,
            )
        return attachment

    def list(self, case_id: int) -> list[Attachment]:
        """A case's attachments, oldest first (``NotFound`` outside ``service.read``'s scope)."""
        with self._crm.reading() as conn:
            self._service._one(conn, case_id, READ)
            return of_cases(conn, [case_id]).get(case_id, [])

    def remove(self, attachment_id: int) -> None:
        """Forget an attachment reference (the file itself is not touched); needs ``service.write`` on the case."""
        self._crm.access.require(WRITE)
        with self._crm.transaction() as session:
            conn = session.connection()
            row = conn.execute(sa.select(attachments).where(attachments.c.id == attachment_id)).mappings().first()
            if row is None:
                raise NotFound("attachment", attachment_id)
            self._service._one(conn, row["case_id"], WRITE, lock=True)
            conn.execute(attachments.delete().where(attachments.c.id == attachment_id))
            self._crm.audit.record(
                session,
                "delete",
                "case_attachment",
                attachment_id,
                customer_id=row["customer_id"],
                changes={"case_id": row["case_id"], "name": row["name"]},
            )


def of_cases(conn: sa.Connection, case_ids: Sequence[int]) -> dict[int, list[Attachment]]:
    """The attachments of each of ``case_ids``, oldest first (one query)."""
    found: dict[int, list[Attachment]] = {}
    rows = conn.execute(
        sa.select(attachments).where(attachments.c.case_id.in_(case_ids)).order_by(attachments.c.id)
    ).mappings()
    for row in rows:
        found.setdefault(row["case_id"], []).append(Attachment(**row))
    return found


def _checked(
    name: str, url: str | None, storage_key: str | None, size: int | None, content_type: str | None
) -> dict[str, Any]:
    texts: dict[str, str | None] = {
        "name": (name or "").strip(),
        "url": (url or "").strip() or None,
        "storage_key": (storage_key or "").strip() or None,
        "content_type": (content_type or "").strip().lower() or None,
    }
    if not texts["name"]:
        raise ValidationError("must not be empty", field="name")
    if errors := control_character_errors(texts):
        raise ValidationError(errors)
    for field, most in (("name", 300), ("url", 2000), ("storage_key", 500), ("content_type", 200)):
        if len(texts[field] or "") > most:
            raise ValidationError(f"longer than {most} characters", field=field)
    if (texts["url"] is None) == (texts["storage_key"] is None):
        raise ValidationError("give either a URL or a storage key (where the file is kept)", field="url")
    if texts["url"] is not None:
        parts = urlsplit(texts["url"])
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValidationError("must be an http:// or https:// address", field="url")
    if texts["content_type"] is not None and not _is_media_type(texts["content_type"]):
        raise ValidationError("must be a media type like image/jpeg or application/pdf", field="content_type")
    if size is not None and (not isinstance(size, int) or isinstance(size, bool) or size < 0):
        raise ValidationError("must be a whole number of bytes, zero or more", field="size")
    return {**texts, "size": size}


def _is_media_type(text: str) -> bool:
    kind, slash, sub = text.partition("/")
    return bool(slash and kind and sub and " " not in text)
