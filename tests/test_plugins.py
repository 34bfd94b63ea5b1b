"""Plugin loading as a plugin vendor and an integrator see it.

Discovery through entry points, failures reported by name (and raised in strict mode),
disabling per process and per database, deterministic order, plugin-published hooks,
and hooks that veto or fail inside the write transaction.

Plugins here are inline ``crmkit.Plugin`` objects whose ``hooks`` are small classes defined
below; they carry no tables, so they can be loaded onto any database made by ``crm_factory``.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import sys
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

import crmkit
from crmkit import CRM, Plugin, PluginError, ValidationError, hookimpl, hookspec
from crmkit.core.tables import audit_log, customers, interactions
from crmkit.hooks.manager import discover

NOTES_VERSION = importlib.metadata.version("crmkit-notes")


# --- hook containers used as plugins' ``hooks`` --------------------------------------------------


class Recorder:
    """Records every call of the core lifecycle hooks as (plugin, hook, detail) in a shared log."""

    def __init__(self, name: str, log: list[tuple[str, str, Any]]) -> None:
        self.name = name
        self.log = log

    @hookimpl
    def crmkit_customer_before_save(self, customer, changes):
        self.log.append((self.name, "before_save", customer.id if customer else None))

    @hookimpl
    def crmkit_customer_created(self, customer, session):
        # runs inside the insert's transaction: the new row is visible through its session
        seen = session.connection().execute(sa.select(customers.c.name).where(customers.c.id == customer.id)).scalar()
        self.log.append((self.name, "created", seen))

    @hookimpl
    def crmkit_customer_updated(self, customer, changes):
        self.log.append((self.name, "updated", dict(changes)))

    @hookimpl
    def crmkit_interaction_before_log(self, interaction):
        self.log.append((self.name, "before_log", interaction["channel"]))

    @hookimpl
    def crmkit_interaction_logged(self, interaction, session):
        seen = (
            session.connection()
            .execute(sa.select(interactions.c.subject).where(interactions.c.id == interaction.id))
            .scalar()
        )
        self.log.append((self.name, "logged", seen))


class StartupAndChannels:
    """Adds the ``zalo`` channel and records start-up (which sees a ready database)."""

    def __init__(self) -> None:
        self.started: list[int] = []

    @hookimpl
    def crmkit_channels(self):
        return ["zalo"]

    @hookimpl
    def crmkit_startup(self, crm):
        self.started.append(len(crm.customers.find().items))


class FailingStartup:
    @hookimpl
    def crmkit_startup(self):
        raise RuntimeError("licence key missing")


class WrongSignature:
    @hookimpl
    def crmkit_customer_created(self, customer, bogus):
        raise AssertionError("never registered")


class UnknownHook:
    @hookimpl
    def crmkit_customer_deleted(self, customer):
        raise AssertionError("never registered")


class Empty:
    """A plugin with no hooks at all (only used to be required by others)."""


class Raises:
    """Fails after the core (and other plugins) wrote: the whole write must roll back."""

    def __init__(self, hook: str) -> None:
        self.hook = hook

    @hookimpl
    def crmkit_customer_created(self):
        if self.hook == "created":
            raise RuntimeError("mailbox full")

    @hookimpl
    def crmkit_interaction_logged(self):
        if self.hook == "logged":
            raise KeyError("sentiment model")

    @hookimpl
    def crmkit_customers_merged(self):
        if self.hook == "merged":
            raise RuntimeError("ledger locked")


class BatchMerges:
    """Re-points in one call per batch merge; also implements the per-pair hook, which a batch must then skip."""

    def __init__(self, log: list[Any], fail: bool = False) -> None:
        self.log = log
        self.fail = fail

    @hookimpl
    def crmkit_customers_merged_many(self, pairs, session):
        # runs in the merge transaction: the merged records are tombstones already
        status = session.connection().execute(sa.select(customers.c.status).where(customers.c.id.in_(list(pairs))))
        self.log.append(("batch", dict(pairs), set(status.scalars())))
        if self.fail:
            raise RuntimeError("bulk re-point failed")

    @hookimpl
    def crmkit_customers_merged(self, kept, merged):
        self.log.append(("batch plugin called per pair", kept.id, merged.id))


class PairMerges:
    """An older plugin: knows only the per-pair merge hook."""

    def __init__(self, log: list[Any]) -> None:
        self.log = log

    @hookimpl
    def crmkit_customers_merged(self, kept, merged):
        self.log.append(("pair", kept.id, merged.id))


class Mailbox:
    """Keeps messages for customers outside the database (files, say): what declared personal data cannot cover,
    so its export and erasure are hand-written hooks."""

    def __init__(self) -> None:
        self.messages: dict[int, list[str]] = {}

    @hookimpl
    def crmkit_customer_export(self, customer):
        return {"mailbox": {"messages": self.messages.get(customer.id, [])}}

    @hookimpl
    def crmkit_customer_erase(self, customer):
        self.messages.pop(customer.id, None)


class Vetoes:
    """Refuses example.org e-mail addresses and phone calls without a subject."""

    @hookimpl
    def crmkit_customer_before_save(self, changes):
        if any(email.endswith("@example.org") for email in changes.get("emails", ())):
            raise ValidationError("example.org addresses are not accepted", field="emails")

    @hookimpl
    def crmkit_interaction_before_log(self, interaction):
        if interaction["channel"] == "phone" and not interaction.get("subject"):
            raise ValidationError("phone calls need a subject", field="subject")


class ShopSpecs:
    """Hooks the ``shop`` plugin publishes for others (like sales publishes ``crmkit_order_placed``)."""

    @hookspec
    def crmkit_order_placed(self, crm, order, session):
        """After an order is placed, in its transaction."""


class Shop:
    """The ``shop`` service: placing an order calls the hook it publishes."""

    def __init__(self, crm: CRM) -> None:
        self._crm = crm

    def place_order(self, customer_id: int, amount: int) -> dict[str, int]:
        order = {"customer_id": customer_id, "amount": amount}
        with self._crm.transaction() as session:
            self._crm.audit.record(session, "place", "order", customer_id, customer_id=customer_id, changes=order)
            self._crm.hooks.call(ShopSpecs.crmkit_order_placed, order=order, session=session)  # the spec, not a name
        return order


class ShopHooks:
    @hookimpl
    def crmkit_services(self, crm):
        return {"shop": Shop(crm)}


class Points:
    """Implements the hook ``shop`` publishes: one point per 10,000."""

    def __init__(self) -> None:
        self.awarded: list[tuple[int, int]] = []

    @hookimpl
    def crmkit_order_placed(self, order):
        self.awarded.append((order["customer_id"], order["amount"] // 10_000))


class BadPoints:
    @hookimpl
    def crmkit_order_placed(self, order, discount):
        raise AssertionError("never registered")


class PointsFailing:
    @hookimpl
    def crmkit_order_placed(self):
        raise ZeroDivisionError("points rate is zero")


class LoyaltySpecs:
    @hookspec
    def crmkit_points_changed(self, crm, customer_id, delta):
        """After a customer's balance changed."""


