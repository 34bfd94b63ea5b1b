"""Right to erasure, read from the raw bytes: after ``erase`` no file the product wrote holds the person.

A customer with data in every bundled plugin (name, e-mail, phone, postal address, free text naming
them, a suppression made for their address alone, a message in the campaigns file outbox, an API answer
kept for retries) is erased;
then the SQLite file and its WAL — or, on PostgreSQL after ``vacuum``, every file of the database
under the data directory — and every file under the outbox are searched for the name, e-mail, phone
and address in every form crmkit stores them (as typed, normalised, folded, JSON-escaped, NFD).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import unicodedata
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from crmkit import privacy
from crmkit.core import tables as t
from crmkit.core.secrets import SecretUnavailable
from crmkit.core.text import fold
from crmkit.testing import api_client
from crmkit_campaigns import models as cm

PLUGINS = ["sales", "loyalty", "service", "campaigns", "analytics", "idic"]
NAME = "Phạm Bảo Nhung"
EMAIL = "Nhung.Pham@Example.vn"
PHONE = "0398 613 804"
STREET = "27 Hàng Bông"
WARD = "Phường Hàng Gai"
#: Every form in which a value of hers could be stored: as typed, normalised, folded.
VALUES = [
    NAME,
    fold(NAME),
    "Nhung",
    EMAIL,
    EMAIL.lower(),
    PHONE,
    "0398613804",
    "+84398613804",
    "398613804",
    STREET,
    fold(STREET),
    WARD,
]


def _needles() -> set[bytes]:
    """The byte strings that must not appear: UTF-8 (NFC and NFD) and JSON's ASCII escapes of each value."""
    found = set()
    for value in VALUES:
        for form in (value, unicodedata.normalize("NFD", value)):
            found.add(form.encode())
            found.add(json.dumps(form)[1:-1].encode())
    return found


def _leaks(blobs: dict[str, bytes]) -> list[tuple[str, bytes]]:
    """(file, needle) for every value of hers found in the files."""
    return sorted((name, needle) for name, data in blobs.items() for needle in _needles() if needle in data)


def _database_files(crm: Any) -> dict[str, bytes]:
    """The raw bytes of every file holding the database: SQLite's file and WAL; on PostgreSQL every file of
    this database under the data directory (read through ``pg_read_binary_file`` after a CHECKPOINT)."""
    if crm.engine.dialect.name == "sqlite":
        path = Path(crm.engine.url.database)
        return {p.name: p.read_bytes() for p in (path, Path(f"{path}-wal")) if p.exists()}
    with crm.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql("CHECKPOINT")  # dirty pages reach the files
        folder = conn.exec_driver_sql(
            "SELECT 'base/' || oid FROM pg_database WHERE datname = current_database()"
        ).scalar()
        names = conn.exec_driver_sql(
            f"SELECT f, COALESCE(pg_filenode_relation(0, NULLIF(regexp_replace(f, '[^0-9].*', ''), '')::oid)::text, '') "
            f"FROM pg_ls_dir('{folder}') AS f"
        ).all()
        read = sa.text("SELECT pg_read_binary_file(:path, 0, COALESCE((pg_stat_file(:path, true)).size, 0), true)")
        return {
            f"{name} ({relation})": conn.execute(read, {"path": f"{folder}/{name}"}).scalar() or b""
            for name, relation in names
        }


def _outbox_files(outbox: Path) -> dict[str, bytes]:
    return {str(p.relative_to(outbox)): p.read_bytes() for p in outbox.rglob("*") if p.is_file()}


