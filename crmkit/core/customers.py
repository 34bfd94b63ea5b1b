"""``crm.customers``: add, get, update, find, consent, merge, erase, export — one transaction per write."""

from __future__ import annotations

import functools
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

import marshmallow
import sqlalchemy as sa

from crmkit.core import tables as t
from crmkit.core.access import CONTACT_DETAILS
from crmkit.core.bulk_sql import delete_in, executemany, ids_value, in_ids, select_in
from crmkit.core.customer_duplicates import CustomerDuplicates
from crmkit.core.customer_merges import FILLED, CustomerMerges, MergeRecord, Unmerge
from crmkit.core.customer_privacy import CustomerPrivacy
from crmkit.core.jsonable import encode_cursor, to_jsonable
from crmkit.core.models import (
    KINDS,
    LIFECYCLE_STAGES,
    Address,
    Consent,
    Customer,
    DuplicateCandidate,
    Membership,
    Merge,
    Page,
    Profile,
)
from crmkit.core.schemas import CustomerSchema, aware_utc, beyond_columns, read_cursor
from crmkit.core.search import prefix_upper_bound, query_prefixes, search_keys
from crmkit.core.text import fold
from crmkit.core.types import UTCDateTime
from crmkit.errors import Conflict, NotFound, PermissionDenied, ValidationError

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from crmkit.crm import CRM

SCALARS = ("external_id", *FILLED)
ADDRESS_FIELDS = ("label", "line1", "line2", "ward", "district", "city", "province", "postal_code", "country")
PROFILE_INTERACTIONS = 50
#: Extra search-key rows read per batch: most customers match a query through one key.
SEARCH_SLACK = 20


def _in_ranges(count: int) -> sa.ColumnElement[bool]:
    """Search keys within any of ``count`` ranges given as parameters ``low0``/``high0``, ``low1``/``high1``…"""
    key = t.search_keys.c.key
    return sa.or_(*(sa.and_(key >= sa.bindparam(f"low{n}"), key < sa.bindparam(f"high{n}")) for n in range(count)))


@functools.lru_cache(maxsize=16)
def _search_statement(ranges: int, scoped: bool) -> sa.Select[Any]:
    """The (key, customer id) scan of a search, built once: its ranges, ``owners`` when scoped, ``batch`` rows.

    Building a statement costs more than running it on an index; the values are parameters.
    """
    k = t.search_keys.c
    where = [_in_ranges(ranges)] + ([k.owner.in_(sa.bindparam("owners", expanding=True))] if scoped else [])
    return (
        sa.select(k.key, k.customer_id)
        .where(*where)
        .order_by(k.key, k.customer_id)
        .limit(sa.bindparam("batch", type_=sa.Integer))
    )


@functools.lru_cache(maxsize=8)
def _first_keys_statement(ranges: int) -> sa.Select[Any]:
    """Each hit customer's first key within the ranges (``ids``): a customer is shown at that key only."""
    k = t.search_keys.c
    return (
        sa.select(k.customer_id, sa.func.min(k.key))
        .where(k.customer_id.in_(sa.bindparam("ids", expanding=True)), _in_ranges(ranges))
        .group_by(k.customer_id)
    )


#: A scan's keyset condition: past the (key, customer id) of the last row read.
_AFTER_KEY = sa.tuple_(t.search_keys.c.key, t.search_keys.c.customer_id) > sa.tuple_(
    sa.bindparam("after_key", type_=sa.String), sa.bindparam("after_id", type_=sa.Integer)
)

# Statements of the hot read paths (loading customers, customer 360), built once: executing a
# prebuilt statement skips rebuilding it and recomputing its cache key, which is most of the
# cost of a small lookup (bench/bench_customer360.py).
_IDS = sa.bindparam("ids", expanding=True)
_CUSTOMER_ID = sa.bindparam("customer_id")
_LOAD_CUSTOMERS = sa.select(t.customers).where(t.customers.c.id.in_(_IDS))
#: Locks for a change that keeps the customer's id (FOR NO KEY UPDATE): an order or another row being
#: written that references the customer does not wait for it, nor it for them (both waiting would deadlock).
_LOAD_CUSTOMERS_FOR_UPDATE = _LOAD_CUSTOMERS.with_for_update(key_share=True)
#: Locks for a merge or an erasure (FOR UPDATE): waits for rows referencing the customer being written, so
#: that what it moves or deletes includes them.
_LOAD_CUSTOMERS_FOR_REMOVAL = _LOAD_CUSTOMERS.with_for_update()
#: The columns of ``_LOAD_CHILDREN``: which table a row comes from, and typed slots its columns fill.
_CHILD_SLOTS: dict[str, sa.types.TypeEngine[Any]] = {
    "part": sa.String(),
    "customer_id": sa.BigInteger(),
    "position": sa.Integer(),
    "id": sa.BigInteger(),
    "organization_id": sa.BigInteger(),
    "granted": sa.Boolean(),
    "at": UTCDateTime(),
    **{f"text{n}": sa.String() for n in range(len(ADDRESS_FIELDS))},
}


def _child_rows(
    part: str,
    customer_id: sa.Column[Any],
    among: Callable[[sa.Column[Any]], sa.ColumnElement[bool]],
    **columns: sa.Column[Any],
) -> sa.Select[Any]:
    """One child table's rows for the customers ``among`` selects, laid out in ``_CHILD_SLOTS`` (NULL where unused)."""
    given = {"part": sa.literal_column(f"'{part}'", sa.String()), "customer_id": customer_id, **columns}
    return sa.select(
        *(
            (given[name] if name in given else sa.cast(sa.null(), type_)).label(name)
            for name, type_ in _CHILD_SLOTS.items()
        )
    ).where(among(customer_id))


