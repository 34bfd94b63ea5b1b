"""Storage: UTC time, SQLite WAL, schema checks and upgrades, unreachable databases, isolation, engines."""

from __future__ import annotations

import textwrap
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

import crmkit
from crmkit import CRM, Plugin, hookimpl
from crmkit.core import tables as t
from crmkit.core.types import utcnow
from crmkit.storage import create_engine

ICT = timezone(timedelta(hours=7))
NEW_YORK_WINTER = timezone(timedelta(hours=-5))


def url_of(crm: Any) -> str:
    return crm.engine.url.render_as_string(hide_password=False)


def test_times_round_trip_as_aware_utc(crm: Any) -> None:
    an = crm.customers.add(name="Nguyễn Văn An")
    moments = [
        datetime(2024, 2, 10, 0, 30, tzinfo=ICT),  # Tết: still 9 February in UTC
        datetime(2024, 12, 31, 23, 59, 59, 999999, tzinfo=NEW_YORK_WINTER),
        datetime(2000, 1, 1, tzinfo=UTC),
    ]
    logged = [crm.interactions.log(an.id, "phone", occurred_at=m) for m in moments]
    read = {i.id: i.occurred_at for i in crm.interactions.timeline(an.id)}
    for moment, interaction in zip(moments, logged):
        assert read[interaction.id] == moment
        assert read[interaction.id].tzinfo == UTC
    assert read[logged[0].id].day == 9
    assert crm.customers.get(an.id).created_at.tzinfo == UTC


def test_naive_times_are_refused_by_the_storage_layer(crm: Any) -> None:
    an = crm.customers.add(name="Nguyễn Văn An")
    with pytest.raises(sa.exc.StatementError, match="naive datetime"):
        with crm.transaction() as session:
            session.connection().execute(
                t.interactions.insert().values(
                    customer_id=an.id,
                    channel="email",
                    direction="inbound",
                    occurred_at=datetime(2024, 5, 1, 9),
                    created_at=utcnow(),
                )
            )
    assert len(crm.interactions.timeline(an.id)) == 0


@pytest.mark.sqlite_only("WAL is SQLite's journal mode")
def test_sqlite_files_use_wal(crm: Any) -> None:
    with crm.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1


def test_unreachable_postgresql_is_one_clear_line() -> None:
    with pytest.raises(crmkit.DatabaseUnavailable) as exc:
        CRM("postgresql://nobody@127.0.0.1:1/x", plugins=[])
    message = str(exc.value)
    assert "\n" not in message
    assert "cannot open database" in message and "127.0.0.1:1" in message and "refused" in message


@pytest.mark.parametrize("path", ["/nonexistent-crmkit-dir/crm.db", "/proc/crmkit/crm.db"])
def test_unwritable_sqlite_path_is_one_clear_line(path: str) -> None:
    with pytest.raises(crmkit.DatabaseUnavailable) as exc:
        CRM(f"sqlite:///{path}", plugins=[])
    assert "\n" not in str(exc.value)
    assert path in str(exc.value) and "unable to open database file" in str(exc.value)


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("not a url", "not a database URL"),
        ("mysql://crm:s3cret@db.example/crm", "mysql://crm:***@db.example/crm: its driver is not installed"),
    ],
)
def test_unusable_urls_are_one_clear_line_without_the_password(url: str, says: str) -> None:
    with pytest.raises(crmkit.DatabaseUnavailable) as exc:
        CRM(url, plugins=[])
    assert says in str(exc.value)
    assert "\n" not in str(exc.value) and "s3cret" not in str(exc.value)


# -- schema behind -----------------------------------------------------------------------------

MIGRATION = '''
"""probe table."""
from alembic import op
import sqlalchemy as sa

revision = "probe_migrated_0001"
down_revision = None
branch_labels = ("probe_migrated",)
depends_on = None


def upgrade() -> None:
    op.create_table("probe_migrated_notes", sa.Column("id", sa.Integer, primary_key=True),
                    sa.Column("text", sa.Text, nullable=False))


def downgrade() -> None:
    op.drop_table("probe_migrated_notes")
'''


@pytest.fixture(scope="module")
def migrations_package(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("probe_plugin")
    package = root / "crmkit_probe_migrations"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "probe_migrated_0001_notes.py").write_text(textwrap.dedent(MIGRATION))
    return root