class LoyaltyPublisher:
    """Publishes its hookspecs through ``crmkit_add_hookspecs`` instead of ``Plugin(hookspecs=...)``."""

    @hookimpl
    def crmkit_add_hookspecs(self, pm):
        pm.add_hookspecs(LoyaltySpecs)


class BrokenPublisher:
    @hookimpl
    def crmkit_add_hookspecs(self, pm):
        raise RuntimeError("spec module missing")


class CoreSpecAgain:
    """Publishes a hookspec the core already has."""

    @hookspec
    def crmkit_customer_created(self, crm, customer, session):
        """A customer was created."""


class OrderSpecs:
    """Two shops publishing the same hook name: the second is told whose it is."""

    @hookspec
    def crmkit_order_shipped(self, order):
        """An order left the warehouse."""


class Badges:
    def __init__(self) -> None:
        self.seen: list[int] = []

    @hookimpl
    def crmkit_points_changed(self, customer_id, delta):
        self.seen.append(delta)


class OptionalBadges(Badges):
    """Integrates with loyalty when it is there, without requiring it."""

    @hookimpl(optionalhook=True)
    def crmkit_points_changed(self, customer_id, delta):
        self.seen.append(delta)


# --- helpers -------------------------------------------------------------------------------------


@pytest.fixture
def reopen() -> Iterator[Callable[..., CRM]]:
    """Open another CRM on an existing CRM's database, with other plugins (closed after the test)."""
    opened: list[CRM] = []

    def open_(base: CRM, plugins: Any = (), **kwargs: Any) -> CRM:
        crm = CRM(base.engine.url, plugins=plugins, **kwargs)
        opened.append(crm)
        return crm

    yield open_
    for crm in opened:
        crm.close()


def info(crm: CRM, name: str) -> Any:
    """The ``plugin_info()`` entry of one plugin."""
    return next(i for i in crm.plugin_info() if i.name == name)


def only_installed(monkeypatch: pytest.MonkeyPatch, *keep: str) -> None:
    """Block, through CRMKIT_DISABLE_PLUGINS, every installed plugin except ``keep``."""
    others = [d.name for d in discover() if d.name not in keep]
    monkeypatch.setenv("CRMKIT_DISABLE_PLUGINS", ",".join(others))


def core_still_works(crm: CRM) -> None:
    customer = crm.customers.add(name="Nguyễn Thị Mai", phone="0912 345 678")
    crm.interactions.log(customer.id, "sms", subject="Xin chào")
    assert [c.id for c in crm.customers.find("nguyen thi mai")] == [customer.id]


# --- discovery ---------------------------------------------------------------------------------------


def test_installed_plugin_is_found_through_its_entry_point(crm_factory, reopen, monkeypatch):
    found = {d.name: d for d in discover()}
    assert found["notes"].distribution == "crmkit-notes" and found["notes"].version == NOTES_VERSION
    base = crm_factory(plugins=["notes"])
    only_installed(monkeypatch, "notes")
    crm = reopen(base, plugins=None)  # no plugins=: every installed plugin, through stevedore
    notes = info(crm, "notes")
    assert (notes.status, notes.version, notes.reason) == ("enabled", NOTES_VERSION, None)
    assert {"crmkit_services", "crmkit_customer_profile", "crmkit_segment_fields"} <= set(notes.hooks)
    assert set(notes.plugin.personal_data) == {"notes"}  # export, erase and merges: declared, done by the core
    customer = crm.customers.add(name="Trần Văn Hùng")
    crm.notes.add(customer.id, "Found through the entry point")
    assert [n.text for n in crm.notes.list(customer.id)] == ["Found through the entry point"]


