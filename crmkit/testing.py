"""pytest plugin for crmkit and its plugin authors (registered through the ``pytest11`` entry point).

Fixtures:

* ``cli_locale`` (automatic) — ``crmkit`` commands print English in tests unless one names ``--locale``;
* ``crm`` — a CRM on a fresh database with the plugins named by
  ``@pytest.mark.crmkit_plugins("sales", ...)`` (none by default);
* ``crm_factory`` — ``crm_factory(plugins=[...])`` for tests that need several CRMs;
* ``frozen_clock`` — a :class:`FrozenClock` to pass as ``crm_factory(clock=frozen_clock)``: time stands still
  until the test calls ``frozen_clock.advance(days=1)`` or ``.set("2026-10-31T17:30:00+00:00")``;
* ``crmkit_backend`` — ``"sqlite"`` or ``"postgresql"``: every test using the fixtures
  above runs on SQLite and, when ``--crmkit-postgres URL`` or ``CRMKIT_TEST_POSTGRES_URL``
  is given, on PostgreSQL too.

:class:`PluginContract` is the contract check any plugin runs by subclassing it.

:data:`PURCHASE_SOURCE` is a stand-in purchase source (``crmkit_value_transactions`` over its own table,
``crmkit_test_purchases``) for tests that need purchases without crmkit-sales; :class:`Shop` writes them,
firing sales' order hooks as sales does: ``crm_factory(plugins=["analytics", PURCHASE_SOURCE])``. Its orders are
:class:`SalesOrder` (with :class:`SalesLine` and :class:`SalesRefund`): the one typed double of sales' order
objects, every documented field present, for any stand-in of crmkit-sales.

:class:`WebhookReceiver` is a real local HTTP server that records webhook deliveries and checks their
Standard Webhooks signatures (a test points a subscription at ``receiver.url``).

Browser tests: ``live_server`` (the base URL of ``crmkit.web.create_app(crm)`` served on a free local port),
``browser_page`` / ``new_browser_page(locale=…)`` (Playwright pages of Debian's headless ``/usr/bin/chromium``,
``browser_locale`` setting their language) and ``screenshot(page, name)`` (into ``$CRMKIT_SCREENSHOTS``).

``--crmkit-hook-report FILE`` writes, as JSON, which crmkit hooks ran at least one
implementation during which passing test (crmkit's own meta-test uses it; plugin authors
can use it to see which of their hooks the tests reach).
"""

from __future__ import annotations

import csv
import dataclasses
import itertools
import json
import os
import shutil
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import attrs
import pytest
import sqlalchemy as sa

from crmkit.core.access import CONTACT_DETAILS
from crmkit.core.types import Id, UTCDateTime
from crmkit.hooks import hookimpl
from crmkit.plugin import Plugin

POSTGRES_ENV = "CRMKIT_TEST_POSTGRES_URL"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("crmkit")
    group.addoption(
        "--crmkit-postgres",
        default=os.environ.get(POSTGRES_ENV),
        help=f"PostgreSQL URL to run crmkit tests on as well as SQLite (default: ${POSTGRES_ENV})",
    )
    group.addoption(
        "--crmkit-hook-report",
        metavar="FILE",
        default=None,
        help="write which crmkit hooks ran an implementation in which passing test (JSON)",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "crmkit_plugins(*names): plugins the `crm` fixture loads")
    config.addinivalue_line("markers", "sqlite_only(reason): behaviour that exists only on SQLite")
    config.addinivalue_line(
        "markers", "postgresql_only(reason): behaviour that exists only on PostgreSQL (not collected without one)"
    )
    os.environ.setdefault("CRMKIT_STRICT_PLUGINS", "1")
    from crmkit.core import users

    users.PASSWORD_HASHING.update(time_cost=1, memory_cost=1024, parallelism=1)  # argon2id still, at a test's cost
    report = config.getoption("--crmkit-hook-report")
    if report:
        config.pluginmanager.register(HookReport(Path(report)), "crmkit-hook-report")


class HookReport:
    """Records, per hook, the tests during which it ran at least one implementation (``--crmkit-hook-report``).

    Every pluggy manager crmkit creates gets call monitoring, so calls made while a CRM opens
    (services, start-up) count as well as calls from inside services and transactions.
    """

    def __init__(self, path: Path) -> None:
        from crmkit.hooks import manager

        self.path = path
        self.calls: defaultdict[str, set[str]] = defaultdict(set)
        self.failed: set[str] = set()
        self._manager = manager
        self._original = manager.new_plugin_manager
        manager.new_plugin_manager = self._monitored

    def _monitored(self) -> Any:
        pm = self._original()
        pm.add_hookcall_monitoring(self._before, lambda *args: None)
        return pm

    def _before(self, hook_name: str, hook_impls: Sequence[Any], kwargs: Mapping[str, Any]) -> None:
        current = os.environ.get("PYTEST_CURRENT_TEST")  # "path::test[param] (call)"
        if hook_impls and current:
            self.calls[hook_name].add(current.rsplit(" ", 1)[0])

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.failed:
            self.failed.add(report.nodeid)

    def pytest_sessionfinish(self) -> None:
        self._manager.new_plugin_manager = self._original
        passed = {hook: sorted(tests - self.failed) for hook, tests in sorted(self.calls.items())}
        self.path.write_text(json.dumps({hook: tests for hook, tests in passed.items() if tests}, indent=2))


