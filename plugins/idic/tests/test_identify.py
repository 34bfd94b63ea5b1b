"""Identify: match rules, automatic merges, the review queue, conflicts, prospects, unmerge."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa

from crmkit import Conflict, Plugin, ValidationError, hookimpl
from crmkit.core import tables as core

pytestmark = pytest.mark.crmkit_plugins("idic")


def identify(crm: Any) -> dict[str, Any]:
    return crm.idic.run(steps=["identify"]).result("identify").counts


def test_same_email_and_similar_name_merge_automatically_keeping_every_interaction(crm: Any) -> None:
    an = crm.customers.add(name="Nguyễn Văn An", email="an.nguyen@example.vn", phone="0903 123 456")
    again = crm.customers.add(name="Nguyen Van An", email="AN.NGUYEN@example.vn", city="Hà Nội")
    crm.interactions.log(again.id, "email", subject="Đổi địa chỉ giao hàng")
    counts = identify(crm)
    assert counts["merged"] == 1 and counts["queued"] == 0
    kept = crm.customers.get(again.id)
    assert kept.id == an.id and kept.city == "Hà Nội"
    assert len(crm.interactions.timeline(an.id).items) == 1
    merge = crm.idic.merges()[0]
    assert (merge["kept_id"], merge["merged_id"], merge["automatic"]) == (an.id, again.id, True)
    assert "same email an.nguyen@example.vn, similar name" in merge["reason"]


def test_phone_with_a_different_name_is_queued_not_merged(crm: Any) -> None:
    mother = crm.customers.add(name="Trần Thị Bình", phone="0912345678")
    son = crm.customers.add(name="Lê Minh Châu", phone="+84 912 345 678")
    counts = identify(crm)
    assert counts["merged"] == 0 and counts["queued"] == 1
    item = crm.idic.reviews()[0]
    assert (item["customer_id"], item["other_id"], item["score"]) == (mother.id, son.id, 0.8)
    assert crm.customers.get(son.id).status == "active"


def test_a_phone_shared_by_a_whole_family_produces_no_match(crm: Any) -> None:
    for name in ("Phạm Quốc Dũng", "Phạm Quốc Dung", "Phạm Thu Hà", "Phạm Văn Hải"):
        crm.customers.add(name=name, phone="028 3822 1234")
    counts = identify(crm)
    assert counts["shared_identifiers"] == 1
    assert counts["merged"] == 0 and counts["queued"] == 0


def test_conflicting_birth_dates_are_never_merged_even_with_the_same_email(crm: Any) -> None:
    one = crm.customers.add(name="Hoàng Thu Hà", email="ha.hoang@example.vn", birth_date="1990-01-02")
    two = crm.customers.add(name="Hoàng Thu Hà", email="ha.hoang@example.vn", birth_date="1985-07-30")
    counts = identify(crm)
    assert counts["merged"] == 0 and counts["conflicts"] == 1
    item = crm.idic.reviews()[0]
    assert "birth dates differ" in item["reason"] and item["score"] <= 0.6
    assert {crm.customers.get(one.id).status, crm.customers.get(two.id).status} == {"active"}


def test_a_rejected_pair_is_kept_apart_and_an_accepted_pair_merged(crm: Any) -> None:
    a = crm.customers.add(name="Vũ Đức Hải", phone="0987000111")
    b = crm.customers.add(name="Vũ Thị Mai", phone="0987000111")
    c = crm.customers.add(name="Đỗ Văn Nam", email="nam@example.vn")
    d = crm.customers.add(name="Do Nam", email="nam@example.vn")
    identify(crm)
    items = {frozenset((i["customer_id"], i["other_id"])): i["id"] for i in crm.idic.reviews()}
    crm.idic.reject(items[frozenset((a.id, b.id))])
    result = crm.idic.accept(items[frozenset((c.id, d.id))])
    assert result["kept"] == c.id and crm.customers.get(d.id).id == c.id
    with pytest.raises(Conflict, match="already rejected"):
        crm.idic.reject(items[frozenset((a.id, b.id))])
    counts = identify(crm)  # the rejected pair is not queued again
    assert counts["queued"] == 0 and crm.idic.reviews() == []


def test_a_cluster_joining_a_rejected_pair_is_not_merged(crm: Any) -> None:
    a = crm.customers.add(name="Ngô Bảo Châu", email="chau@example.vn")
    b = crm.customers.add(name="Ngo Bao Chau", email="chau@example.vn", phone="0909555666")
    c = crm.customers.add(name="Ngô Bảo Châu", phone="0909555666")
    with crm.transaction() as session:
        from crmkit_idic.service import keep_apart

        keep_apart(crm, session.connection(), a.id, c.id, "two different people")
    counts = identify(crm)
    assert counts["merged"] == 0 and counts["queued"] == 2
    assert all(crm.customers.get(x.id).status == "active" for x in (a, b, c))


def test_unmerge_restores_the_customer_and_moves_its_rows_back(crm: Any) -> None:
    an = crm.customers.add(name="Nguyễn Văn An", email="an@example.vn", tags=["vip"])
    again = crm.customers.add(
        name="Nguyen Van An", email="an@example.vn", phone="0903111222", tags=["zalo"], birth_date="1992-02-03"
    )
    logged = crm.interactions.log(again.id, "phone", subject="Hỏi giá")
    identify(crm)
    merge = crm.idic.merges()[0]
    assert crm.customers.get(an.id).phones == ("+84903111222",)
    result = crm.idic.unmerge(merge["id"])
    assert result["restored"] == again.id
    restored, kept = crm.customers.get(again.id), crm.customers.get(an.id)
    assert restored.status == "active" and restored.phones == ("+84903111222",) and restored.tags == ("zalo",)
    assert kept.phones == () and kept.tags == ("vip",) and kept.birth_date is None
    assert crm.interactions.get(logged.id).customer_id == again.id
    assert crm.customers.find("0903111222").items[0].id == again.id
    assert crm.idic.merges()[0]["status"] == "undone"
    with pytest.raises(Conflict, match="already undone"):
        crm.idic.unmerge(merge["id"])
    assert identify(crm)["merged"] == 0  # kept apart from now on


def test_three_records_of_one_person_merge_in_one_run_and_the_later_merge_undoes_only_its_own_rows(crm: Any) -> None:
    an = crm.customers.add(name="Nguyễn Văn An", email="an@example.vn", tags=["vip"])
    two = crm.customers.add(
        name="Nguyen Van An", email="an@example.vn", phone="0903111222", tags=["zalo"], city="Hà Nội"
    )
    three = crm.customers.add(
        name="Nguyễn Văn An",
        email="an@example.vn",
        phones=["0903111222", "0903999888"],
        tags=["zalo", "hcm"],
        city="Hồ Chí Minh",
        gender="male",
    )
    assert identify(crm)["merged"] == 2
    kept = crm.customers.get(three.id)
    assert kept.id == an.id and kept.phones == ("+84903111222", "+84903999888") and kept.tags == ("hcm", "vip", "zalo")
    assert (kept.city, kept.gender) == ("Hà Nội", "male")  # the first record holding a value fills the gap
    log = {entry["merged_id"]: entry for entry in crm.idic.merges()}
    assert (log[two.id]["kept_id"], log[three.id]["kept_id"]) == (an.id, an.id)
    crm.idic.unmerge(log[three.id]["id"])  # what the second merge brought goes back, not what the first did
    restored, kept = crm.customers.get(three.id), crm.customers.get(an.id)
    # the restored record is as it was, the phone and tag it shared with the second record included
    assert (restored.status, restored.phones, restored.tags) == (
        "active",
        ("+84903111222", "+84903999888"),
        ("hcm", "zalo"),
    )
    assert kept.phones == ("+84903111222",) and kept.tags == ("vip", "zalo")
    assert (kept.city, kept.gender) == ("Hà Nội", None)
    assert crm.customers.get(two.id).id == an.id
    assert [c.id for c in crm.customers.find("0903999888").items] == [three.id]


def test_unknown_senders_become_prospects_and_known_ones_are_routed(crm: Any) -> None:
    inbox = crm.customers.add(name="Hộp thư chung", tags=["idic:inbox"])
    known = crm.customers.add(name="Lê Thị Hoa", email="hoa@example.vn")
    crm.interactions.log(inbox.id, "email", sender="Hoa@Example.vn", subject="Đơn hàng")
    crm.interactions.log(inbox.id, "sms", sender="0908 777 888", subject="Tư vấn")
    crm.interactions.log(inbox.id, "sms", sender="0908777888", subject="Nhắc lại")
    counts = identify(crm)
    assert counts["interactions_routed"] == 3 and counts["prospects_created"] == 1
    assert len(crm.interactions.timeline(known.id).items) == 1
    prospect = crm.customers.find("0908777888").items[0]
    assert prospect.lifecycle_stage == "prospect" and prospect.phones == ("+84908777888",)
    assert len(crm.interactions.timeline(prospect.id).items) == 2
    assert crm.interactions.timeline(inbox.id).items == []


class _Cards:
    @hookimpl(optionalhook=True)
    def crmkit_idic_identifiers(self, crm: Any) -> Any:
        c = core.customers.c
        card = c.attributes["card"].as_string()
        return sa.select(
            c.id.label("customer_id"), sa.literal("loyalty_card").label("kind"), card.label("value")
        ).where(card.is_not(None))


CARDS = Plugin(name="idictestcards", hooks=(_Cards(),), description="loyalty cards in attributes")


def test_plugins_contribute_identifiers_such_as_loyalty_cards(crm_factory: Any) -> None:
    crm = crm_factory(plugins=["idic", CARDS])
    one = crm.customers.add(name="Phan Văn Khoa", attributes={"card": "LC-0042"})
    two = crm.customers.add(name="Phan Van Khoa", attributes={"card": "lc-0042 "})
    counts = identify(crm)
    assert counts["identifiers"] == 2 and counts["merged"] == 1
    assert crm.customers.get(two.id).id == one.id
    assert "same loyalty_card lc-0042" in crm.idic.merges()[0]["reason"]


def test_social_handles_from_attributes_match(crm: Any) -> None:
    one = crm.customers.add(name="Đặng Thu Trang", attributes={"zalo": "@TrangDang"})
    two = crm.customers.add(name="Dang Thu Trang", attributes={"zalo": "trangdang"})
    assert identify(crm)["merged"] == 1
    assert crm.customers.get(two.id).id == one.id


def test_a_reject_reason_with_a_control_character_is_refused_and_the_pair_stays_pending(crm: Any) -> None:
    a = crm.customers.add(name="Vũ Đức Hải", phone="0987000111")
    b = crm.customers.add(name="Vũ Thị Mai", phone="0987000111")
    identify(crm)
    [item] = crm.idic.reviews()
    with pytest.raises(ValidationError, match="^reason: contains a control character \\(U\\+0000"):
        crm.idic.reject(item["id"], reason="khác người\x00")
    assert [(i["customer_id"], i["other_id"], i["status"]) for i in crm.idic.reviews()] == [(a.id, b.id, "pending")]