def test_hand_written_export_and_erase_hooks_run_beside_declared_personal_data(crm_factory):
    mailbox = Mailbox()
    crm = crm_factory(plugins=["notes", Plugin("mailbox", hooks=mailbox)])
    customer = crm.customers.add(name="Đỗ Minh Châu")
    crm.notes.add(customer.id, "Gọi lại thứ Sáu")
    mailbox.messages[customer.id] = ["Chào chị Châu"]
    exported = crm.customers.export_data(customer.id)
    assert exported["mailbox"] == {"messages": ["Chào chị Châu"]}
    assert [n["text"] for n in exported["notes"]["notes"]] == ["Gọi lại thứ Sáu"]  # declared: no hook in notes
    crm.customers.erase(customer.id)
    assert mailbox.messages == {}
    assert crm.customers.export_data(customer.id)["notes"] == {"notes": []}


@pytest.fixture
def broken_distribution(tmp_path: Path) -> Iterator[str]:
    """An installed distribution whose entry point module imports a dependency that is not installed."""
    package = tmp_path / "crmkit_broken_demo"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "plugin.py").write_text("import crmkit_dependency_not_installed  # noqa\n")
    dist_info = tmp_path / "crmkit_broken_demo-1.0.dist-info"
    dist_info.mkdir()
    (dist_info / "METADATA").write_text("Metadata-Version: 2.1\nName: crmkit-broken-demo\nVersion: 1.0\n")
    (dist_info / "entry_points.txt").write_text("[crmkit.plugins]\nbroken = crmkit_broken_demo.plugin:plugin\n")
    sys.path.insert(0, str(tmp_path))
    importlib.invalidate_caches()
    discover(refresh=True)
    try:
        yield "broken"
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("crmkit_broken_demo", None)
        importlib.invalidate_caches()
        discover(refresh=True)


def test_entry_point_that_fails_to_import_is_reported_and_the_rest_works(
    crm_factory, reopen, monkeypatch, broken_distribution
):
    base = crm_factory(plugins=["notes"])
    only_installed(monkeypatch, "notes", "broken")
    crm = reopen(base, plugins=None, strict=False)
    broken = info(crm, "broken")
    assert broken.status == "failed"
    assert "crmkit_broken_demo.plugin:plugin" in broken.reason
    assert "No module named 'crmkit_dependency_not_installed'" in broken.reason
    assert info(crm, "notes").status == "enabled"
    core_still_works(crm)
    with pytest.raises(PluginError, match=r"^plugin broken: cannot import .*crmkit_dependency_not_installed") as exc:
        reopen(base, plugins=None, strict=True)
    assert exc.value.plugin == "broken"
    monkeypatch.setenv("CRMKIT_STRICT_PLUGINS", "1")
    with pytest.raises(PluginError, match="plugin broken"):
        reopen(base, plugins=None)
    only_installed(monkeypatch, "notes")  # blocking the broken plugin is the way around it
    assert info(reopen(base, plugins=None), "broken").status == "disabled"


# --- failures reported by name ------------------------------------------------------------------


FAILURES = {
    "fails to import": (
        [Plugin("ghostly", hooks="crmkit_tests_no_such_module")],
        "ghostly",
        "cannot import: ModuleNotFoundError: No module named 'crmkit_tests_no_such_module'",
    ),
    "missing dependency": (
        [Plugin("needy", hooks=Empty(), requires=("ghost",))],
        "needy",
        "requires ghost, which is not installed",
    ),
    "incompatible version": (
        [Plugin("picky", hooks=Empty(), requires=("notes>=99",))],
        "picky",
        f"version mismatch: requires notes>=99, but notes {NOTES_VERSION} is installed",
    ),
    "wrong hook signature": (
        [Plugin("sloppy", hooks=WrongSignature())],
        "sloppy",
        "hook crmkit_customer_created: Argument(s) {'bogus'} are declared in the hookimpl "
        "but can not be found in the hookspec",
    ),
    "unknown hook": (
        [Plugin("dreamer", hooks=UnknownHook())],
        "dreamer",
        "implements unknown hook crmkit_customer_deleted",
    ),
    "hookspecs cannot be published": (
        [Plugin("publisher", hooks=BrokenPublisher())],
        "publisher",
        "cannot publish its hookspecs: RuntimeError: spec module missing",
    ),
    "hookspec the core publishes": (
        [Plugin("copycat", hooks=Empty(), hookspecs=CoreSpecAgain)],
        "copycat",
        "publishes hookspec crmkit_customer_created, which the core already publishes",
    ),
    "dependency cycle": (
        [Plugin("chicken", hooks=Empty(), requires=("egg",)), Plugin("egg", hooks=Empty(), requires=("chicken",))],
        "chicken",
        "dependency cycle: chicken -> egg -> chicken",
    ),
}


