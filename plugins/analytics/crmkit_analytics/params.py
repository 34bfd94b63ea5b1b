"""Parameters of the measures: settings stored per CRM database, their defaults, and input checks.

Settings live in the core's ``crmkit_settings`` under ``analytics.<name>`` (``crm.analytics.configure``);
every measure also takes them as arguments, which win over the stored values. Rates are Decimals
(stored as strings), money is integer minor units of the analytics currency.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime, time
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

from crmkit import ValidationError

if TYPE_CHECKING:
    from crmkit import CRM

PREFIX = "analytics."

#: name → (default, description); what ``crmkit analytics settings`` lists.
DEFAULTS: dict[str, tuple[Any, str]] = {
    "currency": (None, "currency the measures use when purchases are in several (ISO 4217, e.g. VND)"),
    "rfm_monetary": (
        "total",
        "RFM monetary value: total (net spend in the window) or average (spend per purchase, "
        "as Kumar & Reinartz define it)",
    ),
    "discount_rate": ("0.10", "annual discount rate for PCV and CLV, 0 ≤ rate < 1 (0.10 = 10% a year)"),
    "gross_margin_rate": ("1", "share of revenue that is gross margin, 0 < rate ≤ 1; 1 = value measured as revenue"),
    "clv_horizon_days": (365, "CLV horizon in days"),
    "clv_model": ("bgnbd", "CLV purchase model predicting: bgnbd or pareto_nbd (both are fitted and compared)"),
    "clv_occasions": (
        "day",
        "CLV purchase occasions: day (a local day's transactions are one, as the papers "
        "count) or transaction (each is one)",
    ),
    "new_days": (90, "customer types: a first purchase within this many days makes a customer new"),
    "loyal_purchases": (4, "customer types: purchases needed (with a recent one) to be loyal"),
    "at_risk_days": (180, "customer types: no purchase for this many days makes a customer at risk"),
    "lost_days": (365, "customer types: no purchase (and no inbound contact) for this many days makes a customer lost"),
    "sow_window_days": (365, "share of wallet: our spend is summed over this many days"),
    "sow_low_share": (
        "0.30",
        "share of wallet below which a customer with high category spend is a growth opportunity",
    ),
    "category_spend_estimates": (
        {},
        "estimated yearly category spend (minor units) per RFM segment, for customers "
        "without a category_spend attribute",
    ),
}


def setting(crm: CRM, name: str) -> Any:
    """The stored value of ``analytics.<name>``, or its default."""
    return crm.settings.get(PREFIX + name, DEFAULTS[name][0])


def rate(
    value: Any, field: str, *, low: Decimal, high: Decimal, include_low: bool, include_high: bool, meaning: str
) -> Decimal:
    """``value`` as a Decimal within the given bounds, or a ``ValidationError`` naming the field."""
    if isinstance(value, float):
        value = repr(value)
    try:
        number = Decimal(str(value).strip().rstrip("%")) / (100 if str(value).strip().endswith("%") else 1)
    except (InvalidOperation, ValueError):
        raise ValidationError(f"not a number: {value!r}", field=field) from None
    if not number.is_finite():
        raise ValidationError(f"must be a finite number, got {value!r}", field=field)
    above = number >= low if include_low else number > low
    below = number <= high if include_high else number < high
    if not (above and below):
        left = "at least" if include_low else "above"
        right = "at most" if include_high else "below"
        raise ValidationError(f"must be {left} {low} and {right} {high} ({meaning}), got {value}", field=field)
    return number


def discount_rate(crm: CRM, value: Any = None) -> Decimal:
    """The annual discount rate: 0 ≤ rate < 1."""
    return rate(
        setting(crm, "discount_rate") if value is None else value,
        "discount_rate",
        low=Decimal(0),
        high=Decimal(1),
        include_low=True,
        include_high=False,
        meaning="0.10 means 10% a year",
    )


def margin_rate(crm: CRM, value: Any = None) -> Decimal:
    """The gross-margin rate: 0 < rate ≤ 1."""
    return rate(
        setting(crm, "gross_margin_rate") if value is None else value,
        "gross_margin_rate",
        low=Decimal(0),
        high=Decimal(1),
        include_low=False,
        include_high=True,
        meaning="0.35 means 35% of revenue is margin",
    )


def share(crm: CRM, value: Any = None) -> Decimal:
    """The low-share threshold for growth opportunities: 0 < share ≤ 1."""
    return rate(
        setting(crm, "sow_low_share") if value is None else value,
        "low_share",
        low=Decimal(0),
        high=Decimal(1),
        include_low=False,
        include_high=True,
        meaning="0.3 means 30% of the category spend",
    )


def monetary(crm: CRM, value: Any = None) -> str:
    """The RFM monetary definition, ``total`` or ``average`` (the setting unless ``value`` is given)."""
    from crmkit_analytics.rfm import MONETARY

    raw = setting(crm, "rfm_monetary") if value is None else value
    text = str(raw).strip().lower()
    if text not in MONETARY:
        raise ValidationError(f"must be one of {', '.join(MONETARY)}, got {raw!r}", field="monetary")
    return text


def choice(crm: CRM, name: str, value: Any, allowed: tuple[str, ...]) -> str:
    """The setting ``name`` unless ``value`` is given, one of ``allowed`` (e.g. the CLV model)."""
    raw = setting(crm, name) if value is None else value
    text = str(raw).strip().lower()
    if text not in allowed:
        raise ValidationError(f"must be one of {', '.join(allowed)}, got {raw!r}", field=name)
    return text


def local_day(value: date | datetime | str, field: str, zone: Any) -> date:
    """A date (``YYYY-MM-DD``, a ``date``; an aware time, or an ISO time with its offset, is read as its day in
    ``zone``), or a ``ValidationError``."""
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValidationError("give a timezone-aware time (or a date)", field=field)
        return value.astimezone(zone).date()
    if isinstance(value, date):
        return value
    text = str(value).strip()
    try:
        if "T" in text or " " in text:
            return local_day(datetime.fromisoformat(text), field, zone)
        return date.fromisoformat(text)
    except ValueError:
        raise ValidationError(f"not a date (YYYY-MM-DD) or ISO time: {value!r}", field=field) from None


def days(crm: CRM, name: str, value: Any = None) -> int:
    """The setting ``name`` (a number of days) unless ``value`` is given, checked by :func:`whole_days`."""
    return whole_days(setting(crm, name) if value is None else value, name)


def whole_days(raw: Any, field: str) -> int:
    """A whole number of days between 1 and 36600 (a window, horizon or threshold), or a ``ValidationError``."""
    try:
        number = int(raw)
        exact = not isinstance(raw, bool) and number == Decimal(str(raw))
    except (TypeError, ValueError, InvalidOperation):
        raise ValidationError(f"must be a whole number of days, got {raw!r}", field=field) from None
    if not exact or not 1 <= number <= 36600:
        raise ValidationError(f"must be a whole number of days between 1 and 36600, got {raw!r}", field=field)
    return number


def count(crm: CRM, name: str, value: Any = None) -> int:
    """A whole number ≥ 1 (e.g. purchases needed to be loyal)."""
    raw = setting(crm, name) if value is None else value
    if isinstance(raw, bool) or not isinstance(raw, (int, str)) or not str(raw).isdigit() or int(raw) < 1:
        raise ValidationError(f"must be a whole number ≥ 1, got {raw!r}", field=name)
    return int(raw)


def as_of(crm: CRM, value: datetime | date | str | None) -> datetime:
    """The instant a measure is computed for: a UTC datetime (``crm.now()`` by default); a date means the end of
    that day in the business's time zone (``crm.timezone``), as the months and days of the reports are its."""
    if value is None:
        return crm.now()
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value) if "T" in value or " " in value else date.fromisoformat(value)
        except ValueError:
            raise ValidationError(f"not a date (YYYY-MM-DD) or ISO timestamp: {value!r}", field="as_of") from None
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValidationError("give a timezone-aware time (or a date)", field="as_of")
        return value.astimezone(UTC)
    return datetime.combine(value, time.max, tzinfo=crm.timezone).replace(microsecond=0).astimezone(UTC)


def currency_code(value: str) -> str:
    """An ISO 4217 code in upper case, or a ``ValidationError``."""
    code = str(value).strip().upper()
    if len(code) != 3 or not code.isalpha():
        raise ValidationError(f"not a currency code (ISO 4217, e.g. VND): {value!r}", field="currency")
    return code


def estimates(value: Mapping[str, Any]) -> dict[str, int]:
    """Category spend estimates per RFM segment: known segment names to whole minor units ≥ 0."""
    from crmkit_analytics.rfm import SEGMENTS

    result = {}
    for segment, amount in value.items():
        if segment not in SEGMENTS:
            raise ValidationError(
                f"unknown RFM segment {segment!r} (one of {', '.join(SEGMENTS)})", field="category_spend_estimates"
            )
        if isinstance(amount, bool) or not isinstance(amount, (int, str)) or not str(amount).isdigit():
            raise ValidationError(
                f"{segment}: give whole minor units ≥ 0, got {amount!r}", field="category_spend_estimates"
            )
        result[segment] = int(amount)
    return result