def pytest_report_header(config: pytest.Config) -> str:
    url = config.getoption("--crmkit-postgres")
    if url:
        return f"crmkit: databases sqlite + postgresql ({sa.make_url(url).render_as_string(hide_password=True)})"
    return "crmkit: PostgreSQL not available; running on SQLite only"


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "crmkit_backend" in metafunc.fixturenames:
        postgres = bool(metafunc.config.getoption("--crmkit-postgres"))
        if metafunc.definition.get_closest_marker("postgresql_only"):
            backends = ["postgresql"] if postgres else []  # without a server: deselected (the header says so)
        else:
            backends = [
                "sqlite",
                *(["postgresql"] if postgres and not metafunc.definition.get_closest_marker("sqlite_only") else []),
            ]
        if backends:
            metafunc.parametrize("crmkit_backend", backends, indirect=True, scope="session")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Without a PostgreSQL server, tests of PostgreSQL-only behaviour are deselected rather than skipped."""
    if config.getoption("--crmkit-postgres"):
        return
    dropped = [item for item in items if item.get_closest_marker("postgresql_only")]
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = [item for item in items if not item.get_closest_marker("postgresql_only")]


@pytest.fixture(autouse=True)
def cli_locale(monkeypatch: pytest.MonkeyPatch) -> str:
    """The language ``crmkit`` commands speak in tests: English (``CRMKIT_LOCALE=en``, the source language), so a
    test asserts the words in the code. A test of Vietnamese output passes ``--locale vi``; one of the default
    (the user's, the business's, else vi) calls ``monkeypatch.delenv("CRMKIT_LOCALE")``."""
    monkeypatch.setenv("CRMKIT_LOCALE", "en")
    return "en"


@pytest.fixture(scope="session")
def crmkit_backend(request: pytest.FixtureRequest) -> str:
    """The database backend this test runs on (parametrized: sqlite, and postgresql when configured)."""
    return request.param


class _Databases:
    """Fresh databases per test: copied from a migrated template (SQLite), or a pooled copy emptied (PostgreSQL)."""

    def __init__(self, backend: str, workdir: Path, pg_url: str | None) -> None:
        self.backend = backend
        self.workdir = workdir
        self.pg_url = pg_url
        self.templates: dict[tuple[str, ...], str] = {}
        self.pg_pool: dict[tuple[tuple[str, ...], int], str] = {}
        self.token = uuid.uuid4().hex[:8]

    def url_for(self, plugins: Sequence[Plugin | str] | None, slot: int, tmp: Path) -> str:
        key = _schema_key(plugins)
        if key not in self.templates:
            self.templates[key] = self._make_template(plugins, key)
        template = self.templates[key]
        if self.backend == "sqlite":
            target = tmp / f"crm{slot}.db"
            shutil.copyfile(template, target)
            return f"sqlite:///{target}"
        name = self.pg_pool.get((key, slot))
        if name is None:
            name = f"crmkit_t_{self.token}_{len(self.pg_pool)}"
            with _pg_admin(self.pg_url) as conn:
                conn.exec_driver_sql(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
                # a throwaway test database need not wait for its WAL to reach the disk at each commit
                conn.exec_driver_sql(f'ALTER DATABASE "{name}" SET synchronous_commit = off')
            self.pg_pool[(key, slot)] = name
        else:
            _empty(_pg_database(self.pg_url, name))
        return _pg_database(self.pg_url, name)

    def _make_template(self, plugins: Sequence[Plugin | str] | None, key: tuple[str, ...]) -> str:
        """A migrated database for this plugin set. One whose plugins fail to open (a test expecting that)
        is removed again, so the next plugin set's template never starts from its leftovers."""
        from crmkit.crm import CRM

        if self.backend == "sqlite":
            path = self.workdir / f"template_{len(self.templates)}.db"
            try:
                crm = CRM(f"sqlite:///{path}", plugins=plugins, upgrade=True, strict=True)
            except BaseException:
                for leftover in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
                    leftover.unlink(missing_ok=True)
                raise
            with crm.engine.connect() as conn:
                conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
            crm.close()
            return str(path)
        name = f"crmkit_tpl_{self.token}_{len(self.templates)}"
        with _pg_admin(self.pg_url) as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
        try:
            crm = CRM(_pg_database(self.pg_url, name), plugins=plugins, upgrade=True, strict=True)
        except BaseException:
            with _pg_admin(self.pg_url) as conn:
                conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            raise
        crm.close()
        return name

    def drop_all(self) -> None:
        if self.backend != "postgresql":
            return
        with _pg_admin(self.pg_url) as conn:
            for name in [*self.pg_pool.values(), *self.templates.values()]:
                conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _schema_key(plugins: Sequence[Plugin | str] | None) -> tuple[str, ...]:
    if plugins is None:
        return ("*",)
    return tuple(sorted(p if isinstance(p, str) else f"{p.name}:{p.migrations}" for p in plugins))


def _pg_database(url: str | None, name: str) -> str:
    assert url is not None
    return sa.make_url(url).set(database=name).render_as_string(hide_password=False)


class _pg_admin:
    """An autocommit connection to the server's maintenance database (CREATE/DROP DATABASE)."""

    def __init__(self, url: str | None) -> None:
        from crmkit.storage import create_engine

        self.engine = create_engine(_pg_database(url, "postgres"), isolation_level="AUTOCOMMIT")

    def __enter__(self) -> sa.Connection:
        self.conn = self.engine.connect()
        return self.conn

    def __exit__(self, *exc: object) -> None:
        self.conn.close()
        self.engine.dispose()


def _empty(url: str) -> None:
    """Empty a used test database for the next test, ids starting at 1 again.

    Only the tables holding rows are emptied, children first (a test touches a handful of
    the ~80 tables; ``TRUNCATE … CASCADE`` of all of them took a second per test).
    """
    from crmkit.storage import create_engine

    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            order = [
                name
                for name, _ in sa.inspect(conn).get_sorted_table_and_fkc_names()
                if name and not name.startswith("crmkit_version_")
            ]
            probe = " UNION ALL ".join(f"SELECT '{n}' WHERE EXISTS (SELECT 1 FROM \"{n}\")" for n in order)
            holding = set(conn.exec_driver_sql(probe).scalars())
            for name in reversed(order):
                if name in holding:
                    conn.exec_driver_sql(f'DELETE FROM "{name}"')
            # used sequences, and those of the tables that held rows: one set with setval(…, false) — as a bulk
            # load leaves it — shows no last value, yet would not start at 1 again
            used = (
                conn.execute(
                    sa.text(
                        "SELECT quote_ident(schemaname) || '.' || quote_ident(sequencename) FROM pg_sequences "
                        "WHERE last_value IS NOT NULL UNION SELECT s.oid::regclass::text FROM pg_class s "
                        "JOIN pg_depend d ON d.objid = s.oid AND d.classid = 'pg_class'::regclass "
                        "JOIN pg_class t ON t.oid = d.refobjid WHERE s.relkind = 'S' AND t.relname = ANY(:holding)"
                    ),
                    {"holding": sorted(holding)},
                )
                .scalars()
                .all()
            )
            for sequence in used:
                conn.exec_driver_sql(f"ALTER SEQUENCE {sequence} RESTART")
    finally:
        engine.dispose()


