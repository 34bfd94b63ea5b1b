"""The campaigns settings, stored per CRM database (``crmkit_settings``) and read with their defaults.

=============================  ===========================  ===================================================
key                            default                      meaning
=============================  ===========================  ===================================================
``campaigns.timezone``         the CRM's ``timezone``       local time of quiet hours, occasions and dates
``campaigns.quiet_hours``      ``21:00-08:00``              no message is sent in this local window ("" = none)
``campaigns.frequency_cap``    ``{"messages": 3, "days": 7}``  at most N messages per customer per window, all
                                                            campaigns together (``null`` = no cap)
``campaigns.base_url``         ``http://127.0.0.1:8000/     public address of the tracking routes, which
                               campaigns/t``                ``crmkit serve`` answers under ``/campaigns/t``
``campaigns.channels``         ``{}``                       adapter per channel (``crmkit campaigns channel set``)
``founding_day``               none                         the company's founding day, ``DD/MM``: the CRM's
                                                            own setting (``crmkit.vncalendar``), shared with
                                                            loyalty; ``campaigns.founding_day`` is read if unset
``campaigns.max_attempts``     ``8``                        delivery attempts before a message fails
``campaigns.backoff_seconds``  ``60``                       first retry delay; doubles per attempt (max 6 h)
``campaigns.lease_seconds``    ``300``                      how long a dispatcher owns the messages it claimed
``campaigns.transactional_     ``["email"]``                channels a single message (``send_message``: CSAT
channels``                                                  surveys…) may go by, in order of preference
=============================  ===========================  ===================================================
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import attrs

from crmkit.errors import ValidationError
from crmkit.vncalendar import check_day_month, zone_named

PREFIX = "campaigns."
DEFAULTS: dict[str, Any] = {
    "timezone": None,  # the CRM's own (``crm.timezone``)
    "quiet_hours": "21:00-08:00",
    "frequency_cap": {"messages": 3, "days": 7},
    "base_url": "http://127.0.0.1:8000/campaigns/t",
    "channels": {},
    "founding_day": None,
    "max_attempts": 8,
    "backoff_seconds": 60,
    "lease_seconds": 300,
    "transactional_channels": ["email"],
}
#: Settings stored as the CRM's own (not ``campaigns.``-prefixed) because other plugins use them too.
CORE_KEYS = {"founding_day": "founding_day"}
MAX_BACKOFF = timedelta(hours=6)
_HOURS = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$")


@attrs.frozen
class QuietHours:
    """A local time window (may wrap midnight: 21:00–08:00) in which nothing is sent."""

    start: time
    end: time

    def contains(self, moment: time) -> bool:
        if self.start <= self.end:
            return self.start <= moment < self.end
        return moment >= self.start or moment < self.end

    def __str__(self) -> str:
        return f"{self.start:%H:%M}-{self.end:%H:%M}"


@attrs.frozen
class Settings:
    """The campaigns settings of one CRM, validated, with defaults filled in."""

    zone: ZoneInfo
    quiet_hours: QuietHours | None
    frequency_cap: tuple[int, int] | None  # (messages, days)
    base_url: str
    channels: Mapping[str, Mapping[str, Any]]
    founding_day: tuple[int, int] | None  # (day, month)
    max_attempts: int
    backoff_seconds: int
    lease_seconds: int
    transactional_channels: tuple[str, ...] = ("email",)

    def next_send_time(self, moment: datetime) -> datetime:
        """``moment``, or the end of the quiet hours it falls in (as UTC)."""
        if self.quiet_hours is None:
            return moment
        local = moment.astimezone(self.zone)
        if not self.quiet_hours.contains(local.time()):
            return moment
        end = datetime.combine(local.date(), self.quiet_hours.end, self.zone)
        if end <= local:
            end = datetime.combine(local.date() + timedelta(days=1), self.quiet_hours.end, self.zone)
        return end.astimezone(moment.tzinfo)

    def backoff(self, attempts: int, jitter: float = 0.0) -> timedelta:
        """Delay before retry number ``attempts`` (1-based): doubling from ``backoff_seconds``, at most 6 h."""
        delay = timedelta(seconds=self.backoff_seconds * 2 ** max(0, attempts - 1))
        return min(delay, MAX_BACKOFF) * (1 + jitter)


def read(stored: Mapping[str, Any]) -> Settings:
    """The settings from the CRM's stored settings (``crm.settings``), defaults for missing keys."""
    defaults = {**DEFAULTS, "timezone": stored.get("timezone")}  # unless set for campaigns: the CRM's
    values = {key: normalize(key, stored.get(PREFIX + key, default)) for key, default in defaults.items()}
    # the founding day is the CRM's (one definition for every plugin); an older campaigns.founding_day still counts
    values["founding_day"] = normalize(
        "founding_day", stored.get(CORE_KEYS["founding_day"], stored.get(PREFIX + "founding_day"))
    )
    return Settings(
        zone=ZoneInfo(values["timezone"]),
        quiet_hours=values["quiet_hours"],
        frequency_cap=values["frequency_cap"],
        base_url=values["base_url"],
        channels=values["channels"],
        founding_day=values["founding_day"],
        max_attempts=values["max_attempts"],
        backoff_seconds=values["backoff_seconds"],
        lease_seconds=values["lease_seconds"],
        transactional_channels=values["transactional_channels"],
    )


