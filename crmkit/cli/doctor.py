"""``crmkit doctor``: check the installation — plugins, the database, its schema, the server's and worker's settings —
and say what to do about each problem; the exit code is 1 when there is one."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import attrs
import click

from crmkit.cli.context import CLIContext
from crmkit.cli.output import N_, Coded, current_translator, emit, format_option
from crmkit.errors import DatabaseUnavailable, SchemaOutdated

if TYPE_CHECKING:
    from crmkit.crm import CRM
    from crmkit.hooks.manager import PluginInfo

OK, WARNING, PROBLEM = N_("ok"), N_("warning"), N_("problem")
COLUMNS = (N_("check"), N_("state"), N_("detail"), N_("what to do"))


@attrs.frozen
class Finding:
    """One line of the report: what was checked, ``ok`` / ``warning`` / ``problem``, what was found, the remedy.

    ``check`` and ``state`` are codes JSON and CSV keep in English (a table shows them translated: ``check`` is a
    :class:`Coded` when it holds a name); ``detail`` and ``fix`` are written in the command's language."""

    check: str
    state: str
    detail: str
    fix: str = ""

    def row(self) -> dict[str, str]:
        t = current_translator()
        check = self.check if isinstance(self.check, Coded) else Coded(self.check, t.gettext(self.check))
        state = Coded(self.state, t.gettext(self.state))
        return {"check": check, "state": state, "detail": self.detail, "what to do": self.fix}


@click.command("doctor")
@format_option
@click.pass_obj
def doctor(state: CLIContext) -> None:
    """Check plugins, database, schema heads and server/worker settings; say what to do about each problem.

    Exits 1 when a problem is found (a warning alone exits 0), so it can gate a deployment.
    """
    findings = list(diagnose(state))
    emit([finding.row() for finding in findings], COLUMNS)
    if any(finding.state == PROBLEM for finding in findings):
        raise click.exceptions.Exit(1)


def diagnose(state: CLIContext) -> Iterator[Finding]:
    """Every finding, in the order a person fixes them: the database, plugins, schema, then settings."""
    from crmkit.core.redact import mask_database_url

    t = current_translator()
    state.check_schema = False  # an outdated schema is reported below, not refused
    try:
        crm: CRM | None = state.crm
    except (DatabaseUnavailable, SchemaOutdated) as exc:
        crm = None
        yield Finding(
            N_("database"),
            PROBLEM,
            str(exc),
            t.gettext(
                "check --db / CRMKIT_DATABASE_URL and that the server is running and lets this user in "
                "(`crmkit init` creates a new SQLite database)"
            ),
        )
    if crm is not None:
        reachable = t.gettext("%(url)s reachable (%(dialect)s)")
        yield Finding(
            N_("database"),
            OK,
            reachable % {"url": mask_database_url(crm.engine.url), "dialect": crm.engine.dialect.name},
        )
    yield from _plugins(crm)
    if crm is not None:
        yield from _schema(crm)
        yield from _webhook_keys(crm)
    yield from _secret_key()
    yield from _console_templates()


def _plugins(crm: CRM | None) -> Iterator[Finding]:
    from crmkit.hooks.manager import PluginRegistry, blocked_from_env, discover

    t = current_translator()
    infos = crm.registry.infos if crm is not None else PluginRegistry(discover(), disabled=blocked_from_env()).infos
    if not infos:
        yield Finding(N_("plugins"), OK, t.gettext("none installed"))
    for info in infos.values():
        yield _plugin(info)
    unknown = sorted(blocked_from_env() - set(infos))
    if unknown:
        yield Finding(
            "CRMKIT_DISABLE_PLUGINS",
            WARNING,
            t.gettext("names no installed plugin: %(names)s") % {"names": ", ".join(unknown)},
            t.gettext("correct the name (`crmkit plugins list` shows them)"),
        )


def _plugin(info: PluginInfo) -> Finding:
    t = current_translator()
    requires = ", ".join(info.plugin.requires) if info.plugin is not None and info.plugin.requires else ""
    detail = f"{info.version} {t.gettext(info.status)}"
    if requires:
        detail += t.gettext("; requires %(requires)s") % {"requires": requires}
    check = Coded(f"plugin {info.name}", t.gettext("plugin %(name)s") % {"name": info.name})
    if info.status != "failed":
        return Finding(check, OK, detail)
    if "requires" in (info.reason or "") and ("not installed" in (info.reason or "") or "but" in (info.reason or "")):
        fix = t.gettext(
            "install the plugin it requires in the version it asks for (pip install …); or leave it out: "
            "`crmkit plugins disable %(name)s` or CRMKIT_DISABLE_PLUGINS=%(name)s"
        )
    else:
        fix = t.gettext(
            "fix or upgrade its distribution (`crmkit --debug plugins list` shows more); or leave it out: "
            "`crmkit plugins disable %(name)s` or CRMKIT_DISABLE_PLUGINS=%(name)s"
        )
    return Finding(check, PROBLEM, f"{detail}: {info.reason}", fix % {"name": info.name})


