"""The service plugin's settings, stored as CRM settings (``service.<name>``) through ``crm.set_setting``.

- ``reply_to_resolved``: ``reopen`` (default) — a customer's reply reopens a resolved case — or ``refuse`` (a
  ``Conflict``: the customer opens a new case).
- ``reply_to_closed``: ``refuse`` (default) or ``reopen`` — a customer's reply reopens a closed case too.
- ``csat_reopen_below``: a satisfaction score below this (2–5) reopens the resolved case; unset: never.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from crmkit import ValidationError

if TYPE_CHECKING:
    from crmkit import CRM

PREFIX = "service."
#: Each setting's choices (the first is the default); ``csat_reopen_below`` is a number or None instead.
CHOICES: dict[str, tuple[str, ...]] = {
    "reply_to_resolved": ("reopen", "refuse"),
    "reply_to_closed": ("refuse", "reopen"),
}
NAMES = (*CHOICES, "csat_reopen_below")


def setting(crm: CRM, name: str) -> Any:
    """A setting's value (its default when never set)."""
    value = crm.settings.get(PREFIX + name)
    if name in CHOICES:
        return value if value in CHOICES[name] else CHOICES[name][0]
    return value


def configure(crm: CRM, name: str, value: Any) -> Any:
    """Set a setting (``ValidationError`` naming it for an unknown name or value); needs ``service.admin``."""
    if name not in NAMES:
        raise ValidationError(f"unknown setting: one of {', '.join(NAMES)}", field="name")
    if name in CHOICES:
        if value not in CHOICES[name]:
            raise ValidationError(f"must be one of {', '.join(CHOICES[name])}", field=name)
    elif value in (None, "", "off"):
        value = None
    else:
        try:
            value = int(value)
        except (TypeError, ValueError):
            value = 0
        if not 2 <= value <= 5:
            raise ValidationError("must be a score from 2 to 5, or off", field=name)
    crm.set_setting(PREFIX + name, value, permission="service.admin")
    return value
