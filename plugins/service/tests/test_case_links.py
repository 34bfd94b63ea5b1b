"""A case's links (issue 17 item 1): an organization's case with its contact, the order or product it concerns
(checked through sales when it is installed, kept as given without it), attachments as references, and folding a
duplicate case into another — through the service, with bad input refused naming the field and nothing written,
a kill -9 in the middle of a merge and two merges racing."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

import crmkit
from crmkit.testing import kill_when_ready
from crmkit_service.models import attachments, cases, messages

pytestmark = pytest.mark.crmkit_plugins("service")


def _org_with_contact(crm):
    company = crm.customers.add(name="Công ty TNHH Điện lạnh Phương Nam", kind="organization")
    hoa = crm.customers.add(
        name="Võ Thị Hoa", email="hoa@phuongnam.vn", organizations=[{"organization_id": company.id, "role": "Kế toán"}]
    )
    return company, hoa


def test_an_organizations_case_names_its_contact(crm):
    company, hoa = _org_with_contact(crm)
    case = crm.service.open(company.id, "Hoá đơn sai mã số thuế", contact_id=hoa.id, category="billing")
    assert (case.customer_id, case.contact_id) == (company.id, hoa.id)
    assert crm.service.get(case.id).contact_id == hoa.id
    # Erasing the contact keeps the organization's case, without its contact.
    crm.customers.erase(hoa.id)
    assert crm.service.get(case.id).contact_id is None


def test_a_contact_must_belong_to_the_organization(crm):
    company, hoa = _org_with_contact(crm)
    stranger = crm.customers.add(name="Trần Văn Bình")
    with pytest.raises(crmkit.ValidationError) as refused:
        crm.service.open(company.id, "Hỏi giá", contact_id=stranger.id)
    assert refused.value.errors == {
        "contact_id": [f"customer {stranger.id} is not a member of organization {company.id}"]
    }
    with pytest.raises(crmkit.ValidationError) as refused:
        crm.service.open(stranger.id, "Hỏi giá", contact_id=hoa.id)
    assert "is not an organization" in refused.value.errors["contact_id"][0]
    assert crm.service.list() == []


def test_without_sales_an_order_and_a_product_are_kept_as_given(crm):
    an = crm.customers.add(name="Nguyễn Văn An")
    case = crm.service.open(an.id, "Giao thiếu hàng", order_id=1042, product="Máy lọc nước RO 9 lõi")
    assert (case.order_id, case.product) == (1042, "Máy lọc nước RO 9 lõi")
    with pytest.raises(crmkit.ValidationError) as refused:
        crm.service.open(an.id, "Giao thiếu hàng", product="RO\x00")
    assert list(refused.value.errors) == ["product"]


@pytest.mark.crmkit_plugins("service", "sales")
def test_with_sales_the_order_and_product_are_checked_through_its_api(crm):
    an = crm.customers.add(name="Nguyễn Văn An")
    binh = crm.customers.add(name="Trần Văn Bình")
    crm.sales.products.add(sku="RO-9", name="Máy lọc nước RO 9 lõi", price_minor=5_490_000, currency="VND")
    order = crm.sales.place_order(customer_id=an.id, lines=[{"sku": "RO-9", "quantity": 1}])
    case = crm.service.open(an.id, "Máy lọc nước rò rỉ", order_id=order.id, product=str(order.lines[0].product_id))
    assert (case.order_id, case.product) == (order.id, "RO-9")  # an id or an SKU names the product; its SKU is kept
    for values, field, words in (
        ({"order_id": order.id + 100}, "order_id", f"no order {order.id + 100}"),
        ({"product": "KHONG-CO"}, "product", "no product 'KHONG-CO' in the catalogue"),
    ):
        with pytest.raises(crmkit.ValidationError) as refused:
            crm.service.open(an.id, "Hỏi", **values)
        assert refused.value.errors == {field: [words]}
    with pytest.raises(crmkit.ValidationError) as refused:
        crm.service.open(binh.id, "Đơn của người khác", order_id=order.id)
    assert refused.value.errors == {"order_id": [f"order {order.id} is not customer {binh.id}'s"]}
    assert [c.id for c in crm.service.list()] == [case.id]


def test_attachments_are_references_listed_exported_and_erased(crm):
    an = crm.customers.add(name="Nguyễn Văn An")
    case = crm.service.open(an.id, "Màn hình bị sọc")
    photo = crm.service.attachments.add(
        case.id, "ảnh màn hình.jpg", url="https://files.example.vn/a/123.jpg", size=245_760, content_type="image/JPEG"
    )
    bill = crm.service.attachments.add(case.id, "hoá đơn.pdf", storage_key="cases/1/hoa-don.pdf")
    assert [a.name for a in crm.service.attachments.list(case.id)] == ["ảnh màn hình.jpg", "hoá đơn.pdf"]
    assert (photo.content_type, photo.size, bill.url) == ("image/jpeg", 245_760, None)
    exported = crm.customers.export_data(an.id)["service"]["service_case_attachments"]
    assert [row["name"] for row in exported] == ["ảnh màn hình.jpg", "hoá đơn.pdf"]
    crm.service.attachments.remove(bill.id)
    assert [a.id for a in crm.service.attachments.list(case.id)] == [photo.id]
    crm.customers.erase(an.id)
    with crm.reading() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(attachments)).scalar_one() == 0


@pytest.mark.parametrize(
    ("values", "field"),
    [
        ({"name": "", "url": "https://x.vn/a"}, "name"),
        ({"name": "a\x00b", "url": "https://x.vn/a"}, "name"),
        ({"name": "a.jpg"}, "url"),
        ({"name": "a.jpg", "url": "https://x.vn/a", "storage_key": "k"}, "url"),
        ({"name": "a.jpg", "url": "javascript:alert(1)"}, "url"),
        ({"name": "a.jpg", "storage_key": "k", "size": -1}, "size"),
        ({"name": "a.jpg", "storage_key": "k", "content_type": "jpeg"}, "content_type"),
    ],
)
def test_a_bad_attachment_is_refused_naming_the_field(crm, values, field):
    an = crm.customers.add(name="Nguyễn Văn An")
    case = crm.service.open(an.id, "Màn hình bị sọc")
    with pytest.raises(crmkit.ValidationError) as refused:
        crm.service.attachments.add(case.id, **values)
    assert list(refused.value.errors) == [field]
    assert crm.service.attachments.list(case.id) == []


def test_merging_a_duplicate_moves_its_conversation_and_closes_it_with_a_pointer(crm):
    an = crm.customers.add(name="Nguyễn Văn An")
    crm.users.add("lan", "Phạm Thị Lan", roles=["support"])
    crm.users.add("minh", "Đỗ Văn Minh", roles=["support"])
    kept = crm.service.open(an.id, "Máy lạnh không lạnh", watchers=["lan"])
    dup = crm.service.open(an.id, "Máy lạnh không lạnh (gửi lại)", watchers=["lan", "minh"])
    crm.service.reply(kept.id, "Dạ em ghi nhận")
    crm.service.reply(dup.id, "Em gửi lại ảnh", direction="inbound")
    crm.service.attachments.add(dup.id, "ảnh.jpg", storage_key="cases/ảnh.jpg")
    merged_kept = crm.service.merge(kept.id, dup.id)
    assert merged_kept.id == kept.id and merged_kept.status == "open"
    assert [m.body for m in crm.service.conversation(kept.id)] == ["Dạ em ghi nhận", "Em gửi lại ảnh"]
    assert crm.service.conversation(dup.id) == [] and merged_kept.watchers == ("lan", "minh")
    assert [a.name for a in crm.service.attachments.list(kept.id)] == ["ảnh.jpg"]
    closed = crm.service.get(dup.id)
    assert (closed.status, closed.merged_into_id, closed.resolution) == (
        "closed",
        kept.id,
        f"merged into case #{kept.id}",
    )
    assert crm.audit.entries(entity="case", limit=1).items[0].changes == {"merged": dup.id, "messages_moved": 1}
    with pytest.raises(crmkit.Conflict, match="already merged"):
        crm.service.merge(kept.id, dup.id)
    with pytest.raises(crmkit.Conflict, match="is closed"):
        crm.service.merge(dup.id, kept.id)


def test_only_one_customers_cases_merge_and_nothing_is_written_when_refused(crm):
    an = crm.customers.add(name="Nguyễn Văn An")
    binh = crm.customers.add(name="Trần Văn Bình")
    mine, theirs = crm.service.open(an.id, "Hỏng"), crm.service.open(binh.id, "Hỏng")
    crm.service.reply(theirs.id, "Dạ")
    with pytest.raises(crmkit.ValidationError) as refused:
        crm.service.merge(mine.id, theirs.id)
    assert list(refused.value.errors) == ["merged"]
    with pytest.raises(crmkit.ValidationError):
        crm.service.merge(mine.id, mine.id)
    with pytest.raises(crmkit.NotFound):
        crm.service.merge(mine.id, 999_999)
    assert len(crm.service.conversation(theirs.id)) == 1 and crm.service.get(theirs.id).merged_into_id is None


def test_merging_customers_moves_cases_naming_a_merged_away_contact(crm):
    company, hoa = _org_with_contact(crm)
    twin = crm.customers.add(name="Võ Thị Hoa", phone="0912345678")
    crm.customers.update(twin.id, organizations=[{"organization_id": company.id}])
    case = crm.service.open(company.id, "Hoá đơn sai", contact_id=twin.id)
    crm.service.attachments.add(case.id, "hd.pdf", storage_key="hd.pdf")
    crm.customers.merge(hoa.id, twin.id)
    assert crm.service.get(case.id).contact_id == hoa.id


def test_two_merges_of_the_same_pair_in_opposite_directions_leave_one_merge(crm, together):
    an = crm.customers.add(name="Nguyễn Văn An")
    first, second = crm.service.open(an.id, "Hỏng lần 1"), crm.service.open(an.id, "Hỏng lần 2")
    crm.service.reply(first.id, "một")
    crm.service.reply(second.id, "hai")
    results = together(lambda: crm.service.merge(first.id, second.id), lambda: crm.service.merge(second.id, first.id))
    done = [r for r in results if not isinstance(r, Exception)]
    assert len(done) == 1 and all(isinstance(r, crmkit.Conflict) for r in results if r not in done), results
    survivor = done[0]
    assert sorted(m.body for m in crm.service.conversation(survivor.id)) == ["hai", "một"]
    with crm.reading() as conn:
        pointers = conn.execute(sa.select(cases.c.id, cases.c.merged_into_id).order_by(cases.c.id)).all()
    assert sorted(p for _, p in pointers if p is not None) == [survivor.id]


#: Merges two cases in one transaction, then waits to be killed.
MERGER = """
import sys, time
from pathlib import Path
import crmkit
url, kept, merged, ready = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), Path(sys.argv[4])
crm = crmkit.CRM(url, plugins=["service"])
with crm.transaction():
    crm.service.merge(kept, merged)
    crm.service.attachments.add(kept, "never.pdf", storage_key="never.pdf")
    ready.touch()
    time.sleep(120)
"""


def test_a_killed_merge_leaves_both_cases_as_they_were(crm, tmp_path):
    an = crm.customers.add(name="Võ Thị Hoa")
    kept, dup = crm.service.open(an.id, "Rò rỉ"), crm.service.open(an.id, "Rò rỉ nước")
    crm.service.reply(dup.id, "Vẫn rò", direction="inbound")
    before = (crm.service.get(kept.id), crm.service.get(dup.id))
    ready = tmp_path / "ready"
    url = crm.engine.url.render_as_string(hide_password=False)
    kill_when_ready(MERGER, url, str(kept.id), str(dup.id), str(ready), ready=ready)
    assert (crm.service.get(kept.id), crm.service.get(dup.id)) == before
    with crm.reading() as conn:
        assert conn.execute(sa.select(messages.c.case_id)).scalars().all() == [dup.id]
        assert conn.execute(sa.select(sa.func.count()).select_from(attachments)).scalar_one() == 0
    assert crm.service.merge(kept.id, dup.id).id == kept.id  # the locks died with the process
