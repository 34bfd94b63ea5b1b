"""The demo a newcomer runs first: realistic data, the same for a seed, and an overview whose numbers are true."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from crmkit import Conflict, Plugin, ValidationError, hookimpl
from crmkit.cli.context import CLIContext
from crmkit.cli.main import EXIT_FAILED, cli
from crmkit.core import tables as t
from crmkit.core.text import fold
from crmkit.demo import STAFF, build_demo, overview

NOW = datetime(2026, 6, 1, tzinfo=UTC)
BAR = re.compile(r"^(?P<label>.*?)\s{2,}(?P<count>[\d,]+)\s+\d+%\s+█+$")
PAIR = re.compile(r"^(?P<label>.*?)\s{2,}(?P<value>.*)$")


def bars(lines: list[str]) -> dict[str, int]:
    parsed = {}
    for line in lines:
        match = BAR.match(line)
        assert match, line
        parsed[match["label"]] = int(match["count"].replace(",", ""))
    return parsed


def scalar(crm: Any, query: Any) -> Any:
    with crm.reading() as conn:
        return conn.execute(query).scalar_one()


def grouped(crm: Any, query: Any) -> dict[Any, Any]:
    with crm.reading() as conn:
        return dict(conn.execute(query).all())


@pytest.fixture
def demo(crm: Any) -> Any:
    return build_demo(crm, customers=150, seed=7, now=NOW)


def test_demo_data_is_realistic(crm: Any, demo: Any) -> None:
    c, i = t.customers.c, t.interactions.c
    kinds = grouped(crm, sa.select(c.kind, sa.func.count()).group_by(c.kind))
    assert demo.customers == 150 == sum(kinds.values()) == len(set(demo.customer_ids))
    assert (demo.people, demo.organizations) == (kinds["person"], kinds["organization"])
    assert demo.organizations > 0 and demo.people > demo.organizations
    assert demo.memberships == scalar(crm, sa.select(sa.func.count()).select_from(t.memberships)) > 0
    assert demo.interactions == scalar(crm, sa.select(sa.func.count()).select_from(t.interactions)) > demo.customers

    with crm.reading() as conn:
        names = list(conn.execute(sa.select(c.name).where(c.kind == "person")).scalars())
        phones = list(
            conn.execute(sa.select(t.contact_points.c.value).where(t.contact_points.c.kind == "phone")).scalars()
        )
        wards = conn.execute(
            sa.select(sa.func.count())
            .select_from(t.addresses)
            .where(t.addresses.c.ward.is_not(None), t.addresses.c.district.is_not(None))
        ).scalar_one()
        sources = set(conn.execute(sa.select(t.consents.c.source)).scalars())
        first, last, low, high = conn.execute(
            sa.select(
                sa.func.min(i.occurred_at), sa.func.max(i.occurred_at), sa.func.min(i.rating), sa.func.max(i.rating)
            )
        ).one()
        channels = set(conn.execute(sa.select(i.channel).distinct()).scalars())
        stages = set(conn.execute(sa.select(c.lifecycle_stage).where(c.kind == "organization")).scalars())
        provinces = set(conn.execute(sa.select(c.province)).scalars())
    assert any(name != fold(name) for name in names) and any(name.isascii() for name in names)  # Vietnamese and English
    assert all(re.fullmatch(r"\+\d{8,15}", phone) for phone in phones)
    assert sum(phone.startswith("+84") for phone in phones) > len(phones) / 2
    assert wards > 0 and sources and all(sources)
    assert {"Hà Nội", "TP. Hồ Chí Minh"} <= provinces
    assert NOW - timedelta(days=550) <= first < last < NOW and (low, high) == (1, 5)
    assert len(channels) >= 6
    assert {"distributor", "retailer"} & stages


def test_overview_numbers_are_the_databases(crm: Any, demo: Any) -> None:
    sections = overview(crm, now=NOW)
    c, i = t.customers.c, t.interactions.c

    totals = {m["label"]: m["value"] for m in map(PAIR.match, sections["Customers"])}
    assert totals["people"] == f"{demo.people:,}" and totals["organizations"] == f"{demo.organizations:,}"
    assert totals["interactions"].startswith(f"{demo.interactions:,}")

    place = sa.func.coalesce(c.province, c.city)
    by_province = grouped(crm, sa.select(place, sa.func.count()).group_by(place))
    shown = bars(sections["Customers by province (top 10)"])
    assert len(shown) == min(10, len(by_province))
    assert all(by_province[name] == n for name, n in shown.items())
    assert all(n <= min(shown.values()) for name, n in by_province.items() if name not in shown)

    assert bars(sections["Lifecycle stages"]) == grouped(
        crm, sa.select(c.lifecycle_stage, sa.func.count()).group_by(c.lifecycle_stage)
    )
    recent = grouped(
        crm, sa.select(i.channel, sa.func.count()).where(i.occurred_at >= NOW - timedelta(days=90)).group_by(i.channel)
    )
    assert bars(sections["Interactions by channel, last 90 days"]) == recent

    averages = grouped(
        crm, sa.select(i.channel, sa.func.avg(i.rating)).where(i.rating.is_not(None)).group_by(i.channel)
    )
    shown_averages = {
        m["label"]: float(m["value"].split()[0])
        for m in map(PAIR.match, sections["Average satisfaction per channel (1–5)"])
    }
    assert shown_averages == {channel: round(float(avg), 2) for channel, avg in averages.items()}

    [title] = [s for s in sections if s.startswith("Customer 360: ")]
    sample = crm.customers.get(int(title.rsplit(" ", 1)[1].rstrip(")")))
    assert sample.kind == "person" and sample.country == "VN" and sample.name in title

    found = sections['Accent-insensitive search: crmkit customers find "nguyen van"']
    assert found and all(fold(line.strip().split("  ")[1]).startswith("nguyen van") for line in found)
    assert any("Nguyễn Văn" in line for line in found)


def test_the_demo_business_has_a_team_of_users_who_own_the_customers(crm: Any, demo: Any) -> None:
    users = {u.username: u for u in crm.users.list()}
    assert set(users) == {username for username, *_ in STAFF}
    assert all(u.active and not u.has_password for u in users.values())  # tried with --user; no demo password
    lan = users["lan.nguyen"]
    assert (lan.display_name, lan.teams, lan.roles) == ("Nguyễn Thị Lan", ("Kinh doanh Hà Nội",), ("sales",))
    roles = {role for u in users.values() for role in u.roles}
    assert roles == {"manager", "sales", "support", "marketing", "read-only"}
    assert {u.username for u in users.values() if "manager" in u.roles} == {"minh.tran", "quang.pham"}
    parents = {team.name: team.parent for team in crm.teams.list()}
    assert parents["Sao Mai"] is None and parents["Hà Nội"] == parents["TP.HCM"] == "Sao Mai"
    assert parents["Kinh doanh Hà Nội"] == "Hà Nội" and parents["CSKH TP.HCM"] == "TP.HCM"

    c, i = t.customers.c, t.interactions.c
    owners = grouped(crm, sa.select(c.owner, sa.func.count()).where(c.owner.is_not(None)).group_by(c.owner))
    sales = {u.username for u in users.values() if u.roles == ("sales",)}
    assert set(owners) == sales  # every sales person has customers, nobody else owns any
    with crm.reading() as conn:
        employees = set(conn.execute(sa.select(i.employee).distinct()).scalars())
    assert employees <= set(users)

    # the branch manager sees the branch: exactly the customers its sales people own
    north = {u for u in sales if users[u].teams == ("Kinh doanh Hà Nội",)}
    seen = crm.as_user("minh.tran").customers.find(limit=1000)
    assert {x.owner for x in seen} == north and len(seen.items) == sum(owners[u] for u in north)
    assert all(x.province not in ("TP. Hồ Chí Minh", "Cần Thơ") for x in seen)


def test_the_overview_shows_the_team(crm: Any, demo: Any) -> None:
    lines = overview(crm, now=NOW)["Team"]
    assert len(lines) == len(STAFF)
    c = t.customers.c
    owned = grouped(crm, sa.select(c.owner, sa.func.count()).where(c.owner.is_not(None)).group_by(c.owner))
    for line in lines:
        name, username, team, role, *rest = re.split(r"\s{2,}", line.strip())
        user = crm.users.get(username)
        assert (name, team, role) == (user.display_name, ", ".join(user.teams), ", ".join(user.roles))
        assert rest == ([f"{owned[username]:,} customers"] if username in owned else [])
    assert lines[0].split()[:3] == ["Trần", "Quang", "Minh"]  # the Hà Nội branch first, its manager on top


def test_the_demo_keeps_users_that_already_exist(crm: Any) -> None:
    crm.users.add("lan.nguyen", "Lan (đã có)")
    crm.users.add("giam.doc", "Giám Đốc", roles=["administrator"])
    build_demo(crm, customers=30, seed=2, now=NOW)
    assert crm.users.get("lan.nguyen").display_name == "Lan (đã có)"
    assert len(crm.users.list()) == len(STAFF) + 1


def snapshot(crm: Any) -> list[tuple[Any, ...]]:
    """Everything a user sees of the demo customers and their interactions (ids excluded)."""
    rows, after = [], None
    while True:
        page = crm.customers.find(after=after, limit=100)
        for customer in page:
            history = [
                (x.channel, x.direction, x.occurred_at, x.subject, x.rating, x.employee)
                for x in crm.interactions.timeline(customer.id, limit=1000)
            ]
            rows.append(
                (
                    customer.external_id,
                    customer.name,
                    customer.emails,
                    customer.phones,
                    customer.tags,
                    customer.province,
                    customer.birth_date,
                    customer.owner,
                    tuple(history),
                )
            )
        if page.next_cursor is None:
            return sorted(rows)
        after = page.next_cursor


def test_demo_is_deterministic_for_a_seed(crm_factory: Any) -> None:
    first, again, other = crm_factory(), crm_factory(), crm_factory()
    for crm, seed in ((first, 3), (again, 3), (other, 4)):
        build_demo(crm, customers=40, seed=seed, now=NOW)
    assert snapshot(first) == snapshot(again)
    assert snapshot(first) != snapshot(other)


def test_demo_refuses_a_database_that_has_customers(crm: Any) -> None:
    crm.customers.add(name="Nguyễn Văn An")
    with pytest.raises(Conflict, match="already holds customers"):
        build_demo(crm, customers=20)
    assert len(crm.customers.find().items) == 1


class DemoLoyalty:
    """A plugin adding demo data of its own and an overview section, counting the core's events."""

    def __init__(self) -> None:
        self.populated: list[tuple[list[int], int]] = []
        self.created: list[int] = []
        self.logged: list[int] = []

    @hookimpl
    def crmkit_customer_created(self, customer: Any) -> None:
        self.created.append(customer.id)

    @hookimpl
    def crmkit_interaction_logged(self, interaction: Any) -> None:
        self.logged.append(interaction.id)

    @hookimpl
    def crmkit_demo_populate(self, customer_ids: list[int], seed: int) -> None:
        self.populated.append((list(customer_ids), seed))

    @hookimpl
    def crmkit_demo_overview(self, crm: Any) -> dict[str, list[str]]:
        return {"Loyalty": [f"{len(self.populated[0][0])} members, 1.500.000 ₫ in points"]}


