"""Users, teams, roles, tokens and sign-in: what an administrator sets up and what a user then may do."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

import crmkit
from crmkit import Permission, Plugin, hookimpl
from crmkit.core import tables as t
from crmkit.testing import add_user

PASSWORD = "Sen-hong-2026!"


def test_a_user_signs_in_with_a_hashed_password_and_the_sign_in_is_audited(crm: Any) -> None:
    crm.users.add(
        "lan",
        "Nguyễn Thị Lan",
        password=PASSWORD,
        email="lan@saomai.vn",
        phone="0912 345 678",
        locale="vi",
        timezone="Asia/Ho_Chi_Minh",
    )
    with crm.reading() as conn:
        stored = conn.execute(sa.select(t.users.c.password_hash)).scalar_one()
    assert stored.startswith("$argon2id$") and PASSWORD not in stored
    user = crm.users.authenticate("lan", PASSWORD)
    assert (user.display_name, user.phone, user.has_password, user.last_login_at is not None) == (
        "Nguyễn Thị Lan",
        "+84912345678",
        True,
        True,
    )
    assert [(e.action, e.user_id) for e in crm.audit.entries(entity="user", limit=1)] == [("login", user.id)]


def test_wrong_passwords_lock_the_account_for_a_growing_time(crm: Any) -> None:
    crm.users.add("lan", password=PASSWORD)
    for _ in range(5):
        with pytest.raises(crmkit.AuthenticationFailed):
            crm.users.authenticate("lan", "not-the-password")
    first_lock = crm.users.get("lan").locked_until
    assert first_lock is not None and first_lock > datetime.now(UTC)
    with pytest.raises(crmkit.AuthenticationFailed):  # even the right password, while locked
        crm.users.authenticate("lan", PASSWORD)
    with crm.transaction() as session:  # the lock runs out
        session.connection().execute(t.users.update().values(locked_until=datetime.now(UTC)))
    with pytest.raises(crmkit.AuthenticationFailed):
        crm.users.authenticate("lan", "wrong again")
    second_lock = crm.users.get("lan").locked_until
    assert second_lock - datetime.now(UTC) > timedelta(minutes=1, seconds=30)  # 2 minutes now
    reasons = [e.changes["reason"] for e in crm.audit.entries(entity="user") if e.action == "login_failed"]
    assert reasons[0] == "wrong password" and any(r.startswith("locked until") for r in reasons)
    crm.users.set_password("lan", "Another-good-one-9")
    assert crm.users.authenticate("lan", "Another-good-one-9").username == "lan"


def test_unknown_and_disabled_users_cannot_sign_in_or_act(crm: Any) -> None:
    crm.users.add("lan", password=PASSWORD)
    with pytest.raises(crmkit.AuthenticationFailed) as unknown:
        crm.users.authenticate("nobody", PASSWORD)
    crm.users.disable("lan")
    with pytest.raises(crmkit.AuthenticationFailed) as disabled:
        crm.users.authenticate("lan", PASSWORD)
    assert str(unknown.value) == str(disabled.value)  # the caller learns nothing about which it was
    with pytest.raises(crmkit.AuthenticationFailed):
        crm.as_user("lan")
    with pytest.raises(crmkit.ValidationError, match="owner: user 'lan' is disabled"):
        crm.customers.add(name="Khách", owner="lan")
    crm.users.enable("lan")
    assert crm.as_user("lan").principal.username == "lan"


@pytest.mark.parametrize(
    ("password", "reason"),
    [
        ("", "required"),
        ("short1!", "at least 10"),
        ("aaaaaaaaaaaa", "repetitive"),
        ("lan-12345678", "easy to guess"),
        ("password123", "easy to guess"),
    ],
)
def test_weak_passwords_are_refused_naming_the_field(crm: Any, password: str, reason: str) -> None:
    with pytest.raises(crmkit.ValidationError, match=reason) as refused:
        crm.users.add("lan", password=password)
    assert "password" in refused.value.errors
    with pytest.raises(crmkit.NotFound):
        crm.users.get("lan")  # nothing written


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"username": "Lan Nguyen"}, "username"),
        ({"username": ""}, "username"),
        ({"email": "lan@"}, "email"),
        ({"locale": "fr"}, "locale"),
        ({"timezone": "Mars/Olympus"}, "timezone"),
        ({"phone": "12"}, "phone"),
    ],
)
def test_bad_user_input_names_the_field(crm: Any, fields: dict[str, str], field: str) -> None:
    with pytest.raises(crmkit.ValidationError) as refused:
        crm.users.add(**{"username": "lan", **fields})
    assert field in refused.value.errors
    assert crm.users.list() == []


def test_a_token_acts_as_its_user_within_its_permissions_until_revoked(crm: Any) -> None:
    add_user(crm, "shop", roles=["sales"])
    mine = crm.customers.add(name="Khách của shop", owner="shop")
    token = crm.users.create_token("shop", "website", permissions=["customers.read"])
    assert token.secret and token.secret.startswith("crmkit_")
    with crm.reading() as conn:
        stored = conn.execute(sa.select(t.api_tokens.c.secret_hash, t.api_tokens.c.lookup)).one()
    assert token.secret.split("_", 2)[2] not in stored.secret_hash  # only a hash of the secret is kept
    assert all(listed.secret is None for listed in crm.users.tokens("shop"))
    api = crm.with_token(token.secret)
    assert api.customers.get(mine.id).name == "Khách của shop"
    with pytest.raises(crmkit.PermissionDenied) as narrowed:  # sales may create, this token may not
        api.customers.add(name="Khách mới")
    assert narrowed.value.permission == "customers.create"
    assert crm.users.tokens("shop")[0].last_used_at is not None
    crm.users.revoke_token(token.id)
    with pytest.raises(crmkit.AuthenticationFailed):
        crm.with_token(token.secret)
    with pytest.raises(crmkit.AuthenticationFailed):
        crm.with_token(token.secret[:-2] + "xx")
    refused = [e.changes["reason"] for e in crm.audit.entries(entity="token") if e.action == "token_refused"]
    assert refused == ["unknown token", "revoked"]


def test_an_expired_token_and_bad_token_input_are_refused(crm: Any) -> None:
    add_user(crm, "shop", roles=["sales"])
    token = crm.users.create_token("shop", "nightly", expires_at=datetime.now(UTC) + timedelta(seconds=60))
    with crm.transaction() as session:
        session.connection().execute(t.api_tokens.update().values(expires_at=datetime.now(UTC)))
    with pytest.raises(crmkit.AuthenticationFailed):
        crm.with_token(token.secret)
    for kwargs, field in (
        ({"permissions": ["customers.fly"]}, "permissions"),
        ({"name": ""}, "name"),
        ({"expires_at": datetime(2020, 1, 1, tzinfo=UTC)}, "expires_at"),
    ):
        with pytest.raises(crmkit.ValidationError) as refused:
            crm.users.create_token("shop", **{"name": "x", **kwargs})
        assert field in refused.value.errors
    with pytest.raises(crmkit.AuthenticationFailed):
        crm.with_token("")


def test_the_team_tree_refuses_cycles_naming_the_team(crm: Any) -> None:
    crm.teams.add("Sao Mai")
    crm.teams.add("Hà Nội", parent="Sao Mai")
    crm.teams.add("Hà Nội 1", parent="Hà Nội")
    with pytest.raises(crmkit.ValidationError, match="'Hà Nội 1' is 'Sao Mai' itself or inside it|cycle") as cycle:
        crm.teams.move("Sao Mai", "Hà Nội 1")
    assert "parent" in cycle.value.errors
    assert crm.teams.get("Sao Mai").parent is None
    with pytest.raises(crmkit.NotFound):
        crm.teams.add("Đà Nẵng", parent="Miền Trung")
    with pytest.raises(crmkit.Conflict):
        crm.teams.add("Hà Nội")


def test_a_team_scope_reaches_sub_teams_and_own_reaches_only_oneself(crm: Any) -> None:
    crm.teams.add("Hà Nội")
    crm.teams.add("Hà Nội 1", parent="Hà Nội")
    crm.teams.add("TP.HCM")
    add_user(crm, "giam.doc", teams=["Hà Nội"], roles=["manager"])
    add_user(crm, "lan", teams=["Hà Nội 1"], roles=["sales"])
    add_user(crm, "minh", teams=["Hà Nội 1"], roles=["sales"])
    add_user(crm, "hoa", teams=["TP.HCM"], roles=["sales"])
    ids = {u: crm.customers.add(name=f"Khách của {u}", owner=u).id for u in ("giam.doc", "lan", "minh", "hoa")}
    seen = {u: {c.id for c in crm.as_user(u).customers.find()} for u in ids}
    assert seen["giam.doc"] == {ids["giam.doc"], ids["lan"], ids["minh"]}
    assert seen["lan"] == {ids["lan"]} and seen["hoa"] == {ids["hoa"]}
    with pytest.raises(crmkit.NotFound):  # out of scope looks absent
        crm.as_user("lan").customers.get(ids["minh"])


def test_roles_refuse_unknown_permissions_and_scopes_by_name(crm: Any) -> None:
    with pytest.raises(crmkit.ValidationError, match="unknown permission 'customers.fly'"):
        crm.roles.add("pilot", grants={"customers.read": "all", "customers.fly": "all"})
    with pytest.raises(crmkit.ValidationError, match="'everyone'"):
        crm.roles.add("pilot", grants={"customers.read": "everyone"})
    with pytest.raises(crmkit.ValidationError, match="scope 'all'"):
        crm.roles.add("pilot", grants={"users.admin": "own"})
    with pytest.raises(crmkit.NotFound):
        crm.roles.get("pilot")
    assert {r.name for r in crm.roles.list()} == {
        "administrator",
        "manager",
        "sales",
        "marketing",
        "support",
        "read-only",
    }
    admin = crm.roles.get("administrator").grants
    assert set(admin) == set(crm.access.permissions) and set(admin.values()) == {"all"}


class _Loyalty:
    @hookimpl
    def crmkit_permissions(self) -> list[Permission]:
        return [Permission("stamps.grant", "give stamps", roles={"sales": "own", "manager": "team"})]


def test_a_plugin_installed_later_reaches_the_default_roles_once(crm_factory: Any) -> None:
    crm = crm_factory()
    crm.roles.revoke("sales", "customers.create")  # the administrator's change
    url = crm.engine.url.render_as_string(hide_password=False)
    later = crmkit.CRM(url, plugins=[Plugin("stamps", hooks=_Loyalty())])
    try:
        sales = later.roles.get("sales").grants
        assert sales["stamps.grant"] == "own" and "customers.create" not in sales  # not changed back
        assert later.roles.get("administrator").grants["stamps.grant"] == "all"
        later.roles.revoke("sales", "stamps.grant")
        again = crmkit.CRM(url, plugins=[Plugin("stamps", hooks=_Loyalty())])
        assert "stamps.grant" not in again.roles.get("sales").grants  # applied once, never again
        again.close()
        assert [(p.name, p.plugin) for p in later.access.permissions.values() if p.plugin == "stamps"] == [
            ("stamps.grant", "stamps")
        ]
    finally:
        later.close()


class _Squatter:
    @hookimpl
    def crmkit_permissions(self) -> list[Permission]:
        return [Permission("customers.steal", "not ours to declare")]


def test_a_plugin_declaring_outside_its_name_fails_naming_it(crm_factory: Any) -> None:
    with pytest.raises(crmkit.PluginError, match="squat.*must start with 'squat.'"):
        crm_factory(plugins=[Plugin("squat", hooks=_Squatter())])


def test_a_denied_call_names_the_permission_and_is_audited_even_when_its_change_rolls_back(crm: Any) -> None:
    add_user(crm, "thu.ngan", roles=["read-only"])
    reader = crm.as_user("thu.ngan")
    with pytest.raises(crmkit.PermissionDenied) as denied:
        reader.customers.add(name="Khách mới")
    assert denied.value.permission == "customers.create" and "thu.ngan" in str(denied.value)
    with pytest.raises(crmkit.PermissionDenied), crm.transaction():
        crm.customers.add(name="Đã ghi rồi bị huỷ")
        reader.customers.add(name="Khách mới")
    assert crm.customers.find().items == []
    denials = [(e.actor, e.entity_id, e.user_id) for e in crm.audit.entries(entity="permission")]
    user_id = crm.users.get("thu.ngan").id
    assert denials == [("thu.ngan", "customers.create", user_id)] * 2


def test_contact_details_are_masked_everywhere_without_the_permission(crm: Any) -> None:
    add_user(crm, "tiep.thi", roles=["marketing"])
    an = crm.customers.add(
        name="Nguyễn Văn An",
        phone="0912 345 678",
        email="an.nguyen@example.vn",
        addresses=[{"line1": "12 Hàng Bạc", "ward": "Hàng Bạc", "district": "Hoàn Kiếm", "province": "Hà Nội"}],
    )
    crm.interactions.log(an.id, "email", sender="an.nguyen@example.vn", subject="Hỏi giá")
    marketing = crm.as_user("tiep.thi")
    shown = marketing.customers.get(an.id)
    assert (shown.phones, shown.emails) == (("+84 9** *** 678",), ("a***@example.vn",))
    assert (shown.addresses[0].line1, shown.addresses[0].district) == ("***", "Hoàn Kiếm")
    assert marketing.customers.find("nguyen").items[0].phones == ("+84 9** *** 678",)
    assert marketing.customers.profile(an.id).interactions[0].sender == "a***@example.vn"
    assert marketing.interactions.timeline(an.id).items[0].sender == "a***@example.vn"
    twin = crm.customers.add(name="An Nguyễn", phone="+84912345678")
    assert [d.reason for d in marketing.customers.duplicates(twin.id)] == ["same phone +84 9** *** 678"]
    assert [d.reason for d in crm.customers.duplicates(twin.id)] == ["same phone +84912345678"]
    add_user(crm, "cskh", grants={"customers.read": "all", "customers.update": "all"})
    with pytest.raises(crmkit.PermissionDenied, match="customers.contact_details"):
        crm.as_user("cskh").customers.update(an.id, phones=["0987 000 111"])
    assert crm.customers.get(an.id).phones == ("+84912345678",)  # the system sees everything


def test_ownership_follows_the_acting_user_and_stays_within_scope(crm: Any) -> None:
    crm.teams.add("Hà Nội")
    add_user(crm, "lan", teams=["Hà Nội"], roles=["sales"])
    add_user(crm, "minh", teams=["Hà Nội"], roles=["sales"])
    add_user(crm, "giam.doc", teams=["Hà Nội"], roles=["manager"])
    lan = crm.as_user("lan")
    mine = lan.customers.add(name="Khách của Lan")
    assert mine.owner == "lan"
    with pytest.raises(crmkit.ValidationError, match="owner: 'minh' is outside your scope of customers.create"):
        lan.customers.add(name="Cho Minh", owner="minh")
    with pytest.raises(crmkit.ValidationError, match="owner: no user 'ghost'"):
        crm.customers.add(name="Ma", owner="ghost")
    moved = crm.as_user("giam.doc").customers.update(mine.id, owner="minh")
    assert moved.owner == "minh"
    with pytest.raises(crmkit.NotFound):
        lan.customers.update(mine.id, lifecycle_stage="customer")
    audit = crm.audit.entries(customer_id=mine.id, limit=1).items[0]
    assert (audit.actor, audit.user_id) == ("giam.doc", crm.users.get("giam.doc").id)


def test_a_readable_record_that_may_not_be_changed_says_so(crm: Any) -> None:
    add_user(crm, "tiep.thi", roles=["marketing"])
    an = crm.customers.add(name="Nguyễn Văn An")
    with pytest.raises(crmkit.PermissionDenied, match="customers.update"):
        crm.as_user("tiep.thi").customers.update(an.id, lifecycle_stage="customer")


def test_reassigning_a_leaving_users_customers_is_one_audited_change(crm: Any) -> None:
    add_user(crm, "lan")
    add_user(crm, "minh")
    for n in range(3):
        crm.customers.add(name=f"Khách {n}", owner="lan")
    assert crm.users.reassign("lan", "minh") == 3
    assert {c.owner for c in crm.customers.find()} == {"minh"}
    entry = crm.audit.entries(entity="user", limit=1).items[0]
    assert (entry.action, entry.entity_id, entry.changes) == ("reassign", "lan", {"to": "minh", "customers": 3})
    crm.users.disable("minh")
    with pytest.raises(crmkit.ValidationError, match="disabled"):
        crm.users.reassign("lan", "minh")


def test_the_audit_log_is_scoped_to_the_customers_a_user_may_see(crm: Any) -> None:
    crm.teams.add("Hà Nội")
    crm.teams.add("TP.HCM")
    add_user(crm, "giam.doc", teams=["Hà Nội"], roles=["manager"])
    add_user(crm, "lan", teams=["Hà Nội"])
    add_user(crm, "hoa", teams=["TP.HCM"])
    ours = crm.customers.add(name="Khách Hà Nội", owner="lan")
    crm.customers.add(name="Khách Sài Gòn", owner="hoa")
    entries = crm.as_user("giam.doc").audit.entries(limit=1000).items
    assert {e.customer_id for e in entries} == {ours.id}  # neither the other branch nor user administration


def test_the_owner_strings_of_an_older_database_become_users(crm_factory: Any) -> None:
    from crmkit import migrations

    crm = crm_factory()
    core = migrations.core_lineage()
    migrations.downgrade(crm.engine, core, "crmkit_0002")
    now = datetime.now(UTC).replace(tzinfo=None)
    with crm.engine.begin() as conn:
        for n, owner in enumerate(["lan.nguyen", "Minh Trần", "lan.nguyen", None]):
            conn.execute(
                sa.text(
                    "INSERT INTO customers (kind, name, name_key, lifecycle_stage, owner, attributes, status, created_at, "
                    "updated_at) VALUES ('person', :name, :name, 'lead', :owner, '{}', 'active', :now, :now)"
                ),
                {"name": f"khach {n}", "owner": owner, "now": now},
            )
    migrations.upgrade(crm.engine, [core])
    upgraded = crmkit.CRM(crm.engine.url.render_as_string(hide_password=False), plugins=[])
    try:
        assert [(u.username, u.active, u.has_password) for u in upgraded.users.list()] == [
            ("Minh Trần", True, False),
            ("lan.nguyen", True, False),
        ]
        assert sorted(c.owner or "" for c in upgraded.customers.find()) == ["", "Minh Trần", "lan.nguyen", "lan.nguyen"]
    finally:
        upgraded.close()


class _Files:
    def __init__(self, crm: Any) -> None:
        self._crm = crm

    def report(self, folder: Path) -> Path:
        """A service method returning a path (a Path is a context manager on Python 3.11: it must pass untouched)."""
        return folder / f"{self._crm.access.principal.username}.html"


class _FilesPlugin:
    @hookimpl
    def crmkit_services(self, crm: Any) -> dict[str, Any]:
        return {"files": _Files(crm)}


def test_a_handle_returns_what_the_service_returns_and_runs_blocks_as_its_user(
    crm_factory: Any, tmp_path: Path
) -> None:
    crm = crm_factory(plugins=[Plugin("files", hooks=_FilesPlugin())])
    add_user(crm, "lan", roles=["sales"])
    lan = crm.as_user("lan")
    assert lan.files.report(tmp_path) == tmp_path / "lan.html"
    with lan.transaction():
        assert crm.access.principal.username == "lan"
        made = crm.customers.add(name="Khách trong khối")
    assert made.owner == "lan" and crm.access.principal.is_system


def test_a_scoped_user_cannot_leave_a_customer_without_an_owner(crm: Any) -> None:
    add_user(crm, "lan", roles=["sales"])
    mine = crm.as_user("lan").customers.add(name="Khách của Lan")
    with pytest.raises(crmkit.ValidationError, match="owner: name an owner within your scope"):
        crm.as_user("lan").customers.update(mine.id, owner=None)
    assert crm.customers.update(mine.id, owner=None).owner is None  # the system may
    assert crm.as_user("lan").access.principal.username == "lan"  # a service's property reads as the user


def test_a_plugin_set_that_fails_to_open_leaves_no_template_behind(crm_factory: Any) -> None:
    with pytest.raises(crmkit.PluginError):
        crm_factory(plugins=[Plugin("squat", hooks=_Squatter())])
    crm = crm_factory(plugins=[Plugin("stamps", hooks=_Loyalty())])  # the next plugin set gets a template of its own
    assert crm.roles.get("sales").grants["stamps.grant"] == "own"
