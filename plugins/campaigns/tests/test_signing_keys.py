"""Link-signing keys: never in clear in the database, rotated with a grace period, safe under concurrency and kill -9."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from crmkit.cli.context import CLIContext
from crmkit.cli.main import cli
from crmkit.core.secrets import SecretUnavailable
from crmkit_campaigns import models as m
from crmkit_campaigns.signing import InvalidToken, Signer, load_signer

pytestmark = pytest.mark.crmkit_plugins("campaigns")

#: Rotates the signing key of the CRM at argv[1], then waits to be killed inside the rotation's transaction.
WORKER = """
import sys, time
from pathlib import Path
import crmkit
url, ready = sys.argv[1], Path(sys.argv[2])
crm = crmkit.CRM(url, plugins=["campaigns"])
record = crm.audit.record
def stall(*args, **kwargs):
    record(*args, **kwargs)
    ready.touch()
    time.sleep(120)
crm.audit.record = stall
crm.campaigns.rotate_signing_key()
"""


def _rows(crm):
    with crm.reading() as conn:
        return conn.execute(sa.select(m.signing_keys).order_by(m.signing_keys.c.id)).all()


def test_a_key_is_stored_wrapped_and_a_wrong_crm_secret_key_is_one_clear_error(crm, monkeypatch):
    monkeypatch.setenv("CRMKIT_SECRET_KEY", "the-shop-secret-key")
    signer = crm.campaigns.signer()
    (row,) = _rows(crm)
    assert row.secret != signer.keys[1].hex() and row.nonce and row.key_check  # the database alone gives no key
    assert load_signer(crm).sign("open", 7) == signer.sign("open", 7)  # the same key, unwrapped again
    monkeypatch.setenv("CRMKIT_SECRET_KEY", "another-key")
    with pytest.raises(SecretUnavailable, match="another CRM secret key"):
        load_signer(crm)


def test_a_key_an_older_version_kept_in_clear_is_wrapped_and_its_links_still_verify(crm, monkeypatch):
    monkeypatch.setenv("CRMKIT_SECRET_KEY", "the-shop-secret-key")
    raw = bytes(range(32))
    with crm.transaction() as session:
        session.connection().execute(m.signing_keys.insert().values(id=1, secret=raw.hex(), created_at=sa.func.now()))
    sent_before = Signer({1: raw}).sign("click", 42, "https://saomai.example.vn/tet")
    assert crm.campaigns.signer().verify("click", sent_before, "https://saomai.example.vn/tet") == 42
    (row,) = _rows(crm)
    assert row.nonce is not None and raw.hex() not in str(tuple(row))


def test_rotation_signs_with_the_new_key_and_old_links_verify_until_the_grace_period_ends(crm):
    old_signer = crm.campaigns.signer()
    old_link, old_webhook = old_signer.sign("unsubscribe", 9), crm.campaigns.webhook_token()
    result = CliRunner().invoke(cli, ["campaigns", "keys", "rotate", "--grace-days", "30"], obj=CLIContext(crm=crm))
    assert result.exit_code == 0, result.output
    assert "key 2 signs from now on" in result.stderr and "verifying" in result.stdout
    signer = crm.campaigns.signer()
    assert signer.sign("unsubscribe", 9).startswith("2.") and signer.verify("unsubscribe", old_link) == 9
    assert crm.campaigns.webhook_token() != old_webhook and signer.check_webhook(old_webhook)
    states = {key["id"]: key["state"] for key in crm.campaigns.signing_keys()}
    assert states == {1: "verifying", 2: "signing"}
    crm.campaigns.rotate_signing_key(timedelta(0))  # no grace: every older key is expired at once
    signer = crm.campaigns.signer()
    with pytest.raises(InvalidToken):
        signer.verify("unsubscribe", old_link)
    assert not signer.check_webhook(old_webhook)
    assert [key["state"] for key in crm.campaigns.signing_keys()] == ["expired", "expired", "signing"]


def test_simultaneous_rotations_each_add_one_key_and_one_key_signs(crm):
    crm.campaigns.signer()
    barrier, made, errors = threading.Barrier(4), [], []

    def rotate() -> None:
        barrier.wait()
        try:
            made.append(crm.campaigns.rotate_signing_key())
        except Exception as exc:  # noqa: BLE001 - collected: the assertion shows it
            errors.append(exc)

    threads = [threading.Thread(target=rotate) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert errors == [] and sorted(made) == [2, 3, 4, 5]
    assert [row.expires_at is None for row in _rows(crm)] == [False, False, False, False, True]


def test_a_killed_rotation_leaves_the_keys_as_they_were(crm, tmp_path: Path):
    token = crm.campaigns.webhook_token()
    before = _rows(crm)
    ready = tmp_path / "ready"
    url = crm.engine.url.render_as_string(hide_password=False)
    worker = subprocess.Popen([sys.executable, "-c", WORKER, url, str(ready)], stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while not ready.exists() and worker.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert ready.exists(), worker.stderr.read() if worker.stderr else ""
    os.kill(worker.pid, signal.SIGKILL)
    worker.wait(timeout=30)
    assert _rows(crm) == before
    assert load_signer(crm).webhook_token() == token
    assert crm.campaigns.rotate_signing_key() == 2  # as if never tried