@pytest.mark.parametrize("case", list(FAILURES))
def test_broken_plugin_is_reported_by_name_and_the_crm_keeps_working(crm_factory, reopen, monkeypatch, case):
    bad_plugins, name, reason = FAILURES[case]
    log: list[tuple[str, str, Any]] = []
    good = Plugin("audit_trail", hooks=Recorder("audit_trail", log))
    base = crm_factory(plugins=["notes"])
    crm = reopen(base, plugins=["notes", good, *bad_plugins], strict=False)
    failed = info(crm, name)
    assert failed.status == "failed"
    assert reason in failed.reason
    assert not failed.hooks
    assert [i.name for i in crm.registry.enabled()] == ["audit_trail", "notes"]
    core_still_works(crm)
    assert ("audit_trail", "created", "Nguyễn Thị Mai") in log
    crm.notes.add(crm.customers.find("mai").items[0].id, "still here")

    with pytest.raises(PluginError) as strict:
        reopen(base, plugins=["notes", good, *bad_plugins], strict=True)
    assert strict.value.plugin == name
    assert str(strict.value) == f"plugin {name}: {failed.reason}"
    monkeypatch.setenv("CRMKIT_STRICT_PLUGINS", "1")
    with pytest.raises(PluginError, match=f"^plugin {name}: "):
        reopen(base, plugins=["notes", good, *bad_plugins])


def test_a_hookspec_two_plugins_publish_fails_the_second_naming_the_first(crm, reopen):
    first = Plugin("shipping", hooks=Empty(), hookspecs=OrderSpecs)
    second = Plugin("warehouse", hooks=Empty(), hookspecs=type("WarehouseSpecs", (OrderSpecs,), {}))
    opened = reopen(crm, plugins=[first, second], strict=False)
    assert info(opened, "shipping").status == "enabled"
    assert (info(opened, "warehouse").status, info(opened, "warehouse").reason) == (
        "failed",
        "publishes hookspec crmkit_order_shipped, which plugin 'shipping' already publishes "
        "(name a plugin's own hooks crmkit_<plugin>_…)",
    )


def test_dependants_of_a_failed_plugin_fail_too(crm, reopen):
    broken = Plugin("base_plugin", hooks=WrongSignature())
    dependant = Plugin("addon", hooks=Empty(), requires=("base_plugin",))
    opened = reopen(crm, plugins=[dependant, broken], strict=False)
    assert info(opened, "base_plugin").status == "failed"
    assert (info(opened, "addon").status, info(opened, "addon").reason) == (
        "failed",
        "requires base_plugin, which is failed",
    )


def test_startup_hook_sees_a_ready_crm_and_a_failing_one_stops_startup(crm, reopen):
    extras = StartupAndChannels()
    crm.customers.add(name="Lý Thu Hà")
    opened = reopen(crm, plugins=[Plugin("zalo", hooks=extras)])
    assert extras.started == [1]  # called once, after registration, with the database ready
    with pytest.raises(PluginError, match="^plugin licensed: hook crmkit_startup: RuntimeError: licence key missing$"):
        reopen(crm, plugins=[Plugin("licensed", hooks=FailingStartup())], strict=False)
    assert "zalo" in opened.channels


# --- disabling ------------------------------------------------------------------------------------------


def test_disable_env_blocks_a_plugin(crm_factory, reopen, monkeypatch):
    base = crm_factory(plugins=["notes"])
    monkeypatch.setenv("CRMKIT_DISABLE_PLUGINS", "notes")
    needs_notes = Plugin("reminders", hooks=Empty(), requires=("notes",))
    crm = reopen(base, plugins=["notes", needs_notes], strict=False)
    assert info(crm, "notes").status == "disabled"
    assert (info(crm, "reminders").status, info(crm, "reminders").reason) == (
        "failed",
        "requires notes, which is disabled",
    )
    assert not crm.has_service("notes")
    with pytest.raises(AttributeError, match="installed and enabled"):
        crm.notes  # noqa: B018
    core_still_works(crm)


def test_enable_and_disable_per_database(crm_factory, reopen):
    crm = crm_factory(plugins=["notes"], actor="admin")
    customer = crm.customers.add(name="Đỗ Quang Vinh")
    crm.notes.add(customer.id, "Before disabling")
    crm.plugins.disable("notes")

    other_database = crm_factory(plugins=["notes"])
    assert info(other_database, "notes").status == "enabled"

    again = reopen(crm, plugins=["notes"])
    assert info(again, "notes").status == "disabled"
    assert not again.has_service("notes")
    assert "crmkit_customer_profile" not in [h for i in again.registry.enabled() for h in i.hooks]
    assert "notes" not in again.customers.profile(customer.id).sections
    core_still_works(again)
    with pytest.raises(crmkit.NotFound):
        again.plugins.disable("no_such_plugin")

    again.plugins.enable("notes")
    enabled = reopen(crm, plugins=["notes"])
    assert [n.text for n in enabled.notes.list(customer.id)] == ["Before disabling"]
    actions = [e.action for e in enabled.audit.entries(entity="plugin").items]
    assert actions == ["enable", "disable"]


def test_erase_and_merge_refuse_while_a_disabled_plugin_holds_customer_data(crm_factory, reopen):
    crm = crm_factory(plugins=["notes"])
    kept = crm.customers.add(name="Lê Văn Tám", email="tam@example.vn")
    other = crm.customers.add(name="Le Van Tam", email="tam.le@example.vn")
    crm.notes.add(other.id, "Gọi lại sau Tết")
    crm.plugins.disable("notes")

    disabled = reopen(crm, plugins=["notes"])
    with pytest.raises(crmkit.Conflict, match="plugin notes is disabled .* enable it first"):
        disabled.customers.erase(other.id)
    with pytest.raises(crmkit.Conflict, match="plugin notes is disabled"):
        disabled.customers.merge(kept.id, other.id)
    assert disabled.customers.get(other.id).status == "active"

    disabled.plugins.enable("notes")
    enabled = reopen(crm, plugins=["notes"])
    enabled.customers.erase(other.id)
    assert enabled.notes.list(other.id) == []


