"""Masked contact details for users without ``customers.contact_details``: ``+84 9** *** 678``, ``l***@example.vn``.

Masking is a read-side projection in the services, so every door (export, API, page, report)
gets the masked value and none can forget it.
"""

from __future__ import annotations

from typing import Any

import attrs

from crmkit.core.models import Address, Customer, Interaction

MASK = "*"


def mask_phone(phone: str) -> str:
    """``+84912345678`` → ``+84 9** *** 678``: the country code, the first and last three digits of the number."""
    import phonenumbers

    try:
        parsed = phonenumbers.parse(phone, None)
        code, national = str(parsed.country_code), str(parsed.national_number)
    except phonenumbers.NumberParseException:
        code, national = "", phone.lstrip("+")
    if len(national) <= 4:
        groups = MASK * len(national)
    else:
        head = national[0] + MASK * (len(national) - 4)
        groups = " ".join([*(head[n : n + 3] for n in range(0, len(head), 3)), national[-3:]])
    return f"+{code} {groups}" if code else groups


def mask_email(email: str) -> str:
    """``lan.nguyen@example.vn`` → ``l***@example.vn``: the first letter and the domain."""
    local, _, domain = email.partition("@")
    return f"{local[:1]}{MASK * 3}@{domain}" if domain else MASK * 3


def mask_address(address: Address) -> Address:
    """The street lines and postal code hidden; ward, district, city, province and country stay (areas, not homes)."""
    return attrs.evolve(address, line1=MASK * 3, line2=None, postal_code=None)


def mask_customer(customer: Customer) -> Customer:
    """The customer with phones, e-mails and street addresses masked."""
    return attrs.evolve(
        customer,
        phones=tuple(mask_phone(p) for p in customer.phones),
        emails=tuple(mask_email(e) for e in customer.emails),
        addresses=tuple(mask_address(a) for a in customer.addresses),
    )


def mask_sender(sender: str | None) -> str | None:
    """An interaction's sender address or number, masked like a contact point."""
    if not sender:
        return sender
    return mask_email(sender) if "@" in sender else mask_phone(sender) if sender.startswith("+") else MASK * 3


_MASKERS = {
    "email": mask_email,
    "emails": mask_email,
    "phone": mask_phone,
    "phones": mask_phone,
    "sender": mask_sender,
    "address": mask_sender,
}


def mask_changes(value: Any, key: str | None = None) -> Any:
    """An audit entry's ``changes`` (any JSON) with every e-mail, phone, sender and street address masked, by key."""
    if isinstance(value, dict):
        if key == "addresses" or {"line1", "line2"} & value.keys():
            value = {**value, **{f: MASK * 3 for f in ("line1", "line2", "postal_code") if value.get(f)}}
        return {k: mask_changes(v, k) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [mask_changes(v, key) for v in value]
    if isinstance(value, str) and key in _MASKERS and value:
        return _MASKERS[key](value)
    return value


def mask_interaction(interaction: Interaction) -> Interaction:
    """The interaction with the address or number it came from masked."""
    return attrs.evolve(interaction, sender=mask_sender(interaction.sender))