@pytest.fixture(scope="session")
def _crmkit_databases(
    crmkit_backend: str, tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[_Databases]:
    dbs = _Databases(
        crmkit_backend,
        tmp_path_factory.mktemp(f"crmkit-{crmkit_backend}"),
        request.config.getoption("--crmkit-postgres"),
    )
    yield dbs
    dbs.drop_all()


@pytest.fixture
def crm_factory(_crmkit_databases: _Databases, tmp_path: Path) -> Iterator[Callable[..., Any]]:
    """Make CRMs on fresh databases: ``crm_factory(plugins=["sales"], actor="alice")``.

    ``plugins`` takes names of installed plugins or ``crmkit.Plugin`` objects; ``None``
    loads every installed plugin. Each call gets its own empty database.
    """
    from crmkit.crm import CRM

    made: list[CRM] = []

    def make(plugins: Sequence[Plugin | str] | None = (), **kwargs: Any) -> CRM:
        kwargs.setdefault("strict", True)
        url = _crmkit_databases.url_for(plugins, len(made), tmp_path)
        crm = CRM(url, plugins=plugins, **kwargs)
        made.append(crm)
        return crm

    yield make
    for crm in made:
        crm.close()


@pytest.fixture
def crm(crm_factory: Callable[..., Any], request: pytest.FixtureRequest) -> Any:
    """A CRM on a fresh database, with the plugins of the test's ``crmkit_plugins`` marker."""
    marker = request.node.get_closest_marker("crmkit_plugins")
    return crm_factory(plugins=list(marker.args) if marker else [])


class FrozenClock:
    """A clock for ``CRM(clock=…)`` that stands still until the test moves it, so tests freeze time instead of
    racing midnight or sleeping: ``crm_factory(clock=FrozenClock("2026-10-31T17:30:00+00:00"))``."""

    def __init__(self, start: datetime | str = "2026-06-15T03:00:00+00:00") -> None:
        self._now = self._aware(start)

    @staticmethod
    def _aware(when: datetime | str) -> datetime:
        value = datetime.fromisoformat(when) if isinstance(when, str) else when
        if value.tzinfo is None:
            raise ValueError(f"FrozenClock needs an aware time, got {value!r}")
        return value.astimezone(UTC)

    def __call__(self) -> datetime:
        return self._now

    def set(self, when: datetime | str) -> datetime:
        """Move the clock to ``when`` (an aware datetime or ISO 8601 text with its offset)."""
        self._now = self._aware(when)
        return self._now

    def advance(self, delta: timedelta | None = None, **parts: float) -> datetime:
        """Move the clock forward by ``delta`` or ``timedelta(**parts)`` (``clock.advance(days=1)``)."""
        self._now += delta if delta is not None else timedelta(**parts)
        return self._now


@pytest.fixture
def frozen_clock() -> FrozenClock:
    """A :class:`FrozenClock` at 2026-06-15 03:00 UTC (10:00 in Hà Nội): ``crm_factory(clock=frozen_clock)``."""
    return FrozenClock()


def customer_tables(metadata: sa.MetaData) -> list[sa.Table]:
    """Tables of ``metadata`` holding rows about a customer (a column referencing ``customers.id``)."""
    return [
        table
        for table in metadata.sorted_tables
        if any(fk.column.table.name == "customers" for col in table.columns for fk in col.foreign_keys)
    ]


def customer_rows(crm: Any, table: sa.Table, customer_id: int, *, but_not: int | None = None) -> int:
    """How many rows of ``table`` reference this customer (``but_not``: and not that one too, as a record of a
    merge naming both customers does)."""
    columns = [col for col in table.columns if any(fk.column.table.name == "customers" for fk in col.foreign_keys)]
    about = sa.or_(*(col == customer_id for col in columns))
    if but_not is not None:
        about = sa.and_(about, *(sa.or_(col.is_(None), col != but_not) for col in columns))
    with crm.reading() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(table).where(about)).scalar_one()


def _rows_about(crm: Any, metadata: sa.MetaData, customer_id: int) -> dict[str, dict[tuple[Any, ...], dict[str, Any]]]:
    """``{table: {primary key: row}}`` of the rows of ``metadata`` about a customer: those referencing it, and the
    rows of other tables of ``metadata`` referencing those (an order's lines and payments), recursively."""
    found: dict[str, dict[tuple[Any, ...], dict[str, Any]]] = {}
    with crm.reading() as conn:
        for table in metadata.sorted_tables:  # parents first
            keys = list(table.primary_key.columns)
            conditions = [
                column.in_([key[0] for key in found[fk.column.table.name]])
                if fk.column.table.name in found
                else column == customer_id
                for column in table.columns
                for fk in column.foreign_keys
                if fk.column.table.name == "customers"
                or (fk.column.table.name in found and fk.column.primary_key and len(fk.column.table.primary_key) == 1)
            ]
            if not conditions or not keys:
                continue
            rows = conn.execute(sa.select(table).where(sa.or_(*conditions))).mappings()
            about = {tuple(row[k.name] for k in keys): dict(row) for row in rows}
            if about:
                found[table.name] = about
    return found


def _check_retained_declaration(plugin: str, retained: Mapping[str, Any], metadata: sa.MetaData) -> None:
    """Each ``retained_tables`` entry names one of the plugin's tables and existing columns of it."""
    for name, kept in retained.items():
        table = metadata.tables.get(name)
        assert table is not None, f"plugin {plugin}: retained_tables names {name!r}, which is not one of its tables"
        unknown = sorted(set(kept.personal) - set(table.columns.keys()))
        assert not unknown, f"plugin {plugin}: retained_tables[{name!r}] names unknown columns {unknown}"


