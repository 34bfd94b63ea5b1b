"""Typed value objects the core hands out (attrs, frozen): what ``crm.customers`` returns."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, datetime
from typing import Any, Generic, TypeVar

import attrs

#: Interaction and consent channels the core knows; plugins add more via ``crmkit_channels``.
CHANNELS = ("email", "phone", "sms", "chat", "social", "web", "fax", "post", "in_person")
KINDS = ("person", "organization")
LIFECYCLE_STAGES = ("lead", "prospect", "customer", "churned", "partner", "distributor", "retailer")
GENDERS = ("female", "male", "other")
DIRECTIONS = ("inbound", "outbound")

T = TypeVar("T")


@attrs.frozen
class Address:
    """A postal address; Vietnamese addresses use ward / district / province."""

    line1: str
    line2: str | None = None
    ward: str | None = None
    district: str | None = None
    city: str | None = None
    province: str | None = None
    postal_code: str | None = None
    country: str | None = None
    label: str | None = None


@attrs.frozen
class Consent:
    """Whether a customer accepts contact on one channel, since when and on whose word."""

    channel: str
    granted: bool
    at: datetime
    source: str


@attrs.frozen
class Membership:
    """A person's place in an organization (B2B): the organization's id and the person's role."""

    organization_id: int
    role: str | None = None


@attrs.frozen
class Customer:
    """A person or organization the business deals with (retailers and distributors included)."""

    id: int
    kind: str
    name: str
    external_id: str | None = None
    given_name: str | None = None
    family_name: str | None = None
    emails: tuple[str, ...] = ()
    phones: tuple[str, ...] = ()
    addresses: tuple[Address, ...] = ()
    birth_date: date | None = None
    gender: str | None = None
    lifecycle_stage: str = "lead"
    owner: str | None = None
    country: str | None = None
    city: str | None = None
    province: str | None = None
    tags: tuple[str, ...] = ()
    consents: Mapping[str, Consent] = attrs.field(factory=dict)
    organizations: tuple[Membership, ...] = ()
    attributes: Mapping[str, Any] = attrs.field(factory=dict)
    status: str = "active"
    merged_into_id: int | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None

    @property
    def email(self) -> str | None:
        """The primary e-mail address, if any."""
        return self.emails[0] if self.emails else None

    @property
    def phone(self) -> str | None:
        """The primary phone number (E.164), if any."""
        return self.phones[0] if self.phones else None

    def has_consent(self, channel: str) -> bool:
        """True when the customer has granted (and not withdrawn) consent for ``channel``."""
        consent = self.consents.get(channel)
        return bool(consent and consent.granted)


@attrs.frozen
class Interaction:
    """One contact with a customer on one channel, in either direction."""

    id: int
    customer_id: int
    channel: str
    direction: str
    occurred_at: datetime
    subject: str | None = None
    summary: str | None = None
    outcome: str | None = None
    rating: int | None = None
    employee: str | None = None
    sender: str | None = None
    external_id: str | None = None  # the source system's id of an imported interaction


@attrs.frozen
class Page(Generic[T]):
    """One page of a keyset-paginated listing; pass ``next_cursor`` back as ``after`` for the next."""

    items: Sequence[T]
    next_cursor: str | None

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)


@attrs.frozen
class DuplicateCandidate:
    """A customer that may be the same as another, why, and how sure (0–1)."""

    customer_id: int
    other_id: int
    reason: str
    score: float


@attrs.frozen
class Merge:
    """One merge ``crm.customers.merge_many`` made: its ``customer_merges`` row (snapshot of the merged record)."""

    id: int
    kept_id: int
    merged_id: int


@attrs.frozen
class Profile:
    """Customer 360: the customer, recent interactions, counts, and every plugin's section."""

    customer: Customer
    interactions: Sequence[Interaction]
    interaction_counts: Mapping[str, int]
    sections: Mapping[str, Any]


@attrs.frozen
class User:
    """An employee of the business who signs in (or whose token an integration uses)."""

    id: int
    username: str
    display_name: str
    email: str | None = None
    phone: str | None = None
    active: bool = True
    locale: str | None = None
    timezone: str | None = None
    teams: tuple[str, ...] = ()
    roles: tuple[str, ...] = ()
    has_password: bool = False
    locked_until: datetime | None = None
    last_login_at: datetime | None = None
    created_at: datetime | None = None


@attrs.frozen
class Team:
    """A group of users in the company tree (company → branch → team); scopes reach sub-teams."""

    id: int
    name: str
    parent: str | None = None
    members: tuple[str, ...] = ()


@attrs.frozen
class Role:
    """A named set of permissions, each granted with a record scope (own / team / all)."""

    id: int
    name: str
    description: str = ""
    grants: Mapping[str, str] = attrs.field(factory=dict)


@attrs.frozen
class ApiToken:
    """An integration's token for a user (the secret is never stored: only shown once, at creation)."""

    id: int
    user: str
    name: str
    permissions: tuple[str, ...] | None = None
    expires_at: datetime | None = None
    last_used_at: datetime | None = None
    revoked_at: datetime | None = None
    created_at: datetime | None = None
    #: Only on the token ``create`` returns: the bearer secret, shown this once.
    secret: str | None = attrs.field(default=None, repr=False)

    def status(self, now: datetime) -> str:
        """``revoked``, ``expired`` or ``active`` at ``now`` (a timezone-aware time)."""
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is not None and self.expires_at <= now:
            return "expired"
        return "active"
