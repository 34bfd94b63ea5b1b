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
from crmkit.cli.output import emit, format_option
from crmkit.errors import DatabaseUnavailable, SchemaOutdated

if TYPE_CHECKING:
    from crmkit.crm import CRM
    from crmkit.hooks.manager import PluginInfo

OK, WARNING, PROBLEM = "ok", "warning", "problem"
COLUMNS = ("check", "state", "detail", "what to do")


@attrs.frozen
class Finding:
    """One line of the report: what was checked, ``ok`` / ``warning`` / ``problem``, what was found, the remedy."""

    check: str
    state: str
    detail: str
    fix: str = ""

    def row(self) -> dict[str, str]:
        return {"check": self.check, "state": self.state, "detail": self.detail, "what to do": self.fix}


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

    state.check_schema = False  # an outdated schema is reported below, not refused
    try:
        crm: CRM | None = state.crm
    except (DatabaseUnavailable, SchemaOutdated) as exc:
        crm = None
        yield Finding(
            "database",
            PROBLEM,
            str(exc),
            "check --db / CRMKIT_DATABASE_URL and that the server is running and lets this user in "
            "(`crmkit init` creates a new SQLite database)",
        )
    if crm is not None:
        yield Finding("database", OK, f"{mask_database_url(crm.engine.url)} reachable ({crm.engine.dialect.name})")
    yield from _plugins(crm)
    if crm is not None:
        yield from _schema(crm)
        yield from _webhook_keys(crm)
    yield from _secret_key()
    yield from _console_templates()


def _plugins(crm: CRM | None) -> Iterator[Finding]:
    from crmkit.hooks.manager import PluginRegistry, blocked_from_env, discover

    infos = crm.registry.infos if crm is not None else PluginRegistry(discover(), disabled=blocked_from_env()).infos
    if not infos:
        yield Finding("plugins", OK, "none installed")
    for info in infos.values():
        yield _plugin(info)
    unknown = sorted(blocked_from_env() - set(infos))
    if unknown:
        yield Finding(
            "CRMKIT_DISABLE_PLUGINS",
            WARNING,
            f"names no installed plugin: {', '.join(unknown)}",
            "correct the name (`crmkit plugins list` shows them)",
        )


def _plugin(info: PluginInfo) -> Finding:
    requires = ", ".join(info.plugin.requires) if info.plugin is not None and info.plugin.requires else ""
    detail = f"{info.version} {info.status}" + (f"; requires {requires}" if requires else "")
    if info.status != "failed":
        return Finding(f"plugin {info.name}", OK, detail)
    if "requires" in (info.reason or "") and ("not installed" in (info.reason or "") or "but" in (info.reason or "")):
        fix = "install the plugin it requires in the version it asks for (pip install …)"
    else:
        fix = "fix or upgrade its distribution (`crmkit --debug plugins list` shows more)"
    fix += f"; or leave it out: `crmkit plugins disable {info.name}` or CRMKIT_DISABLE_PLUGINS={info.name}"
    return Finding(f"plugin {info.name}", PROBLEM, f"{detail}: {info.reason}", fix)


def _schema(crm: CRM) -> Iterator[Finding]:
    from crmkit import migrations
    from crmkit.cli.db import lineage_rows

    newer = migrations.unknown(crm.engine, crm.lineages())
    for row in lineage_rows(crm):
        check, detail = f"schema {row['lineage']}", f"database at {row['current']}, code at {row['head']}"
        if row["lineage"] in newer:
            fix = "this database was upgraded by a newer version: install that version of crmkit or the plugin"
            yield Finding(check, PROBLEM, detail, fix)
        elif row["state"] != "up to date":
            yield Finding(check, PROBLEM, detail, "run `crmkit db upgrade` (back the database up first)")
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
    if not _key_configured():
        yield Finding(
            "webhook signing keys",
            PROBLEM,
            f"{len(sealed)} active subscription(s) hold keys wrapped with a CRM secret key that is missing here",
            "restore the key file from your backup, or set CRMKIT_SECRET_KEY",
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
            "webhook signing keys",
            PROBLEM,
            f"subscription(s) {', '.join(broken)} were wrapped with another CRM secret key",
            "restore the CRM secret key they were made with (CRMKIT_SECRET_KEY or the key file) from your backup",
        )
    else:
        yield Finding("webhook signing keys", OK, f"{len(sealed)} active subscription key(s) unwrap")


def _key_configured() -> bool:
    from crmkit.core.secrets import KEY_ENV, KEY_FILE

    return bool(os.environ.get(KEY_ENV)) or KEY_FILE.expanduser().exists()


def _secret_key() -> Iterator[Finding]:
    """The CRM secret key the server and the worker wrap and unwrap keys with: by reference, readable, shared."""
    from crmkit.core.redact import is_reference
    from crmkit.core.secrets import KEY_ENV, KEY_FILE, SecretUnavailable, resolve

    configured = os.environ.get(KEY_ENV)
    path = KEY_FILE.expanduser()
    if configured and is_reference(configured):
        try:
            resolve(configured, KEY_ENV)
        except SecretUnavailable as exc:
            yield Finding("CRM secret key", PROBLEM, str(exc), f"make {configured} readable, or correct {KEY_ENV}")
            return
        yield Finding("CRM secret key", OK, f"{KEY_ENV}={configured} is readable")
    elif configured:
        yield Finding(
            "CRM secret key",
            WARNING,
            f"{KEY_ENV} holds the key itself",
            f"give it by reference: {KEY_ENV}=file:/path (or env:NAME), so it stays out of process listings",
        )
    elif path.exists():
        try:
            path.read_text(encoding="ascii")
        except (OSError, UnicodeDecodeError) as exc:
            yield Finding(
                "CRM secret key", PROBLEM, f"cannot read {path}: {exc}", f"fix its permissions or set {KEY_ENV}"
            )
            return
        yield Finding("CRM secret key", OK, f"{path} (every server and worker machine needs the same key: back it up)")
    else:
        yield Finding(
            "CRM secret key",
            WARNING,
            f"none yet: {path} is created on first use",
            f"with several machines, give them one key: {KEY_ENV}=file:/path",
        )


def _console_templates() -> Iterator[Finding]:
    from crmkit.console.app import TEMPLATES_ENV

    folder = os.environ.get(TEMPLATES_ENV)
    if folder and not Path(folder).is_dir():
        yield Finding(
            TEMPLATES_ENV, PROBLEM, f"{folder} is not a folder", "correct it or unset it (`crmkit serve` refuses it)"
        )