# --- order ------------------------------------------------------------------------------------------------


def test_order_is_dependency_depth_then_name_and_dependencies_run_first(crm, reopen):
    log: list[tuple[str, str, Any]] = []
    made = {
        "a": Plugin("a", hooks=Recorder("a", log)),
        "z": Plugin("z", hooks=Recorder("z", log)),
        "b": Plugin("b", hooks=Recorder("b", log), requires=("a",)),
        "m": Plugin("m", hooks=Recorder("m", log), requires=("a>=0",)),
        "c": Plugin("c", hooks=Recorder("c", log), requires=("b", "z")),
    }
    orders = []
    for given in (["c", "m", "z", "b", "a"], ["a", "b", "c", "m", "z"]):
        opened = reopen(crm, plugins=[made[n] for n in given])
        orders.append([(i.name, i.depth) for i in opened.registry.enabled()])
    assert orders[0] == orders[1] == [("a", 0), ("z", 0), ("b", 1), ("m", 1), ("c", 2)]
    log.clear()
    opened.customers.add(name="Order Check")
    assert [who for who, hook, _ in log if hook == "created"] == ["a", "z", "b", "m", "c"]


# --- hooks plugins publish ------------------------------------------------------------------------------


def test_plugin_publishes_hookspecs_that_another_implements(crm, reopen):
    points = Points()
    shop = Plugin("shop", hooks=ShopHooks(), hookspecs=ShopSpecs)
    opened = reopen(crm, plugins=[Plugin("points", hooks=points, requires=("shop",)), shop])
    customer = opened.customers.add(name="Phan Thị Thu")
    opened.shop.place_order(customer.id, 1_500_000)
    assert points.awarded == [(customer.id, 150)]
    assert info(opened, "points").hooks == ["crmkit_order_placed"]

    with opened.transaction() as session, pytest.raises(TypeError) as wrong:
        opened.hooks.call(ShopSpecs.crmkit_order_placed, order={}, sesion=session)
    assert str(wrong.value) == (
        "hook crmkit_order_placed: arguments unknown ['sesion'] and missing ['session']; "
        "the hookspec is crmkit_order_placed(crm, order, session)"
    )
    with pytest.raises(TypeError, match="'place_order' is not a crmkit hookspec"):
        opened.hooks.call(Shop.place_order, customer_id=customer.id, amount=1)

    alone = reopen(crm, plugins=[Plugin("points", hooks=Points(), requires=("shop",))], strict=False)
    assert info(alone, "points").reason == "requires shop, which is not installed"
    sloppy = reopen(crm, plugins=[shop, Plugin("sloppy_points", hooks=BadPoints(), requires=("shop",))], strict=False)
    assert info(sloppy, "sloppy_points").reason.startswith("hook crmkit_order_placed: Argument(s) {'discount'}")


def test_plugin_publishes_hookspecs_through_crmkit_add_hookspecs(crm, reopen):
    badges, optional = Badges(), OptionalBadges()
    loyalty = Plugin("loyalty", hooks=LoyaltyPublisher())
    opened = reopen(
        crm,
        plugins=[
            Plugin("badges", hooks=badges, requires=("loyalty",)),
            loyalty,
            Plugin("optional_badges", hooks=optional),
        ],
    )
    assert "crmkit_add_hookspecs" in info(opened, "loyalty").hooks
    opened.hooks.call("crmkit_points_changed", customer_id=1, delta=25)
    assert badges.seen == [25] and optional.seen == [25]

    without_loyalty = reopen(
        crm,
        plugins=[Plugin("optional_badges", hooks=OptionalBadges()), Plugin("eager_badges", hooks=Badges())],
        strict=False,
    )
    assert info(without_loyalty, "optional_badges").status == "enabled"
    assert info(without_loyalty, "eager_badges").reason.startswith("implements unknown hook crmkit_points_changed")


# --- hooks inside the write transaction ---------------------------------------------------------------------


def test_lifecycle_hooks_run_inside_the_write_transaction(crm, reopen):
    log: list[tuple[str, str, Any]] = []
    opened = reopen(crm, plugins=[Plugin("watcher", hooks=Recorder("watcher", log))])
    customer = opened.customers.add(name="Bùi Anh Tuấn")
    opened.customers.update(customer.id, city="Đà Nẵng")
    opened.customers.set_consent(customer.id, "email", True, source="web form")
    opened.interactions.log(customer.id, "chat", subject="Hỏi giá")
    assert log == [
        ("watcher", "before_save", None),
        ("watcher", "created", "Bùi Anh Tuấn"),
        ("watcher", "before_save", customer.id),
        ("watcher", "updated", {"city": "Đà Nẵng"}),
        ("watcher", "updated", {"consents": {"email": True}}),
        ("watcher", "before_log", "chat"),
        ("watcher", "logged", "Hỏi giá"),
    ]


def count(crm: CRM, table: sa.Table) -> int:
    with crm.reading() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one()


