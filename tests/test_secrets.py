"""Secrets by reference, never stored or shown: settings, database URLs in every spelling, database errors."""

from __future__ import annotations

import threading

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from crmkit import CRM, ValidationError
from crmkit.cli.main import cli, report
from crmkit.core import tables as t
from crmkit.core.redact import mask_database_url, redact_text
from crmkit.core.secrets import KEY_ENV, SecretUnavailable, refuse_inline, resolve_secret, secret_key
from crmkit.i18n import translator

NAME = "Phạm Bảo Nhung"


def _stored(crm: CRM) -> str:
    with crm.reading() as conn:
        return "\n".join(
            str(tuple(row)) for table in (t.settings, t.audit_log) for row in conn.execute(sa.select(table))
        )


def test_inline_secrets_are_refused_naming_the_field_and_nothing_is_stored(crm: CRM) -> None:
    refused = {
        "smtp_password": "mk-Smtp-9f27",
        "crm.sync": {"url": "https://u:pw-Url-77d2@sync.example.vn/"},
        "crm.feed": {"url": "https://feed.example.vn/x?api_key=key-Url-3c8e"},
        "crm.hook": {"headers": {"Authorization": "Bearer hd-Tok-0a4f"}},
    }
    fields = {
        "smtp_password": "smtp_password",
        "crm.sync": "crm.sync.url",
        "crm.feed": "crm.feed.url",
        "crm.hook": "crm.hook.headers.Authorization",
    }
    for key, value in refused.items():
        with pytest.raises(ValidationError) as caught:
            crm.set_setting(key, value)
        assert str(caught.value).startswith(f"{fields[key]}: ") and "env:NAME" in str(caught.value)
        assert "9f27" not in str(caught.value) and "0a4f" not in str(caught.value)
    crm.set_setting("crm.hook", {"headers": {"Authorization": "env:HOOK_AUTH"}, "url": "https://hook.example.vn/"})
    stored = _stored(crm)
    assert "env:HOOK_AUTH" in stored  # the reference is kept, and shown: it is not the secret
    for secret in ("mk-Smtp-9f27", "pw-Url-77d2", "key-Url-3c8e", "hd-Tok-0a4f"):
        assert secret not in stored


def test_references_resolve_only_when_used_and_a_missing_one_names_the_reference(tmp_path, monkeypatch) -> None:
    secret_file = tmp_path / "smtp"
    secret_file.write_text("fl-Smtp-2b1d\n")
    monkeypatch.setenv("SMS_AUTH", "Bearer ev-7c1e")
    assert resolve_secret(f"file:{secret_file}", "password") == "fl-Smtp-2b1d"
    assert resolve_secret("env:SMS_AUTH", "headers.Authorization") == "Bearer ev-7c1e"
    monkeypatch.delenv("SMS_AUTH")
    with pytest.raises(SecretUnavailable, match=r"headers.Authorization: the environment variable SMS_AUTH"):
        resolve_secret("env:SMS_AUTH", "headers.Authorization")
    with pytest.raises(SecretUnavailable, match="cannot read the secret file .*gone: No such file"):
        resolve_secret(f"file:{tmp_path / 'gone'}", "password")
    (tmp_path / "binary").write_bytes(b"\xff\xfe")
    with pytest.raises(SecretUnavailable, match="binary: not UTF-8 text"):
        resolve_secret(f"file:{tmp_path / 'binary'}", "password")
    refuse_inline("sms", {"headers": {"Authorization": "env:SMS_AUTH"}, "password": f"file:{secret_file}"})


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("postgresql://crm:Sen@Hong-42@db.example.vn/crm", "postgresql://crm:***@db.example.vn/crm"),
        (
            "postgresql://crm@db.example.vn/crm?password=Qs-Pw-88&sslmode=require",
            "postgresql://crm@db.example.vn/crm?password=***&sslmode=require",
        ),
        (
            "postgresql+psycopg://crm:p%40ss@db/crm?application_name=a@b",
            "postgresql+psycopg://crm:***@db/crm?application_name=a@b",
        ),
        ("sqlite:///crm.db", "sqlite:///crm.db"),
    ],
)
def test_database_urls_are_masked_in_every_spelling(url: str, shown: str) -> None:
    assert mask_database_url(url) == shown
    assert mask_database_url(sa.make_url(url)).startswith(shown.split("?")[0].split("@")[0])
    assert redact_text(f"cannot open database {url}: refused") == f"cannot open database {shown}: refused"


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        (
            "postgresql://crmkit:Sen@Hong-42@127.0.0.1:1/crm",
            "postgresql://crmkit:***@127.0.0.1:1/crm: its password holds an unescaped @",
        ),
        (
            "postgresql://crmkit:Sen%40Hong-42@127.0.0.1:1/crm",
            "postgresql+psycopg://crmkit:***@127.0.0.1:1/crm: connection",
        ),
        (
            "postgresql://crmkit@127.0.0.1:1/crm?password=Qs-Pw-88",
            "postgresql+psycopg://crmkit@127.0.0.1:1/crm?password=***: ",
        ),
        ("nosuchdriver://crmkit:Sen@Hong-42@127.0.0.1/crm", "nosuchdriver://crmkit:***@127.0.0.1/crm: "),
    ],
)
def test_the_cli_never_prints_a_database_password(url: str, shown: str) -> None:
    result = CliRunner().invoke(cli, ["--locale", "en", "--db", url, "customers", "find", "an"])
    assert result.exit_code == 3 and result.stderr.startswith(f"error: cannot open database {shown}"), result.stderr
    assert "Hong" not in result.output and "Qs-Pw-88" not in result.output


def test_database_errors_never_carry_their_parameters(crm: CRM, capsys) -> None:
    with pytest.raises(sa.exc.IntegrityError) as caught:
        with crm.transaction() as session:
            session.connection().execute(
                t.settings.insert(), [{"key": "x", "value": NAME}, {"key": "x", "value": NAME}]
            )
    assert NAME not in str(caught.value)  # crmkit's engines hide parameters
    bare = sa.create_engine("sqlite://")  # an embedding application's engine may not
    with bare.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE people (name TEXT NOT NULL UNIQUE)")
        conn.execute(sa.text("INSERT INTO people VALUES (:name)"), {"name": NAME})
    with pytest.raises(sa.exc.IntegrityError) as caught, bare.begin() as conn:
        conn.execute(sa.text("INSERT INTO people VALUES (:name)"), {"name": NAME})
    assert NAME in str(caught.value)
    report(caught.value, debug=False, translator=translator("en"))
    printed = capsys.readouterr().err
    assert printed.startswith("error: unexpected IntegrityError: UNIQUE constraint failed: people.name")
    assert NAME not in printed and "INSERT" not in printed


def test_processes_making_the_crm_secret_key_at_once_all_get_the_same_one(tmp_path, monkeypatch) -> None:
    monkeypatch.delenv(KEY_ENV, raising=False)
    monkeypatch.setattr("crmkit.core.secrets.KEY_FILE", tmp_path / "crmkit" / "secret.key")
    barrier, keys = threading.Barrier(8), []

    def make() -> None:
        barrier.wait()
        keys.append(secret_key())

    threads = [threading.Thread(target=make) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert len(keys) == 8 and len(set(keys)) == 1
    assert [p.name for p in (tmp_path / "crmkit").iterdir()] == ["secret.key"]  # no half-written key left aside
    assert (tmp_path / "crmkit" / "secret.key").stat().st_mode & 0o777 == 0o600