def _children(among: Callable[[sa.Column[Any]], sa.ColumnElement[bool]]) -> sa.CompoundSelect[Any]:
    """Contact points, addresses, tags, consents and memberships of customers in one query (not five), each
    part in its own order: contact points and addresses by position, tags by name, memberships by organization."""
    return sa.union_all(
        _child_rows(
            "address",
            t.addresses.c.customer_id,
            among,
            position=t.addresses.c.position,
            id=t.addresses.c.id,
            **{f"text{n}": t.addresses.c[f] for n, f in enumerate(ADDRESS_FIELDS)},
        ),
        _child_rows(
            "consent",
            t.consents.c.customer_id,
            among,
            text0=t.consents.c.channel,
            text1=t.consents.c.source,
            granted=t.consents.c.granted,
            at=t.consents.c.at,
        ),
        _child_rows(
            "membership",
            t.memberships.c.person_id,
            among,
            organization_id=t.memberships.c.organization_id,
            text0=t.memberships.c.role,
        ),
        _child_rows(
            "point",
            t.contact_points.c.customer_id,
            among,
            position=t.contact_points.c.position,
            id=t.contact_points.c.id,
            text0=t.contact_points.c.kind,
            text1=t.contact_points.c.value,
        ),
        _child_rows("tag", t.tags.c.customer_id, among, text0=t.tags.c.tag),
    ).order_by("part", "position", "id", "organization_id", "text0")


_LOAD_CHILDREN = _children(lambda column: column.in_(_IDS))
#: One customer by id, the API's and the console's read: ``id = ?`` has no IN list to expand at each call.
_ONE_ID = sa.bindparam("id")
_LOAD_CUSTOMER = sa.select(t.customers).where(t.customers.c.id == _ONE_ID)
_LOAD_CUSTOMER_CHILDREN = _children(lambda column: column == _ONE_ID)
#: Above this many customers a load binds its ids as one parameter (``bulk_sql.in_ids``), not one each.
BULK_LOAD = 200


@functools.cache
def _bulk_loads(dialect: str) -> tuple[sa.Select[Any], sa.Select[Any], sa.Select[Any], sa.CompoundSelect[Any]]:
    """The customer, customer-for-update, customer-for-removal and children statements of bulk loads on ``dialect``."""
    customers = sa.select(t.customers).where(in_ids(dialect, t.customers.c.id, "ids"))
    return (
        customers,
        customers.with_for_update(key_share=True),
        customers.with_for_update(),
        _children(lambda column: in_ids(dialect, column, "ids")),
    )


_RECENT_INTERACTIONS = (
    sa.select(t.interactions)
    .where(t.interactions.c.customer_id == _CUSTOMER_ID)
    .order_by(t.interactions.c.occurred_at.desc(), t.interactions.c.id.desc())
    .limit(PROFILE_INTERACTIONS)
)
_INTERACTION_COUNTS = (
    sa.select(t.interactions.c.channel, sa.func.count())
    .where(t.interactions.c.customer_id == _CUSTOMER_ID)
    .group_by(t.interactions.c.channel)
)


