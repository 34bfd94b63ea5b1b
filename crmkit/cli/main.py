"""The ``crmkit`` command: the core groups, plus one group per installed plugin, loaded only when used.

``crmkit --help`` lists plugin groups from the ``crmkit.plugins`` entry points without
importing their commands (nor SQLAlchemy): a plugin's ``Plugin.cli`` is resolved only
when that group runs or its own ``--help`` is asked for. Every failure ends as one
``error: …`` line on stderr and a non-zero exit code (see ``EXIT_CODES``).
"""

from __future__ import annotations

import os
import sys
import traceback
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import click

from crmkit import __version__
from crmkit.cli.audit import audit
from crmkit.cli.context import CLIContext
from crmkit.cli.customers import customers
from crmkit.cli.db import db, init
from crmkit.cli.demo import demo
from crmkit.cli.doctor import doctor
from crmkit.cli.fields import fields
from crmkit.cli.interactions import interactions
from crmkit.cli.output import FORMATS, add_format_options
from crmkit.cli.params import LazyChoice
from crmkit.cli.permissions import permissions
from crmkit.cli.plugins import plugins
from crmkit.cli.roles import roles
from crmkit.cli.serve import serve
from crmkit.cli.teams import teams
from crmkit.cli.users import users
from crmkit.cli.webhooks import webhooks
from crmkit.cli.worker import worker
from crmkit.core.redact import redact_text
from crmkit.errors import CRMError, DatabaseUnavailable, PluginError, SchemaOutdated

if TYPE_CHECKING:
    from importlib.metadata import EntryPoint

    from crmkit.i18n import Translator

PLUGIN_GROUP = "crmkit.plugins"  # the entry point group (crmkit.hooks.manager.GROUP, without importing it)

EXIT_OK = 0
EXIT_FAILED = 1  # a crmkit error: rejected input, unknown id, conflict, permission denied, a plugin that failed
EXIT_USAGE = 2  # the command line itself is wrong
EXIT_DATABASE = 3  # database unreachable, or its schema is behind (`crmkit db upgrade`)
EXIT_BUG = 4  # an unexpected exception: rerun with --debug for the traceback
EXIT_INTERRUPTED = 130
EXIT_CODES = {
    EXIT_OK: "success",
    EXIT_FAILED: "the operation was refused or failed (bad input, unknown id, conflict, permission denied, "
    "unknown or disabled --user, plugin error)",
    EXIT_USAGE: "bad usage (unknown command or option, missing or malformed argument)",
    EXIT_DATABASE: "the database cannot be reached, or its schema is behind (run `crmkit db upgrade`)",
    EXIT_BUG: "unexpected error (a bug: rerun with --debug and report the traceback)",
    EXIT_INTERRUPTED: "interrupted (Ctrl-C)",
}


class CrmkitGroup(click.Group):
    """The root group: core commands, lazily loaded plugin groups, and one-line errors.

    ``main`` never lets a traceback through (unless ``--debug``): it prints ``error: …``
    on stderr and exits with one of ``EXIT_CODES``.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._entry_points: dict[str, EntryPoint] | None = None
        self._plugin_commands: dict[str, click.Command] = {}

    # -- plugin groups, loaded on demand --------------------------------------------------------------

    def plugin_entry_points(self) -> dict[str, EntryPoint]:
        """The installed plugins' entry points by name (scanned once; nothing imported)."""
        if self._entry_points is None:
            from importlib.metadata import entry_points

            found = {ep.name: ep for ep in entry_points(group=PLUGIN_GROUP)}
            self._entry_points = {name: found[name] for name in sorted(found) if name not in self.commands}
        return self._entry_points

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(self.commands) + list(self.plugin_entry_points())

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.commands:
            return self.commands[cmd_name]
        entry_point = self.plugin_entry_points().get(cmd_name)
        if entry_point is None:
            return None
        if cmd_name not in self._plugin_commands:
            self._plugin_commands[cmd_name] = _load_plugin_command(cmd_name, entry_point)
        return self._plugin_commands[cmd_name]

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        name, command, rest = super().resolve_command(ctx, args)
        state = ctx.find_object(CLIContext)
        if state is not None and name in self.plugin_entry_points():
            state.plugin = name  # opening the CRM checks the plugin is enabled for this database
        return name, command, rest

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        limit = formatter.width - 6 - max((len(n) for n in self.list_commands(ctx)), default=0)
        core = [(name, cmd.get_short_help_str(limit)) for name, cmd in sorted(self.commands.items()) if not cmd.hidden]
        with formatter.section("Commands"):
            formatter.write_dl(core)
        plugin_rows = [(name, _plugin_summary(ep)) for name, ep in self.plugin_entry_points().items()]
        if plugin_rows:
            with formatter.section("Plugin commands (`crmkit NAME --help` for each)"):
                formatter.write_dl(plugin_rows)

    # -- one-line errors -------------------------------------------------------------------------------

    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        """Run the command line; returns (or, standalone, exits with) the exit code."""
        extra.pop("windows_expand_args", None)
        argv = list(sys.argv[1:] if args is None else args)
        prog_name = prog_name or "crmkit"
        self._main_shell_completion(extra, prog_name, complete_var)
        state = extra.pop("obj", None) or CLIContext()
        try:
            with self.make_context(prog_name, argv, obj=state, **extra) as ctx:
                self.invoke(ctx)
            code = EXIT_OK
        except click.exceptions.Exit as exc:
            code = exc.exit_code
        except SystemExit as exc:  # a command called sys.exit(): keep its code, show its message
            code = exc.code if isinstance(exc.code, int) else EXIT_OK if exc.code is None else EXIT_FAILED
            if not isinstance(exc.code, (int, type(None))):
                click.echo(error_line(str(exc.code), _speaking(state)), err=True)
        except BaseException as exc:  # noqa: BLE001 - every failure becomes one line and an exit code
            code = report(exc, debug=state.debug, translator=_speaking(state))
        finally:
            state.close()
        if standalone_mode:
            sys.exit(code)
        return code