def test_a_failing_after_hook_rolls_the_whole_write_back_and_names_the_plugin(crm, reopen):
    grumpy = reopen(crm, plugins=[Plugin("grumpy", hooks=Raises("created"))])
    with pytest.raises(PluginError) as exc:
        grumpy.customers.add(name="Hồ Ngọc Lan", email="lan@example.vn")
    assert str(exc.value) == "plugin grumpy: hook crmkit_customer_created: RuntimeError: mailbox full"
    assert (exc.value.plugin, exc.value.hook) == ("grumpy", "crmkit_customer_created")
    assert count(crm, customers) == 0 and count(crm, audit_log) == 0
    assert crm.customers.find("lan").items == []

    customer = crm.customers.add(name="Hồ Ngọc Lan")
    moody = reopen(crm, plugins=[Plugin("moody", hooks=Raises("logged"))])
    with pytest.raises(
        PluginError, match="^plugin moody: hook crmkit_interaction_logged: KeyError: 'sentiment model'$"
    ):
        moody.interactions.log(customer.id, "phone", subject="Follow-up")
    assert count(crm, interactions) == 0


def test_a_failing_hook_also_undoes_what_other_plugins_wrote(crm_factory, reopen):
    crm = crm_factory(plugins=["notes"])
    kept = crm.customers.add(name="Mai Anh")
    dup = crm.customers.add(name="Mai Anh")
    crm.notes.add(dup.id, "on the duplicate")
    # ``ledger`` requires notes, so notes re-points its rows first; then ledger fails
    ledger = Plugin("ledger", hooks=Raises("merged"), requires=("notes",))
    opened = reopen(crm, plugins=["notes", ledger])
    with pytest.raises(PluginError, match="^plugin ledger: hook crmkit_customers_merged: RuntimeError: ledger locked$"):
        opened.customers.merge(kept.id, dup.id)
    assert crm.customers.get(dup.id).status == "active"
    assert [n.customer_id for n in crm.notes.list(dup.id)] == [dup.id]


def test_a_batch_merge_runs_the_batch_hook_and_the_per_pair_hook_only_where_there_is_no_batch_one(crm_factory):
    log: list[Any] = []
    crm = crm_factory(plugins=["notes", Plugin("bulk", hooks=BatchMerges(log)), Plugin("older", hooks=PairMerges(log))])
    an, an2, binh, binh2 = (crm.customers.add(name=name) for name in ("An", "An", "Bình", "Bình"))
    crm.notes.add(an2.id, "on the duplicate of An")
    crm.notes.add(binh2.id, "on the duplicate of Bình")
    crm.customers.merge_many([(an.id, an2.id), (binh.id, binh2.id)])
    assert log == [
        ("batch", {an2.id: an.id, binh2.id: binh.id}, {"merged"}),
        ("pair", an.id, an2.id),
        ("pair", binh.id, binh2.id),
    ]
    # notes implements only the per-pair hook: called pair by pair, its rows followed
    assert [n.text for n in crm.notes.list(binh.id)] == ["on the duplicate of Bình"]
    log.clear()
    carol, carol2 = (crm.customers.add(name="Carol") for _ in range(2))
    crm.customers.merge(carol.id, carol2.id)  # one merge is a batch of one
    assert log == [("batch", {carol2.id: carol.id}, {"merged"}), ("pair", carol.id, carol2.id)]


def test_a_failing_batch_merge_hook_rolls_the_whole_batch_back(crm_factory, reopen):
    crm = crm_factory(plugins=["notes"])
    an, an2, binh, binh2 = (crm.customers.add(name=name) for name in ("An", "An", "Bình", "Bình"))
    crm.notes.add(an2.id, "on the duplicate")
    opened = reopen(crm, plugins=["notes", Plugin("bulk", hooks=BatchMerges([], fail=True))])
    with pytest.raises(
        PluginError, match="^plugin bulk: hook crmkit_customers_merged_many: RuntimeError: bulk re-point"
    ):
        opened.customers.merge_many([(an.id, an2.id), (binh.id, binh2.id)])
    assert [crm.customers.get(c.id).status for c in (an2, binh2)] == ["active", "active"]
    assert [n.customer_id for n in crm.notes.list(an2.id)] == [an2.id]


class Unmerges:
    """Rebuilds what it derives after an unmerge: records which customers it was told about, and their notes then."""

    def __init__(self, log: list[Any]) -> None:
        self.log = log

    @hookimpl
    def crmkit_customer_unmerged(self, crm, kept, restored, merge_id, session):
        self.log.append((kept.id, restored.id, merge_id, [n.text for n in crm.notes.list(restored.id)]))


def test_an_unmerge_gives_a_plugin_s_rows_back_and_tells_the_plugins(crm_factory):
    log: list[Any] = []
    crm = crm_factory(plugins=["notes", Plugin("rebuild", hooks=Unmerges(log), requires=("notes",))])
    an, an2 = (crm.customers.add(name="Mai Anh") for _ in range(2))
    crm.notes.add(an2.id, "on the duplicate")
    (merge,) = crm.customers.merge_many([(an.id, an2.id)])
    crm.notes.add(an.id, "after the merge")
    crm.customers.unmerge(merge.id)
    # notes re-points with ``repoint`` in its merge hook: the core's journal gave its row back
    assert log == [(an.id, an2.id, merge.id, ["on the duplicate"])]
    assert [n.text for n in crm.notes.list(an.id)] == ["after the merge"]


