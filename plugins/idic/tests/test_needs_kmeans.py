"""Needs groups by k-means (``needs_method = "kmeans"``): separation, names, reproducibility, small data, bad
settings, and what happens when scikit-learn is not installed."""

from __future__ import annotations

import json
import sys
from typing import Any

import pytest

from crmkit import ValidationError

PHONES, COSMETICS = "Điện thoại", "Mỹ phẩm"
#: The needs groups of ``_shoppers`` with three clusters, biggest first.
THREE_GROUPS = [
    {"needs": f"kmeans:{COSMETICS}", "customers": 6},
    {"needs": f"kmeans:service+{PHONES}", "customers": 4},
    {"needs": f"kmeans:{PHONES}", "customers": 4},
    {"needs": "general", "customers": 1},
]


def _shoppers(crm: Any, buy: Any) -> dict[str, list[int]]:
    """Phone buyers (half of them asking about the warranty), cosmetics buyers, and one customer with no signal."""
    people: dict[str, list[int]] = {"phones": [], "warranty": [], "cosmetics": [], "silent": []}
    for n in range(8):
        customer = crm.customers.add(name=f"Nguyễn Văn Điện {n}", email=f"dien{n}@example.vn")
        buy(crm, customer.id, 12_000_000 + n * 1_000_000, category=PHONES)
        buy(crm, customer.id, 300_000 + n * 50_000, category="Phụ kiện")
        if n % 2:
            crm.interactions.log(customer.id, "phone", subject="Hỏi về bảo hành máy", direction="inbound")
            people["warranty"].append(customer.id)
        else:
            people["phones"].append(customer.id)
    for n in range(6):
        customer = crm.customers.add(name=f"Trần Thị Hương {n}", email=f"huong{n}@example.vn")
        buy(crm, customer.id, 800_000 + n * 100_000, category=COSMETICS)
        buy(crm, customer.id, 90_000, category="Phụ kiện")
        people["cosmetics"].append(customer.id)
    people["silent"].append(crm.customers.add(name="Lý Văn Lặng", email="lang@example.vn").id)
    return people


def _needs(crm: Any, customer_id: int) -> str:
    return crm.customers.profile(customer_id).sections["idic"]["needs"]


def _groups_of(crm: Any, ids: list[int]) -> set[str]:
    return {_needs(crm, customer_id) for customer_id in ids}


def test_kmeans_separates_phone_buyers_cosmetics_buyers_and_warranty_askers(shop_crm: Any, buy: Any) -> None:
    people = _shoppers(shop_crm, buy)
    shop_crm.idic.configure(needs_method="kmeans", needs_clusters=3)
    result = shop_crm.idic.run(steps=["differentiate"]).result("differentiate")
    assert _groups_of(shop_crm, people["phones"]) == {f"kmeans:{PHONES}"}
    assert _groups_of(shop_crm, people["warranty"]) == {f"kmeans:service+{PHONES}"}
    assert _groups_of(shop_crm, people["cosmetics"]) == {f"kmeans:{COSMETICS}"}
    assert _groups_of(shop_crm, people["silent"]) == {"general"}
    needs = result.report["needs"]
    assert {k: needs[k] for k in ("method", "algorithm", "clusters_requested", "clusters", "customers_clustered")} == {
        "method": "kmeans",
        "algorithm": "KMeans",
        "clusters_requested": 3,
        "clusters": 3,
        "customers_clustered": 14,
    }
    assert needs["groups"] == THREE_GROUPS
    reason = shop_crm.customers.profile(people["warranty"][0]).sections["idic"]["needs_reason"]
    assert reason.startswith("k-means cluster of 4: topic service 0.") and f"category {PHONES} 0." in reason
    assert {r["needs"] for r in result.report["matrix"]} == {g["needs"] for g in needs["groups"]}


def test_the_same_evidence_gives_the_same_groups_and_rules_stay_the_default(shop_crm: Any, buy: Any) -> None:
    people = _shoppers(shop_crm, buy)
    everyone = [customer_id for ids in people.values() for customer_id in ids]
    by_rules = shop_crm.idic.run(steps=["differentiate"]).result("differentiate")
    assert by_rules.report["needs"]["method"] == "rules"
    assert _groups_of(shop_crm, people["warranty"] + people["phones"]) == {PHONES}
    shop_crm.idic.configure(needs_method="kmeans")  # k = 5 by default: more clusters than real patterns
    first = shop_crm.idic.run(steps=["differentiate"]).result("differentiate")
    groups = {customer_id: _needs(shop_crm, customer_id) for customer_id in everyone}
    second = shop_crm.idic.run(steps=["differentiate"]).result("differentiate")
    assert {customer_id: _needs(shop_crm, customer_id) for customer_id in everyone} == groups
    assert second.report["needs"] == first.report["needs"]
    assert first.report["needs"]["clusters"] == 5
    phone_groups = _groups_of(shop_crm, people["phones"] + people["warranty"])
    assert phone_groups.isdisjoint(_groups_of(shop_crm, people["cosmetics"]))
    assert all(PHONES in name for name in phone_groups)


