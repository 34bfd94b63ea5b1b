"""The state every command shares: database URL, output format, acting user — and the CRM, opened on demand.

Plugin commands take the CRM with ``@pass_crm`` and never open databases themselves. With
``crmkit --user NAME`` the CRM is opened and the whole command runs as that user (inside
``crm.as_user(NAME)``): their permissions and record scopes apply to every service call.
Without it the command runs as the system, unrestricted.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from datetime import UTC, tzinfo
from typing import TYPE_CHECKING, Any, TypeVar

import attrs
import click

from crmkit.errors import AuthenticationFailed, CRMError, DatabaseUnavailable, NotFound, PluginError

if TYPE_CHECKING:
    from crmkit.core.access import UserHandle
    from crmkit.crm import CRM
    from crmkit.i18n import Translator
    from crmkit.plugin import Plugin

F = TypeVar("F", bound=Callable[..., Any])


@attrs.define
class CLIContext:
    """Options of the root ``crmkit`` group; ``crm`` opens the database the first time it is used.

    ``plugins`` restricts the CRM to these plugins (names or ``Plugin`` objects) instead of
    every installed one — for applications that ship a tailored ``crmkit`` command, and tests.
    ``plugin`` is set while a plugin's own command group runs: opening the CRM then fails with
    one clear line when that plugin is disabled or failed for this database.
    ``check_schema=False`` opens a database whose schema is behind without refusing
    (``crmkit db current`` reports it instead). ``user`` (``crmkit --user``) makes the opened CRM
    act as that user until :meth:`close`: an unknown or disabled user fails the command.
    ``locale`` (``crmkit --locale``, else ``CRMKIT_LOCALE``) picks the language of :attr:`translator`.
    Without ``db`` (no ``--db``, no ``CRMKIT_DATABASE_URL``) the default ``./crmkit.db`` is opened only
    when it exists, or when the command creates databases (``upgrade``, or ``create`` for the demo):
    any other command fails with one line saying how to make one, instead of leaving an empty file.
    """

    db: str | None = None
    format: str = "table"
    bom: bool = False
    debug: bool = False
    user: str | None = None
    upgrade: bool = False
    create: bool = False
    plugins: Sequence[Plugin | str] | None = None
    plugin: str | None = None
    check_schema: bool = True
    locale: str | None = None
    _crm: CRM | None = None
    _acting: ExitStack = attrs.field(factory=ExitStack)

    @property
    def crm(self) -> CRM:
        if self._crm is None:
            crm = self._open()
            _warn_failed_plugins(crm, self.translator)
            try:
                if self.plugin is not None:
                    self._require_plugin(crm, self.plugin)
                if self.user:
                    self._acting.enter_context(self._as_user(crm, self.user))  # left in close(), before the CRM closes
            except BaseException:
                crm.close()
                raise
            self._crm = crm
        return self._crm

    @property
    def translator(self) -> Translator:
        """Messages and formats for people, in the language ``--locale`` (or ``CRMKIT_LOCALE``) names.

        Without one: the ``--user``'s locale, else the business setting ``locale``, else vi — the first
        two only once the command has opened the CRM (this never opens the database by itself).
        """
        return self.translator_for(None)

    def translator_for(self, plugin: str | None) -> Translator:
        """:attr:`translator` reading ``plugin``'s own catalogs first (``crm.catalogs[plugin]``), then the core's.

        A plugin's command prints with this, so its column names and messages come from its ``.po``;
        ``None`` (or a plugin without catalogs, or a CRM not opened yet) is the core's alone.
        """
        from crmkit.i18n import negotiate, translator

        crm = self._crm
        catalogs = crm.catalogs.get(plugin, ()) if crm is not None and plugin else ()
        if self.locale or crm is None:  # an explicit choice, or nothing else known yet: no database read
            return translator(negotiate(self.locale, None, None), catalogs)
        user = crm.users.get(self.user).locale if self.user else None
        return translator(negotiate(user, crm.settings.get("locale"), None), catalogs)

    @property
    def timezone(self) -> tzinfo:
        """Where times are shown: the business's time zone once the CRM is open (``crm.timezone``), else UTC."""
        return self._crm.timezone if self._crm is not None else UTC

    @property
    def country(self) -> str:
        """Whose phone numbers are shown in the national format: the CRM's default country, else VN."""
        return self._crm.default_country if self._crm is not None else "VN"

    def _open(self) -> CRM:
        import sqlalchemy as sa

        from crmkit.core.redact import redact_text
        from crmkit.crm import CRM

        if self.db is None and not (self.upgrade or self.create):
            _require_default_database()
        try:
            return CRM(
                self.db, plugins=self.plugins, actor=self.user, upgrade=self.upgrade, check_schema=self.check_schema
            )
        except (sa.exc.ArgumentError, sa.exc.NoSuchModuleError, ModuleNotFoundError) as exc:
            if isinstance(exc, ModuleNotFoundError) and (exc.name or "").startswith("crmkit"):
                raise  # crmkit's own code is broken: not a database problem
            # A malformed URL or a database driver that is not installed: as unusable as a server that is down.
            raise DatabaseUnavailable(f"cannot open database {_hidden(self.db)}: {redact_text(str(exc))}") from None

    @staticmethod
    def _as_user(crm: CRM, username: str) -> UserHandle:
        """``crm.as_user(username)``; an unknown or disabled user is one error naming the ``--user`` option."""
        try:
            return crm.as_user(username)
        except (NotFound, AuthenticationFailed) as exc:
            raise CRMError(f"--user {username}: {exc}") from exc

    @staticmethod
    def _require_plugin(crm: CRM, name: str) -> None:
        info = crm.registry.infos.get(name)
        if info is None:
            raise PluginError(name, "is not loaded by this CRM")
        if info.status == "disabled":
            raise PluginError(name, f"is disabled for this database (run `crmkit plugins enable {name}`)")
        if info.status != "enabled":
            raise PluginError(name, f"{info.status}: {info.reason}")

    def close(self) -> None:
        """Stop acting as ``user`` and release the database connections (safe to call twice)."""
        try:
            self._acting.close()
        finally:
            if self._crm is not None:
                self._crm.close()
                self._crm = None