class Customers:
    """The customer service of one CRM (``crm.customers``)."""

    def __init__(self, crm: CRM) -> None:
        self._crm = crm
        self._merges = CustomerMerges(crm, self)
        self._duplicates = CustomerDuplicates(crm, self)
        self._privacy = CustomerPrivacy(crm, self)
        self.refresh_schema()

    # -- validation -------------------------------------------------------------------------

    def refresh_schema(self) -> None:
        """Rebuild the customer schema (custom fields changed: ``crm.fields``)."""
        self._schemas: dict[str, CustomerSchema] = {}
        self._schema = self.schema(self._crm.default_country)

    def _attribute_fields(self) -> dict[str, Any]:
        """Attribute fields: the custom ones (``crm.fields``), then the plugins' (which win a name both use)."""
        return {**self._crm.fields.schema_fields(), **self._crm.hooks.customer_fields()}

    def schema(self, default_country: str | None = None) -> CustomerSchema:
        """The customer schema; national phone numbers take ``default_country`` (default: the CRM's).

        Imports read it to compile their fast checks, so they accept exactly what it accepts.
        """
        country = (default_country or self._crm.default_country).upper()
        if country not in self._schemas:
            self._schemas[country] = CustomerSchema(
                default_country=country,
                attribute_fields=self._attribute_fields(),
                channels=self._crm.channels,
                zone=lambda: self._crm.timezone,
                now=lambda: self._crm.now(),  # a function, not a bound method: the API document deep-copies schemas
            )
        return self._schemas[country]

    def validate(
        self,
        data: Mapping[str, Any],
        *,
        partial: bool = False,
        row: int | None = None,
        default_country: str | None = None,
    ) -> dict[str, Any]:
        """Validate and normalize input through the customer schema; raises ``ValidationError``."""
        schema = self.schema(default_country) if default_country else self._schema
        try:
            # Partial means "only the fields given", never "half an address": name the
            # top-level fields so nested schemas still require their own fields.
            values = schema.load(dict(data), partial=tuple(schema.fields) if partial else False)
        except marshmallow.ValidationError as exc:
            raise ValidationError(exc.messages_dict, row=row) from None
        if not partial and not values.get("name"):
            raise ValidationError("a name (or given_name / family_name) is required", field="name", row=row)
        return values

    # -- writes ---------------------------------------------------------------------------------

    def add(self, data: Mapping[str, Any] | None = None, /, *, source: str = "api", **fields: Any) -> Customer:
        """Create a customer from ``data`` and/or keyword fields; returns it with its new id.

        Needs ``customers.create``; a user's new customer is theirs unless given an owner within
        that permission's scope.
        """
        self._crm.access.require("customers.create")
        values = self.validate({**(data or {}), **fields})
        with self._crm.transaction() as session:
            return self._shown(self.insert_validated(session, values, source=source))

    def insert_validated(self, session: Session, values: dict[str, Any], *, source: str = "api") -> Customer:
        """Insert already-validated values in the caller's transaction (imports use this); fires the hooks."""
        conn = session.connection()
        principal = self._crm.access.principal
        if values.get("owner") is None and not principal.is_system:
            values["owner"] = principal.username
        self._crm.access.check_owner(conn, values.get("owner"), "customers.create")
        self._crm.hooks.customer_before_save(None, values, session)
        self._check_external_id(conn, values.get("external_id"), None)
        now = self._crm.now()
        row = {field: values.get(field) for field in SCALARS}
        row.update(
            kind=values.get("kind") or "person",
            lifecycle_stage=values.get("lifecycle_stage") or "lead",
            name_key=fold(values["name"])[:400],
            attributes=values.get("attributes") or {},
            created_at=values.get("created_at") or now,
            updated_at=now,
            status="active",
        )
        customer_id = conn.execute(t.customers.insert().values(row).returning(t.customers.c.id)).scalar_one()
        self._write_children(conn, customer_id, values, source=source, now=now, replace=False)
        customer = self._load(conn, customer_id)
        self._crm.audit.record(session, "create", "customer", customer_id, customer_id=customer_id, changes=values)
        self._crm.hooks.customer_created(customer, session)
        self._crm.events.emit(
            session, "customer.created", lambda: {"customer": to_jsonable(customer)}, customer_id=customer_id
        )
        return customer

    def update(
        self, customer_id: int, data: Mapping[str, Any] | None = None, /, *, source: str = "api", **fields: Any
    ) -> Customer:
        """Change the given fields (lists such as ``emails`` or ``tags`` are replaced; ``attributes`` merged).

        Needs ``customers.update`` on the customer; a new owner must be within its scope.
        """
        self._crm.access.require("customers.update")
        values = self.validate({**(data or {}), **fields}, partial=True)
        with self._crm.transaction() as session:
            return self._shown(self.update_validated(session, customer_id, values, source=source))

    def update_validated(
        self, session: Session, customer_id: int, values: dict[str, Any], *, source: str = "api"
    ) -> Customer:
        """Apply already-validated changes in the caller's transaction; fires the hooks, audits the diff."""
        conn = session.connection()
        self._crm.access.require_customer(conn, customer_id, "customers.update")
        current = self._load(conn, customer_id, for_update=True)
        self._require_active(current)
        if not self._crm.access.sees_contacts_of(current.owner):
            hidden = {"emails", "phones", "addresses"} & values.keys()
            if hidden:
                raise PermissionDenied(
                    CONTACT_DETAILS, self._crm.actor, f"cannot change {', '.join(sorted(hidden))} without seeing them"
                )
        changes = self.changes(current, values)
        if not changes:
            return current
        if "owner" in changes:
            self._crm.access.check_owner(conn, changes["owner"], "customers.update")
        self._crm.hooks.customer_before_save(current, changes, session)
        if "external_id" in changes:
            self._check_external_id(conn, changes["external_id"], customer_id)
        now = self._crm.now()
        row = {field: changes[field] for field in SCALARS if field in changes}
        if "name" in changes:
            row["name_key"] = fold(changes["name"])[:400]
        if "attributes" in changes:
            row["attributes"] = changes["attributes"]
        if "created_at" in changes:  # customer since, corrected (e.g. by a migration's import)
            row["created_at"] = changes["created_at"]
        row["updated_at"] = now
        conn.execute(t.customers.update().where(t.customers.c.id == customer_id).values(row))
        self._write_children(conn, customer_id, changes, source=source, now=now, replace=True)
        if {"name", "emails", "phones"} & changes.keys():
            self._reindex(conn, [customer_id])  # the keys take the new owner too
        elif "owner" in changes:
            conn.execute(
                t.search_keys.update().where(t.search_keys.c.customer_id == customer_id).values(owner=changes["owner"])
            )
        customer = self._load(conn, customer_id)
        before = {k: getattr(current, k) for k in changes if hasattr(current, k)}
        self._crm.audit.record(
            session,
            "update",
            "customer",
            customer_id,
            customer_id=customer_id,
            changes={"before": before, "after": changes},
        )
        self._crm.hooks.customer_updated(customer, changes, session)
        self._crm.events.emit(
            session,
            "customer.updated",
            lambda: {"customer": to_jsonable(customer), "changed": sorted(changes)},
            customer_id=customer_id,
        )
        return customer

    def changes(self, current: Customer, values: dict[str, Any]) -> dict[str, Any]:
        """What applying validated ``values`` would change in ``current`` (empty: nothing).

        ``attributes`` are merged (a None value removes a key); a name built from its parts
        follows them. Bulk imports call this to apply exactly what ``update`` would.
        """
        if "attributes" in values:
            merged = {**current.attributes, **values["attributes"]}
            values["attributes"] = {k: v for k, v in merged.items() if v is not None}
        if "name" not in values and {"given_name", "family_name"} & values.keys():
            # A name that was built from its parts follows them; one typed by hand stays.
            compose = self._schema.compose_name
            if current.name == compose(current.given_name, current.family_name):
                name = compose(
                    values.get("given_name", current.given_name), values.get("family_name", current.family_name)
                )
                if name:
                    values["name"] = name
        return self._diff(current, values)

    def set_consent(
        self, customer_id: int, channel: str, granted: bool, *, source: str, at: datetime | None = None
    ) -> Consent:
        """Record that the customer gave (or withdrew) consent for ``channel``, when and on whose word."""
        if channel not in self._crm.channels:
            raise ValidationError(f"unknown channel {channel!r}", field="channel")
        if not source:
            raise ValidationError("say where the consent came from", field="source")
        when = self._crm.now() if at is None else aware_utc(at, "at")
        with self._crm.transaction() as session:
            conn = session.connection()
            self._crm.access.require_customer(conn, customer_id, "customers.update")
            current = self._load(conn, customer_id, for_update=True)
            self._require_active(current)
            self._upsert_consent(conn, customer_id, channel, granted, when, source)
            self._crm.audit.record(
                session,
                "consent",
                "customer",
                customer_id,
                customer_id=customer_id,
                changes={"channel": channel, "granted": granted, "source": source, "at": when},
            )
            customer = self._load(conn, customer_id)
            self._crm.hooks.customer_updated(customer, {"consents": {channel: granted}}, session)
            consent = Consent(channel, granted, when, source)
            self._crm.events.emit(
                session,
                "consent.changed",
                lambda: {"customer_id": customer_id, "consent": to_jsonable(consent)},
                customer_id=customer_id,
            )
        return consent

    def add_tags(self, customer_id: int, *tags: str) -> Customer:
        """Add tags (existing ones are kept)."""
        current = self.get(customer_id)
        return self.update(customer_id, tags=[*current.tags, *tags])

    def remove_tags(self, customer_id: int, *tags: str) -> Customer:
        """Remove tags (absent ones are ignored)."""
        current = self.get(customer_id)
        return self.update(customer_id, tags=[tag for tag in current.tags if tag not in tags])

    # -- reads ------------------------------------------------------------------------------------

    def get(self, customer_id: int, *, follow_merges: bool = True) -> Customer:
        """The customer with this id; a merged-away id gives the customer it was merged into.

        Needs ``customers.read``; a customer outside its scope is ``NotFound``.
        """
        self._crm.access.require("customers.read")
        with self._crm.reading() as conn:
            customer = self._load(conn, customer_id)
            seen = {customer.id}
            while follow_merges and customer.merged_into_id is not None and customer.merged_into_id not in seen:
                customer = self._load(conn, customer.merged_into_id)
                seen.add(customer.id)
            self._require_readable(customer_id, customer)
            return self._shown(customer)

    def get_by_external_id(self, external_id: str) -> Customer:
        """The customer imported or created with this external id (``NotFound`` outside the user's scope)."""
        self._crm.access.require("customers.read")
        with self._crm.reading() as conn:
            found = conn.execute(sa.select(t.customers.c.id).where(t.customers.c.external_id == external_id)).scalar()
        if found is None:
            raise NotFound("customer with external_id", external_id)
        return self.get(found)

    def find(
        self,
        query: str | None = None,
        *,
        tag: str | None = None,
        owner: str | None = None,
        kind: str | None = None,
        lifecycle_stage: str | None = None,
        after: str | None = None,
        limit: int = 20,
        team: str | None = None,
    ) -> Page[Customer]:
        """Search (accent-insensitive: name words, e-mail prefixes, phone suffixes) or list by name.

        Pages by keyset: pass ``page.next_cursor`` as ``after``. Nothing is counted. Needs
        ``customers.read``; only customers in its scope are found. ``team`` keeps the customers
        owned by a member of that team or of a team below it.
        """
        if not 1 <= limit <= 1000:
            raise ValidationError("must be between 1 and 1000", field="limit")
        if kind is not None and kind not in KINDS:
            raise ValidationError(f"must be one of {', '.join(KINDS)}", field="kind")
        if lifecycle_stage is not None and lifecycle_stage not in LIFECYCLE_STAGES:
            raise ValidationError(f"must be one of {', '.join(LIFECYCLE_STAGES)}", field="lifecycle_stage")
        filters = _filters(tag=tag, owner=owner, kind=kind, lifecycle_stage=lifecycle_stage)
        access = self._crm.access
        access.require("customers.read")
        owners = access.principal.owners("customers.read")
        with self._crm.reading() as conn:
            if team is not None:
                filters.append(self._team_filter(conn, team))
            if query is not None and query.strip():  # the search keys carry the owner: scoped without a join
                ids, cursor = self._search(conn, query, filters, after, limit, owners)
            else:
                if owners is not None:
                    filters.append(access.owner_filter(t.customers.c.owner, "customers.read"))
                ids, cursor = self._list(conn, filters, after, limit)
            by_id = {c.id: c for c in self._shown_many(self._load_many(conn, ids))}
        return Page([by_id[i] for i in ids], cursor)

    def _team_filter(self, conn: sa.Connection, team: str) -> sa.ColumnElement[bool]:
        """Customers owned by a member of ``team`` or of a team below it (an unknown team is a ``ValidationError``)."""
        teams, tm = self._crm.teams, t.team_members.c
        try:
            reach = teams._below(conn, [teams.id_of(conn, team)])
        except NotFound:
            raise ValidationError(f"no team named {team!r}", field="team") from None
        members = (
            sa.select(t.users.c.username).join(t.team_members, tm.user_id == t.users.c.id).where(tm.team_id.in_(reach))
        )
        return t.customers.c.owner.in_(members)

    def _list(
        self, conn: sa.Connection, filters: list[Any], after: str | None, limit: int
    ) -> tuple[list[int], str | None]:
        c = t.customers.c
        query = (
            sa.select(c.id, c.name_key)
            .where(c.status == "active", *filters)
            .order_by(c.name_key, c.id)
            .limit(limit + 1)
        )
        if after:
            key, last_id = read_cursor(after, "after", str, int)
            query = query.where(sa.tuple_(c.name_key, c.id) > sa.tuple_(sa.literal(key), sa.literal(last_id)))
        rows = conn.execute(query).all()
        cursor = encode_cursor(rows[limit - 1].name_key, rows[limit - 1].id) if len(rows) > limit else None
        return [r.id for r in rows[:limit]], cursor

    def _search(
        self,
        conn: sa.Connection,
        text: str,
        filters: list[Any],
        after: str | None,
        limit: int,
        owners: frozenset[str] | None = None,
    ) -> tuple[list[int], str | None]:
        """Customers whose search keys start with the query's prefixes, in key order, each once.

        A customer matching several keys (``An An`` matches ``an an`` and ``an``) is shown
        at its first matching key only, so pages neither repeat nor skip anyone. The
        cursor is the (key, id) of the last customer shown. Each prefix is one ordered
        index range scan; prefixes never overlap, so scanning them in order is key order.
        ``owners`` (None: everyone's) limits the search to those owners' customers through
        the keys' own ``owner``: one query over every prefix, a range scan per owner and prefix
        over (owner, key) whatever the number of customers outside the scope sharing it, sorted.
        """
        ranges = [(prefix, prefix_upper_bound(prefix)) for prefix in sorted(query_prefixes(text))]
        if not ranges or owners is not None and not owners:
            return [], None
        bounds = {f"{side}{n}": value for n, pair in enumerate(ranges) for side, value in zip(("low", "high"), pair)}
        if owners is None:  # one ordered range scan per prefix
            scans = [(_search_statement(1, False), {"low0": low, "high0": high}) for low, high in ranges]
        else:  # the keys in scope are few: read them for every prefix at once
            scans = [(_search_statement(len(ranges), True), {**bounds, "owners": sorted(owners)})]
        first_keys = _first_keys_statement(len(ranges))
        start = tuple(read_cursor(after, "after", str, int)) if after else None
        batch = limit + 1 + SEARCH_SLACK
        shown: list[tuple[str, int]] = []
        for statement, params in scans:
            position = start
            while len(shown) <= limit:
                query = statement
                if filters:
                    query = query.join(t.customers, t.customers.c.id == t.search_keys.c.customer_id).where(*filters)
                if position is not None:
                    query = query.where(_AFTER_KEY)
                hits = conn.execute(
                    query,
                    {
                        **params,
                        "batch": batch,
                        "after_key": position[0] if position else None,
                        "after_id": position[1] if position else None,
                    },
                ).all()
                if hits:
                    first = dict(conn.execute(first_keys, {**bounds, "ids": list({cid for _, cid in hits})}).all())
                    shown.extend((key, cid) for key, cid in hits if first[cid] == key)
                    position = tuple(hits[-1])
                if len(hits) < batch:
                    break
            if len(shown) > limit:
                break
        ids = [cid for _, cid in shown[:limit]]
        return ids, encode_cursor(*shown[limit - 1]) if len(shown) > limit else None

    def profile(self, customer_id: int) -> Profile:
        """Customer 360: the customer, the last 50 interactions, counts per channel, and plugin sections.

        Needs ``customers.read`` on the customer; interactions show only with ``interactions.read``
        (plugins' sections check their own permissions).
        """
        access = self._crm.access
        access.require("customers.read")
        with self._crm.transaction() as session:
            conn = session.connection()
            customer = self._load(conn, customer_id)
            if customer.merged_into_id is not None:  # an old id shows the customer it was merged into
                customer = self._load(conn, customer.merged_into_id)
            self._require_readable(customer_id, customer)
            recent: Sequence[Mapping[str, Any]] = []
            counts: dict[str, int] = {}
            if access.allowed("interactions.read") and access.covers(customer.owner, "interactions.read"):
                recent = conn.execute(_RECENT_INTERACTIONS, {"customer_id": customer.id}).mappings().all()
                counts = dict(conn.execute(_INTERACTION_COUNTS, {"customer_id": customer.id}).all())
            sections = self._crm.hooks.customer_profile(customer, session)
        from crmkit.core.interactions import row_to_interaction
        from crmkit.core.masking import mask_interaction

        shown = self._shown(customer)
        interactions = [row_to_interaction(r) for r in recent]
        if shown is not customer:
            interactions = [mask_interaction(i) for i in interactions]
        return Profile(shown, interactions, counts, sections)

    # -- duplicates and merge -------------------------------------------------------------------------

    def duplicates(self, customer_id: int, *, limit: int = 20) -> list[DuplicateCandidate]:
        """Customers that may be the same as this one: shared e-mail or phone, or a near-identical name.

        Needs ``customers.read``; both this customer and the candidates are within its scope.
        """
        return self._duplicates.of(customer_id, limit=limit)

    def duplicate_pairs(self, *, limit: int = 1000) -> list[DuplicateCandidate]:
        """Across the whole database, pairs sharing a normalized e-mail or phone, or the same accent-free name and
        birth date (computed in SQL); the surest pair first. Needs ``customers.read`` on both customers of a pair.
        """
        return self._duplicates.pairs(limit=limit)

    def merge(self, kept_id: int, merged_id: int) -> Customer:
        """Fold ``merged_id`` into ``kept_id``: every interaction, contact, tag and plugin row moves over.

        The merged customer stays as a tombstone pointing at the kept one (so old ids still
        resolve), and a snapshot of it is kept in ``customer_merges``, with the journal of the rows
        that moved (what :meth:`unmerge` gives back). Returns the kept customer.
        A batch of one for :meth:`merge_many`.
        """
        with self._crm.transaction() as session:
            self.merge_many([(kept_id, merged_id)])
            return self._shown(self._load(session.connection(), kept_id))

    def merge_many(self, pairs: Iterable[tuple[int, int]]) -> list[Merge]:
        """Merge many ``(kept_id, merged_id)`` pairs in one transaction, set-based; returns one :class:`Merge` per pair.

        The outcome is the one :meth:`merge` pair by pair, in order, would give (a customer may
        take in several records), in a few statements per table instead of some twenty per pair.
        Joins the caller's transaction inside ``crm.transaction()``. Refused as a whole: an id
        both kept and merged, or merged twice (``ValidationError``, ``row`` = the pair's 1-based
        position); merging into itself, across kinds, or a customer not active (``Conflict``) —
        each naming the pair. Needs ``customers.merge`` on every customer of the batch.
        """
        return self._merges.merge_many(pairs)

    def unmerge(self, merge_id: int) -> Unmerge:
        """Undo merge ``merge_id``: the merged customer is active again with exactly the rows that came from it, in
        the core and every plugin (rows created on the kept customer since stay with it); then
        ``crmkit_customer_unmerged`` fires so plugins rebuild what they derive.

        Refused (``Conflict``, nothing written): a merge already undone; a kept customer merged again since (the
        chain is named: unmerge the later merges first) or erased; a snapshot erased. ``NotFound`` for an unknown
        id. Needs ``customers.merge`` on both customers.
        """
        return self._merges.unmerge(merge_id)

    def merges(self, *, customer_id: int | None = None, limit: int = 50) -> list[MergeRecord]:
        """Merges newest first, with the rows each moved and whether it was undone (what :meth:`unmerge` takes)."""
        return self._merges.merges(customer_id=customer_id, limit=limit)

    # -- privacy ----------------------------------------------------------------------------------------

    def export_data(self, customer_id: int) -> dict[str, Any]:
        """Right of access: everything the core and every enabled plugin holds about this customer, as JSON data.

        A merged-away id exports the customer it was merged into (which holds its data now);
        the audit trail of every record merged into it is included. Needs ``customers.export`` on the
        customer; contact details stay masked for a user who may not see them.
        """
        return self._privacy.export_data(customer_id)

    def erase(self, customer_id: int, *, reason: str = "erasure request", vacuum: bool = False) -> None:
        """Right to erasure: remove or anonymize the person in the core and every plugin, and record it.

        Interactions are kept as anonymous facts (channel, direction, time, rating, employee) with
        every free-text column removed; audit entries keep who-did-what but lose the personal values.
        A merged-away id erases the customer it was merged into, together with every record merged
        into it. After the commit the erased values are wiped from the database files too
        (``crmkit.privacy.wipe_free_space``: SQLite's WAL is checkpointed; ``vacuum`` runs VACUUM FULL
        on PostgreSQL). Needs ``customers.erase`` on the customer.
        """
        self._privacy.erase(customer_id, reason=reason, vacuum=vacuum)

    # -- internals ------------------------------------------------------------------------------------------

    def _require_readable(self, asked: int, customer: Customer) -> None:
        """``NotFound`` (for the id asked) when the customer is outside the ``customers.read`` scope."""
        if not self._crm.access.covers(customer.owner, "customers.read"):
            raise NotFound("customer", asked)

    def _shown(self, customer: Customer) -> Customer:
        """The customer as the acting user may see it: contact details masked without ``customers.contact_details``."""
        if self._crm.access.sees_contacts_of(customer.owner):
            return customer
        from crmkit.core.masking import mask_customer

        return mask_customer(customer)

    def _contact_in_reason(self, kind: str, value: str, owner: str | None) -> str:
        """A shared phone or e-mail as a duplicate's reason names it: masked unless the user sees this customer's contacts."""
        if self._crm.access.sees_contacts_of(owner):
            return value
        from crmkit.core.masking import mask_email, mask_phone

        return mask_email(value) if kind == "email" else mask_phone(value)

    def _shown_many(self, customers: list[Customer]) -> list[Customer]:
        if self._crm.access.contact_owners() is None:
            return customers
        return [self._shown(c) for c in customers]

    def _require_no_disabled_data(self, action: str) -> None:
        """Refuse to merge or erase while a disabled plugin's tables could still hold the customer's rows.

        A disabled plugin's hooks do not run, so its rows would silently survive an erasure
        or stay behind on the merged-away customer.
        """
        for info in self._crm.plugin_info():
            if info.status == "disabled" and info.plugin is not None and info.plugin.migrations:
                applied = self._crm.lineage_applied(info.plugin.name)
                if applied:
                    raise Conflict(
                        f"cannot {action}: plugin {info.name} is disabled for this database but holds customer data; "
                        f"enable it first (crmkit plugins enable {info.name})"
                    )

    def _require_active(self, customer: Customer, context: str = "") -> None:
        if customer.status != "active":
            raise Conflict(
                f"customer {customer.id} is {customer.status}"
                + (f" into {customer.merged_into_id}" if customer.merged_into_id else "")
                + context
            )

    def _check_external_id(self, conn: sa.Connection, external_id: str | None, own_id: int | None) -> None:
        if external_id is None:
            return
        other = conn.execute(sa.select(t.customers.c.id).where(t.customers.c.external_id == external_id)).scalar()
        if other is not None and other != own_id:
            raise Conflict(f"external_id {external_id!r} already belongs to customer {other}")

    def _diff(self, current: Customer, values: Mapping[str, Any]) -> dict[str, Any]:
        changes: dict[str, Any] = {}
        for key, value in values.items():
            if key == "addresses":
                if tuple(Address(**a) for a in value) != current.addresses:
                    changes[key] = value
            elif key == "consents":  # only the channels that change: the others keep their time and source
                changed = {
                    ch: granted
                    for ch, granted in value.items()
                    if ch not in current.consents or current.consents[ch].granted != granted
                }
                if changed:
                    changes[key] = changed
            elif key == "organizations":
                if tuple(Membership(**m) for m in value) != current.organizations:
                    changes[key] = value
            else:
                old = getattr(current, key)
                if (tuple(old) if isinstance(old, tuple) else old) != (
                    tuple(value) if isinstance(value, list) else value
                ):
                    changes[key] = value
        return changes

    def _write_children(
        self,
        conn: sa.Connection,
        customer_id: int,
        values: Mapping[str, Any],
        *,
        source: str,
        now: datetime,
        replace: bool,
    ) -> None:
        for kind in ("email", "phone"):
            key = kind + "s"
            if key in values:
                if replace:
                    conn.execute(
                        t.contact_points.delete().where(
                            t.contact_points.c.customer_id == customer_id, t.contact_points.c.kind == kind
                        )
                    )
                rows = [
                    {"customer_id": customer_id, "kind": kind, "value": v, "position": n}
                    for n, v in enumerate(values[key])
                ]
                if rows:
                    conn.execute(t.contact_points.insert(), rows)
        if "addresses" in values:
            if replace:
                conn.execute(t.addresses.delete().where(t.addresses.c.customer_id == customer_id))
            rows = [
                {**{f: a.get(f) for f in ADDRESS_FIELDS}, "customer_id": customer_id, "position": n}
                for n, a in enumerate(values["addresses"])
            ]
            if rows:
                conn.execute(t.addresses.insert(), rows)
        if "tags" in values:
            if replace:
                conn.execute(t.tags.delete().where(t.tags.c.customer_id == customer_id))
            if values["tags"]:
                conn.execute(t.tags.insert(), [{"customer_id": customer_id, "tag": tag} for tag in values["tags"]])
        for channel, granted in (values.get("consents") or {}).items():
            self._upsert_consent(conn, customer_id, channel, granted, now, source)
        if "organizations" in values:
            self._write_memberships(conn, customer_id, values, replace)
        if not replace:
            keys = search_keys(values["name"], values.get("emails", ()), values.get("phones", ()))
            owner = values.get("owner")
            conn.execute(t.search_keys.insert(), [{"key": k, "customer_id": customer_id, "owner": owner} for k in keys])

    def _write_memberships(
        self, conn: sa.Connection, customer_id: int, values: Mapping[str, Any], replace: bool
    ) -> None:
        memberships = values["organizations"]
        org_ids = [m["organization_id"] for m in memberships]
        if org_ids:
            kinds = dict(
                conn.execute(sa.select(t.customers.c.id, t.customers.c.kind).where(t.customers.c.id.in_(org_ids))).all()
            )
            for n, org_id in enumerate(org_ids):
                if kinds.get(org_id) != "organization":
                    raise ValidationError(
                        {
                            "organizations": {
                                n: {
                                    "organization_id": [
                                        f"customer {org_id} is not an organization"
                                        if org_id in kinds
                                        else f"no customer {org_id}"
                                    ]
                                }
                            }
                        }
                    )
        if replace:
            conn.execute(t.memberships.delete().where(t.memberships.c.person_id == customer_id))
        if memberships:
            conn.execute(
                t.memberships.insert(),
                [
                    {"person_id": customer_id, "organization_id": m["organization_id"], "role": m.get("role")}
                    for m in memberships
                ],
            )

    def _upsert_consent(
        self, conn: sa.Connection, customer_id: int, channel: str, granted: bool, at: datetime, source: str
    ) -> None:
        key = (t.consents.c.customer_id == customer_id) & (t.consents.c.channel == channel)
        updated = conn.execute(t.consents.update().where(key).values(granted=granted, at=at, source=source))
        if updated.rowcount == 0:
            conn.execute(
                t.consents.insert().values(
                    customer_id=customer_id, channel=channel, granted=granted, at=at, source=source
                )
            )

    def reindex(self, customer_ids: Iterable[int]) -> None:
        """Rebuild the search keys of these customers from their current name, e-mails and phones, in bulk.

        For code that changes names or contact points without going through ``update`` (undoing
        a merge, bulk repairs); runs in the caller's transaction when there is one.
        """
        with self._crm.transaction() as session:
            self._reindex(session.connection(), list(customer_ids))

    def _reindex(self, conn: sa.Connection, customer_ids: Sequence[int]) -> None:
        c, cp, sk = t.customers.c, t.contact_points.c, t.search_keys.c
        ids = sorted(set(customer_ids))
        names = select_in(conn, sa.select(c.id, c.name, c.owner), c.id, ids)
        points: dict[int, dict[str, list[str]]] = defaultdict(lambda: {"email": [], "phone": []})
        for customer_id, kind, value in select_in(
            conn,
            sa.select(cp.customer_id, cp.kind, cp.value).order_by(cp.customer_id, cp.position, cp.id),
            cp.customer_id,
            ids,
        ):
            points[customer_id].setdefault(kind, []).append(value)
        delete_in(conn, sk.customer_id, ids)
        rows = [
            {"key": key, "customer_id": customer_id, "owner": owner}
            for customer_id, name, owner in names
            for key in search_keys(name, points[customer_id]["email"], points[customer_id]["phone"])
        ]
        executemany(conn, t.search_keys.insert(), rows)

    def _load(
        self, conn: sa.Connection, customer_id: int, *, for_update: bool = False, removing: bool = False
    ) -> Customer:
        found = self._load_many(conn, [customer_id], for_update=for_update, removing=removing)
        if not found:
            raise NotFound("customer", customer_id)
        return found[0]

    def _load_many(
        self, conn: sa.Connection, ids: Sequence[int], *, for_update: bool = False, removing: bool = False
    ) -> list[Customer]:
        """Customers with their contact points, addresses, tags, consents and memberships (2 queries).

        ``for_update`` locks them for a change on PostgreSQL; ``removing`` (a merge, an erasure) with the
        stronger lock that also waits for rows referencing them (see ``_LOAD_CUSTOMERS_FOR_REMOVAL``).
        """
        ids = [i for i in ids if not beyond_columns(i)]
        if not ids:
            return []
        dialect = conn.dialect.name
        locking = dialect == "postgresql" and (for_update or removing)
        if len(ids) > BULK_LOAD:
            load, load_for_update, load_for_removal, children = _bulk_loads(dialect)
            params = {"ids": ids_value(dialect, ids)}
        elif len(ids) == 1 and not locking:
            load = load_for_update = load_for_removal = _LOAD_CUSTOMER
            children, params = _LOAD_CUSTOMER_CHILDREN, {"id": ids[0]}
        else:
            load, load_for_update, load_for_removal, children = (
                _LOAD_CUSTOMERS,
                _LOAD_CUSTOMERS_FOR_UPDATE,
                _LOAD_CUSTOMERS_FOR_REMOVAL,
                _LOAD_CHILDREN,
            )
            params = {"ids": list(ids)}
        statement = (load_for_removal if removing else load_for_update) if locking else load
        rows = conn.execute(statement, params).mappings().all()
        if not rows:
            return []
        points: dict[int, dict[str, list[str]]] = defaultdict(lambda: {"email": [], "phone": []})
        addresses: dict[int, list[Address]] = defaultdict(list)
        tags: dict[int, list[str]] = defaultdict(list)
        consents: dict[int, dict[str, Consent]] = defaultdict(dict)
        orgs: dict[int, list[Membership]] = defaultdict(list)
        for row in conn.execute(children, params):
            cid = row.customer_id
            if row.part == "point":
                points[cid].setdefault(row.text0, []).append(row.text1)
            elif row.part == "address":
                addresses[cid].append(Address(**{f: getattr(row, f"text{n}") for n, f in enumerate(ADDRESS_FIELDS)}))
            elif row.part == "tag":
                tags[cid].append(row.text0)
            elif row.part == "consent":
                consents[cid][row.text0] = Consent(row.text0, row.granted, row.at, row.text1)
            else:
                orgs[cid].append(Membership(row.organization_id, row.text0))
        return [
            Customer(
                id=r["id"],
                kind=r["kind"],
                name=r["name"],
                external_id=r["external_id"],
                given_name=r["given_name"],
                family_name=r["family_name"],
                emails=tuple(points[r["id"]]["email"]),
                phones=tuple(points[r["id"]]["phone"]),
                addresses=tuple(addresses[r["id"]]),
                birth_date=r["birth_date"],
                gender=r["gender"],
                lifecycle_stage=r["lifecycle_stage"],
                owner=r["owner"],
                country=r["country"],
                city=r["city"],
                province=r["province"],
                tags=tuple(tags[r["id"]]),
                consents=consents[r["id"]],
                organizations=tuple(orgs[r["id"]]),
                attributes=r["attributes"] or {},
                status=r["status"],
                merged_into_id=r["merged_into_id"],
                created_at=r["created_at"],
                updated_at=r["updated_at"],
            )
            for r in rows
        ]

    def members(self, organization_id: int) -> list[Customer]:
        """The people belonging to an organization (those within the ``customers.read`` scope)."""
        ms = t.memberships.c
        scope = self._crm.access.customers(ms.person_id, "customers.read")
        with self._crm.reading() as conn:
            ids = list(
                conn.execute(
                    sa.select(ms.person_id).where(ms.organization_id == organization_id, scope).order_by(ms.person_id)
                ).scalars()
            )
            return self._shown_many(self._load_many(conn, ids))


def _filters(**given: Any) -> list[Any]:
    c = t.customers.c
    result = []
    for name, value in given.items():
        if value is None:
            continue
        if name == "tag":
            result.append(sa.exists().where(t.tags.c.customer_id == c.id, t.tags.c.tag == value))
        else:
            result.append(getattr(c, name) == value)
    return result
