"""One clock: ``CRM(clock=…)`` is where every "now" of the CRM comes from (``crm.now()``, ``crm.today()``), so a test
freezes time instead of racing midnight; ``crmkit.testing.FrozenClock`` is that clock for tests."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import pytest

from crmkit import ValidationError
from crmkit.testing import FrozenClock

#: 16:59:59 UTC on 31 October 2026 is 23:59:59 in Hà Nội; a second later it is 1 November there.
BEFORE_LOCAL_MIDNIGHT = datetime(2026, 10, 31, 16, 59, 59, tzinfo=UTC)


def test_frozen_time_is_the_time_of_every_row_the_crm_writes(
    crm_factory: Callable[..., Any], frozen_clock: FrozenClock
) -> None:
    crm = crm_factory(clock=frozen_clock)
    created = frozen_clock()
    an = crm.customers.add(name="Nguyễn Văn An", phones=["0912 345 678"])
    assert an.created_at == an.updated_at == created == crm.now()
    contact = crm.interactions.log(an.id, channel="phone", subject="Hỏi giá")
    assert contact.occurred_at == created
    frozen_clock.advance(days=2, hours=3)
    updated = crm.customers.update(an.id, province="Hà Nội")
    assert (updated.created_at, updated.updated_at) == (created, created + timedelta(days=2, hours=3))
    audit = crm.audit.entries(customer_id=an.id).items
    assert sorted({entry.at for entry in audit}) == [created, created + timedelta(days=2, hours=3)]


def test_today_is_the_business_day_across_midnight_utc_and_local(crm_factory: Callable[..., Any]) -> None:
    clock = FrozenClock(BEFORE_LOCAL_MIDNIGHT)
    crm = crm_factory(clock=clock)
    assert crm.today() == date(2026, 10, 31)
    clock.advance(seconds=1)  # 17:00 UTC, still 31 October in UTC
    assert crm.now() == datetime(2026, 10, 31, 17, tzinfo=UTC) and crm.today() == date(2026, 11, 1)
    crm.set_setting("timezone", "Europe/London")
    assert crm.today() == date(2026, 10, 31)  # 17:00 in London
    clock.set("2026-11-01T00:30:00+00:00")
    assert crm.today() == date(2026, 11, 1)


def test_the_system_clock_by_default_and_a_clock_in_any_zone_answers_in_utc(crm_factory: Callable[..., Any]) -> None:
    before = datetime.now(UTC)
    now = crm_factory().now()
    assert now.tzinfo is UTC and before <= now <= datetime.now(UTC)
    ict = timezone(timedelta(hours=7))
    crm = crm_factory(clock=lambda: datetime(2026, 11, 1, 0, 30, tzinfo=ict))
    assert crm.now() == BEFORE_LOCAL_MIDNIGHT + timedelta(minutes=30, seconds=1) and crm.now().tzinfo is UTC


def test_a_naive_clock_is_refused(crm_factory: Callable[..., Any]) -> None:
    crm = crm_factory(clock=lambda: datetime(2026, 11, 1, 0, 30))
    with pytest.raises(ValueError, match="naive datetime"):
        crm.now()
    with pytest.raises(ValueError, match="aware time"):
        FrozenClock("2026-11-01T00:30:00")


def test_a_customer_since_after_the_crm_clock_is_in_the_future(crm_factory: Callable[..., Any]) -> None:
    """Validation's "not in the future" reads the CRM's clock, not the machine's."""
    crm = crm_factory(clock=FrozenClock("2020-03-01T03:00:00+00:00"))
    crm.customers.add(name="Trần Thị Bình", created_at="2020-02-29")
    with pytest.raises(ValidationError, match="created_at: is in the future"):
        crm.customers.add(name="Lê Minh Châu", created_at="2020-06-01")
