"""``crm.customers.find``: keyset-paged lists and accent-insensitive search over names, e-mails and phones."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

import crmkit
from crmkit.core.text import fold
from crmkit.testing import add_user

PEOPLE = [
    ("Nguyễn Văn An", "an.nguyen@example.vn", "0912 345 678"),
    ("Nguyễn Văn Anh", "anh.nv@example.vn", "0987 654 321"),
    ("Trần Văn An", "tran.an@example.vn", "0903 111 222"),
    ("Đặng Thu Hà", "ha.dang@example.vn", "0978 123 456"),
    ("Lê An An", None, None),
    ("Phạm Thị Ngọc Ánh", "ngocanh@gmail.com", None),
    ("Bùi Minh Đức", "duc@example.vn", "024 3825 1234"),
    ("John Smith", "john.smith@example.com", "+44 20 7946 0123"),
    ("Dang Van Binh", None, None),
]


def names(page: Any) -> list[str]:
    return [c.name for c in page]


def every_page(crm: Any, query: str | None = None, *, limit: int, **filters: Any) -> list[Any]:
    """Follow ``next_cursor`` to the end; the customers in the order shown."""
    shown: list[Any] = []
    after = None
    for _ in range(1000):
        page = crm.customers.find(query, after=after, limit=limit, **filters)
        assert len(page) <= limit
        shown += page.items
        if page.next_cursor is None:
            return shown
        assert len(page) == limit, "a page before the last one is full"
        after = page.next_cursor
    raise AssertionError("paging never ended")


@pytest.fixture
def people(crm: Any) -> dict[str, Any]:
    with crm.transaction():
        return {name: crm.customers.add(name=name, email=email, phone=phone) for name, email, phone in PEOPLE}


# -- listing -----------------------------------------------------------------------------------


def test_listing_pages_through_everyone_in_folded_name_order(crm: Any) -> None:
    names_ = [
        "Đặng Thu Hà",
        "Nguyễn Văn An",
        "Anh Tuấn",
        "Bùi Minh",
        "Lê Ánh",
        "le anh",
        "Zoe Lee",
        "Ông Văn Ba",
        "Dương Quá",
        "Lê Ánh",
    ] * 3
    with crm.transaction():  # one commit for the lot: nested writes join it
        added = [crm.customers.add(name=name) for name in names_]
    expected = [c.id for c in sorted(added, key=lambda c: (fold(c.name), c.id))]
    for limit in (1, 4, 7, 30, 100):
        assert [c.id for c in every_page(crm, limit=limit)] == expected
    # Đ sorts with D and Ô with O, not after Z as raw code points would put them
    shown = names(crm.customers.find(limit=100))
    assert shown.index("Bùi Minh") < shown.index("Đặng Thu Hà") < shown.index("Dương Quá") < shown.index("Lê Ánh")
    assert shown.index("Nguyễn Văn An") < shown.index("Ông Văn Ba") < shown.index("Zoe Lee")


def test_listing_filters_by_tag_owner_kind_and_stage(crm: Any) -> None:
    add_user(crm, "lan")
    add_user(crm, "minh")
    an = crm.customers.add(name="Nguyễn Văn An", tags=["vip"], owner="lan", lifecycle_stage="customer")
    crm.customers.add(name="Trần Văn Bình", tags=["hanoi"], owner="minh")
    org = crm.customers.add(name="Công ty Hoàng Long", kind="organization", owner="lan", lifecycle_stage="distributor")
    for i in range(5):
        crm.customers.add(name=f"Khách {i}", tags=["vip"], owner="lan")
    assert len(every_page(crm, tag="vip", limit=2)) == 6
    assert {c.name for c in every_page(crm, owner="lan", limit=3)} == {
        "Nguyễn Văn An",
        "Công ty Hoàng Long",
        *(f"Khách {i}" for i in range(5)),
    }
    assert [c.id for c in crm.customers.find(kind="organization")] == [org.id]
    assert [c.id for c in crm.customers.find(lifecycle_stage="customer")] == [an.id]
    assert [c.id for c in crm.customers.find(tag="vip", owner="lan", lifecycle_stage="customer")] == [an.id]
    assert crm.customers.find(tag="nobody").items == []


def _forged(values: list[Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(values).encode()).decode()


@pytest.mark.parametrize("cursor", ["not-a-cursor", _forged([1, "x"]), _forged(["x"]), _forged({"a": 1}), ""])
def test_invalid_cursor_or_filter_is_a_validation_error(crm: Any, cursor: str) -> None:
    crm.customers.add(name="Nguyễn Văn An")
    if cursor:
        for query in (None, "an"):
            with pytest.raises(crmkit.ValidationError) as exc:
                crm.customers.find(query, after=cursor)
            assert list(exc.value.errors) == ["after"]
    for bad, field in (
        ({"limit": 0}, "limit"),
        ({"limit": 5000}, "limit"),
        ({"kind": "robot"}, "kind"),
        ({"lifecycle_stage": "vip"}, "lifecycle_stage"),
    ):
        with pytest.raises(crmkit.ValidationError) as exc:
            crm.customers.find(**bad)
        assert list(exc.value.errors) == [field]


def test_merged_and_erased_customers_are_not_listed(crm: Any, people: dict[str, Any]) -> None:
    crm.customers.merge(people["Nguyễn Văn An"].id, people["Nguyễn Văn Anh"].id)
    crm.customers.erase(people["John Smith"].id)
    listed = names(every_page(crm, limit=3))
    assert "Nguyễn Văn Anh" not in listed and "John Smith" not in listed
    assert len(listed) == len(PEOPLE) - 2


# -- search ----------------------------------------------------------------------------------------


SEARCHES = [
    ("nguyen van an", {"Nguyễn Văn An", "Nguyễn Văn Anh"}),  # a name is found by its start
    ("Nguyễn Văn An", {"Nguyễn Văn An", "Nguyễn Văn Anh"}),
    ("NGUYEN  VAN   AN", {"Nguyễn Văn An", "Nguyễn Văn Anh"}),
    ("van an", {"Nguyễn Văn An", "Nguyễn Văn Anh", "Trần Văn An"}),  # middle + given name
    ("dang", {"Đặng Thu Hà", "Dang Van Binh", "ha.dang@example.vn"}),  # đ matches d
    ("đặng", {"Đặng Thu Hà", "Dang Van Binh", "ha.dang@example.vn"}),
    ("ha", {"Đặng Thu Hà", "ha.dang@example.vn"}),  # a given name
    ("anh", {"Nguyễn Văn Anh", "Phạm Thị Ngọc Ánh", "anh.nv@example.vn"}),
    ("ngoc anh", {"Phạm Thị Ngọc Ánh"}),
    ("an.nguyen@", {"Nguyễn Văn An"}),  # an e-mail prefix
    ("ngocanh@gm", {"Phạm Thị Ngọc Ánh"}),
    ("John.Smith@Example.com", {"John Smith"}),
    ("345678", {"Nguyễn Văn An"}),  # a phone suffix
    ("0912345678", {"Nguyễn Văn An"}),  # the national form
    ("0912 345 678", {"Nguyễn Văn An"}),
    ("+84 912 345 678", {"Nguyễn Văn An"}),
    ("020 7946 0123", {"John Smith"}),
    ("3825 1234", {"Bùi Minh Đức"}),
    ("smith", {"John Smith"}),
    ("12", set()),  # too few digits to mean a phone
    ("nguyen van binh", set()),
]


def test_search_is_accent_insensitive_over_names_emails_and_phones(crm: Any, people: dict[str, Any]) -> None:
    by_email = {p.email: p.name for p in people.values() if p.email}
    wrong = {}
    for query, found in SEARCHES:
        expected = {by_email.get(x, x) for x in found}
        shown = names(crm.customers.find(query, limit=50))
        if sorted(shown) != sorted(expected):
            wrong[query] = (shown, expected)
    assert not wrong


def test_search_pages_through_every_match_once(crm: Any) -> None:
    # "An An" style names match a query through several of their words: still one hit each.
    with crm.transaction():
        added = [
            crm.customers.add(name=name, email=email)
            for name, email in [
                *((f"Nguyễn Văn An {i:02d}", None) for i in range(12)),
                ("Lê An An", None),
                ("An An", "an.an@example.vn"),
                ("Trần An", "an@example.vn"),
                ("An Khang An", None),
                ("Phạm Anh", None),
                ("Bích", "anh.bich@example.vn"),
                ("Trần Bình", None),
                ("Annie Lee", None),
            ]
        ]
    matching = {c.id for c in added if c.name not in ("Trần Bình",)}
    for limit in (1, 2, 3, 5, 50):
        shown = every_page(crm, "an", limit=limit)
        ids = [c.id for c in shown]
        assert len(ids) == len(set(ids)), f"a customer shown twice with limit={limit}"
        assert set(ids) == matching, f"limit={limit}"


def test_search_combines_with_filters(crm: Any, people: dict[str, Any]) -> None:
    add_user(crm, "lan")
    crm.customers.add_tags(people["Trần Văn An"].id, "vip")
    crm.customers.update(people["Nguyễn Văn An"].id, owner="lan")
    assert names(crm.customers.find("van an", tag="vip")) == ["Trần Văn An"]
    assert names(crm.customers.find("van an", owner="lan")) == ["Nguyễn Văn An"]
    assert crm.customers.find("van an", kind="organization").items == []


def test_changes_are_reindexed(crm: Any, people: dict[str, Any]) -> None:
    ha = people["Đặng Thu Hà"]
    crm.customers.update(ha.id, name="Hoàng Thu Hà", email="thuha@example.vn", phone="0911 000 111")
    assert crm.customers.find("dang thu").items == []
    assert crm.customers.find("ha.dang").items == []
    assert crm.customers.find("978123456").items == []
    for query in ("hoang thu ha", "thuha@", "0911000111", "000111"):
        assert names(crm.customers.find(query)) == ["Hoàng Thu Hà"], query


def test_merged_and_erased_customers_are_not_found(crm: Any, people: dict[str, Any]) -> None:
    an, anh = people["Nguyễn Văn An"], people["Nguyễn Văn Anh"]
    crm.customers.merge(an.id, anh.id)
    assert names(crm.customers.find("nguyen van an")) == ["Nguyễn Văn An"]
    assert names(crm.customers.find("anh.nv@")) == ["Nguyễn Văn An"]  # the merged e-mail now finds the kept one
    assert names(crm.customers.find("0987654321")) == ["Nguyễn Văn An"]
    crm.customers.erase(an.id)
    for query in ("nguyen van an", "an.nguyen", "anh.nv", "345678", "654321"):
        assert crm.customers.find(query).items == [], query


def test_a_scoped_search_finds_exactly_the_customers_in_scope_after_every_kind_of_write(
    crm: Any, tmp_path: Any
) -> None:
    """The search keys carry their customer's owner (a scoped search reads only those keys): every
    write that changes an owner or the keys keeps them equal, so a team-scoped user finds exactly
    what the system finds among the customers they may see."""
    import sqlalchemy as sa

    from crmkit.core import tables as t
    from crmkit.core.transfer import import_customers

    add_user(crm, "lan", teams=["north"], grants={"customers.read": "team", "customers.create": "team"})
    add_user(crm, "minh", teams=["north"])
    add_user(crm, "hoa", teams=["south"])
    lan = crm.as_user("lan")
    queries = ("nguyen", "van an", "an", "an.", "nguyen.", "@example.vn", "345678", "0912", "khach")

    def check() -> None:
        k, c = t.search_keys.c, t.customers.c
        with crm.reading() as conn:
            stale = conn.execute(
                sa.select(k.customer_id, k.owner, c.owner)
                .join(t.customers, c.id == k.customer_id)
                .where(k.owner.is_distinct_from(c.owner))
            ).all()
        assert stale == [], "search keys whose owner is not their customer's"
        for query in queries:
            expected = [x.id for x in every_page(crm, query, limit=50) if x.owner in ("lan", "minh")]
            for limit in (1, 3, 50):
                assert [x.id for x in every_page(lan, query, limit=limit)] == expected, (query, limit)

    an = crm.customers.add(name="Nguyễn Văn An", email="an.nguyen@example.vn", phone="0912 345 678", owner="lan")
    anh = crm.customers.add(name="Nguyễn Văn Anh", email="anh.nv@example.vn", owner="hoa")
    nobody = crm.customers.add(name="Nguyễn An Khang", email="an.khang@example.vn")
    kept = crm.customers.add(name="Trần Văn An", email="tran.an@example.vn")  # no owner yet
    merged = crm.customers.add(name="Trần V. An", email="an.tran@example.vn", owner="minh")
    mine = lan.customers.add(name="Khách Của Lan", email="khach.lan@example.vn")  # a user's new customer is theirs
    assert mine.owner == "lan"
    check()
    assert {x.id for x in lan.customers.find("nguyen", limit=50)} == {an.id}

    crm.customers.update(anh.id, owner="minh")  # the owner alone: the keys stay, their owner follows
    check()
    assert {x.id for x in lan.customers.find("nguyen", limit=50)} == {an.id, anh.id}
    crm.customers.update(an.id, owner="hoa", name="Nguyễn Văn Ân")  # keys rebuilt with the new owner
    check()
    assert {x.id for x in lan.customers.find("nguyen", limit=50)} == {anh.id}

    assert crm.users.reassign("hoa", "lan") == 1
    check()
    assert {x.id for x in lan.customers.find("nguyen", limit=50)} == {an.id, anh.id}

    crm.customers.merge(kept.id, merged.id)  # the kept customer had no owner: it takes the merged one's
    assert crm.customers.get(kept.id).owner == "minh"
    check()
    assert [x.id for x in lan.customers.find("an.tran@")] == [kept.id]
    assert [x.id for x in lan.customers.find("tran.an@")] == [kept.id]
    assert nobody.id not in {x.id for x in lan.customers.find("an", limit=100)}

    header = ["external_id", "name", "email", "owner"]
    rows = [
        ["N1", "Nguyễn Thị Nhập", "nhap.nguyen@example.vn", "minh"],
        ["N2", "Nguyễn Văn Ngoài", "ngoai@example.vn", "hoa"],
        ["N3", "Nguyễn Không Chủ", "khongchu@example.vn", ""],
    ]
    path = tmp_path / "a.csv"
    path.write_text("\n".join(",".join(r) for r in [header, *rows]) + "\n", encoding="utf-8")
    assert import_customers(crm, path).inserted == 3
    check()
    imported = {x.name: x.id for x in crm.customers.find("nguyen", limit=100)}
    assert {x.id for x in lan.customers.find("nguyen", limit=100)} == {an.id, anh.id, imported["Nguyễn Thị Nhập"]}
    # again, owners changed (keys kept) and a name changed (keys rebuilt), and lan's own rows without an owner
    rows = [
        ["N1", "Nguyễn Thị Nhập", "nhap.nguyen@example.vn", "hoa"],
        ["N2", "Nguyễn Văn Ngoại", "ngoai@example.vn", "minh"],
        ["N3", "Nguyễn Không Chủ", "khongchu@example.vn", "lan"],
    ]
    path.write_text("\n".join(",".join(r) for r in [header, *rows]) + "\n", encoding="utf-8")
    assert import_customers(crm, path).updated == 3
    check()
    assert {x.id for x in lan.customers.find("nguyen", limit=100)} == {
        an.id,
        anh.id,
        imported["Nguyễn Văn Ngoài"],
        imported["Nguyễn Không Chủ"],
    }
    path.write_text("external_id,name,email\nL1,Nguyễn Của Lan,cualan@example.vn\n", encoding="utf-8")
    assert import_customers(lan, path).inserted == 1  # no owner given: the importing user's
    check()
    assert "Nguyễn Của Lan" in {x.name for x in lan.customers.find("nguyen", limit=100)}


def test_the_core_migration_gives_the_search_keys_of_an_older_database_their_owners(crm_factory: Any) -> None:
    import sqlalchemy as sa
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from crmkit import migrations
    from crmkit.core import tables as t

    crm = crm_factory()
    add_user(crm, "lan")
    an = crm.customers.add(name="Nguyễn Văn An", email="an@example.vn", owner="lan")
    nobody = crm.customers.add(name="Trần Bình")
    core = migrations.core_lineage()
    migrations.downgrade(crm.engine, core, "crmkit_0004")
    with crm.engine.connect() as conn:
        assert "owner" not in {c["name"] for c in sa.inspect(conn).get_columns("customer_search_keys")}
    migrations.upgrade(crm.engine, [core])
    only = {
        "compare_type": True,
        "include_object": lambda obj, name, type_, reflected, other: (
            obj.name == "customer_search_keys"
            if type_ == "table"
            else getattr(obj, "table", None) is None or obj.table.name == "customer_search_keys"
        ),
    }
    k = t.search_keys.c
    with crm.engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn, opts=only), t.metadata) == []
        owners = dict(conn.execute(sa.select(k.customer_id, k.owner).distinct()).all())
    assert owners == {an.id: "lan", nobody.id: None}