class PluginContract:
    """Subclass in your plugin's tests, set ``plugin`` and implement ``populate``; pytest does the rest.

    It checks that the plugin loads strictly with what it ``requires`` (every hook signature valid, every
    version matching), that export and erase cover every table of its ``tables`` holding customer data (the
    kept rows of ``retained_tables`` with their personal columns cleared), that every table it adds to the
    database belongs to a migration lineage, that its migrations downgrade to nothing with ``populate``'s rows
    in its tables and upgrade back to exactly its tables, that merges leave no row on the merged customer, and
    that every permission it declares is checked.
    """

    #: The plugin checked: the name of an installed one, or a ``crmkit.Plugin`` object (a plugin under development).
    plugin: str | Plugin = ""
    #: Other plugins to load with it (test stand-ins, say); the installed plugins it ``requires`` are loaded anyway.
    with_plugins: Sequence[str | Plugin] = ()
    #: Tables recording merges themselves (a merge log): their rows keep naming the customers as they were.
    merge_records: Sequence[str] = ()
    #: Tables of results a run recomputes (scores, model outputs): a merge drops the merged customer's rows and an
    #: unmerge leaves them to the next run.
    rebuilt_tables: Sequence[str] = ()

    def populate(self, crm: Any, customer_id: int) -> None:
        """Create at least one row about ``customer_id`` in every one of the plugin's customer tables."""
        raise NotImplementedError

    @property
    def _name(self) -> str:
        return self.plugin.name if isinstance(self.plugin, Plugin) else self.plugin

    def _dependencies(self) -> list[str | Plugin]:
        """``with_plugins``, then every installed plugin the checked one requires (and theirs), by name: so a
        version mismatch is reported as such, not as a plugin missing from the kit's CRM."""
        from packaging.requirements import Requirement

        from crmkit.hooks.manager import discover

        installed = {d.name: d.plugin for d in discover()}
        loaded = [self._name, *(p.name if isinstance(p, Plugin) else p for p in self.with_plugins)]
        result = list(self.with_plugins)
        todo = [self.plugin if isinstance(self.plugin, Plugin) else installed.get(self.plugin)]
        while todo:
            current = todo.pop()
            for requirement in current.requires if current is not None else ():
                name = Requirement(requirement).name
                if name not in loaded and name in installed:
                    loaded.append(name)
                    result.append(name)
                    todo.append(installed[name])
        return result

    def _crm(self, crm_factory: Callable[..., Any]) -> Any:
        return crm_factory(plugins=[*self._dependencies(), self.plugin])

    def _info(self, crm: Any) -> Any:
        return crm.registry.infos[self._name]

    def _customer_tables(self, crm: Any) -> list[sa.Table]:
        from crmkit.plugin import resolve

        plugin = self._info(crm).plugin
        return customer_tables(resolve(plugin.tables)) if plugin.tables else []

    def test_contract_loads_strictly(self, crm_factory: Callable[..., Any]) -> None:
        crm = self._crm(crm_factory)
        info = self._info(crm)
        assert info.status == "enabled", info.reason
        assert info.hooks, f"plugin {self._name} implements no hook"

    def test_contract_export_and_erase_cover_customer_tables(self, crm_factory: Callable[..., Any]) -> None:
        """Export shows every row about the customer; erase deletes them, except in ``retained_tables``, whose
        kept rows (and their child rows) hold nothing in their declared personal columns nor the customer's
        name, e-mail or phone anywhere."""
        from crmkit.plugin import resolve

        crm = self._crm(crm_factory)
        plugin = self._info(crm).plugin
        metadata = resolve(plugin.tables) if plugin.tables else sa.MetaData()
        tables = customer_tables(metadata)
        _check_retained_declaration(self._name, plugin.retained_tables, metadata)
        customer = crm.customers.add(name="Trần Thị Xoá", email="xoa.tran@example.vn", phone="+84 912 000 777")
        self.populate(crm, customer.id)
        for table in tables:
            assert customer_rows(crm, table, customer.id) > 0, f"populate() left {table.name} empty: it is not covered"
        exported = crm.customers.export_data(customer.id)
        section = exported.get(self._name, {})
        for table in tables:
            assert len(section.get(table.name, [])) >= customer_rows(crm, table, customer.id), (
                f"export_data()[{self._name!r}][{table.name!r}] misses rows of {table.name}"
            )
        before = _rows_about(crm, metadata, customer.id)
        crm.customers.erase(customer.id)
        marks = {"name": "Trần Thị Xoá", "e-mail": "xoa.tran@example.vn", "phone": "912000777"}
        with crm.reading() as conn:
            for name, rows in before.items():
                table = metadata.tables[name]
                keys = list(table.primary_key.columns)
                after = {
                    tuple(row[k.name] for k in keys): row
                    for row in conn.execute(sa.select(table).where(sa.tuple_(*keys).in_(list(rows)))).mappings()
                }
                kept = plugin.retained_tables.get(name)
                if kept is None:
                    assert not after, (
                        f"erase left {len(after)} rows about the customer in {name} (not in retained_tables)"
                    )
                    continue
                for key, row in after.items():
                    for column in kept.personal:
                        value = row[column]
                        assert value in (None, "") or value != rows[key][column], (
                            f"erase kept {name}.{column} = {value!r} in a retained row: retained_tables declares it "
                            "personal, so erasure must clear or replace it"
                        )
                    for column, value in row.items():
                        text = str(value) if value is not None else ""
                        found = [w for w, mark in marks.items() if mark.replace(" ", "") in text.replace(" ", "")]
                        assert not found, (
                            f"erase kept the customer's {found[0]} in {name}.{column} of a retained row: declare the "
                            f"column in Retained(personal=…) and clear it"
                        )

    def scoped_calls(self) -> Mapping[str, Callable[[Any, int], Any]]:
        """Every list, search, report, segment and export of the plugin: ``name → call(crm, customer_id)``
        returning what the service returns.

        ``crm`` is a handle acting as a user (or the system), ``customer_id`` one customer
        ``populate`` filled (each is tried). The kit finds the customers a result exposes with
        :func:`exposed_customers`; it runs each call as users of drawn teams and scopes and fails
        when one sees a record outside its scope, misses one inside it, or shows an e-mail or phone
        it may not see.
        """
        return {}

    def permission_calls(self) -> Mapping[str, Callable[[Any, int], Any]]:
        """For each permission the plugin declares, ``permission → call(crm, customer_id)`` that needs it:
        the contract makes a user holding every permission but that one and expects ``PermissionDenied``."""
        return {}

    def test_contract_every_permission_is_enforced(self, crm_factory: Callable[..., Any]) -> None:
        from crmkit.errors import PermissionDenied

        crm = self._crm(crm_factory)
        declared = sorted(name for name, p in crm.access.permissions.items() if p.plugin == self._name)
        calls = self.permission_calls()
        missing = [name for name in declared if name not in calls]
        assert not missing, f"declared permissions never shown to be checked (add them to permission_calls): {missing}"
        customer = crm.customers.add(name="Kiểm Tra Quyền", email="quyen@example.vn")
        self.populate(crm, customer.id)
        every = dict.fromkeys(crm.access.permissions, "all")
        for name in declared:
            user = add_user(crm, f"without.{name}", grants={p: s for p, s in every.items() if p != name})
            crm.customers.update(customer.id, owner=user.username)
            try:
                calls[name](crm.as_user(user.username), customer.id)
            except PermissionDenied as refused:
                assert refused.permission == name, f"{name}: refused for {refused.permission} instead"
            else:
                pytest.fail(f"permission {name} is declared but never checked: its call ran for a user without it")

    def test_contract_scoped_calls_show_exactly_the_users_scope(self, crm_factory: Callable[..., Any]) -> None:
        crm = self._crm(crm_factory)
        check_scopes(crm, self.scoped_calls(), self.populate)

    def test_contract_api_routes_show_exactly_the_users_scope(self, crm_factory: Callable[..., Any]) -> None:
        """Every GET route of the plugin that needs at most a customer id, called over HTTP as users of drawn
        scopes, exposes exactly their scope (the same property as ``scoped_calls``, through the API)."""
        crm = self._crm(crm_factory)
        check_scopes(crm, api_scope_calls(crm, tag=self._name), self.populate, examples=4)

    def test_contract_migrations_down_and_up(self, crm_factory: Callable[..., Any]) -> None:
        from alembic.autogenerate import compare_metadata
        from alembic.migration import MigrationContext

        from crmkit import migrations

        crm = self._crm(crm_factory)
        lineage = next((lin for lin in crm.lineages() if lin.name == self._name), None)
        if lineage is None:
            return  # a plugin without tables has no migrations to check
        self.populate(
            crm, crm.customers.add(name="Nguyễn Văn An", email="an.nguyen@example.vn").id
        )  # with data in place
        migrations.downgrade(crm.engine, lineage, "base")
        with crm.engine.connect() as conn:
            left = set(sa.inspect(conn).get_table_names()) & set(lineage.metadata.tables)
        assert not left, f"downgrade to base left tables {sorted(left)}"
        migrations.upgrade(crm.engine, [lineage])
        own = lineage.metadata.tables  # compare only the plugin's tables, not the core's or other plugins'
        opts = {"compare_type": True, "include_name": lambda name, type_, parents: type_ != "table" or name in own}
        with crm.engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn, opts=opts), lineage.metadata)
        assert not diff, f"migrations and tables of {self._name} disagree: {diff}"

    def test_contract_every_table_has_its_migrations(self, crm_factory: Callable[..., Any]) -> None:
        """The plugin's declared tables have a migration lineage, and every table that opening a CRM with the plugin
        adds to the database belongs to a lineage (none made by ``metadata.create_all`` at start-up)."""
        from crmkit.plugin import resolve

        with crm_factory(plugins=self._dependencies()).engine.connect() as conn:
            before = set(sa.inspect(conn).get_table_names())
        crm = self._crm(crm_factory)
        plugin = self._info(crm).plugin
        declared = sorted(resolve(plugin.tables).tables) if plugin.tables else []
        lineages = crm.lineages()
        assert not declared or self._name in {lin.name for lin in lineages}, (
            f"plugin {self._name} declares tables {declared} but no migrations: give it an Alembic lineage "
            "(Plugin(migrations=…), files <name>_000N_<what>.py)"
        )
        covered = {name for lin in lineages if lin.metadata is not None for name in lin.metadata.tables}
        covered |= {lin.version_table for lin in lineages}
        with crm.engine.connect() as conn:
            stray = sorted(set(sa.inspect(conn).get_table_names()) - before - covered)
        assert not stray, (
            f"tables {stray} are in the database but in no migration lineage (made at start-up?): "
            f"declare them in {self._name}'s tables and create them in its migrations"
        )

    def test_contract_merges_leave_no_row_on_the_merged_customer(self, crm_factory: Callable[..., Any]) -> None:
        """After ``merge`` and after ``merge_many``, no row of the plugin's customer tables names a merged customer."""
        crm = self._crm(crm_factory)
        tables = self._customer_tables(crm)
        if not tables:
            return
        people = [
            crm.customers.add(name=f"Lê Gộp {n}", email=f"gop.{n}@example.vn", phone=f"+8490300{n:04d}")
            for n in range(6)
        ]
        for person in people:
            self.populate(crm, person.id)
        crm.customers.merge(people[0].id, people[1].id)
        crm.customers.merge_many([(people[2].id, people[3].id), (people[4].id, people[5].id)])
        pairs = (("merge", people[0], people[1]), ("merge_many", people[2], people[3]), ("merge_many", *people[4:]))
        for how, kept, merged in pairs:
            for table in (t for t in tables if t.name not in self.merge_records):
                left = customer_rows(crm, table, merged.id, but_not=kept.id)
                assert not left, (
                    f"after {how}, {left} rows of {table.name} still point at the merged customer {merged.id}: "
                    "re-point them in crmkit_customers_merged_many"
                )

    def test_contract_unmerge_gives_the_rows_back(self, crm_factory: Callable[..., Any]) -> None:
        """After a merge and its unmerge, every row of the plugin's customer tables is back with its customer (rows
        naming both, such as a pair kept apart, are not counted)."""
        crm = self._crm(crm_factory)
        skipped = {*self.merge_records, *self.rebuilt_tables}
        tables = [t for t in self._customer_tables(crm) if t.name not in skipped]
        if not tables:
            return
        kept, merged = (
            crm.customers.add(name=f"Lê Tách {n}", email=f"tach.{n}@example.vn", phone=f"+8490310{n:04d}")
            for n in range(2)
        )
        for person in (kept, merged):
            self.populate(crm, person.id)

        def counts(table: sa.Table) -> tuple[int, int]:
            return (
                customer_rows(crm, table, kept.id, but_not=merged.id),
                customer_rows(crm, table, merged.id, but_not=kept.id),
            )

        before = {table.name: counts(table) for table in tables}
        (merge,) = crm.customers.merge_many([(kept.id, merged.id)])
        crm.customers.unmerge(merge.id)
        for table in tables:
            after = counts(table)
            assert after == before[table.name], (
                f"after an unmerge, {table.name} holds {after} rows of (kept, restored) customers {kept.id} and "
                f"{merged.id}, not {before[table.name]} as before the merge: re-point rows with "
                "crmkit.plugin_api.repoint (or name them with journal_moved) and rebuild derived rows in "
                "crmkit_customer_unmerged"
            )