def normalize(key: str, value: Any) -> Any:
    """Check one setting and return it in the shape ``Settings`` holds; ``ValidationError`` names the key."""
    field = PREFIX + key
    if key not in DEFAULTS:
        raise ValidationError(f"unknown setting (known: {', '.join(PREFIX + k for k in DEFAULTS)})", field=field)
    if key == "timezone":
        return zone_named(value, field).key
    if key == "quiet_hours":
        if value in (None, "", "none", "off"):
            return None
        found = _HOURS.match(str(value))
        if not found or int(found[1]) > 23 or int(found[3]) > 23 or int(found[2]) > 59 or int(found[4]) > 59:
            raise ValidationError(f"expected HH:MM-HH:MM (e.g. 21:00-08:00), got {value!r}", field=field)
        start, end = time(int(found[1]), int(found[2])), time(int(found[3]), int(found[4]))
        return None if start == end else QuietHours(start, end)
    if key == "frequency_cap":
        if value in (None, "", "none", "off"):
            return None
        if isinstance(value, str):
            found = re.match(r"^\s*(\d+)\s*/\s*(\d+)\s*d(ays?)?\s*$", value)
            value = {"messages": int(found[1]), "days": int(found[2])} if found else value
        if not isinstance(value, Mapping) or not all(
            isinstance(value.get(k), int) and value[k] > 0 for k in ("messages", "days")
        ):
            raise ValidationError(
                'expected {"messages": N, "days": D} or "N/Dd" (e.g. "3/7d"), positive whole numbers', field=field
            )
        return int(value["messages"]), int(value["days"])
    if key == "base_url":
        text = str(value).rstrip("/")
        if not re.match(r"^https?://[^/\s]+(/\S*)?$", text):
            raise ValidationError(f"expected an http(s) URL, got {value!r}", field=field)
        return text
    if key == "channels":
        if not isinstance(value, Mapping) or not all(isinstance(v, Mapping) for v in value.values()):
            raise ValidationError("expected {channel: {adapter: …, options…}}", field=field)
        return {str(k): dict(v) for k, v in value.items()}
    if key == "founding_day":
        return None if value in (None, "") else check_day_month(value, field)
    if key == "transactional_channels":
        names = value.split(",") if isinstance(value, str) else value
        if (
            not names
            or not isinstance(names, (list, tuple))
            or not all(isinstance(n, str) and n.strip() for n in names)
        ):
            raise ValidationError(
                f"expected channel names in order of preference (e.g. email,sms), got {value!r}", field=field
            )
        return tuple(n.strip() for n in names)
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValidationError(f"expected a positive whole number, got {value!r}", field=field)
    return value


def stored_form(key: str, value: Any) -> Any:
    """What ``crm.set_setting`` stores for a valid value (JSON: text, numbers, mappings)."""
    normalized = normalize(key, value)
    if key == "quiet_hours":
        return str(normalized) if normalized else ""
    if key == "frequency_cap":
        return {"messages": normalized[0], "days": normalized[1]} if normalized else None
    if key == "founding_day":
        return f"{normalized[0]:02d}/{normalized[1]:02d}" if normalized else None
    if key == "transactional_channels":
        return list(normalized)
    return normalized