def test_fewer_customers_with_evidence_than_clusters(shop_crm: Any) -> None:
    crm = shop_crm
    crm.idic.configure(needs_method="kmeans", needs_clusters=5)
    quiet = crm.customers.add(name="Hoàng Văn Im")
    nobody = crm.idic.run(steps=["differentiate"]).result("differentiate").report["needs"]
    assert (nobody["customers_clustered"], nobody["clusters"], nobody["algorithm"]) == (0, 0, None)
    assert nobody["groups"] == [{"needs": "general", "customers": 1}]
    family = crm.customers.add(name="Lê Thị Gia", tags=["needs:gia-dinh"])
    shipping = crm.customers.add(name="Phan Văn Giao")
    crm.interactions.log(shipping.id, "chat", summary="Hỏi phí GIAO HÀNG về Đà Nẵng")
    needs = crm.idic.run(steps=["differentiate"]).result("differentiate").report["needs"]
    assert (needs["customers_clustered"], needs["clusters"], needs["clusters_requested"]) == (2, 2, 5)
    assert (_needs(crm, family.id), _needs(crm, shipping.id), _needs(crm, quiet.id)) == (
        "kmeans:gia-dinh",
        "kmeans:delivery",
        "general",
    )


def test_a_cluster_without_a_dominant_need_is_named_mixed(shop_crm: Any, buy: Any) -> None:
    crm = shop_crm
    shoppers = []
    for n in range(12):  # twelve customers, each buying in a category nobody else buys
        customer = crm.customers.add(name=f"Khách lẻ {n}")
        buy(crm, customer.id, 1_000_000, category=f"Ngành hàng {n:02d}")
        shoppers.append(customer.id)
    crm.idic.configure(needs_method="kmeans", needs_clusters=2)
    needs = crm.idic.run(steps=["differentiate"]).result("differentiate").report["needs"]
    # Two clusters for twelve unrelated customers: one holds at least six, none of whose categories dominates.
    assert "kmeans:mixed" in {group["needs"] for group in needs["groups"]}
    assert sum(group["customers"] for group in needs["groups"]) == 12


def test_large_data_is_clustered_with_mini_batches_to_the_same_groups(
    shop_crm: Any, buy: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from crmkit_idic import needs_kmeans

    people = _shoppers(shop_crm, buy)
    monkeypatch.setattr(needs_kmeans, "MINI_BATCH_FROM", 10)  # these 14 customers count as "large"
    shop_crm.idic.configure(needs_method="kmeans", needs_clusters=3)
    needs = shop_crm.idic.run(steps=["differentiate"]).result("differentiate").report["needs"]
    assert (needs["algorithm"], needs["groups"]) == ("MiniBatchKMeans", THREE_GROUPS)
    assert _groups_of(shop_crm, people["warranty"]) == {f"kmeans:service+{PHONES}"}


def test_bad_needs_settings_are_refused_naming_the_setting(shop_crm: Any) -> None:
    crm = shop_crm
    for name, value in (
        ("needs_method", "dbscan"),
        ("needs_clusters", 1),
        ("needs_clusters", "5"),
        ("needs_clusters", True),
        ("needs_clusters", 51),
    ):
        with pytest.raises(ValidationError) as info:
            crm.idic.configure(**{name: value})
        assert name in info.value.errors
    crm.customers.add(name="Đinh Văn Sai")
    crm.set_setting("idic.needs_method", "k-means")  # stored by hand, around configure()
    with pytest.raises(ValidationError, match="unknown needs method 'k-means'"):
        crm.idic.run(steps=["differentiate"])
    assert crm.idic.last_run().status == "failed"


def test_without_scikit_learn_kmeans_is_refused_with_what_to_install(
    shop_crm: Any, buy: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    people = _shoppers(shop_crm, buy)
    # `import sklearn…` now fails as if it were not installed, whether or not this process imported it already
    for name in ["sklearn", *(name for name in sys.modules if name.startswith("sklearn."))]:
        monkeypatch.setitem(sys.modules, name, None)
    monkeypatch.delitem(sys.modules, "crmkit_idic.needs_kmeans", raising=False)
    shop_crm.idic.configure(needs_method="kmeans")
    with pytest.raises(ValidationError, match=r"pip install 'crmkit-idic\[kmeans\]'") as info:
        shop_crm.idic.run(steps=["differentiate"])
    assert "needs_method" in info.value.errors
    failed = shop_crm.idic.last_run()
    assert failed.status == "failed" and "scikit-learn" in failed.error
    assert shop_crm.customers.profile(people["cosmetics"][0]).sections["idic"] == {"identifiers": [], "plan": []}
    monkeypatch.undo()  # scikit-learn installed: the failed run resumes
    resumed = shop_crm.idic.resume(failed.id)
    assert resumed.status == "done" and resumed.result("differentiate").report["needs"]["method"] == "kmeans"


def test_kmeans_groups_through_the_cli_and_treatment_rules(shop_crm: Any, buy: Any, invoke: Any) -> None:
    people = _shoppers(shop_crm, buy)
    shop_crm.idic.configure(needs_method="kmeans", needs_clusters=3)
    ran = invoke(shop_crm, "--format", "json", "idic", "run", "--step", "differentiate")
    assert ran.exit_code == 0, ran.output
    added = invoke(
        shop_crm,
        "idic",
        "treatments",
        "add",
        "Gói bảo hành",
        "--needs",
        f"kmeans:service+{PHONES}",
        "--offer",
        "Gia hạn bảo hành 12 tháng",
    )
    assert added.exit_code == 0, added.output
    assert invoke(shop_crm, "idic", "run", "--step", "customize").exit_code == 0
    shown = json.loads(invoke(shop_crm, "--format", "json", "customers", "profile", str(people["warranty"][0])).output)
    idic = shown["sections"]["idic"]
    assert (idic["needs"], idic["next_action"]) == (f"kmeans:service+{PHONES}", "Gia hạn bảo hành 12 tháng")
    other = json.loads(invoke(shop_crm, "--format", "json", "customers", "profile", str(people["phones"][0])).output)
    assert other["sections"]["idic"]["next_action"] != "Gia hạn bảo hành 12 tháng"