def test_a_plugin_with_unapplied_migrations_needs_an_upgrade(
    crm: Any, migrations_package: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.syspath_prepend(str(migrations_package))
    plugin = Plugin("probe_migrated", migrations="crmkit_probe_migrations")
    crm.customers.add(name="Nguyễn Văn An")
    url = url_of(crm)
    with pytest.raises(crmkit.SchemaOutdated) as exc:
        CRM(url, plugins=[plugin])
    assert "probe_migrated" in str(exc.value) and "crmkit db upgrade" in str(exc.value)
    assert "\n" not in str(exc.value)

    upgraded = CRM(url, plugins=[plugin], upgrade=True)
    with upgraded.transaction() as session:
        session.connection().execute(sa.text("INSERT INTO probe_migrated_notes (id, text) VALUES (1, 'ok')"))
    upgraded.close()
    reopened = CRM(url, plugins=[plugin])  # up to date now: no upgrade needed
    assert [c.name for c in reopened.customers.find()] == ["Nguyễn Văn An"]
    assert reopened.upgrade() == []
    reopened.close()


@pytest.mark.parametrize(
    ("written", "says"),
    [
        (None, "behind for: crmkit (run `crmkit db upgrade`)"),  # no revision recorded yet
        ("crmkit_9999_future", "newer than the installed code for: crmkit at crmkit_9999_future"),
    ],
)
def test_a_core_schema_that_does_not_match_the_code_is_refused(crm: Any, written: str | None, says: str) -> None:
    url = url_of(crm)
    with crm.transaction() as session:
        head = session.connection().exec_driver_sql("SELECT version_num FROM crmkit_version_crmkit").scalar_one()
        session.connection().exec_driver_sql("DELETE FROM crmkit_version_crmkit")
        if written:
            session.connection().execute(sa.text("INSERT INTO crmkit_version_crmkit VALUES (:v)"), {"v": written})
    try:
        with pytest.raises(crmkit.SchemaOutdated) as exc:
            CRM(url, plugins=[])
        assert says in str(exc.value) and "\n" not in str(exc.value)
    finally:
        with crm.transaction() as session:
            session.connection().execute(sa.text("DELETE FROM crmkit_version_crmkit"))
            session.connection().execute(sa.text("INSERT INTO crmkit_version_crmkit VALUES (:v)"), {"v": head})
    CRM(url, plugins=[]).close()


def test_a_new_database_gets_the_schema(tmp_path: Path) -> None:
    with CRM(f"sqlite:///{tmp_path / 'new.db'}", plugins=[]) as crm:
        assert crm.customers.add(name="Nguyễn Văn An").id == 1
        assert crm.upgrade() == []


# -- isolation and engines -------------------------------------------------------------------


class _Service:
    @hookimpl
    def crmkit_services(self) -> dict[str, Any]:
        return {"probe": object()}

    @hookimpl
    def crmkit_channels(self) -> list[str]:
        return ["zalo"]


def test_two_crms_in_one_process_share_nothing(crm_factory: Any) -> None:
    with_plugin = crm_factory(plugins=[Plugin("probe", hooks=_Service())], actor="lan")
    plain = crm_factory(actor="minh")
    with_plugin.customers.add(name="Nguyễn Văn An", consents={"zalo": True})
    plain.customers.add(name="John Smith")
    assert with_plugin.has_service("probe") and not plain.has_service("probe")
    with pytest.raises(AttributeError, match="probe"):
        plain.probe  # noqa: B018
    assert "zalo" in with_plugin.channels and "zalo" not in plain.channels
    assert [c.name for c in with_plugin.customers.find()] == ["Nguyễn Văn An"]
    assert [c.name for c in plain.customers.find()] == ["John Smith"]
    assert [e.actor for e in with_plugin.audit.entries()] == ["lan"]
    assert [e.actor for e in plain.audit.entries()] == ["minh"]
    with with_plugin.acting_as("hoa"):
        assert (with_plugin.actor, plain.actor) == ("hoa", "minh")


def test_an_existing_engine_can_be_used(crm: Any) -> None:
    url = sa.make_url(url_of(crm))
    if url.get_backend_name() == "postgresql":
        url = url.set(drivername="postgresql+psycopg")
    engine = sa.create_engine(url)
    crm.customers.add(name="Nguyễn Văn An")
    embedded = CRM(engine, plugins=[])
    assert embedded.engine is engine
    added = embedded.customers.add(name="Trần Thị Bích", phone="0912 345 678")
    assert [c.name for c in crm.customers.find("bich")] == ["Trần Thị Bích"]
    assert embedded.customers.get(added.id).phone == "+84912345678"
    embedded.close()
    with engine.connect() as conn:  # the caller's engine is still theirs to use
        assert conn.execute(sa.select(sa.func.count()).select_from(t.customers)).scalar_one() == 2
    engine.dispose()


def test_storage_create_engine_accepts_plain_postgresql_urls() -> None:
    engine = create_engine("postgresql://user:secret@db.example/crm")
    assert engine.url.drivername == "postgresql+psycopg"
    engine.dispose()
