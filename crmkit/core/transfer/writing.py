"""The bulk writer: validated customer rows into every customer table, as ``crm.customers.add/update`` would."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from itertools import count, repeat
from operator import itemgetter
from typing import TYPE_CHECKING, Any

import attrs
import sqlalchemy as sa

from crmkit.core import tables as t
from crmkit.core.customers import ADDRESS_FIELDS, SCALARS
from crmkit.core.jsonable import to_jsonable
from crmkit.core.search import search_keys
from crmkit.core.text import fold
from crmkit.core.transfer.columns import reason_text, schema_input
from crmkit.core.transfer.pipeline import AcceptedRow, ImportOutcome, RejectedRow, _Batch, _batches
from crmkit.core.transfer.reading import _Reader, _Record
from crmkit.core.transfer.validation import RowValidator, set_aside_phones
from crmkit.core.upsert import lock_keys
from crmkit.errors import ValidationError

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from crmkit.core.models import Customer
    from crmkit.core.transfer.links import LinkColumns, PendingLink
    from crmkit.crm import CRM


_CUSTOMER_HOOKS = ("crmkit_customer_before_save", "crmkit_customer_created", "crmkit_customer_updated")


def _prepared_batches(
    reader: _Reader,
    validator: RowValidator,
    form: _Form,
    batch_size: int,
    *,
    invalid_phone: str = "drop",
    share: tuple[int, int] = (0, 1),
    links: LinkColumns | None = None,
) -> Iterator[_Batch]:
    """Validated batches of customer rows, each with the table rows inserting its accepted rows (``fresh``).

    A phone that is possible but not a valid number is dropped or kept (``invalid_phone``: the row is imported,
    and noted in the batch's ``notes`` for the reject file) or rejects the row (``reject``). ``links`` takes the
    link cells out of each row into the batch's ``links`` (set once the whole file is written) and types the
    CSV cells of typed attributes.
    """
    notes: list[RejectedRow] = []
    pending: list[PendingLink] = []

    def prepare(record: _Record) -> tuple[dict[str, Any], bool]:
        assert record.cells is not None  # noqa: S101 - narrows the type for mypy; nothing relies on it being checked
        link = None
        if links is not None:
            link = links.take(
                record.cells, csv=reader._fmt == "csv", row=record.row, line=record.line, original=record.original
            )
        data = schema_input(record.cells, with_address=record.with_address)
        named = "name" in data
        try:
            values = validator(data, record.row)
            if link is not None:
                pending.append(link)
            return values, named
        except ValidationError as exc:
            aside = set_aside_phones(data, validator.country) if {"phone", "phones"} & exc.errors.keys() else []
            if invalid_phone == "reject" or not aside:
                raise
            try:
                values = validator(data, record.row)
            except ValidationError:
                raise exc from None  # wrong in other ways too: every reason, the phone's included
            if link is not None:
                pending.append(link)
        if invalid_phone == "keep":
            first = [e164 for column, _, e164 in aside if column == "phone"]
            rest = [e164 for column, _, e164 in aside if column == "phones"]
            values["phones"] = list(dict.fromkeys([*first, *values.get("phones", ()), *rest]))
        notes.append(RejectedRow(record.row, record.line, _phone_note(aside, invalid_phone), record.original))
        return values, named

    def finish(batch: _Batch) -> None:
        batch.notes, notes[:] = list(notes), []
        batch.links, pending[:] = list(pending), []
        batch.fresh = _TableRows.inserting(form, enumerate(entry.values for entry in batch.accepted))

    return _batches(reader, prepare, batch_size, finish, share)


def _phone_note(aside: Sequence[tuple[str, str, str]], invalid_phone: str) -> str:
    """The reject file's line for a row imported without (or with) phones that are not valid numbers."""
    if invalid_phone == "keep":
        done = [
            f"{column}: not a valid phone number: {given!r} (kept as {e164}: check it)" for column, given, e164 in aside
        ]
    else:
        done = [
            f"{column}: not a valid phone number: {given!r} (dropped: imported without it)"
            for column, given, _ in aside
        ]
    return "; ".join(done)


@attrs.frozen
class _Target:
    """The customer a row's external_id leads to; ``via_merge`` when it was merged into that one."""

    customer_id: int | None
    problem: str | None = None
    via_merge: bool = False
    owner: str | None = None  # of the record the external id names (scope decides what a user is told of a problem)


#: SQLite settings of the import's connection while it runs: checkpoint the write-ahead log every
#: ~400 MB instead of every 4 MB (an index page that many batches dirty is copied into the database
#: once, not once per batch) and a 64 MiB page cache for the indexes' pages. Measured on the rows of
#: 300,000 customers: 1.8x the rows/s of the defaults.
SQLITE_BULK = {"wal_autocheckpoint": 100_000, "cache_size": -65_536}
_CUSTOMER_COLUMNS = ("id", *SCALARS, "name_key", "attributes", "status", "created_at", "updated_at")
_UPDATE_COLUMNS = (*SCALARS, "name_key", "attributes", "created_at", "updated_at")
_POINT_COLUMNS = ("customer_id", "kind", "value", "position")
_ADDRESS_COLUMNS = ("customer_id", *ADDRESS_FIELDS, "position")
_CONSENT_COLUMNS = ("customer_id", "channel", "granted", "at", "source")
_KIND, _STAGE, _BIRTH = (SCALARS.index(f) for f in ("kind", "lifecycle_stage", "birth_date"))
_OWNER = 1 + SCALARS.index("owner")  # in a customers row of ``_TableRows`` (after the id)


def _same(value: Any) -> Any:
    return value


class _Form:
    """Values as the writer's executemany takes them: stored form for SQLite's raw cursor, Python values for Core.

    The conversions are the columns' own SQLAlchemy bind processors, so rows are stored
    exactly as ``crm.customers.add`` stores them.
    """

    def __init__(self, dialect: sa.Dialect) -> None:
        self._dialect = dialect
        self.raw = dialect.name == "sqlite"
        self.date = self._processor(t.customers.c.birth_date)
        self.json = self._processor(t.customers.c.attributes)
        self.flag = self._processor(t.consents.c.granted)
        self.time = self._processor(t.customers.c.created_at)

    def _processor(self, column: sa.Column[Any]) -> Callable[[Any], Any]:
        process = column.type._cached_bind_processor(self._dialect) if self.raw else None
        return process or _same


@attrs.define
class _TableRows:
    """What inserting customers adds to each table; rows start with the customer's id (or batch index)."""

    customers: list[tuple[Any, ...]] = attrs.field(factory=list)  # id, *SCALARS, name_key, attributes, created_at
    points: list[tuple[Any, ...]] = attrs.field(factory=list)  # id, kind, value, position
    addresses: list[tuple[Any, ...]] = attrs.field(factory=list)  # id, *ADDRESS_FIELDS, position
    tags: list[tuple[Any, ...]] = attrs.field(factory=list)  # id, tag
    consents: list[tuple[Any, ...]] = attrs.field(factory=list)  # id, channel, granted
    keys: list[tuple[Any, ...]] = attrs.field(factory=list)  # key, id, owner

    @classmethod
    def inserting(cls, form: _Form, items: Iterable[tuple[int, Mapping[str, Any]]]) -> _TableRows:
        """The rows of new customers from ``(id, values)``, as ``Customers.insert_validated`` writes them."""
        rows = cls()
        no_attributes = form.json({})
        for key, values in items:
            scalars = list(map(values.get, SCALARS))
            scalars[_KIND] = scalars[_KIND] or "person"
            scalars[_STAGE] = scalars[_STAGE] or "lead"
            scalars[_BIRTH] = form.date(scalars[_BIRTH])
            since = values.get("created_at")
            attributes = values.get("attributes")
            folded = fold(values["name"])  # ``search_keys`` folds it again: cheap, and it changes nothing
            rows.customers.append(
                (
                    key,
                    *scalars,
                    folded[:400],
                    form.json(attributes) if attributes else no_attributes,
                    None if since is None else form.time(since),
                )
            )
            rows.add_children(form, key, values)
            rows.add_keys(key, folded, values.get("emails", ()), values.get("phones", ()), values.get("owner"))
        rows.sort()
        return rows

    def add_children(self, form: _Form, key: int, values: Mapping[str, Any]) -> None:
        """Contact points, addresses, tags and consents given in ``values``."""
        for kind in ("email", "phone"):
            if kind + "s" in values:
                self.points.extend(zip(repeat(key), repeat(kind), values[kind + "s"], count()))
        if "addresses" in values:
            self.addresses.extend(
                (key, *(a.get(f) for f in ADDRESS_FIELDS), n) for n, a in enumerate(values["addresses"])
            )
        if "tags" in values:
            self.tags.extend(zip(repeat(key), values["tags"]))
        if values.get("consents"):
            self.consents.extend((key, channel, form.flag(granted)) for channel, granted in values["consents"].items())

    def add_keys(self, key: int, name: str, emails: Iterable[str], phones: Iterable[str], owner: str | None) -> None:
        self.keys.extend(zip(search_keys(name, emails, phones), repeat(key), repeat(owner)))

    def sort(self) -> None:
        """Index order: B-tree inserts in key order touch fewer pages."""
        self.points.sort(key=itemgetter(1, 2))
        self.tags.sort(key=itemgetter(1))
        self.keys.sort()

    def renumbered(self, ids: Sequence[int | None]) -> _TableRows:
        """These rows with batch indexes replaced by ``ids[index]``, leaving out those whose id is None."""

        def remap(rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
            return [(ids[r[0]], *r[1:]) for r in rows if ids[r[0]] is not None]

        return _TableRows(
            remap(self.customers),
            remap(self.points),
            remap(self.addresses),
            remap(self.tags),
            remap(self.consents),
            [(k, ids[i], o) for k, i, o in self.keys if ids[i] is not None],
        )

    def insert(self, bulk: _Bulk, form: _Form, now: Any, source: str) -> None:
        stamp = form.time(now)
        bulk.insert(
            t.customers,
            _CUSTOMER_COLUMNS,
            [(*r[:-1], "active", stamp if r[-1] is None else r[-1], stamp) for r in self.customers],
        )
        bulk.insert(t.contact_points, _POINT_COLUMNS, self.points)
        bulk.insert(t.addresses, _ADDRESS_COLUMNS, self.addresses)
        bulk.insert(t.tags, ("customer_id", "tag"), self.tags)
        bulk.insert(t.consents, _CONSENT_COLUMNS, [(*r, stamp, source) for r in self.consents])
        bulk.insert(t.search_keys, ("key", "customer_id", "owner"), self.keys)


_CONTACTS = ("emails", "phones", "addresses")


class _OwnerRules:
    """What ``crm.customers.add`` / ``update`` check about owners and scope, for the acting principal.

    Read once per import: the active usernames and the owners each permission's scope reaches.
    A row whose owner passes these set lookups is fine; any other goes through the customer
    service's own check (cached per owner), so the reason is word for word the API's.
    """

    def __init__(self, crm: CRM) -> None:
        self._crm = crm
        access = crm.access
        principal = access.principal
        #: The owner a user's new customer gets when the row names none (the system leaves it unowned).
        self.default = None if principal.is_system else principal.username
        self._reach = {p: principal.owners(p) for p in ("customers.create", "customers.update")}
        self._clear = access.contact_owners()
        with crm.reading() as conn:
            self._active = crm.users.active_usernames(conn)
        self._reasons: dict[tuple[str | None, str], str | None] = {}

    def owner_problem(self, conn: sa.Connection, owner: str | None, permission: str) -> str | None:
        """Why ``owner`` cannot own a customer this principal creates or updates (``permission``); None if it can."""
        reach = self._reach[permission]
        if reach is None and owner is None:
            return None
        if owner in self._active and (reach is None or owner in reach):
            return None
        key = (owner, permission)
        if key not in self._reasons:
            try:
                self._crm.access.check_owner(conn, owner, permission)
                self._reasons[key] = None
            except ValidationError as exc:
                self._reasons[key] = reason_text(exc.errors)
        return self._reasons[key]

    def update_problem(self, customer: Customer, values: Mapping[str, Any], external_id: Any) -> str | None:
        """Why this principal may not apply a row's ``values`` to ``customer`` (the one its ``external_id``
        leads to): outside its scope, or contact details it does not see; None if it may."""
        if self.hides(customer.owner):
            return self.hidden(external_id)
        if self._clear is not None and customer.owner not in self._clear:
            hidden = [key for key in _CONTACTS if key in values]
            if hidden:
                return (
                    f"{', '.join(hidden)}: cannot be changed without seeing them (this customer's contact details "
                    "are masked for you: customers.contact_details)"
                )
        return None

    def hides(self, owner: str | None) -> bool:
        """Whether customers owned by ``owner`` are outside this principal's ``customers.update`` scope."""
        reach = self._reach["customers.update"]
        return reach is not None and owner not in reach

    @staticmethod
    def hidden(external_id: Any) -> str:
        """The reason for a row naming a customer the principal may not change: neither who nor whose."""
        return f"external_id: {external_id!r} is used by a customer you cannot change"


class _Writer:
    """Writes validated rows to every customer table as ``crm.customers.add/update`` would, in bulk.

    The customer hooks fire as they do for ``add``/``update``: ``before_save`` for each row
    first (a veto rejects that row), then ``created``/``updated`` after the batch's writes,
    in its transaction. Without a plugin implementing them no ``Customer`` object is built.
    Owners and scope are checked as those methods check them (:class:`_OwnerRules`).
    """

    def __init__(self, crm: CRM, label: str, owners: _OwnerRules) -> None:
        self._crm = crm
        self._owners = owners
        self._customers = crm.customers
        self._source = f"import {label}"[:200]
        self._hooked = any(crm.hooks.has_implementations(h) for h in _CUSTOMER_HOOKS)
        self.form = _Form(crm.engine.dialect)
        self._settings: dict[sqlite3.Connection, dict[str, Any]] = {}  # each tuned connection: its own settings

    def write(self, session: Session, batch: _Batch) -> ImportOutcome:
        """Insert or update one batch in the caller's transaction; rows that cannot be applied come back as rejects."""
        conn = session.connection()
        self._tune(conn)
        # Two imports at once (PostgreSQL): one batch at a time, so each finds the customers the other committed
        # (SQLite's write transactions already run one at a time).
        lock_keys(conn, "customers.import", [0])
        bulk = _Bulk(conn)
        outcome = ImportOutcome()
        accepted = batch.accepted
        owners = self._owners
        targets = _targets(conn, [entry.values["external_id"] for entry in accepted])
        new: list[int] = []
        owned: dict[int, str] = {}  # batch index: the owner given to a new customer whose row named none
        updates: list[tuple[int, AcceptedRow]] = []
        named: dict[int, Any] = {}  # row: the external id it names (a merged-away customer's, maybe)
        for index, entry in enumerate(accepted):
            target = targets.get(entry.values["external_id"])
            if target is None:
                values = entry.values
                if values.get("owner") is None and owners.default is not None:
                    values["owner"] = owned[index] = owners.default
                problem = owners.owner_problem(conn, values.get("owner"), "customers.create")
                if problem is None:
                    new.append(index)
                else:
                    outcome.rejects.append(entry.rejected(problem))
            elif target.customer_id is None:
                problem = owners.hidden(entry.values["external_id"]) if owners.hides(target.owner) else target.problem
                outcome.rejects.append(entry.rejected(problem or "cannot be updated"))
            else:
                named[entry.row] = entry.values["external_id"]
                if target.via_merge:  # the customer it was merged into keeps its own external id
                    entry.values.pop("external_id", None)
                if not entry.named:  # a name built from its parts: follow them as ``update`` does
                    entry.values.pop("name", None)
                updates.append((target.customer_id, entry))
        self._insert(session, bulk, batch, new, owned, outcome)
        while updates:  # two rows reaching one customer (through a merge) apply one after the other
            first: dict[int, AcceptedRow] = {}
            later: list[tuple[int, AcceptedRow]] = []
            for customer_id, entry in updates:
                if customer_id in first:
                    later.append((customer_id, entry))
                else:
                    first[customer_id] = entry
            self._update(session, bulk, first, named, outcome)
            updates = later
        return outcome

    def _tune(self, conn: sa.Connection) -> None:
        """On SQLite, give the import's connection ``SQLITE_BULK`` settings (the old ones are kept to restore)."""
        if conn.dialect.name != "sqlite":
            return
        raw = conn.connection.driver_connection
        if raw not in self._settings:
            self._settings[raw] = {name: raw.execute(f"PRAGMA {name}").fetchone()[0] for name in SQLITE_BULK}
            for name, value in SQLITE_BULK.items():
                raw.execute(f"PRAGMA {name}={value}")

    def restore_settings(self) -> None:
        """Give every tuned connection its own settings back (idle in the pool, or closed since: nothing to do)
        and fold the write-ahead log into the database."""
        tuned, self._settings = self._settings, {}
        restored = None
        for raw, settings in tuned.items():
            try:
                for name, value in settings.items():
                    raw.execute(f"PRAGMA {name}={value}")
            except sqlite3.ProgrammingError:  # the pool closed it: its settings went with it
                continue
            restored = raw
        if restored is not None:
            restored.execute("PRAGMA wal_checkpoint(PASSIVE)")

    def _vetoed(
        self,
        outcome: ImportOutcome,
        entry: AcceptedRow,
        customer: Customer | None,
        changes: dict[str, Any],
        session: Session,
    ) -> bool:
        """Run the ``before_save`` hooks; a veto (``ValidationError``) rejects the row."""
        if not self._hooked:
            return False
        try:
            self._crm.hooks.customer_before_save(customer, changes, session)
        except ValidationError as exc:
            outcome.rejects.append(entry.rejected(reason_text(exc.errors)))
            return True
        return False

    def _insert(
        self,
        session: Session,
        bulk: _Bulk,
        batch: _Batch,
        new: list[int],
        owned: Mapping[int, str],
        outcome: ImportOutcome,
    ) -> None:
        accepted = batch.accepted
        new = [i for i in new if not self._vetoed(outcome, accepted[i], None, accepted[i].values, session)]
        if not new:
            return
        ids: list[int | None] = [None] * len(accepted)
        for index, customer_id in zip(new, bulk.new_customer_ids(len(new))):
            ids[index] = customer_id
        if self._hooked or batch.fresh is None:  # a before_save hook may have changed the values
            rows = _TableRows.inserting(self.form, ((ids[i], accepted[i].values) for i in new))
        else:
            rows = batch.fresh.renumbered(ids)
            if owned:  # prepared before the owner was known: give those rows the importing user
                given = {ids[i]: owner for i, owner in owned.items() if ids[i] is not None}
                rows.customers = [
                    (*r[:_OWNER], given[r[0]], *r[_OWNER + 1 :]) if r[0] in given else r for r in rows.customers
                ]
                rows.keys = [(k, i, given[i]) if i in given else (k, i, o) for k, i, o in rows.keys]
        rows.insert(bulk, self.form, self._crm.now(), self._source)
        outcome.inserted += len(new)
        if self._hooked:
            for customer in self._customers._load_many(session.connection(), [ids[i] for i in new]):
                self._crm.hooks.customer_created(customer, session)
        self._crm.events.emit_many(
            session, "customer.created", self._payloads(session.connection(), [i for i in ids if i is not None])
        )

    def _update(
        self,
        session: Session,
        bulk: _Bulk,
        entries: dict[int, AcceptedRow],
        named: Mapping[int, Any],
        outcome: ImportOutcome,
    ) -> None:
        conn = session.connection()
        current = {c.id: c for c in self._customers._load_many(conn, list(entries), for_update=True)}
        changed: list[tuple[Customer, dict[str, Any]]] = []
        owners = self._owners
        for customer_id, entry in entries.items():
            customer = current[customer_id]
            problem = owners.update_problem(customer, entry.values, named[entry.row])
            changes = self._customers.changes(customer, entry.values) if problem is None else {}
            if problem is None and "owner" in changes:
                problem = owners.owner_problem(conn, changes["owner"], "customers.update")
            if problem is not None:
                outcome.rejects.append(entry.rejected(problem))
            elif not changes:
                outcome.unchanged += 1
            elif not self._vetoed(outcome, entry, customer, changes, session):
                changed.append((customer, changes))
        if not changed:
            return
        form, now = self.form, self._crm.now()
        stamp = form.time(now)
        updates, rows = [], _TableRows()
        cleared: dict[str, list[int]] = {"email": [], "phone": [], "addresses": [], "tags": [], "keys": []}
        consents: list[dict[str, Any]] = []
        owned: list[dict[str, Any]] = []  # a new owner for the search keys of a customer whose keys stay
        for customer, changes in changed:
            scalars = [changes[f] if f in changes else getattr(customer, f) for f in SCALARS]
            scalars[_BIRTH] = form.date(scalars[_BIRTH])
            name = changes.get("name", customer.name)
            attributes = changes["attributes"] if "attributes" in changes else customer.attributes
            since = form.time(changes["created_at"]) if "created_at" in changes else form.time(customer.created_at)
            updates.append((*scalars, fold(name)[:400], form.json(attributes), since, stamp, customer.id))
            for key in ("email", "phone", "addresses", "tags"):
                if (key + "s" if key in ("email", "phone") else key) in changes:
                    cleared[key].append(customer.id)
            consents.extend({"c": customer.id, "ch": channel} for channel in changes.get("consents") or {})
            rows.add_children(form, customer.id, changes)
            owner = changes.get("owner", customer.owner)
            if {"name", "emails", "phones"} & changes.keys():
                cleared["keys"].append(customer.id)
                rows.add_keys(
                    customer.id,
                    name,
                    changes.get("emails", customer.emails),
                    changes.get("phones", customer.phones),
                    owner,
                )
            elif "owner" in changes:
                owned.append({"c": customer.id, "o": owner})
        rows.sort()
        bulk.update_customers(updates)
        cp, cs = t.contact_points.c, t.consents.c
        for kind in ("email", "phone"):
            bulk.delete(t.contact_points, cleared[kind], cp.kind == kind)
        bulk.delete(t.addresses, cleared["addresses"])
        bulk.delete(t.tags, cleared["tags"])
        bulk.delete(t.search_keys, cleared["keys"])
        if owned:
            conn.execute(
                t.search_keys.update()
                .where(t.search_keys.c.customer_id == sa.bindparam("c"))
                .values(owner=sa.bindparam("o")),
                owned,
            )
        if consents:
            conn.execute(
                t.consents.delete().where(cs.customer_id == sa.bindparam("c"), cs.channel == sa.bindparam("ch")),
                consents,
            )
        rows.insert(bulk, form, now, self._source)
        outcome.updated += len(changed)
        if self._hooked:
            by_id = {c.id: c for c in self._customers._load_many(conn, [c.id for c, _ in changed])}
            for customer, changes in changed:
                self._crm.hooks.customer_updated(by_id[customer.id], changes, session)
        changed_fields = {customer.id: sorted(changes) for customer, changes in changed}
        self._crm.events.emit_many(
            session, "customer.updated", self._payloads(conn, list(changed_fields), changed_fields)
        )

    def _payloads(
        self, conn: sa.Connection, ids: list[int], changed: Mapping[int, list[str]] | None = None
    ) -> Iterator[tuple[dict[str, Any], int]]:
        """Webhook payloads of these customers, loaded only when iterated: when a webhook listens.

        (A generator expression would load them at once: its first ``for`` runs when it is created.)
        """
        for customer in self._customers._load_many(conn, ids):
            payload = {"customer": to_jsonable(customer)}
            if changed is not None:
                payload["changed"] = changed[customer.id]
            yield payload, customer.id


_BY_EXTERNAL_ID = sa.select(
    t.customers.c.id, t.customers.c.external_id, t.customers.c.status, t.customers.c.merged_into_id, t.customers.c.owner
).where(t.customers.c.external_id.in_(sa.bindparam("ids", expanding=True)))


def _targets(conn: sa.Connection, external_ids: list[str]) -> dict[str, _Target]:
    """The customers these external ids lead to: themselves, or the customer they were merged into."""
    c = t.customers.c
    found: dict[str, tuple[int, str, int | None]] = {}
    owners: dict[str, str | None] = {}
    for start in range(0, len(external_ids), 5000):
        chunk = external_ids[start : start + 5000]
        for customer_id, external_id, status, into, owner in conn.execute(_BY_EXTERNAL_ID, {"ids": chunk}):
            found[external_id] = (customer_id, status, into)
            owners[external_id] = owner
    kept = {into for _, status, into in found.values() if status == "merged" and into is not None}
    states = dict(conn.execute(sa.select(c.id, c.status).where(c.id.in_(kept))).all()) if kept else {}
    result: dict[str, _Target] = {}
    for external_id, (customer_id, status, into) in found.items():
        if status == "active":
            result[external_id] = _Target(customer_id)
        elif status == "merged" and into is not None and states.get(into) == "active":
            result[external_id] = _Target(into, via_merge=True)
        else:
            where = f"customer {customer_id}" + (f", merged into customer {into}," if into is not None else "")
            result[external_id] = _Target(
                None,
                f"external_id: {external_id!r} belongs to {where} which is "
                f"{states.get(into, status) if into is not None else status}; "
                "it cannot be updated",
                owner=owners[external_id],
            )
    return result


_SQL: dict[tuple[str, str, tuple[str, ...]], str] = {}


class _Bulk:
    """Bulk writes on the batch's connection: the raw sqlite3 cursor's executemany on SQLite (rows in stored form),
    ``COPY … FROM STDIN`` through psycopg's copy API on PostgreSQL (one stream a table, no statement a row)."""

    def __init__(self, conn: sa.Connection) -> None:
        self.conn = conn
        self._dialect = conn.dialect
        self._raw = conn.connection.driver_connection.cursor() if conn.dialect.name == "sqlite" else None
        self._copy = conn.connection.driver_connection if conn.dialect.name == "postgresql" else None

    def insert(self, table: sa.Table, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        if not rows:
            return
        if self._copy is not None:
            self._copy_in(table, columns, rows)
        elif self._raw is None:
            self.conn.execute(table.insert(), [dict(zip(columns, row)) for row in rows])
        else:
            self._raw.executemany(self._sql("insert", table, tuple(columns)), rows)

    def _copy_in(self, table: sa.Table, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        """The rows into ``table`` through ``COPY``, in the batch's transaction (JSON columns sent as JSON text).

        Straight into the table, no staging table: new customers' ids come from the table's sequence and the
        import's lock (:meth:`_Writer.write`) keeps two imports from adding one external id at once.
        """
        quote = self._dialect.identifier_preparer.quote
        as_json = [n for n, name in enumerate(columns) if isinstance(table.c[name].type, sa.JSON)]
        statement = f"COPY {quote(table.name)} ({', '.join(map(quote, columns))}) FROM STDIN"
        with self._copy.cursor() as cursor, cursor.copy(statement) as copy:
            for row in rows:
                if as_json:
                    row = list(row)
                    for n in as_json:
                        row[n] = json.dumps(row[n], ensure_ascii=False)
                copy.write_row(row)

    def update_customers(self, rows: Sequence[Sequence[Any]]) -> None:
        """``UPDATE customers`` of every column in ``_UPDATE_COLUMNS``; each row ends with the id."""
        if self._raw is None:
            statement = (
                t.customers.update()
                .where(t.customers.c.id == sa.bindparam("_id"))
                .values({c: sa.bindparam("_" + c) for c in _UPDATE_COLUMNS})
            )
            self.conn.execute(statement, [{"_" + k: v for k, v in zip((*_UPDATE_COLUMNS, "id"), row)} for row in rows])
        else:
            self._raw.executemany(self._sql("update", t.customers, _UPDATE_COLUMNS), rows)

    def delete(self, table: sa.Table, customer_ids: list[int], *where: Any) -> None:
        if customer_ids:
            self.conn.execute(table.delete().where(table.c.customer_id.in_(customer_ids), *where))

    def new_customer_ids(self, count: int) -> list[int]:
        """Ids for ``count`` new customers, as the database would have given them."""
        if self._dialect.name == "sqlite":  # the write transaction holds the lock: max + 1 is what rowid gives
            start = self.conn.execute(sa.select(sa.func.max(t.customers.c.id))).scalar() or 0
            return list(range(start + 1, start + count + 1))
        if self._dialect.name == "postgresql":
            return list(
                self.conn.execute(
                    sa.text("SELECT nextval(pg_get_serial_sequence('customers', 'id')) FROM generate_series(1, :n)"),
                    {"n": count},
                ).scalars()
            )
        raise NotImplementedError(f"bulk import on {self._dialect.name}")

    def _sql(self, kind: str, table: sa.Table, columns: tuple[str, ...]) -> str:
        key = (kind, table.name, columns)
        if key not in _SQL:
            quote = self._dialect.identifier_preparer.quote
            names = [quote(c) for c in columns]
            if kind == "insert":
                _SQL[key] = (
                    f"INSERT INTO {quote(table.name)} ({', '.join(names)}) VALUES ({', '.join('?' * len(names))})"  # noqa: S608 - names from the model, quoted
                )
            else:
                _SQL[key] = (
                    f"UPDATE {quote(table.name)} SET {', '.join(n + ' = ?' for n in names)} WHERE {quote('id')} = ?"  # noqa: S608 - as above
                )
        return _SQL[key]