# --- files ------------------------------------------------------------------------------------------------


def kill_when_ready(script: str, *args: str, ready: Path, timeout: float = 90) -> None:
    """Run ``python -c script *args`` and ``kill -9`` it once it has created ``ready`` (in the middle of its
    write, before the commit): the crash test every new write path gets. Fails with the child's stderr if it
    ends or takes ``timeout`` seconds without getting there."""
    import signal
    import subprocess
    import sys
    import time

    child = subprocess.Popen([sys.executable, "-c", script, *args], stderr=subprocess.PIPE, text=True)  # noqa: S603 (the test's own script)
    deadline = time.monotonic() + timeout
    while not ready.exists() and child.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    if not ready.exists():
        child.kill()
        _, stderr = child.communicate(timeout=30)
        raise AssertionError(f"the child never got ready: {stderr[-2000:]}")
    os.kill(child.pid, signal.SIGKILL)
    child.communicate(timeout=30)


def write_csv(path: Path, header: Sequence[str], rows: Sequence[Sequence[Any]], *, encoding: str = "utf-8") -> Path:
    """Write a CSV file to import (``encoding="utf-8-sig"`` for one with a BOM, as Excel saves it)."""
    with open(path, "w", encoding=encoding, newline="") as out:
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)
    return path


def read_csv(path: str | Path) -> list[dict[str, str]]:
    """The rows of a CSV file crmkit wrote (an export, a reject file), with or without its BOM."""
    with open(path, encoding="utf-8-sig", newline="") as f:
        return list(csv.DictReader(f))


# --- users, scopes and the scope property -----------------------------------------------------------------


def add_user(
    crm: Any,
    username: str,
    *,
    teams: Sequence[str] = (),
    roles: Sequence[str] = (),
    grants: Mapping[str, str] | None = None,
) -> Any:
    """An active user for tests, in ``teams`` (created when missing) with ``roles``; ``grants``
    (``{permission: scope}``) makes them a role of their own named after them."""
    existing = {team.name for team in crm.teams.list()}
    for team in teams:
        if team not in existing:
            crm.teams.add(team)
    crm.users.add(username, teams=teams, roles=roles)
    if grants is not None:
        crm.roles.add(f"role.{username}", grants=grants)
        crm.roles.assign(username, f"role.{username}")
    return crm.users.get(username)