class Till:
    """A purchase source (a shop's till, a POS connector): its sales through ``crmkit_value_transactions``."""

    def __init__(self, rows: list[tuple[int, str, int, str]] | None, *, margin: bool = False) -> None:
        self.rows = rows  # (customer_id, ISO time, amount_minor, currency); None: returns something unusable
        self.margin = margin

    @hookimpl
    def crmkit_value_transactions(self, crm: CRM) -> Any:
        if self.rows is None:
            return sa.select(sa.literal(1).label("customer_id"))  # no time, amount or currency
        from crmkit.core.types import UTCDateTime

        selects = [
            sa.select(
                sa.literal(customer_id).label("customer_id"),
                sa.literal(datetime.fromisoformat(at), UTCDateTime()).label("occurred_at"),
                sa.literal(amount, sa.BigInteger).label("amount_minor"),
                sa.literal(currency).label("currency"),
                *([sa.literal(amount // 4, sa.BigInteger).label("margin_minor")] if self.margin else []),
            )
            for customer_id, at, amount, currency in self.rows
        ]
        return sa.union_all(*selects).subquery()


def test_purchases_are_every_sources_rows_in_one_subquery(crm, reopen):
    from crmkit.purchases import has_purchases, purchases

    an = crm.customers.add(name="Nguyễn Văn An")
    assert not has_purchases(crm)
    with crm.engine.connect() as conn:
        assert conn.execute(sa.select(purchases(crm))).all() == []  # nobody bought anything we know of
    opened = reopen(
        crm,
        plugins=[
            Plugin("till", hooks=Till([(an.id, "2026-02-10T03:00:00+00:00", 1_500_000, "VND")], margin=True)),
            Plugin("eshop", hooks=Till([(an.id, "2026-03-08T01:00:00+00:00", 250_000, "VND")])),
        ],
    )
    assert has_purchases(opened)
    p = purchases(opened)
    with opened.engine.connect() as conn:
        rows = conn.execute(
            sa.select(
                p.c.customer_id, p.c.occurred_at, p.c.amount_minor, p.c.currency, p.c.margin_minor, p.c.category
            ).order_by(p.c.occurred_at)
        ).all()
    assert [tuple(r) for r in rows] == [
        (an.id, datetime(2026, 2, 10, 3, tzinfo=UTC), 1_500_000, "VND", 375_000, None),
        (an.id, datetime(2026, 3, 8, 1, tzinfo=UTC), 250_000, "VND", None, None),
    ]  # margin: the eshop has none


def test_a_purchase_source_lacking_a_column_is_blamed_by_name(crm, reopen):
    from crmkit.purchases import purchases

    opened = reopen(crm, plugins=[Plugin("brokentill", hooks=Till(None))])
    with pytest.raises(
        PluginError,
        match="^plugin brokentill: hook crmkit_value_transactions: its purchases lack "
        "column[(]s[)] occurred_at, amount_minor, currency",
    ):
        purchases(opened)


def test_a_plugin_published_hook_that_fails_rolls_back_its_callers_write(crm, reopen):
    shop = Plugin("shop", hooks=ShopHooks(), hookspecs=ShopSpecs)
    opened = reopen(crm, plugins=[shop, Plugin("points", hooks=PointsFailing(), requires=("shop",))])
    customer = opened.customers.add(name="Kim Ngân")
    before = count(crm, audit_log)
    with pytest.raises(PluginError, match="^plugin points: hook crmkit_order_placed: ZeroDivisionError"):
        opened.shop.place_order(customer.id, 200_000)
    assert count(crm, audit_log) == before


def test_before_hooks_veto_and_nothing_is_written(crm, reopen):
    opened = reopen(crm, plugins=[Plugin("gatekeeper", hooks=Vetoes())])
    with pytest.raises(ValidationError) as exc:
        opened.customers.add(name="Spam Sender", email="bulk@example.org")
    assert exc.value.errors == {"emails": ["example.org addresses are not accepted"]}
    assert count(crm, customers) == 0 and count(crm, audit_log) == 0

    customer = opened.customers.add(name="Lương Thế Vinh", email="vinh@example.vn")
    with pytest.raises(ValidationError, match="emails: example.org"):
        opened.customers.update(customer.id, emails=["vinh@example.org"])
    assert opened.customers.get(customer.id).emails == ("vinh@example.vn",)
    with pytest.raises(ValidationError, match="subject: phone calls need a subject"):
        opened.interactions.log(customer.id, "phone")
    assert count(crm, interactions) == 0
    opened.interactions.log(customer.id, "phone", subject="Confirmed delivery")
    assert count(crm, interactions) == 1


# --- no global state ----------------------------------------------------------------------------------------


def test_two_crms_in_one_process_share_neither_plugins_nor_data(crm_factory, reopen):
    with_notes = crm_factory(plugins=["notes"])
    log: list[tuple[str, str, Any]] = []
    extras = StartupAndChannels()
    plain = reopen(
        crm_factory(), plugins=[Plugin("watcher", hooks=Recorder("watcher", log)), Plugin("zalo", hooks=extras)]
    )
    a = with_notes.customers.add(name="Nguyễn Văn An")
    with_notes.notes.add(a.id, "only in the first CRM")
    assert log == []  # the second CRM's plugin never sees the first CRM's writes
    assert plain.customers.find("nguyen van an").items == []
    assert with_notes.has_service("notes") and not plain.has_service("notes")
    assert [i.name for i in with_notes.registry.enabled()] == ["notes"]
    assert [i.name for i in plain.registry.enabled()] == ["watcher", "zalo"]
    b = plain.customers.add(name="Nguyễn Văn An")
    plain.interactions.log(b.id, "zalo", subject="Chào anh")
    assert [who for who, hook, _ in log if hook == "logged"] == ["watcher"]
    with pytest.raises(ValidationError, match="channel"):
        with_notes.interactions.log(a.id, "zalo")
    assert [c.id for c in with_notes.customers.find("nguyen van an")] == [a.id]


# --- webhook event types and scheduled jobs -----------------------------------------------------------------------


class Shipping:
    """Declares an event type it emits and a job the worker runs."""

    def __init__(self) -> None:
        self.runs: list[str] = []

    @hookimpl
    def crmkit_webhook_events(self) -> list[Any]:
        return [crmkit.EventType("parcel.shipped", "a parcel left the warehouse")]

    @hookimpl
    def crmkit_jobs(self, crm: CRM) -> list[Any]:
        from datetime import timedelta

        return [
            crmkit.Job("shipping.sync", timedelta(hours=1), lambda crm: self.runs.append(crm.actor), "sync parcels")
        ]


class ClashingEvents:
    @hookimpl
    def crmkit_webhook_events(self) -> list[Any]:
        return [crmkit.EventType("customer.created", "the core's own")]


def test_plugins_declare_webhook_event_types_and_jobs_the_worker_runs(crm, reopen):
    from crmkit.worker import Worker

    shipping = Shipping()
    opened = reopen(crm, plugins=[Plugin("shipping", hooks=shipping)])
    assert opened.events.types["parcel.shipped"].plugin == "shipping"
    assert opened.events.types["customer.created"].plugin == "core"
    opened.set_setting("webhooks.allow_private_urls", True)
    opened.webhooks.subscribe("http://127.0.0.1:9/hook", ["parcel.shipped"])  # a plugin's type can be subscribed to
    assert [job.name for job in Worker(opened).jobs] == ["api.idempotency_purge", "shipping.sync"]
    Worker(opened).run_due_jobs()
    Worker(opened).run_due_jobs()  # not due again for an hour
    assert shipping.runs == ["system"]
    with pytest.raises(PluginError, match=r"clashing.*customer.created is declared twice \(also by core\)"):
        reopen(crm, plugins=[Plugin("clashing", hooks=ClashingEvents())])


# --- collected hooks: a key claimed twice -------------------------------------------------------------------


class ClaimsService:
    """Provides ``crm.<name>``."""

    def __init__(self, name: str) -> None:
        self.name = name

    @hookimpl
    def crmkit_services(self, crm):
        return {self.name: object()}


class ClaimsFields:
    """Adds the customer field ``<name>_level`` and the segment field ``<name>_score``."""

    def __init__(self, name: str, value: str) -> None:
        self.name, self.value = name, value

    @hookimpl
    def crmkit_customer_fields(self):
        from marshmallow import fields

        return {f"{self.name}_level": fields.String(allow_none=True)}

    @hookimpl
    def crmkit_segment_fields(self):
        return {f"{self.name}_score": sa.literal(self.value)}


def test_a_service_two_plugins_claim_is_refused_naming_both(crm, reopen):
    with pytest.raises(PluginError) as refused:
        reopen(
            crm,
            plugins=[
                Plugin("zalo_points", hooks=ClaimsService("points")),
                Plugin("vip", hooks=ClaimsService("points")),
            ],
        )
    assert str(refused.value) in {
        "plugin vip: hook crmkit_services: 'points' is claimed by both plugin zalo_points and plugin vip",
        "plugin zalo_points: hook crmkit_services: 'points' is claimed by both plugin vip and plugin zalo_points",
    }


def test_customer_and_segment_fields_two_plugins_claim_are_refused(crm, reopen):
    plugins = [Plugin("tier_a", hooks=ClaimsFields("tier", "a")), Plugin("tier_b", hooks=ClaimsFields("tier", "b"))]
    with pytest.raises(PluginError, match=r"hook crmkit_customer_fields: 'tier_level' is claimed by both plugin tier_"):
        reopen(crm, plugins=plugins)
    segments_only = [Plugin(p.name, hooks=SegmentFieldsOnly(p.hooks[0].name, p.hooks[0].value)) for p in plugins]
    opened = reopen(crm, plugins=segments_only)
    with pytest.raises(PluginError, match=r"hook crmkit_segment_fields: 'tier_score' is claimed by both plugin tier_"):
        opened.hooks.segment_field_definitions()


class SegmentFieldsOnly(ClaimsFields):
    @hookimpl
    def crmkit_customer_fields(self):
        return None


def test_a_dependant_may_replace_what_its_dependency_claims(crm, reopen):
    base = Plugin("tier_base", hooks=ClaimsFields("tier", "base"))
    opened = reopen(
        crm, plugins=[base, Plugin("tier_plus", hooks=ClaimsFields("tier", "plus"), requires=("tier_base",))]
    )
    customer = opened.customers.add(name="Phạm Thu Hà", attributes={"tier_level": "gold"})
    assert customer.attributes["tier_level"] == "gold"
    assert "tier_score" in opened.hooks.segment_field_definitions()