def _speaking(state: CLIContext) -> Translator:
    """The language of an error line (the core's words; a plugin's first in its own commands): the command's
    (``--locale``, the user's, the business's), else the ``--locale`` given, else vi — when the failure is the user
    or the database, their locale is unknowable."""
    from crmkit.i18n import translator
    from crmkit.locales import DEFAULT_LOCALE

    try:
        return state.translator_for(state.plugin)  # a plugin's command: its words first ("reward 'x' not found")
    except Exception:  # noqa: BLE001 - the error being reported may be why the user's locale cannot be read
        return translator(state.locale or DEFAULT_LOCALE)


def error_line(message: str, translator: Translator) -> str:
    """The one line a failure prints: ``error: …`` (vi ``lỗi: …``) and ``message`` as it is."""
    return f"{translator.gettext('error')}: {one_line(message)}"


def report(exc: BaseException, *, debug: bool, translator: Translator) -> int:
    """Print ``exc`` as one ``error: …`` line on stderr in ``translator``'s language (the traceback first with
    ``--debug``); returns the exit code. The CLI's own words are translated, and a service's message as far as the
    catalogs know it (:func:`crmkit.i18n.translate_error`: marshmallow's messages, not found, permission denied)."""
    t = translator
    if isinstance(exc, BrokenPipeError):  # `crmkit … | head`: the reader left, nothing to say
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - keeps the interpreter from failing at exit
        return EXIT_FAILED
    if isinstance(exc, _NO_ARGS_IS_HELP):  # `crmkit` or `crmkit customers` alone: the help is the answer
        click.echo(exc.ctx.get_help() if exc.ctx else exc.format_message())
        return EXIT_OK
    if debug and not isinstance(exc, click.ClickException):
        traceback.print_exception(exc)
    if isinstance(exc, click.UsageError):
        where = exc.ctx.command_path if exc.ctx else "crmkit"
        see = t.gettext("see `%(command)s --help`") % {"command": where}
        message, code = f"{where}: {exc.format_message()} ({see})", EXIT_USAGE
    elif isinstance(exc, click.ClickException):
        message, code = exc.format_message(), EXIT_FAILED
    elif isinstance(exc, KeyboardInterrupt) or (
        isinstance(exc, click.Abort) and isinstance(exc.__context__, KeyboardInterrupt)
    ):
        message, code = t.gettext("interrupted"), EXIT_INTERRUPTED
    elif isinstance(exc, click.Abort):
        message, code = t.gettext("aborted: nothing was changed"), EXIT_FAILED
    elif isinstance(exc, (DatabaseUnavailable, SchemaOutdated)):
        message, code = str(exc), EXIT_DATABASE
    elif isinstance(exc, CRMError):
        from crmkit.i18n import translate_error

        message, code = translate_error(t, exc), EXIT_FAILED
    else:
        hint = "" if debug else f" ({t.gettext('rerun with --debug for the traceback')})"
        unexpected = t.gettext("unexpected %(error)s") % {"error": type(exc).__name__}
        message, code = f"{unexpected}: {_without_parameters(exc)}{hint}", EXIT_BUG
    click.echo(error_line(redact_text(message), t), err=True)
    return code


def _without_parameters(exc: BaseException) -> str:
    """An exception's text; for a database statement error only the driver's first line, never the SQL
    or its parameters (they may hold a customer's personal data, and the engine may not hide them)."""
    database_errors = sys.modules.get("sqlalchemy.exc")
    if database_errors is not None and isinstance(exc, database_errors.StatementError):
        return (str(exc.orig).strip().splitlines() or [""])[0] if exc.orig is not None else type(exc).__name__
    return str(exc)


#: click >= 8.2 raises this for a group called without a command (older versions print the help themselves).
_NO_ARGS_IS_HELP: Any = getattr(click.exceptions, "NoArgsIsHelpError", ())


def one_line(text: str) -> str:
    """``text`` with its line breaks folded, so an error is always exactly one line."""
    return "; ".join(line.strip() for line in str(text).splitlines() if line.strip())


