"""Runs: the four steps in order with stored results, step hooks, failures and resume, status/runs/show."""

from __future__ import annotations

from typing import Any

import pytest

from crmkit import Conflict, Plugin, ValidationError, hookimpl
from crmkit_idic import runs

pytestmark = pytest.mark.crmkit_plugins("idic")


class _Listener:
    def __init__(self) -> None:
        self.events: list[tuple[str, str, Any]] = []

    @hookimpl(optionalhook=True)
    def crmkit_idic_step_started(self, run: Any, step: str) -> None:
        self.events.append(("started", step, run.id))

    @hookimpl(optionalhook=True)
    def crmkit_idic_step_finished(self, run: Any, step: str, result: Any) -> None:
        self.events.append(("finished", step, result.status))


def test_a_run_executes_the_four_steps_in_order_and_fires_the_step_hooks(crm_factory: Any) -> None:
    listener = _Listener()
    crm = crm_factory(plugins=["idic", Plugin(name="idictestlistener", hooks=(listener,))])
    crm.customers.add(name="Nguyễn Văn An", email="an@example.vn")
    run = crm.idic.run()
    assert run.status == "done" and run.next_step is None
    assert [r.step for r in run.results] == ["identify", "differentiate", "interact", "customize"]
    assert run.result("differentiate").counts["customers"] == 1
    assert listener.events == [
        e for step in runs.STEPS for e in (("started", step, run.id), ("finished", step, "done"))
    ]


def test_an_interrupted_run_resumes_from_the_failed_step_and_loses_nobody(crm: Any, monkeypatch: Any) -> None:
    a = crm.customers.add(name="Trần Thị Bình", email="binh@example.vn")
    crm.customers.add(name="Tran Thi Binh", email="binh@example.vn")
    crm.customers.add(name="Lê Minh Châu", phone="0912000111")

    def crash(*args: Any) -> Any:
        raise KeyboardInterrupt("power cut")

    original = runs.STEP_FUNCTIONS["interact"]
    monkeypatch.setitem(runs.STEP_FUNCTIONS, "interact", crash)
    with pytest.raises(KeyboardInterrupt):
        crm.idic.run()
    failed = crm.idic.last_run()
    assert failed.status == "failed" and failed.next_step == "interact"
    assert "power cut" in failed.result("interact").error
    assert crm.idic.status()["next_step"] == "interact"
    merged_before = failed.result("identify").counts["merged"]
    assert merged_before == 1 and crm.customers.get(a.id).status == "active"

    monkeypatch.setitem(runs.STEP_FUNCTIONS, "interact", original)
    done = crm.idic.resume(failed.id)
    assert done.status == "done" and done.id == failed.id
    assert done.result("identify").counts == failed.result("identify").counts  # not run again
    assert done.result("interact").status == "done"
    assert crm.customers.find(limit=10).items and len(crm.customers.find(limit=10).items) == 2
    with pytest.raises(Conflict, match="already complete"):
        crm.idic.resume(done.id)


def test_a_failing_step_rolls_its_own_writes_back(crm: Any, monkeypatch: Any) -> None:
    crm.customers.add(name="Phạm Quốc Dũng", email="dung@example.vn")
    crm.customers.add(name="Pham Quoc Dung", email="dung@example.vn")
    identify = runs.STEP_FUNCTIONS["identify"]

    def merge_then_fail(*args: Any) -> Any:
        identify(*args)
        raise RuntimeError("disk full")

    monkeypatch.setitem(runs.STEP_FUNCTIONS, "identify", merge_then_fail)
    with pytest.raises(RuntimeError):
        crm.idic.run(steps=["identify"])
    assert crm.idic.merges() == []
    assert len(crm.customers.find(limit=10).items) == 2


def test_steps_run_alone_and_bad_steps_or_scopes_are_refused(crm: Any) -> None:
    crm.customers.add(name="Hoàng Thu Hà")
    with pytest.raises(ValidationError, match="not been differentiated yet"):
        crm.idic.run(steps=["customize"])
    assert crm.idic.last_run().status == "failed"
    run = crm.idic.run(steps=["customize", "differentiate"])
    assert run.steps == ("differentiate", "customize") and run.status == "done"
    with pytest.raises(ValidationError) as info:
        crm.idic.run(steps=["identfy"])
    assert info.value.errors == {
        "step": ["unknown step 'identfy' (one of identify, differentiate, interact, customize)"]
    }
    with pytest.raises(ValidationError, match="campaigns plugin"):
        crm.idic.run(segment='city = "Hà Nội"')
