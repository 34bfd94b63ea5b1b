"""Analytics over HTTP, read only: each measure's latest run, its rows and one customer's, runs and KPIs."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from openapi_spec_validator import validate
from werkzeug.test import Client

from crmkit.testing import add_user
from crmkit.web import create_app
from crmkit_analytics.testing import AS_OF


@pytest.fixture
def api(analytics_crm: Any, shop: Any) -> tuple[Any, Client, dict[str, int], dict[str, dict[str, str]]]:
    """Lan (sales, Hà Nội) owns An and Bình, Minh (sales, Sài Gòn) owns Châu; Mai is in marketing, Vy in support.
    RFM, types and CLV were computed. Returns (crm, client, customers, headers per user)."""
    crm = analytics_crm
    add_user(crm, "lan", teams=["Hà Nội"], roles=["sales"])
    add_user(crm, "minh", teams=["Sài Gòn"], roles=["sales"])
    add_user(crm, "mai", roles=["marketing"])
    add_user(crm, "vy", roles=["support"])
    ids = {
        "an": crm.customers.add(name="Nguyễn Văn An", owner="lan").id,
        "binh": crm.customers.add(name="Trần Thị Bình", owner="lan").id,
        "chau": crm.customers.add(name="Lê Minh Châu", owner="minh").id,
    }
    for month in (2, 3, 4, 5, 6):
        shop.buy(ids["an"], datetime(AS_OF.year, month, 10, tzinfo=UTC), 100_000)
    shop.buy(ids["binh"], datetime(AS_OF.year, 5, 10, tzinfo=UTC), 400_000)
    for month in (1, 4):
        shop.buy(ids["chau"], datetime(AS_OF.year, month, 10, tzinfo=UTC), 500_000)
    crm.analytics.rfm(as_of=AS_OF)
    crm.analytics.customer_types(as_of=AS_OF)
    crm.analytics.clv(as_of=AS_OF)
    headers = {
        name: {"Authorization": f"Bearer {crm.users.create_token(name, 'test').secret}"}
        for name in ("lan", "mai", "vy")
    }
    return crm, Client(create_app(crm)), ids, headers


def test_the_latest_runs_and_their_summaries(api: Any) -> None:
    crm, client, ids, headers = api
    rfm = client.get("/analytics/rfm", headers=headers["mai"])
    assert rfm.status_code == 200
    assert rfm.json["measure"] == "rfm" and rfm.json["scope"] is None
    assert rfm.json["summary"]["customers"] == 3 and set(rfm.json["summary"]["segments"]) >= {"champions"}
    mine = client.get("/analytics/rfm", headers=headers["lan"]).json
    assert (mine["summary"]["customers"], mine["scope"]) == (2, "lan's own customers")
    types = client.get("/analytics/types", headers=headers["mai"]).json
    assert types["summary"]["customers"] == crm.analytics.latest("types").summary["customers"]
    clv = client.get("/analytics/clv", headers=headers["mai"])
    assert clv.status_code == 200 and clv.json["currency"] == "VND"
    never = client.get("/analytics/pcv", headers=headers["mai"])
    assert never.status_code == 404 and "crmkit analytics pcv" in never.json["detail"]
    runs = client.get("/analytics/runs?limit=2", headers=headers["mai"])
    assert [run["measure"] for run in runs.json] == ["clv", "types"]


def test_customers_rows_and_one_customers(api: Any) -> None:
    crm, client, ids, headers = api
    rows = client.get("/analytics/rfm/customers?order=monetary_minor", headers=headers["mai"])
    assert rows.status_code == 200
    assert [row["customer_id"] for row in rows.json] == [ids["chau"], ids["an"], ids["binh"]]
    assert rows.json == crm.analytics.customers("rfm", order="monetary_minor")
    one = client.get(f"/analytics/rfm/customers/{ids['an']}", headers=headers["lan"])
    assert one.status_code == 200
    assert (one.json["name"], one.json["frequency"], one.json["monetary_minor"]) == ("Nguyễn Văn An", 5, 500_000)
    kind = client.get(f"/analytics/types/customers/{ids['an']}", headers=headers["lan"]).json["customer_type"]
    assert [
        r["customer_id"] for r in client.get(f"/analytics/types/customers?segment={kind}", headers=headers["lan"]).json
    ] == [ids["an"]]
    clv = client.get(f"/analytics/clv/customers/{ids['binh']}", headers=headers["lan"]).json
    assert isinstance(clv["clv_minor"], int) and 0 <= clv["p_alive"] <= 1


def test_kpis(api: Any) -> None:
    _, client, _, headers = api
    url = f"/analytics/kpis?as_of={AS_OF.date().isoformat()}"
    kpis = client.get(url + "&months=6", headers=headers["mai"])
    assert kpis.status_code == 200
    overview = kpis.json["overview"]
    assert (overview["currency"], overview["buyers"], overview["orders"], overview["revenue_minor"]) == (
        "VND",
        3,
        8,
        1_900_000,
    )
    assert len(kpis.json["months"]) == 6
    assert client.get(url, headers=headers["lan"]).json["overview"]["buyers"] == 2


def test_bad_input_names_the_field(api: Any) -> None:
    _, client, _, headers = api
    wrong = client.get("/analytics/rfm/customers?segment=vip", headers=headers["mai"])
    assert wrong.status_code == 422 and "segment" in wrong.json["errors"]
    unsorted = client.get("/analytics/clv/customers?order=name", headers=headers["mai"])
    assert unsorted.status_code == 422 and "order" in unsorted.json["errors"]
    months = client.get("/analytics/kpis?months=0", headers=headers["mai"])
    assert months.status_code == 422 and "months" in months.json["errors"]


def test_out_of_scope_is_404_and_a_missing_permission_403(api: Any) -> None:
    _, client, ids, headers = api
    for measure in ("rfm", "types", "clv"):
        assert client.get(f"/analytics/{measure}/customers/{ids['chau']}", headers=headers["lan"]).status_code == 404
    assert [r["customer_id"] for r in client.get("/analytics/rfm/customers", headers=headers["lan"]).json] == [
        ids["an"],
        ids["binh"],
    ]
    refused = client.get("/analytics/rfm", headers=headers["vy"])
    assert refused.status_code == 403 and refused.json["permission"] == "analytics.read"


def test_openapi_lists_analytics_operations(api: Any) -> None:
    _, client, _, _ = api
    document = client.get("/openapi.json").json
    validate(document)
    tagged = {
        f"{method.upper()} {path}"
        for path, item in document["paths"].items()
        for method, op in item.items()
        if op.get("tags") == ["analytics"]
    }
    assert {
        "GET /analytics/rfm",
        "GET /analytics/rfm/customers",
        "GET /analytics/rfm/customers/{customer_id}",
        "GET /analytics/types",
        "GET /analytics/clv",
        "GET /analytics/clv/customers/{customer_id}",
        "GET /analytics/kpis",
        "GET /analytics/runs",
    } <= tagged
    assert all(entry.startswith("GET /analytics/") for entry in tagged)  # read only