def _populate(crm: Any, outbox: Path) -> int:
    """Nhung, with data in the core and every plugin; and Bình, who is not erased, messaged alongside her."""
    cid = crm.customers.add(
        name=NAME,
        email=EMAIL,
        phone=PHONE,
        addresses=[{"line1": STREET, "ward": WARD, "district": "Quận Hoàn Kiếm", "province": "Hà Nội"}],
    ).id
    binh = crm.customers.add(name="Trần Văn Bình", email="binh@example.org").id
    crm.interactions.log(
        cid,
        "phone",
        subject=f"Gọi {NAME}",
        summary=f"{NAME} hỏi giá",
        sender=PHONE,
        outcome=f"callback to {NAME} 0398613804",
        employee="system",
        rating=4,
    )
    answered = api_client(crm, "api-admin", roles=["administrator"]).post(  # its answer is kept for retries
        "/interactions",
        json={"customer_id": cid, "channel": "email", "summary": f"{NAME} hỏi đơn", "sender": EMAIL},
        headers={"Idempotency-Key": "nhung-mail-1"},
    )
    assert answered.status_code == 201
    crm.sales.products.add(
        sku="CF-500", name="Cà phê 500g", unit="gói", price_minor=95_000, currency="VND", tax_rate="10%"
    )
    order = crm.sales.orders.place(
        customer_id=cid,
        lines=[{"sku": "CF-500", "quantity": 2}],
        shipping_name=NAME,
        shipping_phone=PHONE,
        shipping_address=f"{STREET}, {WARD}",
        notes=f"Gọi {NAME} trước khi giao",
    )
    crm.sales.payments.record(order.id, order.total_minor, reference=f"CK {NAME}")
    crm.sales.orders.refund(order.id, 10_000, reason=f"{NAME} báo thiếu hàng")
    crm.loyalty.programs.create("vip", "Khách thân thiết", auto_enroll=False, point_value_minor=500)
    crm.loyalty.grant(cid, 50, f"quà cho {NAME}", program="vip", key="Nhung 0398613804")
    case = crm.service.open(cid, f"Máy của {NAME} kêu to", description=f"{NAME} gọi từ {PHONE}")
    crm.service.reply(case.id, f"Chào {NAME}, em sẽ gọi lại 0398613804")
    crm.idic.run()
    crm.analytics.rfm()
    crm.campaigns.configure("quiet_hours", "")
    crm.campaigns.set_channel("email", "file", directory=str(outbox), address_kind="email")
    for someone in (cid, binh):
        crm.customers.set_consent(someone, "email", True, source="form")
    crm.campaigns.segments.create("Hai khách", f"id in ({cid}, {binh})")
    campaign = crm.campaigns.create(
        "Chào hè",
        channel="email",
        segment="Hai khách",
        subject="Chào {{ name }}",
        body="Chào {{ name }} ({{ email }}, {{ phone }})",
    )
    crm.campaigns.run(campaign.id)
    crm.campaigns.dispatch()
    crm.campaigns.suppress(address=EMAIL, reason=f"{NAME} asked by phone")  # the address alone, every channel
    crm.campaigns.suppress(customer_id=cid, address=PHONE, channel="sms", reason=f"{NAME} không nhận SMS")
    return cid


@pytest.fixture
def outbox(tmp_path: Path) -> Path:
    return tmp_path / "outbox"


def test_erasure_leaves_no_byte_of_the_person_in_the_database_files_or_the_outbox(
    crm_factory: Any, outbox: Path
) -> None:
    crm = crm_factory(plugins=PLUGINS)
    cid = _populate(crm, outbox)
    exported = crm.customers.export_data(cid)
    reasons = {row["reason"] for row in exported["campaigns"]["campaign_suppressions"]}
    assert reasons == {f"{NAME} asked by phone", f"{NAME} không nhận SMS"}  # the address-only entry is hers too
    assert _leaks(_database_files(crm)) and len(_outbox_files(outbox)) == 2  # the search finds her before

    crm.customers.erase(cid, reason="customer request", vacuum=True)

    assert _leaks(_database_files(crm)) == []
    files = _outbox_files(outbox)
    assert _leaks(files) == [] and len(files) == 1  # Bình's message stays
    with crm.reading() as conn:
        facts = conn.execute(
            sa.select(t.interactions.c.outcome, t.interactions.c.rating).where(t.interactions.c.customer_id == cid)
        ).all()
        kept = conn.execute(
            sa.select(cm.suppressions.c.address, cm.suppressions.c.reason, cm.suppressions.c.customer_id).order_by(
                cm.suppressions.c.id
            )
        ).all()
    assert (None, 4) in facts and {outcome for outcome, _ in facts} == {None}  # the rated call stays, its text goes
    assert len(kept) == 2
    for address, reason, customer_id in kept:  # each a digest of the address alone, saying nothing of her
        assert address.startswith(privacy.DIGEST_PREFIX) and len(address) == 65
        assert (reason, customer_id) == ("kept after an erasure", None)


def test_an_erased_customers_suppressed_address_is_still_refused_when_it_comes_back(
    crm_factory: Any, outbox: Path
) -> None:
    crm = crm_factory(plugins=PLUGINS)
    cid = _populate(crm, outbox)
    crm.customers.erase(cid)
    again = crm.customers.add(name="Nhung (đăng ký lại)", email=EMAIL.upper()).id
    other = crm.customers.add(name="Lê Thị Mai", email="mai@example.org").id
    for someone in (again, other):
        crm.customers.set_consent(someone, "email", True, source="form")
    crm.campaigns.segments.create("Đăng ký lại", f"id in ({again}, {other})")
    campaign = crm.campaigns.create("Thu", channel="email", segment="Đăng ký lại", body="Chào {{ name }}")
    crm.campaigns.run(campaign.id)
    statuses = {row["customer_id"]: (row["status"], row["reason"]) for row in crm.campaigns.messages(campaign.id)}
    assert statuses[again] == ("excluded", "suppressed")
    assert statuses[other][0] == "queued"


