"""``CRM``: one database, its enabled plugins and their services — no global state.

Two ``CRM`` objects in one process share nothing: each has its own engine (unless you
pass the same one), its own pluggy manager and its own services.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.orm import Session

from crmkit import migrations
from crmkit.core.models import CHANNELS
from crmkit.core.types import utcnow
from crmkit.errors import NotFound, PluginError, SchemaOutdated
from crmkit.hooks.facade import Hooks
from crmkit.hooks.manager import Discovered, PluginInfo, PluginRegistry, blocked_from_env, discover, strict_from_env
from crmkit.plugin import Plugin, resolve
from crmkit.storage import DEFAULT_URL, check_connection, configure_engine, create_engine
from crmkit.vncalendar import check_day_month, zone_named

if TYPE_CHECKING:
    from crmkit.core.access import UserHandle
    from crmkit.locales import CatalogRef

SYSTEM_ACTOR = "system"


class CRM:
    """A CRM on one database: ``crm.customers``, ``crm.interactions``, and ``crm.<plugin>`` services.

    ``database`` is a SQLAlchemy URL (``sqlite:///crm.db``, ``postgresql://…``) or an existing
    Engine; by default ``CRMKIT_DATABASE_URL`` or ``sqlite:///crmkit.db``. ``plugins`` picks
    plugins (``Plugin`` objects or names of installed ones) instead of every installed one.
    A brand-new database gets the schema created; one that is behind raises
    ``SchemaOutdated`` unless ``upgrade=True``; ``check_schema=False`` opens it as it is (for
    tools that report on or repair the schema, such as ``crmkit db current``).
    """

    def __init__(
        self,
        database: str | sa.URL | sa.Engine | None = None,
        *,
        plugins: Sequence[Plugin | str] | None = None,
        disable: Sequence[str] = (),
        strict: bool | None = None,
        actor: str | None = None,
        default_country: str | None = None,
        upgrade: bool = False,
        check_schema: bool = True,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        #: Where every "now" in this CRM comes from (``crm.now()``): the system clock unless a test or a replay
        #: passes its own callable returning an aware datetime (``crmkit.testing.FrozenClock``).
        self.clock: Callable[[], datetime] = clock or utcnow
        self._owns_engine = not isinstance(database, sa.Engine)
        if isinstance(database, sa.Engine):
            self.engine = configure_engine(database)
        else:
            self.engine = create_engine(database or os.environ.get("CRMKIT_DATABASE_URL") or DEFAULT_URL)
        try:
            self._open(plugins, disable, strict, actor, default_country, upgrade, check_schema)
        except BaseException:
            self.close()  # a CRM that failed to open (outdated schema, broken plugin) holds no connections
            raise

    def _open(
        self,
        plugins: Sequence[Plugin | str] | None,
        disable: Sequence[str],
        strict: bool | None,
        actor: str | None,
        default_country: str | None,
        upgrade: bool,
        check_schema: bool,
    ) -> None:
        """Everything after the engine exists: settings, plugins, the schema check, services."""
        check_connection(self.engine)
        self._write_engine = self.engine.execution_options(crmkit_write=True)
        self._local = threading.local()
        self._default_actor = actor or os.environ.get("CRMKIT_USER") or SYSTEM_ACTOR
        self.strict = strict_from_env() if strict is None else strict

        from crmkit.core.tables import plugin_states, settings

        stored_disabled, stored_settings = self._read_state(plugin_states, settings)
        self.settings: dict[str, Any] = stored_settings
        self.default_country: str = (
            default_country
            or os.environ.get("CRMKIT_DEFAULT_COUNTRY")
            or stored_settings.get("default_country")
            or "VN"
        ).upper()
        candidates = _candidates(plugins)
        self.registry = PluginRegistry(
            candidates, disabled=set(disable) | blocked_from_env() | stored_disabled, strict=self.strict
        )
        self.hooks = Hooks(self, self.registry)
        if check_schema:
            self._check_schema(upgrade)
        self.channels: tuple[str, ...] = CHANNELS + tuple(c for c in self.hooks.channels() if c not in CHANNELS)

        from crmkit.core.access import Access
        from crmkit.core.audit import AuditLog
        from crmkit.core.custom_fields import CustomFields
        from crmkit.core.customers import Customers
        from crmkit.core.events import Events
        from crmkit.core.interactions import Interactions
        from crmkit.core.plugins_admin import PluginsAdmin
        from crmkit.core.roles import Roles
        from crmkit.core.teams import Teams
        from crmkit.core.users import Users
        from crmkit.core.webhooks import Webhooks

        self.access = Access(self)
        self.users = Users(self)
        self.teams = Teams(self)
        self.roles = Roles(self)
        self.audit = AuditLog(self)
        self.fields = CustomFields(self)
        self.customers = Customers(self)
        self.interactions = Interactions(self)
        self.plugins = PluginsAdmin(self)
        self.events = Events(self)
        self.webhooks = Webhooks(self)
        self._services: dict[str, Any] = {}
        for name, service in self.hooks.services().items():
            if name in self.__dict__ or hasattr(type(self), name):
                raise PluginError(name, f"service name {name!r} clashes with a CRM attribute")
            self._services[name] = service
        #: Each plugin's gettext catalogs (``crmkit_translations``), by plugin name: its pages and texts use them.
        self.catalogs: dict[str, tuple[CatalogRef, ...]] = self.hooks.translations()
        self.hooks.startup()

    # -- plugins' services ---------------------------------------------------------------

    def __getattr__(self, name: str) -> Any:
        services = self.__dict__.get("_services", {})
        if name in services:
            return services[name]
        raise AttributeError(f"CRM has no service {name!r}: is the plugin providing it installed and enabled?")

    def has_service(self, name: str) -> bool:
        """True when an enabled plugin provides ``crm.<name>`` (for optional integrations)."""
        return name in self._services

    # -- the business's calendar -----------------------------------------------------------------

    @property
    def timezone(self) -> ZoneInfo:
        """The business's time zone (setting ``timezone``; Asia/Ho_Chi_Minh by default): where its days begin,
        for every plugin's dates, agendas, periods and local occasions."""
        return zone_named(self.settings.get("timezone"))

    def now(self) -> datetime:
        """The current time from this CRM's clock, timezone-aware UTC (what every ``*_at`` column stores)."""
        value = self.clock()
        if value.tzinfo is None:
            raise ValueError(f"the CRM's clock returned a naive datetime {value!r}: it must return an aware one")
        return value.astimezone(UTC)

    def today(self) -> date:
        """Today's date in the business's time zone (from ``crm.now()``)."""
        return self.now().astimezone(self.timezone).date()

    # -- transactions ----------------------------------------------------------------------

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """A write transaction; nested calls in the same thread join the outer one.

        Everything inside — core rows, every hook's rows, the audit log — commits or
        rolls back together.
        """
        outer = getattr(self._local, "session", None)
        if outer is not None:
            yield outer
            return
        shared = getattr(self._local, "reader", None)
        if shared is not None:  # a write inside ``reading_together``: the shared read ends first, releasing its locks
            shared.rollback()
        with Session(self._write_engine, expire_on_commit=False) as session:
            self._local.session = session
            try:
                with session.begin():
                    yield session
            finally:
                self._local.session = None
                self._run_deferred()

    def after_transaction(self, action: Callable[[], None]) -> None:
        """Run ``action`` once the transaction open on this thread ends (committed or not), or now if none is.

        For writes that must outlive a change that is being refused, such as a permission denial's audit entry.
        """
        if getattr(self._local, "session", None) is None:
            action()
            return
        if not hasattr(self._local, "deferred"):
            self._local.deferred = []
        self._local.deferred.append(action)

    def _run_deferred(self) -> None:
        deferred, self._local.deferred = getattr(self._local, "deferred", []), []
        for action in deferred:
            action()

    @contextmanager
    def reading(self) -> Iterator[sa.Connection]:
        """A read-only connection (or the running transaction's, so reads see its writes; or the one
        :meth:`reading_together` holds)."""
        outer = getattr(self._local, "session", None)
        if outer is not None:
            yield outer.connection()
            return
        shared = getattr(self._local, "reader", None)
        if shared is not None:
            yield shared
            return
        with self.engine.connect() as conn:
            yield conn

    @contextmanager
    def reading_together(self) -> Iterator[None]:
        """Every read in the block on one connection, in one snapshot: what an API ``GET`` does for its token
        check and its read (one pool checkout and one transaction instead of one each).

        Writes inside the block run in their own transactions, as anywhere. Each first ends the shared read (so it
        never waits on a lock its own thread's read holds, on PostgreSQL), and the block's later reads start a new
        snapshot that sees it.
        """
        if getattr(self._local, "session", None) is not None or getattr(self._local, "reader", None) is not None:
            yield
            return
        with self.engine.connect() as conn:
            self._local.reader = conn
            try:
                yield
            finally:
                self._local.reader = None

    # -- who is acting ----------------------------------------------------------------------

    def as_user(self, username: str) -> UserHandle:
        """A handle on this CRM acting as an active user: every service call checks that user's permissions
        and sees only their scope (``lan = crm.as_user("lan"); lan.customers.find()``), and
        ``with crm.as_user("lan"):`` runs a block as them on this ``crm``.

        The plain ``crm`` stays the **system**: unrestricted, for embedding code, migrations and jobs.
        """
        return self.users.handle(username)

    def with_token(self, token: str) -> UserHandle:
        """A handle acting as the user of an API token (narrowed to the token's permissions);
        ``AuthenticationFailed`` for an unknown, expired or revoked token."""
        from crmkit.core.access import UserHandle

        return UserHandle(self, self.users.token_principal(token))

    @property
    def actor(self) -> str:
        """Who the audit log records for changes made now: the acting user, else the name set by
        :meth:`acting_as`, ``--user``/``CRMKIT_USER``, or ``system``."""
        principal = self.access.principal
        if not principal.is_system:
            return principal.username
        return getattr(self._local, "actor", None) or self._default_actor

    @contextmanager
    def acting_as(self, user: str) -> Iterator[None]:
        """Record changes made inside the block as made by ``user`` without restricting them (a system job
        working for someone); to act *with* a user's permissions use :meth:`as_user`."""
        previous = getattr(self._local, "actor", None)
        self._local.actor = user
        try:
            yield
        finally:
            self._local.actor = previous

    # -- schema ----------------------------------------------------------------------------

    def lineages(self) -> list[migrations.Lineage]:
        """The core's migration lineage, then each enabled plugin's, in dependency order."""
        result = [migrations.core_lineage()]
        for info in self.registry.enabled():
            plugin = info.plugin
            if plugin is not None and plugin.migrations:
                metadata = resolve(plugin.tables) if plugin.tables else None
                result.append(migrations.plugin_lineage(plugin.name, plugin.migrations, metadata))
        return result

    def lineage_applied(self, name: str) -> bool:
        """True when the migrations of plugin (or core) ``name`` have been applied to this database."""
        with self.engine.connect() as conn:
            return bool(migrations.current(conn, migrations.Lineage(name, "")))

    def upgrade(self) -> list[str]:
        """Apply every pending migration of the core and enabled plugins; returns the lineages upgraded."""
        pending = migrations.behind(self.engine, self.lineages())
        migrations.upgrade(self.engine, pending)
        return [lin.name for lin in pending]

    def _check_schema(self, upgrade: bool) -> None:
        pending = migrations.behind(self.engine, self.lineages())
        if not pending:
            return
        newer = migrations.unknown(self.engine, pending)
        if newer:
            names = ", ".join(f"{name} at {'/'.join(revs)}" for name, revs in newer.items())
            raise SchemaOutdated(
                f"database schema is newer than the installed code for: {names} "
                "(install the crmkit and plugin versions that wrote it)"
            )
        fresh = pending[0].name == migrations.CORE and not self._has_core_tables()
        if upgrade or fresh:
            migrations.upgrade(self.engine, pending)
            return
        names = ", ".join(lin.name for lin in pending)
        raise SchemaOutdated(f"database schema is behind for: {names} (run `crmkit db upgrade`)")

    def _has_core_tables(self) -> bool:
        with self.engine.connect() as conn:
            return sa.inspect(conn).has_table("customers")

    def _read_state(self, plugin_states: sa.Table, settings: sa.Table) -> tuple[set[str], dict[str, Any]]:
        with self.engine.connect() as conn:
            inspector = sa.inspect(conn)
            if not inspector.has_table(plugin_states.name):
                return set(), {}
            disabled = set(
                conn.execute(sa.select(plugin_states.c.name).where(plugin_states.c.enabled.is_(False))).scalars()
            )
            stored = dict(conn.execute(sa.select(settings.c.key, settings.c.value)).all())
            return disabled, stored

    def set_setting(self, key: str, value: Any, *, permission: str = "settings.admin") -> None:
        """Store a CRM-wide setting (e.g. ``default_country``, ``timezone``) in this database; audited.

        Needs ``settings.admin``; a plugin storing a setting of its own passes the permission that
        governs it instead (``permission="qci.plan"``), having checked whatever else it needs.
        """
        from crmkit.core.redact import redact_options
        from crmkit.core.secrets import refuse_inline
        from crmkit.core.tables import settings

        self.access.require(permission)
        if key == "timezone":
            zone_named(value)  # refused before anything is written
        if key == "founding_day" and value not in (None, ""):
            check_day_month(value, "founding_day")  # DD/MM, the shop's own occasion (crmkit.vncalendar)
        refuse_inline(key, value)  # a secret is given by reference (env:NAME, file:/path), never stored

        with self.transaction() as session:
            conn = session.connection()
            conn.execute(settings.delete().where(settings.c.key == key))
            conn.execute(settings.insert().values(key=key, value=value))
            self.audit.record(session, "set", "setting", key, changes={"value": redact_options({key: value})[key]})
        self.settings[key] = value

    def plugin_info(self) -> list[PluginInfo]:
        """Every discovered plugin with version, status and implemented hooks."""
        return sorted(self.registry.infos.values(), key=lambda i: i.name)

    def close(self) -> None:
        """Release the database connections (the engine is disposed if crmkit created it)."""
        if self._owns_engine:
            self.engine.dispose()

    def __enter__(self) -> CRM:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        plugins = ",".join(i.name for i in self.registry.enabled())
        from crmkit.core.redact import mask_database_url

        return f"<CRM {mask_database_url(self.engine.url)} plugins=[{plugins}]>"


def _candidates(plugins: Sequence[Plugin | str] | None) -> list[Discovered]:
    if plugins is None:
        return discover()
    installed = {d.name: d for d in discover()} if any(isinstance(p, str) for p in plugins) else {}
    result = []
    for item in plugins:
        if isinstance(item, Plugin):
            result.append(Discovered(item.name, item, None, None, item.version or "0"))
        elif item in installed:
            result.append(installed[item])
        else:
            raise NotFound("plugin", item)
    return result
