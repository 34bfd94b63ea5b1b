"""A case's contact, attachments and merge through the command line and the HTTP API, as an operator and an
integration use them: the same rules as the service, refusals naming the field."""

from __future__ import annotations

import json

import pytest

from crmkit.testing import api_client

pytestmark = pytest.mark.crmkit_plugins("service")


def _ok(result):
    assert result.exit_code == 0, f"exit {result.exit_code}: {result.stderr}"
    return result.stdout


def test_cli_opens_for_a_contact_attaches_shows_and_merges(crm, run):
    company = crm.customers.add(name="Công ty CP Thực phẩm Sài Gòn", kind="organization")
    lan = crm.customers.add(name="Phạm Thị Lan", organizations=[{"organization_id": company.id}])
    opened = json.loads(
        _ok(
            run(
                "--format",
                "json",
                "service",
                "cases",
                "open",
                str(company.id),
                "Tủ đông không đông",
                "--contact",
                str(lan.id),
                "--order",
                "1042",
                "--product",
                "TD-500",
            )
        )
    )
    assert (opened["contact_id"], opened["order_id"], opened["product"]) == (lan.id, 1042, "TD-500")
    case_id = str(opened["id"])
    _ok(run("service", "cases", "attach", case_id, "biên bản.pdf", "--url", "https://files.example.vn/bb.pdf"))
    listed = _ok(run("service", "cases", "attachments", case_id))
    assert "biên bản.pdf" in listed and "https://files.example.vn/bb.pdf" in listed
    shown = json.loads(_ok(run("--format", "json", "service", "cases", "show", case_id)))
    assert [a["name"] for a in shown["attachments"]] == ["biên bản.pdf"]
    assert "Attachments" in _ok(run("service", "cases", "show", case_id))
    refused = run("service", "cases", "attach", case_id, "x.pdf", "--url", "ftp://files.example.vn/x.pdf")
    assert refused.exit_code == 1 and refused.stderr.startswith("error: url: must be an http:// or https://")
    dup = crm.service.open(company.id, "Tủ đông không đông (gọi lại)")
    crm.service.reply(dup.id, "Em gọi lại ạ")
    merged = json.loads(_ok(run("--format", "json", "service", "cases", "merge", case_id, str(dup.id))))
    assert merged["id"] == opened["id"] and crm.service.get(dup.id).merged_into_id == opened["id"]
    again = run("service", "cases", "merge", case_id, str(dup.id))
    assert again.exit_code == 1 and f"case {dup.id} was already merged" in again.stderr


def test_api_opens_for_a_contact_attaches_and_merges(crm):
    hoa = api_client(crm, "hoa", roles=["support"])
    company = crm.customers.add(name="Công ty TNHH Điện lạnh Phương Nam", kind="organization")
    binh = crm.customers.add(name="Trần Văn Bình", organizations=[{"organization_id": company.id}])
    stranger = crm.customers.add(name="Lê Văn Cường")
    opened = hoa.post(
        "/service/cases", json={"customer_id": company.id, "subject": "Máy nén hỏng", "contact_id": binh.id}
    )
    assert opened.status_code == 201 and opened.json["contact_id"] == binh.id
    bad = hoa.post("/service/cases", json={"customer_id": company.id, "subject": "x", "contact_id": stranger.id})
    assert bad.status_code == 422 and list(bad.json["errors"]) == ["contact_id"]
    case = f"/service/cases/{opened.json['id']}"
    added = hoa.post(case + "/attachments", json={"name": "ảnh.jpg", "storage_key": "k/1.jpg", "size": 1024})
    assert added.status_code == 201 and added.json["created_by"] == "hoa"
    refused = hoa.post(case + "/attachments", json={"name": "ảnh.jpg"})
    assert refused.status_code == 422 and list(refused.json["errors"]) == ["url"]
    assert [a["name"] for a in hoa.get(case + "/attachments").json] == ["ảnh.jpg"]
    assert hoa.delete(f"/service/attachments/{added.json['id']}").status_code == 204
    assert hoa.get(case + "/attachments").json == []
    dup = crm.service.open(company.id, "Máy nén hỏng (2)")
    merged = hoa.post(case + "/merge", json={"merged_id": dup.id})
    assert merged.status_code == 200 and merged.json["id"] == opened.json["id"]
    assert hoa.get(f"/service/cases/{dup.id}").json["merged_into_id"] == opened.json["id"]
    assert hoa.post(case + "/merge", json={"merged_id": dup.id}).status_code == 409