def test_customers_erased_at_the_same_time_share_one_key_and_both_suppressions_still_work(crm_factory: Any) -> None:
    crm = crm_factory(plugins=["campaigns"])
    emails = [f"khach{n}@example.vn" for n in range(4)]
    ids = [crm.customers.add(name=f"Khách {n}", email=email).id for n, email in enumerate(emails)]
    for email in emails:
        crm.campaigns.suppress(address=email, reason="hỏi qua điện thoại")
    barrier = threading.Barrier(len(ids))

    def erase(customer_id: int) -> None:
        barrier.wait()
        crm.customers.erase(customer_id)

    with ThreadPoolExecutor(len(ids)) as pool:
        for erased in [pool.submit(erase, i) for i in ids]:
            erased.result(timeout=120)  # re-raises what an erasure raised
    with crm.reading() as conn:
        key = privacy.hash_key(conn, create=False)
        stored = set(conn.execute(sa.select(cm.suppressions.c.address)).scalars())
        keys = conn.execute(
            sa.select(sa.func.count()).select_from(t.settings).where(t.settings.c.key == privacy.HASH_KEY_SETTING)
        ).scalar_one()
    assert keys == 1 and key is not None
    assert stored == {privacy.digest(key, email) for email in emails}


@pytest.mark.crmkit_plugins("campaigns")
def test_digests_need_the_crm_secret_key_and_another_key_stops_sending_instead_of_matching_nothing(
    crm: Any, monkeypatch: pytest.MonkeyPatch, outbox: Path
) -> None:
    monkeypatch.setenv("CRMKIT_SECRET_KEY", "khoá-của-cửa-hàng")
    crm.campaigns.set_channel("email", "file", directory=str(outbox), address_kind="email")
    cid = crm.customers.add(name=NAME, email=EMAIL).id
    crm.campaigns.suppress(address=EMAIL, reason="hỏi qua điện thoại")
    crm.customers.erase(cid)
    with crm.reading() as conn:
        stored = conn.execute(
            sa.select(t.settings.c.value).where(t.settings.c.key == privacy.HASH_KEY_SETTING)
        ).scalar()
        key = privacy.hash_key(conn)
    assert set(stored) == {"wrapped", "nonce", "check"} and bytes.fromhex(stored["wrapped"]) != key  # not in clear
    again = crm.customers.add(name="Khách mới", email=EMAIL, consents={"email": True}).id
    crm.campaigns.segments.create("Mới", f"id = {again}")
    campaign = crm.campaigns.create("Thu", channel="email", segment="Mới", body="Chào {{ name }}")
    monkeypatch.setenv("CRMKIT_SECRET_KEY", "another-key")
    with pytest.raises(SecretUnavailable, match="another CRM secret key"):
        crm.campaigns.run(campaign.id)
    assert crm.campaigns.messages(campaign.id) == []


#: Erases the customer and waits, inside the transaction, to be killed (right after the last write).
WORKER = """
import sys, time
from pathlib import Path
import crmkit
url, ready, customer_id = sys.argv[1], Path(sys.argv[2]), int(sys.argv[3])
crm = crmkit.CRM(url, plugins=["campaigns"])
emit = crm.events.emit
def emit_then_wait(session, type, *args, **kwargs):
    emit(session, type, *args, **kwargs)
    if type == "customer.erased":
        ready.touch()
        time.sleep(120)
crm.events.emit = emit_then_wait
crm.customers.erase(customer_id)
"""


@pytest.mark.crmkit_plugins("campaigns")
def test_an_erasure_killed_before_commit_leaves_everything_and_a_second_one_erases_all(
    crm: Any, tmp_path: Path
) -> None:
    cid = crm.customers.add(name=NAME, email=EMAIL, phone=PHONE).id
    crm.interactions.log(cid, "phone", outcome=f"callback to {NAME} 0398613804")
    crm.campaigns.suppress(address=EMAIL, reason=f"{NAME} asked by phone")
    before = _snapshot(crm, cid)
    ready = tmp_path / "ready"
    url = crm.engine.url.render_as_string(hide_password=False)
    worker = subprocess.Popen(
        [sys.executable, "-c", WORKER, url, str(ready), str(cid)], stderr=subprocess.PIPE, text=True
    )
    deadline = time.monotonic() + 60
    while not ready.exists() and worker.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert ready.exists(), worker.stderr.read() if worker.stderr else ""
    os.kill(worker.pid, signal.SIGKILL)
    worker.wait(timeout=30)
    assert _snapshot(crm, cid) == before  # nothing erased
    crm.customers.erase(cid)
    after = _snapshot(crm, cid)
    assert after["customer"] == (f"Erased customer {cid}", "erased")
    assert after["outcomes"] == [None] and after["points"] == []
    assert after["suppressions"][0][0].startswith(privacy.DIGEST_PREFIX)


def _snapshot(crm: Any, customer_id: int) -> dict[str, Any]:
    c, s = t.customers.c, cm.suppressions.c
    with crm.reading() as conn:
        return {
            "customer": tuple(conn.execute(sa.select(c.name, c.status).where(c.id == customer_id)).one()),
            "outcomes": list(conn.execute(sa.select(t.interactions.c.outcome)).scalars()),
            "points": list(
                conn.execute(sa.select(t.contact_points.c.value).order_by(t.contact_points.c.value)).scalars()
            ),
            "suppressions": [tuple(r) for r in conn.execute(sa.select(s.address, s.reason))],
        }
