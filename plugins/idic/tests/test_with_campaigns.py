"""IDIC with the real crmkit-campaigns: segment runs, rule conditions in its language, the handoff."""

from __future__ import annotations

from typing import Any

import pytest

from crmkit import ValidationError

pytestmark = pytest.mark.crmkit_plugins("campaigns", "idic")


def test_segment_runs_conditions_and_handoff_with_campaigns(crm: Any) -> None:
    hanoi = crm.customers.add(name="Vũ Thị Mai", email="mai@example.vn", city="Hà Nội", consents={"email": True})
    crm.customers.add(name="Lê Văn Tú", email="tu@example.vn", city="Huế")
    with pytest.raises(ValidationError) as info:
        crm.idic.add_treatment("Sai", condition_='favourite = "đỏ"', message="x")
    assert "unknown field 'favourite'" in info.value.errors["condition"][0]
    crm.idic.add_treatment("Hà Nội", condition_='city = "Hà Nội"', offer="Giảm 5%", message="Ưu đãi riêng cho Hà Nội")
    run = crm.idic.run(segment='city = "Hà Nội"')
    assert run.result("differentiate").counts["customers"] == 1
    assert run.result("customize").counts["treated"] == 1
    assert crm.customers.profile(hanoi.id).sections["idic"]["next_action"] == "Ưu đãi riêng cho Hà Nội"
    handed = crm.idic.handoff("Hà Nội")
    assert handed["campaign_status"] == "draft"
    assert crm.campaigns.segments.count(handed["segment_id"]) == 1
