"""How the console shows the core's coded values to a person: lifecycle stages and channels in the user's language,
phone numbers the way people of the business's country write them.

The Jinja filters ``stage``, ``channel`` and ``phone`` (registered by :class:`crmkit.console.app.ConsoleApp`) are
for every template, the core's and the plugins'; machine formats (links, CSV, the API) keep the codes and E.164.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import phonenumbers
from jinja2 import pass_context

from crmkit.core.models import LIFECYCLE_STAGES

if TYPE_CHECKING:
    from jinja2.runtime import Context

    from crmkit.i18n import Translator

#: Lifecycle stage → its msgid.
STAGE_LABELS = {
    "lead": "Lead",
    "prospect": "Prospect",
    "customer": "Customer",
    "churned": "Churned",
    "partner": "Partner",
    "distributor": "Distributor",
    "retailer": "Retailer",
}
#: The core's channels → their msgids (a plugin's own channel is shown by its code).
CHANNEL_LABELS = {
    "email": "E-mail",
    "phone": "Phone",
    "sms": "SMS",
    "chat": "Chat",
    "social": "Social media",
    "web": "Website",
    "fax": "Fax",
    "post": "Post",
    "in_person": "In person",
}


def stage_label(i18n: Translator, stage: str) -> str:
    """A lifecycle stage as the user reads it (an unknown code as it is)."""
    return i18n.gettext(STAGE_LABELS[stage]) if stage in STAGE_LABELS else stage


def channel_label(i18n: Translator, channel: str) -> str:
    """A channel as the user reads it (a plugin's channel by its code)."""
    return i18n.gettext(CHANNEL_LABELS[channel]) if channel in CHANNEL_LABELS else channel


def stage_choices(i18n: Translator) -> list[tuple[str, str]]:
    """(code, label) of every lifecycle stage, in the core's order, for a select input."""
    return [(stage, stage_label(i18n, stage)) for stage in LIFECYCLE_STAGES]


def format_phone(number: str, country: str) -> str:
    """An E.164 number of ``country`` in its national format (``+84903123456`` → ``0903 123 456`` in VN),
    another country's in the international format; a masked or unparsable value unchanged."""
    try:
        parsed = phonenumbers.parse(number, None)
    except phonenumbers.NumberParseException:
        return number
    if not phonenumbers.is_valid_number(parsed):
        return number
    local = phonenumbers.region_code_for_number(parsed) == country.upper()
    return phonenumbers.format_number(
        parsed, phonenumbers.PhoneNumberFormat.NATIONAL if local else phonenumbers.PhoneNumberFormat.INTERNATIONAL
    )


@pass_context
def stage_filter(context: Context, value: Any) -> str:
    """``{{ customer.lifecycle_stage | stage }}``."""
    return stage_label(context["i18n"], value) if value else ""


@pass_context
def channel_filter(context: Context, value: Any) -> str:
    """``{{ consent.channel | channel }}``."""
    return channel_label(context["i18n"], value) if value else ""


@pass_context
def phone_filter(context: Context, value: Any) -> str:
    """``{{ number | phone }}``: national for the business's country (``crm.default_country``)."""
    return format_phone(value, context["r"].crm.default_country) if value else ""


@pass_context
def day_filter(context: Context, value: Any) -> str:
    """``{{ lot.expires_at | day }}``: the date an aware moment falls on in the user's zone (else the business's)."""
    if value is None:
        return ""
    request = context["r"]
    from crmkit.vncalendar import zone_named

    zone = zone_named(request.user.timezone) if request.user and request.user.timezone else request.crm.timezone
    return context["i18n"].format_date(value.astimezone(zone).date())


FILTERS = {"stage": stage_filter, "channel": channel_filter, "phone": phone_filter, "day": day_filter}