def _warn_failed_plugins(crm: CRM, t: Translator) -> None:
    """One ``warning: …`` line on stderr per plugin that failed to load (without ``CRMKIT_STRICT_PLUGINS``, a
    failed plugin is left out rather than stopping the command: it must not go unnoticed either)."""
    for info in crm.registry.infos.values():
        if info.status == "failed":
            said = t.gettext("warning: plugin %(name)s failed and is left out: %(reason)s (see `crmkit doctor`)")
            click.echo(said % {"name": info.name, "reason": info.reason}, err=True)


def _require_default_database() -> None:
    """Refuse to open the default SQLite file when it does not exist (opening it would create it empty)."""
    from pathlib import Path

    import sqlalchemy as sa

    from crmkit.storage import DEFAULT_URL

    path = sa.make_url(DEFAULT_URL).database or ""
    if not Path(path).exists():
        raise DatabaseUnavailable(
            f"no database: ./{path} does not exist and neither --db nor CRMKIT_DATABASE_URL names one; "
            f"create it with `crmkit init` (or `crmkit demo` for sample data), or pass --db URL"
        )


def _hidden(url: str | None) -> str:
    """``url`` with its password masked (when it parses at all)."""
    from crmkit.core.redact import mask_database_url

    return mask_database_url(url or "")


def pass_crm(function: F) -> F:
    """Decorator: call the command with the open ``CRM`` as its first argument."""

    @click.pass_context
    @functools.wraps(function)
    def wrapper(ctx: click.Context, *args: Any, **kwargs: Any) -> Any:
        state = ctx.find_object(CLIContext)
        if state is None:
            raise click.UsageError("this command must run under the `crmkit` group")
        return ctx.invoke(function, state.crm, *args, **kwargs)

    return wrapper  # type: ignore[return-value]