def _load_plugin_command(name: str, entry_point: EntryPoint) -> click.Command:
    """The plugin's click group, or a stand-in that explains why it cannot run."""
    try:
        from crmkit.plugin import Plugin, resolve

        plugin = entry_point.load()
        if not isinstance(plugin, Plugin):
            raise TypeError(f"entry point {entry_point.value} is not a crmkit.Plugin")
        if plugin.cli is None:
            return _unavailable(name, "it has no commands", None)
        command = resolve(plugin.cli)
        if not isinstance(command, click.Command):
            raise TypeError(f"{plugin.cli!r} is not a click command")
        return add_format_options(command)  # `--format` at every level, as the core's commands take it
    except Exception as exc:  # noqa: BLE001 - a broken plugin must not break the rest of the CLI
        return _unavailable(name, f"cannot load its commands: {type(exc).__name__}: {exc}", exc)


def _unavailable(name: str, reason: str, cause: BaseException | None) -> click.Command:
    def fail() -> None:
        raise PluginError(name, f"unavailable: {reason}") from cause

    return click.Command(
        name,
        callback=fail,
        help=f"Unavailable: {reason}.",
        short_help=f"unavailable: {reason}",
        context_settings={"ignore_unknown_options": True, "allow_extra_args": True},
    )


def _plugin_summary(entry_point: EntryPoint) -> str:
    """One line for ``crmkit --help``: the plugin's description (its entry point object is cheap to load)."""
    try:
        plugin = entry_point.load()
    except Exception as exc:  # noqa: BLE001 - shown, not raised: help must always work
        return f"unavailable: {type(exc).__name__}: {exc}"
    description = getattr(plugin, "description", "") or f"commands of the {entry_point.name} plugin"
    return description.splitlines()[0] if description else ""


def _choose_locale(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """Take ``--locale`` as soon as it is parsed: an unknown command after it is reported in that language too."""
    state = ctx.ensure_object(CLIContext)
    state.locale = value or state.locale
    return value


@click.group(
    "crmkit", cls=CrmkitGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100}
)
@click.option(
    "--db",
    metavar="URL",
    envvar="CRMKIT_DATABASE_URL",
    help="Database URL: sqlite:///path.db or postgresql://user:pass@host/db "
    "[default: $CRMKIT_DATABASE_URL, else sqlite:///crmkit.db once `crmkit init` created it].",
)
@click.option(
    "--format",
    "output_format",
    type=click.Choice(FORMATS),
    default=None,
    help="How results are printed [default: table].",
)
@click.option(
    "--bom",
    is_flag=True,
    help="Start --format csv output with a UTF-8 BOM, for a file Excel opens with Vietnamese intact "
    "(`crmkit --bom --format csv … > report.csv`).",
)
@click.option(
    "--user",
    metavar="NAME",
    envvar="CRMKIT_USER",
    help="Run the command as this user, with their permissions and record scopes (not a sign-in: "
    "whoever can open the database is the system) [default: $CRMKIT_USER, else the system, "
    "unrestricted].",
)
@click.option(
    "--locale",
    type=LazyChoice("crmkit.locales:LOCALES"),
    envvar="CRMKIT_LOCALE",
    callback=_choose_locale,
    help="Language and formats of what people read [default: $CRMKIT_LOCALE, else the --user's "
    "locale, else the business setting `locale`, else vi].",
)
@click.option("--debug", is_flag=True, help="On error, print the traceback as well.")
@click.version_option(__version__, "--version", prog_name="crmkit")
@click.pass_context
def cli(
    ctx: click.Context,
    db: str | None,
    output_format: str | None,
    bom: bool,
    user: str | None,
    locale: str | None,
    debug: bool,
) -> None:
    """crmkit: customers, interactions and plugins, from the command line.

    \b
    Start here:
      crmkit demo --reset                  build a demo CRM and print an overview
      crmkit customers find "nguyen van"   accent-insensitive search
      crmkit customers profile 42          customer 360
      crmkit plugins list                  installed plugins and their hooks

    Without --user a command runs as the system (unrestricted); `--user lan` runs it with
    Lan's permissions and scopes.

    Exit codes: 0 success, 1 refused or failed (including permission denied), 2 bad usage,
    3 database unreachable or schema behind (`crmkit db upgrade`), 4 unexpected error,
    130 interrupted. Errors are one `error: …` line on stderr; --debug adds the traceback.
    """
    state = ctx.ensure_object(CLIContext)
    state.db = db or state.db
    state.format = output_format or state.format
    state.bom = bom or state.bom
    state.user = user or state.user
    state.debug = debug or state.debug
    state.locale = locale or state.locale


for _command in (
    init,
    db,
    plugins,
    customers,
    fields,
    interactions,
    audit,
    users,
    teams,
    roles,
    permissions,
    demo,
    doctor,
    webhooks,
    worker,
    serve,
):
    cli.add_command(add_format_options(_command))


def main() -> None:
    """Console-script entry point (``crmkit``)."""
    cli.main(prog_name="crmkit")


if __name__ == "__main__":
    main()