def _schema(crm: CRM) -> Iterator[Finding]:
    from crmkit import migrations
    from crmkit.cli.db import lineage_rows

    t = current_translator()
    newer = migrations.unknown(crm.engine, crm.lineages())
    for row in lineage_rows(crm):
        check = Coded(f"schema {row['lineage']}", t.gettext("schema %(name)s") % {"name": row["lineage"]})
        detail = t.gettext("database at %(current)s, code at %(head)s") % {
            "current": row["current"],
            "head": row["head"],
        }
        if row["lineage"] in newer:
            fix = t.gettext(
                "this database was upgraded by a newer version: install that version of crmkit or the plugin"
            )
            yield Finding(check, PROBLEM, detail, fix)
        elif row["state"] != "up to date":
            yield Finding(check, PROBLEM, detail, t.gettext("run `crmkit db upgrade` (back the database up first)"))
        else:
            yield Finding(check, OK, detail)


def _webhook_keys(crm: CRM) -> Iterator[Finding]:
    """Webhook signing keys are stored wrapped with the CRM secret key: each must unwrap with the key in place."""
    import sqlalchemy as sa

    from crmkit.core import tables
    from crmkit.core.secrets import SecretUnavailable
    from crmkit.core.webhooks import is_sealed, stored_key

    s = tables.webhook_subscriptions.c
    with crm.reading() as conn:
        rows = conn.execute(sa.select(s.id, s.secret).where(s.active.is_(True)).order_by(s.id)).all()
    sealed: list[tuple[int, str]] = [(row.id, row.secret) for row in rows if is_sealed(row.secret)]
    if not sealed:
        return
    t = current_translator()
    check = N_("webhook signing keys")
    if not _key_configured():
        yield Finding(
            check,
            PROBLEM,
            t.gettext("%(count)d active subscription(s) hold keys wrapped with a CRM secret key that is missing here")
            % {"count": len(sealed)},
            t.gettext("restore the key file from your backup, or set CRMKIT_SECRET_KEY"),
        )
        return
    broken = []
    for subscription, secret in sealed:
        try:
            stored_key(secret)
        except SecretUnavailable:
            broken.append(str(subscription))
    if broken:
        yield Finding(
            check,
            PROBLEM,
            t.gettext("subscription(s) %(ids)s were wrapped with another CRM secret key") % {"ids": ", ".join(broken)},
            t.gettext(
                "restore the CRM secret key they were made with (CRMKIT_SECRET_KEY or the key file) from your backup"
            ),
        )
    else:
        yield Finding(check, OK, t.gettext("%(count)d active subscription key(s) unwrap") % {"count": len(sealed)})


def _key_configured() -> bool:
    from crmkit.core.secrets import KEY_ENV, KEY_FILE

    return bool(os.environ.get(KEY_ENV)) or KEY_FILE.expanduser().exists()


def _secret_key() -> Iterator[Finding]:
    """The CRM secret key the server and the worker wrap and unwrap keys with: by reference, readable, shared."""
    from crmkit.core.redact import is_reference
    from crmkit.core.secrets import KEY_ENV, KEY_FILE, SecretUnavailable, resolve_secret

    t = current_translator()
    check = N_("CRM secret key")
    configured = os.environ.get(KEY_ENV)
    path = KEY_FILE.expanduser()
    words = {"env": KEY_ENV, "reference": configured, "path": path}
    if configured and is_reference(configured):
        try:
            resolve_secret(configured, KEY_ENV)
        except SecretUnavailable as exc:
            yield Finding(
                check, PROBLEM, str(exc), t.gettext("make %(reference)s readable, or correct %(env)s") % words
            )
            return
        yield Finding(check, OK, t.gettext("%(env)s=%(reference)s is readable") % words)
    elif configured:
        yield Finding(
            check,
            WARNING,
            t.gettext("%(env)s holds the key itself") % words,
            t.gettext("give it by reference: %(env)s=file:/path (or env:NAME), so it stays out of process listings")
            % words,
        )
    elif path.exists():
        try:
            path.read_text(encoding="ascii")
        except (OSError, UnicodeDecodeError) as exc:
            unreadable = t.gettext("cannot read %(path)s: %(error)s") % {**words, "error": exc}
            yield Finding(check, PROBLEM, unreadable, t.gettext("fix its permissions or set %(env)s") % words)
            return
        yield Finding(
            check, OK, t.gettext("%(path)s (every server and worker machine needs the same key: back it up)") % words
        )
    else:
        yield Finding(
            check,
            WARNING,
            t.gettext("none yet: %(path)s is created on first use") % words,
            t.gettext("with several machines, give them one key: %(env)s=file:/path") % words,
        )


def _console_templates() -> Iterator[Finding]:
    from crmkit.console.app import TEMPLATES_ENV

    t = current_translator()
    folder = os.environ.get(TEMPLATES_ENV)
    if folder and not Path(folder).is_dir():
        yield Finding(
            TEMPLATES_ENV,
            PROBLEM,
            t.gettext("%(folder)s is not a folder") % {"folder": folder},
            t.gettext("correct it or unset it (`crmkit serve` refuses it)"),
        )