def test_plugins_add_their_demo_data_and_sections(crm_factory: Any) -> None:
    loyalty = DemoLoyalty()
    crm = crm_factory(plugins=[Plugin("demoloyalty", hooks=loyalty)])
    stats = build_demo(crm, customers=25, seed=11, now=NOW)
    assert loyalty.populated == [(list(stats.customer_ids), 11)]
    assert sorted(loyalty.created) == sorted(stats.customer_ids)  # the demo's writes fire the hooks
    assert len(set(loyalty.logged)) == stats.interactions
    sections = overview(crm, now=NOW)
    assert list(sections)[-1] == "Loyalty" and sections["Loyalty"] == ["25 members, 1.500.000 ₫ in points"]


def test_bulk_logging_refuses_a_bad_entry_whole(crm: Any) -> None:
    """``crm.interactions.log_many`` (what the demo writes with): one bad entry, nothing written."""
    cid = crm.customers.add(name="Nguyễn Văn An").id
    good = {"customer_id": cid, "channel": "phone", "occurred_at": NOW, "subject": "Hỏi giá"}
    with pytest.raises(ValidationError, match="row 2: channel"):
        crm.interactions.log_many([good, {**good, "channel": "pigeon"}])
    assert crm.interactions.timeline(cid).items == []
    logged = crm.interactions.log_many([good, {**good, "channel": "email", "rating": 4}])
    assert [(i.channel, i.rating) for i in crm.interactions.timeline(cid)] == [("email", 4), ("phone", None)]
    assert {i.id for i in logged} == {i.id for i in crm.interactions.timeline(cid)}


