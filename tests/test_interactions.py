"""``crm.interactions``: one timeline per customer across every channel."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
import sqlalchemy as sa

import crmkit
from crmkit import Plugin, hookimpl
from crmkit.core import tables as t
from crmkit.core.models import CHANNELS, DIRECTIONS

ICT = timezone(timedelta(hours=7))
DAY1 = datetime(2024, 5, 1, 9, 0, tzinfo=ICT)


def interaction_rows(crm: Any) -> int:
    with crm.reading() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(t.interactions)).scalar_one()


@pytest.fixture
def an(crm: Any) -> Any:
    return crm.customers.add(name="Nguyễn Văn An", email="an@example.vn")


def test_every_channel_and_direction_is_logged_with_its_details(crm: Any, an: Any) -> None:
    logged = []
    for n, channel in enumerate(CHANNELS):
        for direction in DIRECTIONS:
            logged.append(
                crm.interactions.log(
                    an.id,
                    channel,
                    direction=direction,
                    occurred_at=DAY1 + timedelta(hours=n),
                    subject=f"{channel} {direction}",
                    summary="Hỏi về đơn hàng #1024",
                    outcome="resolved",
                    rating=(n % 5) + 1,
                    employee="lan",
                    sender="an@example.vn",
                )
            )
    assert {(i.channel, i.direction) for i in logged} == {(c, d) for c in CHANNELS for d in DIRECTIONS}
    stored = crm.interactions.get(logged[0].id)
    assert stored == logged[0]
    assert (stored.summary, stored.outcome, stored.rating, stored.employee) == (
        "Hỏi về đơn hàng #1024",
        "resolved",
        1,
        "lan",
    )
    assert stored.occurred_at == DAY1 and stored.occurred_at.tzinfo == UTC
    assert crm.interactions.counts(an.id) == dict.fromkeys(CHANNELS, 2)


def test_defaults_inbound_now(crm: Any, an: Any) -> None:
    before = datetime.now(UTC)
    call = crm.interactions.log(an.id, "phone")
    assert call.direction == "inbound" and call.rating is None
    assert before - timedelta(seconds=5) <= call.occurred_at <= datetime.now(UTC) + timedelta(seconds=5)


BAD_LOGS = [
    ({"channel": "pigeon"}, "channel"),
    ({"rating": 0}, "rating"),
    ({"rating": 6}, "rating"),
    ({"rating": "great"}, "rating"),
    ({"direction": "sideways"}, "direction"),
    ({"occurred_at": datetime(2024, 5, 1, 9, 0)}, "occurred_at"),  # naive: local time of which zone?
    ({"occurred_at": "yesterday"}, "occurred_at"),
    ({"subject": "x" * 301}, "subject"),
    ({"mood": "happy"}, "mood"),
]


def test_bad_interaction_names_the_field_and_writes_nothing(crm: Any, an: Any) -> None:
    for kwargs, field in BAD_LOGS:
        args = {"channel": "email", **kwargs}
        channel = args.pop("channel")
        with pytest.raises(crmkit.ValidationError) as exc:
            crm.interactions.log(an.id, channel, **args)
        assert field in exc.value.errors and field in str(exc.value), (kwargs, exc.value.errors)
    assert interaction_rows(crm) == 0


def test_ratings_one_to_five_are_accepted(crm: Any, an: Any) -> None:
    assert [crm.interactions.log(an.id, "chat", rating=r).rating for r in range(1, 6)] == [1, 2, 3, 4, 5]


def test_unknown_customer_is_not_found(crm: Any) -> None:
    with pytest.raises(crmkit.NotFound, match="customer 404"):
        crm.interactions.log(404, "email")
    with pytest.raises(crmkit.NotFound):
        crm.interactions.timeline(404)
    with pytest.raises(crmkit.NotFound):
        crm.interactions.get(404)
    assert interaction_rows(crm) == 0


def test_timeline_is_newest_first_and_filters(crm: Any, an: Any) -> None:
    other = crm.customers.add(name="Trần Thị Bích")
    plan = [("email", 0, "lan"), ("phone", 1, "minh"), ("sms", 2, "lan"), ("email", 3, "minh"), ("chat", 4, "lan")]
    made = [crm.interactions.log(an.id, ch, occurred_at=DAY1 + timedelta(days=d), employee=e) for ch, d, e in plan]
    crm.interactions.log(other.id, "email", occurred_at=DAY1)
    timeline = crm.interactions.timeline(an.id)
    assert [i.id for i in timeline] == [i.id for i in reversed(made)]
    assert timeline.next_cursor is None
    assert [i.channel for i in crm.interactions.timeline(an.id, channels=["email", "sms"])] == ["email", "sms", "email"]
    assert [i.employee for i in crm.interactions.timeline(an.id, employee="minh")] == ["minh", "minh"]
    window = crm.interactions.timeline(an.id, since=DAY1 + timedelta(days=1), until=DAY1 + timedelta(days=3))
    assert [i.channel for i in window] == ["sms", "phone"]  # since inclusive, until exclusive
    in_utc = crm.interactions.timeline(an.id, since=(DAY1 + timedelta(days=4)).astimezone(UTC))
    assert [i.channel for i in in_utc] == ["chat"]
    assert crm.interactions.timeline(an.id, channels=["fax"]).items == []


def test_timeline_pages_by_keyset(crm: Any, an: Any) -> None:
    same_moment = DAY1 + timedelta(hours=3)
    made = [crm.interactions.log(an.id, "email", occurred_at=DAY1 + timedelta(hours=h)) for h in range(6)]
    made += [crm.interactions.log(an.id, "phone", occurred_at=same_moment) for _ in range(3)]
    expected = [i.id for i in sorted(made, key=lambda i: (i.occurred_at, i.id), reverse=True)]
    for limit in (1, 2, 4, 9, 50):
        shown, before = [], None
        while True:
            page = crm.interactions.timeline(an.id, before=before, limit=limit)
            shown += [i.id for i in page]
            if page.next_cursor is None:
                break
            before = page.next_cursor
        assert shown == expected, limit


BAD_TIMELINES = [
    ({"since": DAY1, "until": DAY1 - timedelta(days=1)}, "until"),
    ({"since": DAY1, "until": DAY1}, "until"),
    ({"since": datetime(2024, 5, 1)}, "since"),
    ({"until": datetime(2024, 5, 1)}, "until"),
    ({"channels": ["pigeon"]}, "channels"),
    ({"before": "not-a-cursor"}, "before"),
    ({"limit": 0}, "limit"),
]


def test_bad_timeline_arguments_name_the_field(crm: Any, an: Any) -> None:
    for kwargs, field in BAD_TIMELINES:
        with pytest.raises(crmkit.ValidationError) as exc:
            crm.interactions.timeline(an.id, **kwargs)
        assert list(exc.value.errors) == [field], kwargs


def test_logging_on_a_merged_id_lands_on_the_kept_customer(crm: Any, an: Any) -> None:
    twin = crm.customers.add(name="Nguyen Van An")
    crm.customers.merge(an.id, twin.id)
    call = crm.interactions.log(twin.id, "phone", subject="gọi lại")
    assert call.customer_id == an.id
    assert [i.subject for i in crm.interactions.timeline(an.id)] == ["gọi lại"]
    assert [i.id for i in crm.interactions.timeline(twin.id)] == [call.id]  # the old id shows the kept timeline


def test_logging_on_an_erased_customer_is_refused(crm: Any, an: Any) -> None:
    crm.customers.erase(an.id)
    with pytest.raises(crmkit.Conflict, match="erased"):
        crm.interactions.log(an.id, "email")


class _Zalo:
    @hookimpl
    def crmkit_channels(self) -> list[str]:
        return ["zalo"]

    @hookimpl
    def crmkit_interaction_before_log(self, interaction: dict[str, Any]) -> None:
        if interaction.get("outcome") == "spam":
            raise crmkit.ValidationError("spam is not logged", field="outcome")


def test_plugin_channels_are_accepted_and_a_plugin_may_veto(crm_factory: Any) -> None:
    crm = crm_factory(plugins=[Plugin("probe", hooks=_Zalo())])
    an = crm.customers.add(name="Nguyễn Văn An", consents={"zalo": True})
    assert "zalo" in crm.channels and an.has_consent("zalo")
    chat = crm.interactions.log(an.id, "zalo", subject="Xin chào")
    assert [i.id for i in crm.interactions.timeline(an.id, channels=["zalo"])] == [chat.id]
    with pytest.raises(crmkit.ValidationError, match="outcome: spam"):
        crm.interactions.log(an.id, "zalo", outcome="spam")
    assert interaction_rows(crm) == 1


def test_other_crms_do_not_know_a_plugins_channel(crm: Any, an: Any) -> None:
    with pytest.raises(crmkit.ValidationError, match="channel"):
        crm.interactions.log(an.id, "zalo")
