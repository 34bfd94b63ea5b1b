"""``crmkit.sqlfunctions`` gives the same answers on SQLite and PostgreSQL, from crmkit's own UTC columns."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from crmkit import CRM
from crmkit.core import tables as core
from crmkit.sqlfunctions import (
    day_of,
    epoch_seconds,
    local_clock,
    month_index,
    month_label,
    seconds_between,
    whole_days_since,
    year_month,
)

#: 23:30 UTC on 31 January: already 1 February in Vietnam, still January (and the 31st) in UTC.
LATE = datetime(2026, 1, 31, 23, 30, 15, tzinfo=UTC)
LATER = datetime(2026, 2, 2, 11, 30, 15, tzinfo=UTC)


def test_each_function_computes_in_utc_on_this_database(crm: CRM) -> None:
    customer = crm.customers.add(name="Nguyễn Văn An", birth_date=date(1990, 3, 8))
    first = crm.interactions.log(customer.id, channel="phone", occurred_at=LATE)
    second = crm.interactions.log(customer.id, channel="email", occurred_at=LATER)
    i, later, c = core.interactions.alias("i"), core.interactions.alias("later"), core.customers.c
    query = (
        sa.select(
            epoch_seconds(i.c.occurred_at),
            day_of(i.c.occurred_at),
            month_index(i.c.occurred_at, ZoneInfo("UTC"), LATE, LATER),
            month_index(i.c.occurred_at, ZoneInfo("Asia/Ho_Chi_Minh"), LATE, LATER),
            seconds_between(i.c.occurred_at, later.c.occurred_at),
            whole_days_since(i.c.occurred_at, int(LATER.timestamp())),
            sa.select(year_month(c.birth_date)).where(c.id == customer.id).scalar_subquery(),
        )
        .select_from(i.join(later, later.c.customer_id == i.c.customer_id))
        .where(i.c.id == first.id, later.c.id == second.id)
    )
    with crm.engine.connect() as conn:
        epoch, day, month, hanoi_month, seconds, days, born = conn.execute(query).one()
    assert epoch == int(LATE.timestamp())
    assert day == "2026-01-31"
    assert month_label(month) == "2026-01" and month == 2026 * 12
    assert month_label(hanoi_month) == "2026-02"  # the month of the zone given: already February in Hà Nội
    assert round(seconds) == 36 * 3600
    assert days == 1
    assert born == "1990-03"


def test_local_clock_reads_hour_and_weekday_as_the_zone_does_across_daylight_saving(crm: CRM) -> None:
    customer = crm.customers.add(name="Mary Tran")
    winter, summer = datetime(2026, 1, 14, 2, tzinfo=UTC), datetime(2026, 6, 3, 1, tzinfo=UTC)
    for moment in (winter, summer):  # both Wednesday in UTC
        crm.interactions.log(customer.id, channel="sms", occurred_at=moment)
    i = core.interactions.c
    with crm.engine.connect() as conn:
        for zone, expected in (("America/New_York", [(21, 1), (21, 1)]), ("Asia/Ho_Chi_Minh", [(9, 2), (8, 2)])):
            hour, weekday = local_clock(i.occurred_at, ZoneInfo(zone), winter, summer)
            rows = conn.execute(sa.select(hour, weekday).where(i.customer_id == customer.id).order_by(i.occurred_at))
            assert [tuple(row) for row in rows] == expected, zone