def check_scopes(
    crm: Any, calls: Mapping[str, Callable[[Any, int], Any]], populate: Callable[[Any, int], None], *, examples: int = 8
) -> None:
    """The scope property, for any set of calls (a plugin's ``scoped_calls``, the core's own).

    Hypothesis draws a team tree, users in teams holding every permission with a drawn scope
    (contact details with another, or not at all) and customers with drawn owners, each filled by
    ``populate``. Each call, made as each user, must expose exactly what it exposes to the system
    restricted to the user's scope — never a record outside it, none missing inside it — and no
    e-mail or phone of a customer whose contact details the user may not see.
    """
    from hypothesis import HealthCheck, Phase, given, settings
    from hypothesis import strategies as st

    if not calls:
        return
    counter = iter(range(1_000_000))
    scopes = st.sampled_from(["own", "team", "all"])
    world = st.fixed_dictionaries(
        {
            "parents": st.lists(st.integers(min_value=-1, max_value=2), min_size=1, max_size=3),
            "users": st.lists(
                st.tuples(st.integers(0, 2), scopes, st.one_of(st.none(), scopes)), min_size=2, max_size=4
            ),
            "owners": st.lists(st.one_of(st.none(), st.integers(0, 3)), min_size=1, max_size=4),
        }
    )

    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(world)  # no shrinking: every world adds rows to one database, and the failing one is reported as drawn
    def check(drawn: Mapping[str, Any]) -> None:
        n = next(counter)
        teams = [f"w{n}.t{i}" for i in range(len(drawn["parents"]))]
        parent_of: dict[int, int | None] = {}
        for i, parent in enumerate(drawn["parents"]):
            parent_of[i] = parent if 0 <= parent < i else None
            crm.teams.add(teams[i], parent=teams[parent_of[i]] if parent_of[i] is not None else None)
        users = []
        for k, (team, scope, contacts) in enumerate(drawn["users"]):
            team = min(team, len(teams) - 1)
            grants = {
                p: (scope if d.scoped else "all") for p, d in crm.access.permissions.items() if p != CONTACT_DETAILS
            }
            if contacts is not None:
                grants[CONTACT_DETAILS] = contacts
            users.append(
                (add_user(crm, f"w{n}.u{k}", teams=[teams[team]], grants=grants).username, team, scope, contacts)
            )
        customers: dict[int, tuple[str | None, str, str]] = {}
        for k, owner in enumerate(drawn["owners"]):
            username = users[min(owner, len(users) - 1)][0] if owner is not None else None
            email, phone = f"w{n}.c{k}@example.vn", f"+849{n % 100:02d}{k:06d}"
            customer = crm.customers.add(name=f"Khách Thế Giới {n}-{k}", email=email, phone=phone, owner=username)
            populate(crm, customer.id)
            customers[customer.id] = (username, email, phone)

        def below(team: int) -> set[int]:
            found = {team}
            changed = True
            while changed:
                more = {i for i, p in parent_of.items() if p in found} - found
                changed = bool(more)
                found |= more
            return found

        def reach(user_team: int, scope: str | None, me: str) -> set[int]:
            if scope == "all":
                return set(customers)
            if scope is None:
                return set()
            if scope == "own":
                owners = {me}
            else:
                owners = {u for u, team, _, _ in users if team in below(user_team)} | {me}
            return {cid for cid, (owner, _, _) in customers.items() if owner in owners}

        for name, call in calls.items():
            everything = _exposed(call, crm, customers)[0]
            for username, team, scope, contacts in users:
                shown, text = _exposed(call, crm.as_user(username), customers)
                expected = everything & reach(team, scope, username)
                assert shown == expected, (
                    f"{name} as {username} (scope {scope}) exposed customers {sorted(shown)}, "
                    f"expected {sorted(expected)}"
                )
                for cid in set(customers) - reach(team, contacts, username):
                    _, email, phone = customers[cid]
                    assert email not in text and phone not in text, (
                        f"{name} as {username} shows contact details of customer {cid} it may not see"
                    )

    check()


def exposed_customers(result: Any) -> set[int]:
    """The customer ids a service result exposes: ``customer_id`` fields and keys, ``Customer`` objects'
    ids, and a collection of bare ints taken as ids (return those from a count-only report's call)."""
    from crmkit.core.models import Customer

    found: set[int] = set()
    todo = [result]
    while todo:
        item = todo.pop()
        if isinstance(item, Customer):
            found.add(item.id)
            continue
        if isinstance(item, Mapping):
            if isinstance(item.get("customer_id"), int):
                found.add(item["customer_id"])
            todo.extend(item.values())
        elif isinstance(item, (list, tuple, set, frozenset)) or type(item).__name__ == "Page":
            members = list(item)
            if members and all(type(m) is int for m in members):
                found.update(members)
            else:
                todo.extend(members)
        elif attrs.has(type(item)) or dataclasses.is_dataclass(item):
            fields = attrs.asdict(item, recurse=False) if attrs.has(type(item)) else vars(item)
            if isinstance(fields.get("customer_id"), int):
                found.add(fields["customer_id"])
            todo.extend(fields.values())
    return found


def _exposed(call: Callable[[Any, int], Any], crm: Any, customers: Mapping[int, Any]) -> tuple[set[int], str]:
    """The world's customers a call exposes when made for each of them, and the text of what it returned
    (a customer refused or not found exposes nothing)."""
    from crmkit.errors import NotFound, PermissionDenied

    exposed: set[int] = set()
    text = []
    for customer_id in customers:
        try:
            result = call(crm, customer_id)
        except (NotFound, PermissionDenied):
            continue
        exposed |= exposed_customers(result) & set(customers)
        text.append(repr(result))
    return exposed, "\n".join(text)


# --- a purchase source -----------------------------------------------------------------------------------

#: The stand-in source's table, on its own MetaData: no migration makes it, the plugin creates it at start-up.
purchase_metadata = sa.MetaData()
purchases = sa.Table(
    "crmkit_test_purchases",
    purchase_metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=True),
    sa.Column("customer_id", Id, nullable=False, index=True),
    sa.Column("occurred_at", UTCDateTime, nullable=False),
    sa.Column("amount_minor", sa.BigInteger, nullable=False),
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("margin_minor", sa.BigInteger),
    sa.Column("category", sa.String(50)),
    sa.Column("channel", sa.String(30)),
)


class PurchaseSourceHooks:
    """Hooks of :data:`PURCHASE_SOURCE`: its table's rows are purchases, as crmkit-sales' orders are."""

    @hookimpl
    def crmkit_startup(self, crm: Any) -> None:
        """Create the table if this database lacks it (a plugin owns its tables)."""
        purchase_metadata.create_all(crm.engine, checkfirst=True)

    @hookimpl
    def crmkit_value_transactions(self, crm: Any) -> Any:
        """Every row, in the columns ``crmkit.purchases`` reads."""
        c = purchases.c
        return sa.select(
            c.customer_id, c.occurred_at, c.amount_minor, c.currency, c.margin_minor, c.category, c.channel
        )


#: A plugin holding purchases, so tests of purchase readers need no other plugin's package.
PURCHASE_SOURCE = Plugin(
    name="testpurchases", hooks=(PurchaseSourceHooks(),), description="purchases from a test table"
)


@attrs.define
class SalesLine:
    """An order line exactly as crmkit-sales' ``crmkit_order_placed`` documents it (for tests without sales)."""

    sku: str
    total_minor: int
    category: str | None = None
    product_id: int = 0
    name: str = ""
    quantity: Decimal = Decimal(1)
    unit_price_minor: int = 0
    discount_minor: int = 0
    tax_rate: Decimal = Decimal(0)


@attrs.define
class SalesOrder:
    """An order exactly as crmkit-sales' order hooks document it: the one typed sales double of the test kit
    (mutable, as a stand-in refunds and cancels it)."""

    id: int
    customer_id: int
    total_minor: int
    placed_at: datetime
    currency: str = "VND"
    tax_minor: int = 0
    lines: tuple[SalesLine, ...] = ()
    status: str = "placed"
    refunded_minor: int = 0
    number: str = ""
    owner: str | None = None
    subtotal_minor: int = 0
    discount_minor: int = 0
    discounts: tuple[Mapping[str, Any], ...] = ()


@attrs.define
class SalesRefund:
    """A refund exactly as crmkit-sales' ``crmkit_order_refunded`` documents it."""

    id: int
    order_id: int
    amount_minor: int
    currency: str
    at: datetime
    reason: str | None = None


