"""Unmerge gives service back what came from the merged customer: its cases with their conversation, and the cases
naming it as the contact; a case opened for the kept customer since the merge stays with it."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.crmkit_plugins("service")


def case_ids(crm, customer_id):
    return sorted(c.id for c in crm.service.list(customer_id=customer_id))


def test_unmerge_gives_back_cases_their_messages_and_contacts(crm):
    company = crm.customers.add(name="Công ty Hoàng Long", kind="organization")
    hoa = crm.customers.add(name="Võ Thị Hoa", email="hoa@hoanglong.vn")
    twin = crm.customers.add(
        name="Vo Thi Hoa", phone="0912345678", organizations=[{"organization_id": company.id, "role": "kế toán"}]
    )
    mine = crm.service.open(hoa.id, "Máy pha cà phê hỏng")
    theirs = crm.service.open(twin.id, "Giao thiếu hàng")
    crm.service.reply(theirs.id, "Em gửi bù ngay ạ")
    billing = crm.service.open(company.id, "Hoá đơn sai", contact_id=twin.id)
    merge = crm.customers.merge_many([(hoa.id, twin.id)])[0]
    assert case_ids(crm, hoa.id) == sorted([mine.id, theirs.id])
    assert crm.service.get(billing.id).contact_id == hoa.id
    since = crm.service.open(hoa.id, "Hỏi bảo hành")

    done = crm.customers.unmerge(merge.id)

    assert done.rows_moved_back["service_cases"] == 2  # its own case, and the one naming it as the contact
    assert case_ids(crm, twin.id) == [theirs.id]
    assert case_ids(crm, hoa.id) == sorted([mine.id, since.id])
    assert crm.service.get(billing.id).contact_id == twin.id
    assert [m.body for m in crm.service.conversation(theirs.id)] == ["Em gửi bù ngay ạ"]
    assert [p.id for p in crm.customers.members(company.id)] == [twin.id]
