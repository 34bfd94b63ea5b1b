"""Pipelines and deals: ordered stages, moves recorded with who and when, the stage hook, won and lost."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from crmkit import Conflict, ValidationError

from .conftest import Recorder, Shop

pytestmark = pytest.mark.crmkit_plugins("sales")


def test_pipeline_stages_are_ordered_with_terminal_stages_last(shop: Shop) -> None:
    pipelines = shop.crm.sales.pipelines
    pipeline = pipelines.add(
        "Bán hàng B2B",
        [
            {"name": "Thắng", "probability": 1, "outcome": "won"},
            {"name": "Tiếp cận", "probability": "0.1"},
            {"name": "Báo giá", "probability": "0.5"},
        ],
    )
    assert [(s.name, s.position, s.probability, s.outcome) for s in pipeline.stages] == [
        ("Tiếp cận", 1, Decimal("0.1"), None),
        ("Báo giá", 2, Decimal("0.5"), None),
        ("Thắng", 3, Decimal(1), "won"),
        ("Lost", 4, Decimal(0), "lost"),
    ]
    bad = [
        ([{"name": "A", "probability": "1.5"}], "stages"),
        ([{"name": "A", "probability": "0.2"}, {"name": "a", "probability": "0.3"}], "stages"),
        ([{"name": "A", "probability": "0.2"}, {"name": "W", "probability": "0.9", "outcome": "won"}], "stages"),
        ([{"name": "W", "probability": "1", "outcome": "won"}], "stages"),
    ]
    for stages, field in bad:
        with pytest.raises(ValidationError) as error:
            pipelines.add("Khác", stages)
        assert field in error.value.errors, stages
    with pytest.raises(Conflict):
        pipelines.add("Bán hàng B2B", [{"name": "A", "probability": "0.2"}])
    changed = pipelines.update_stage(pipeline.stages[1].id, name="Gửi báo giá", probability="0.55")
    assert (changed.name, changed.probability) == ("Gửi báo giá", Decimal("0.55"))
    with pytest.raises(ValidationError, match="fixed"):
        pipelines.update_stage(pipeline.stages[2].id, probability="0.9")
    with pytest.raises(ValidationError) as error:
        pipelines.update_stage(pipeline.stages[0].id, name="gửi báo giá")
    assert "name" in error.value.errors
    assert [p.name for p in pipelines.list()] == ["Bán hàng B2B"]
    pipelines.add(
        "Bán lẻ", [{"name": "Quan tâm", "probability": "0.3"}, {"name": "Mua", "probability": "1", "outcome": "won"}]
    )
    listed = {p.name: [stage.name for stage in p.stages] for p in pipelines.list()}
    assert listed == {name: [stage.name for stage in pipelines.get(name).stages] for name in ("Bán hàng B2B", "Bán lẻ")}
    assert listed["Bán lẻ"][:2] == ["Quan tâm", "Mua"] and "Quan tâm" not in listed["Bán hàng B2B"]


def test_deal_moves_are_recorded_and_fire_the_stage_hook(recorded: tuple[Shop, Recorder]) -> None:
    shop, recorder = recorded
    sales = shop.crm.sales
    pipeline = sales.pipelines.add(
        "B2B", [{"name": "Tiếp cận", "probability": "0.1"}, {"name": "Báo giá", "probability": "0.5"}]
    )
    with shop.crm.acting_as("lan.nguyen"):
        deal = sales.deals.add(
            customer_id=shop.dist.id,
            pipeline="B2B",
            title="Nước mắm cho chuỗi nhà hàng",
            amount_minor=120_000_000,
            owner="lan.nguyen",
            source="Hội chợ",
        )
    name, call = recorder.calls[-1]
    assert name == "deal_stage_changed" and call["old"] is None and call["new"].name == "Tiếp cận"
    assert call["deal"] == deal and deal.amount.format() == "120.000.000 ₫"

    with shop.crm.acting_as("minh.tran"):
        moved = sales.deals.move(deal.id, "báo giá")  # stage names match case-insensitively
    name, call = recorder.calls[-1]
    assert (call["old"].name, call["new"].name, call["new"].probability) == ("Tiếp cận", "Báo giá", Decimal("0.5"))
    assert moved.stage_id == pipeline.stages[1].id and moved.status == "open"
    with pytest.raises(ValidationError, match="already in stage"):
        sales.deals.move(deal.id, "Báo giá")
    with pytest.raises(ValidationError) as error:
        sales.deals.move(deal.id, "Không có")
    assert "stage" in error.value.errors and "Tiếp cận" in str(error.value)
    with pytest.raises(ValidationError) as error:
        sales.deals.lose(deal.id, reason=" ")
    assert "reason" in error.value.errors

    lost = sales.deals.lose(deal.id, reason="Chọn nhà cung cấp khác")
    assert (lost.status, lost.close_reason, lost.closed_at is not None) == ("lost", "Chọn nhà cung cấp khác", True)
    reopened = sales.deals.move(deal.id, "Tiếp cận")
    assert (reopened.status, reopened.closed_at, reopened.close_reason) == ("open", None, None)
    closed_at = datetime(2026, 4, 1, 8, 0, tzinfo=UTC)
    won = sales.deals.win(deal.id, reason="Ký hợp đồng 12 tháng", at=closed_at)
    assert (won.status, won.closed_at) == ("won", closed_at)

    history = sales.deals.history(deal.id)
    stages = {s.id: s.name for s in pipeline.stages}
    assert [(stages.get(h.from_stage_id), stages[h.to_stage_id], h.changed_by) for h in history] == [
        (None, "Tiếp cận", "lan.nguyen"),
        ("Tiếp cận", "Báo giá", "minh.tran"),
        ("Báo giá", "Lost", "system"),
        ("Lost", "Tiếp cận", "system"),
        ("Tiếp cận", "Won", "system"),
    ]
    assert history[2].reason == "Chọn nhà cung cấp khác" and history[-1].changed_at == closed_at
    assert recorder.names().count("deal_stage_changed") == 5
    assert [d.id for d in sales.deals.list(status="won", owner="lan.nguyen")] == [deal.id]
    updated = sales.deals.update(deal.id, amount_minor=150_000_000)
    assert updated.amount_minor == 150_000_000