class Shop:
    """Writes :data:`PURCHASE_SOURCE`'s purchases as sales writes orders, firing sales' order hooks with
    :class:`SalesOrder` / :class:`SalesRefund` objects carrying every documented field."""

    def __init__(self, crm: Any) -> None:
        self.crm = crm
        self._refunded: defaultdict[int, int] = defaultdict(int)
        self._refund_ids = itertools.count(1)

    def buy(
        self,
        customer_id: int,
        when: datetime,
        amount: int = 100_000,
        currency: str = "VND",
        *,
        margin: int | None = None,
        category: str | None = None,
        channel: str | None = None,
    ) -> int:
        """Record a purchase and fire ``crmkit_order_placed`` in its transaction, like sales; returns its id."""
        with self.crm.transaction() as session:
            purchase_id: int = (
                session.connection()
                .execute(
                    purchases.insert()
                    .values(
                        customer_id=customer_id,
                        occurred_at=when,
                        amount_minor=amount,
                        currency=currency,
                        margin_minor=margin,
                        category=category,
                        channel=channel,
                    )
                    .returning(purchases.c.id)
                )
                .scalar_one()
            )
            line = SalesLine(category or "item", amount, category, name=category or "item", unit_price_minor=amount)
            order = SalesOrder(
                purchase_id, customer_id, amount, when, currency, lines=(line,), number=f"T-{purchase_id}"
            )
            order.subtotal_minor = amount
            self.crm.hooks.call("crmkit_order_placed", crm=self.crm, order=order, session=session)
        return purchase_id

    def refund(self, purchase_id: int, amount: int) -> None:
        """Net a refund into a purchase and fire ``crmkit_order_refunded`` in its transaction, like sales."""
        with self.crm.transaction() as session:
            conn = session.connection()
            row = conn.execute(sa.select(purchases).where(purchases.c.id == purchase_id)).mappings().one()
            conn.execute(
                purchases.update()
                .where(purchases.c.id == purchase_id)
                .values(amount_minor=row["amount_minor"] - amount)
            )
            self._refunded[purchase_id] += amount
            total, refunded = row["amount_minor"] + self._refunded[purchase_id] - amount, self._refunded[purchase_id]
            order = SalesOrder(
                purchase_id,
                row["customer_id"],
                total,
                row["occurred_at"],
                row["currency"],
                status="refunded" if refunded >= total else "placed",
                refunded_minor=refunded,
                number=f"T-{purchase_id}",
                subtotal_minor=total,
            )
            refund = SalesRefund(next(self._refund_ids), purchase_id, amount, row["currency"], self.crm.now())
            self.crm.hooks.call("crmkit_order_refunded", crm=self.crm, order=order, refund=refund, session=session)

    def insert_quietly(self, rows: list[dict[str, Any]]) -> None:
        """Insert rows in one transaction without the order hooks (an import: only a rebuild sees them)."""
        with self.crm.transaction() as session:
            session.connection().execute(purchases.insert(), rows)


class ApiClient:
    """A test client of ``crmkit.web.create_app(crm)`` that sends a user's bearer token with every request.

    ``client = api_client(crm, "lan", roles=["sales"])``; ``client.get("/customers").json``. Each method
    takes Werkzeug's test-client arguments (``json=…``, ``headers=…``, ``query_string=…``).
    """

    def __init__(self, app: Any, token: str | None) -> None:
        from werkzeug.test import Client

        self.app = app
        self.token = token
        self._client = Client(app)

    def open(self, method: str, path: str, **kwargs: Any) -> Any:
        """Send one request (with the token unless ``headers`` carries an Authorization already)."""
        headers = dict(kwargs.pop("headers", None) or {})
        if self.token is not None:
            headers.setdefault("Authorization", f"Bearer {self.token}")
        return self._client.open(path, method=method, headers=headers, **kwargs)

    def get(self, path: str, **kwargs: Any) -> Any:
        return self.open("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> Any:
        return self.open("POST", path, **kwargs)

    def patch(self, path: str, **kwargs: Any) -> Any:
        return self.open("PATCH", path, **kwargs)

    def put(self, path: str, **kwargs: Any) -> Any:
        return self.open("PUT", path, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> Any:
        return self.open("DELETE", path, **kwargs)


def api_scope_calls(crm: Any, *, tag: str | None = None) -> dict[str, Callable[[Any, int], Any]]:
    """``check_scopes`` calls for the app's GET routes (of one ``tag``) whose only path parameter, if any, is a
    customer id: each is a real HTTP request with a token of the acting user (the system acts through an
    administrator holding every permission at scope ``all``); a 403 or 404 exposes nothing."""
    from crmkit.errors import NotFound
    from crmkit.web import create_app

    app = create_app(crm)
    tokens: dict[str, str] = {}

    def token_of(handle: Any) -> str:
        principal = getattr(handle, "principal", None)
        username = principal.username if principal is not None else "scope.system"
        if username not in tokens:
            if principal is None and username not in {u.username for u in crm.users.list()}:
                add_user(crm, username, grants=dict.fromkeys(crm.access.permissions, "all"))
            tokens[username] = crm.users.create_token(username, "scope check").secret
        return tokens[username]

    def call_for(path: str) -> Callable[[Any, int], Any]:
        def call(handle: Any, customer_id: int) -> Any:
            answer = ApiClient(app, token_of(handle)).get(path.replace("{customer_id}", str(customer_id)))
            if answer.status_code in (403, 404, 422):
                raise NotFound("route", path)
            assert answer.status_code == 200, f"GET {path}: {answer.status_code} {answer.get_data(as_text=True)[:300]}"
            return _customers_named(answer.json)

        return call

    def whole(op: Any) -> str:  # a list's first page must hold everything in the world, or pages would differ
        limit = op.query is not None and "limit" in op.query.fields
        return op.openapi_path + ("?limit=1000" if limit else "")

    return {
        f"GET {op.openapi_path}": call_for(whole(op))
        for op in app.operations
        if op.method == "GET"
        and not op.public
        and (tag is None or op.tag == tag)
        and set(op.path_params) <= {"customer_id"}
    }


def _customers_named(data: Any) -> Any:
    """JSON with each customer object (``id`` with ``lifecycle_stage``) also carrying ``customer_id``, so that
    :func:`exposed_customers` sees the customers an answer shows as well as the rows that name one. A list of
    bare numbers over HTTP is data (an RFM grid, counts), never the ids convention of Python calls: it is kept
    as text."""
    if isinstance(data, list):
        if data and all(type(item) is int for item in data):
            return repr(data)
        return [_customers_named(item) for item in data]
    if isinstance(data, dict):
        named = {key: _customers_named(value) for key, value in data.items()}
        if "lifecycle_stage" in data and isinstance(data.get("id"), int):
            named["customer_id"] = data["id"]
        return named
    return data


def api_client(crm: Any, username: str | None = None, *, app: Any = None, **user: Any) -> ApiClient:
    """An :class:`ApiClient` acting as ``username`` (created with :func:`add_user`'s ``teams``/``roles``/``grants``
    when missing) through a fresh token; without a username it sends no token (public routes, 401 checks)."""
    from crmkit.web import create_app

    app = app if app is not None else create_app(crm)
    if username is None:
        return ApiClient(app, None)
    if username not in {u.username for u in crm.users.list()}:
        add_user(crm, username, **user)
    return ApiClient(app, crm.users.create_token(username, f"test {username}").secret)


# --- a webhook receiver -----------------------------------------------------------------------------------------


@attrs.frozen
class ReceivedWebhook:
    """One POST the receiver got: its ``webhook-id``, whether the signature checked out, the JSON body, the answer."""

    id: str
    signed: bool
    body: Any
    status: int


class WebhookReceiver:
    """A threaded HTTP/1.1 server on 127.0.0.1 (a free port) recording webhook POSTs and checking their signatures.

    ``secret`` (``whsec_…``, settable later) verifies each ``webhook-signature`` independently of crmkit's signing
    code; ``answer(body, tries)`` picks the status of each POST (``tries``: earlier POSTs of the same
    ``webhook-id``), 200 by default; ``delay`` seconds are spent before answering. Use it as a context manager.
    """

    def __init__(
        self, secret: str | None = None, *, answer: Callable[[Any, int], int] | None = None, delay: float = 0.0
    ) -> None:
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        self.secret = secret
        self.received: list[ReceivedWebhook] = []
        self._tries: dict[str, int] = defaultdict(int)
        self._answer = answer or (lambda body, tries: 200)
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("content-length", 0)))
                status = receiver._receive(dict(self.headers), raw)
                self.send_response(status)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self._delay = delay
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_port}/hooks/crm"

    def ids(self) -> list[str]:
        """The ``webhook-id`` of every POST answered with a 2xx, in arrival order (duplicates kept)."""
        with self._lock:
            return [r.id for r in self.received if 200 <= r.status < 300]

    def _receive(self, headers: Mapping[str, str], raw: bytes) -> int:
        import base64
        import hashlib
        import hmac
        import time

        if self._delay:
            time.sleep(self._delay)
        message_id, timestamp = headers.get("webhook-id", ""), headers.get("webhook-timestamp", "")
        signed = False
        if self.secret:
            key = base64.b64decode(self.secret.removeprefix("whsec_"))
            expected = base64.b64encode(
                hmac.new(key, f"{message_id}.{timestamp}.".encode() + raw, hashlib.sha256).digest()
            ).decode()
            given = [part.split(",", 1)[1] for part in headers.get("webhook-signature", "").split() if "," in part]
            signed = any(hmac.compare_digest(expected, g) for g in given) and abs(time.time() - int(timestamp)) < 300
        body = json.loads(raw)
        with self._lock:
            status = self._answer(body, self._tries[message_id])
            self._tries[message_id] += 1
            self.received.append(ReceivedWebhook(message_id, signed, body, status))
        return status

    def __enter__(self) -> WebhookReceiver:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()