def _run(url: str, *args: str) -> Any:
    return CliRunner().invoke(cli, ["--db", url, *args], obj=CLIContext(plugins=[]))


def test_crmkit_demo_prints_the_overview(crm: Any) -> None:
    url = crm.engine.url.render_as_string(hide_password=False)
    result = _run(url, "demo", "--customers", "60", "--seed", "5")
    assert result.exit_code == 0, result.stderr
    out = result.stdout
    people = scalar(crm, sa.select(sa.func.count()).where(t.customers.c.kind == "person"))
    assert f"crmkit demo: 60 customers ({people} people, {60 - people} organizations)" in out
    for title in (
        "Team",
        "Customers by province (top 10)",
        "Lifecycle stages",
        "Interactions by channel, last 90 days",
        "Average satisfaction per channel (1–5)",
        "Busiest employees, last 90 days",
        "Customer 360: ",
        'Accent-insensitive search: crmkit customers find "nguyen van"',
        "Try next",
    ):
        assert f"\n{title}" in out, title
    assert "Nguyễn" in out and "TP. Hồ Chí Minh" in out
    assert re.search(r"\n  Nguyễn Thị Lan +lan\.nguyen +Kinh doanh Hà Nội +sales +\d+ customers\n", out)
    assert "--user lan.nguyen customers find" in out
    lan = _run(url, "--user", "lan.nguyen", "--format", "json", "customers", "find", "--limit", "100")
    assert lan.exit_code == 0, lan.stderr
    assert {c["owner"] for c in json.loads(lan.stdout)} == {"lan.nguyen"}

    again = _run(url, "demo", "--customers", "10")
    assert again.exit_code == EXIT_FAILED and again.stderr.startswith("error: ") and "already holds" in again.stderr
    assert scalar(crm, sa.select(sa.func.count()).select_from(t.customers)) == 60


def test_crmkit_demo_json_is_the_overview(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'demo.db'}"
    result = _run(url, "--format", "json", "demo", "--customers", "30")
    assert result.exit_code == 0, result.stderr
    sections = json.loads(result.stdout)
    assert "Customers" in sections and all(isinstance(lines, list) for lines in sections.values())


def test_demo_reset_recreates_only_sqlite_files(crm: Any, tmp_path: Path) -> None:
    if crm.engine.dialect.name == "sqlite":
        url = f"sqlite:///{tmp_path / 'old.db'}"
        assert _run(url, "customers", "add", "--name", "Khách Cũ").exit_code == 0
        result = _run(url, "demo", "--reset", "--customers", "20")
        assert result.exit_code == 0, result.stderr
        assert _run(url, "--format", "json", "customers", "find", "khach cu").stdout.strip() == "[]"
    else:  # a server database is emptied by its administrator, never by a demo
        url = crm.engine.url.render_as_string(hide_password=False)
        result = _run(url, "demo", "--reset", "--customers", "20")
        assert result.exit_code == EXIT_FAILED and "only deletes SQLite files" in result.stderr
        assert scalar(crm, sa.select(sa.func.count()).select_from(t.customers)) == 0


#: The overview section each bundled plugin adds (the main job: ``python3 dev.py demo`` shows them all).
BUNDLED_SECTIONS = {
    "sales": "Sales pipeline by stage",
    "loyalty": "Loyalty",
    "campaigns": "Campaigns",
    "analytics": "RFM segments",
    "idic": "IDIC",
    "qci": "QCI scorecard",
    "service": "Service",
    "notes": "Notes",
}


def test_the_demo_with_every_bundled_plugin_completes_and_shows_each(
    crm_factory: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # on a server database, the demo's e-mails go to ./crmkit-outbox
    crm = crm_factory(plugins=None)  # every installed plugin, as `python3 dev.py demo` runs it
    enabled = {info.name for info in crm.plugins.list() if info.status == "enabled"}
    assert set(BUNDLED_SECTIONS) <= enabled, "the repository's test environment installs every plugin"
    url = crm.engine.url.render_as_string(hide_password=False)
    result = CliRunner().invoke(cli, ["--db", url, "demo", "--customers", "120", "--seed", "3"], obj=CLIContext())
    assert result.exit_code == 0, result.stderr
    for plugin, title in BUNDLED_SECTIONS.items():
        assert f"\n{title}" in result.stdout, f"no {plugin} section"
    assert scalar(crm, sa.select(sa.func.count()).select_from(t.customers)) >= 120