# --- a real browser ---------------------------------------------------------------------------------------------

#: Debian's chromium package (``dev.py test`` installs it); Playwright drives it, never a browser it downloads.
CHROMIUM = "/usr/bin/chromium"
#: Flags this machine needs: no sandbox as root, no GPU, and no traffic of the browser's own.
CHROMIUM_ARGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)
SCREENSHOTS_ENV = "CRMKIT_SCREENSHOTS"


class LiveServer:
    """A WSGI app served on 127.0.0.1 (a free port) by Werkzeug's threaded server in a background thread.

    ``with LiveServer(app) as server: server.url`` — a browser talks to it as to ``crmkit serve``.
    """

    def __init__(self, app: Any) -> None:
        import threading

        from werkzeug.serving import make_server

        self._server = make_server("127.0.0.1", 0, app, threaded=True)
        self._thread = threading.Thread(target=self._server.serve_forever, name="crmkit-live-server", daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_port}"

    def __enter__(self) -> LiveServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()


@pytest.fixture
def live_server(crm: Any) -> Iterator[str]:
    """The base URL (``http://127.0.0.1:PORT``) of ``crmkit.web.create_app(crm)`` served for this test."""
    from crmkit.web import create_app

    with LiveServer(create_app(crm)) as server:
        yield server.url


@pytest.fixture(scope="module")
def _crmkit_chromium() -> Iterator[Any]:
    """Headless Chromium under Playwright, one per test module and worker (its own fresh profile folder)."""
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=15_000)  # as the pages' own timeout: a busy machine runs both databases' tests
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium package (python3 dev.py test does, as root)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=list(CHROMIUM_ARGS))
        yield browser
        browser.close()


@pytest.fixture
def browser_locale() -> str:
    """The browser's language (``Accept-Language``, ``navigator.language``) for ``browser_page``; override it
    with ``@pytest.mark.parametrize("browser_locale", ["vi-VN"])`` or a fixture of that name."""
    return "en-US"


@pytest.fixture
def new_browser_page(_crmkit_chromium: Any, browser_locale: str) -> Iterator[Callable[..., Any]]:
    """Make Playwright pages, each in a new browser context (own cookies): ``new_browser_page(locale="vi-VN")``;
    other keywords go to Playwright's ``new_context`` (``viewport={"width": 390, "height": 844}`` for a phone).

    A JavaScript error thrown on any of them fails the test when it ends.
    """
    contexts: list[Any] = []
    errors: list[str] = []

    def make(locale: str | None = None, **options: Any) -> Any:
        context = _crmkit_chromium.new_context(
            **{
                "locale": locale or browser_locale,
                "timezone_id": "Asia/Ho_Chi_Minh",
                "viewport": {"width": 1280, "height": 800},
                **options,
            }
        )
        context.set_default_timeout(15_000)
        contexts.append(context)
        page = context.new_page()
        page.on("pageerror", lambda error: errors.append(f"{page.url}: {error}"))
        return page

    yield make
    for context in contexts:
        context.close()
    if errors:
        pytest.fail("JavaScript errors on the page:\n" + "\n".join(errors))


@pytest.fixture
def browser_page(new_browser_page: Callable[..., Any]) -> Any:
    """A Playwright page of headless Chromium in a new context speaking ``browser_locale``; closed after the test."""
    return new_browser_page()


@pytest.fixture
def screenshot(tmp_path: Path) -> Callable[[Any, str], Path]:
    """``screenshot(page, name)`` saves the whole page as ``<name>.png`` in ``$CRMKIT_SCREENSHOTS`` (the README's
    pictures: ``CRMKIT_SCREENSHOTS=docs/screenshots python3 dev.py test -k browser``), else in the test's
    ``tmp_path/screenshots``; returns the file."""
    folder = Path(os.environ[SCREENSHOTS_ENV]) if os.environ.get(SCREENSHOTS_ENV) else tmp_path / "screenshots"

    def take(page: Any, name: str) -> Path:
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / f"{name}.png"
        partial = folder / f".{name}.{uuid.uuid4().hex}.png"  # workers on both databases write the same name
        page.screenshot(path=str(partial), full_page=True)
        partial.replace(target)
        return target

    return take
