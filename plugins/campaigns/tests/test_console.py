"""crmkit-campaigns in the web console: the segment builder with its live count, campaigns created, previewed,
run and scheduled, their report, the customer-360 panel, the home tile, permissions and the Vietnamese texts."""

from __future__ import annotations

import base64
import re
from typing import Any

import campaigns_testkit as kit
import pytest

from crmkit.console.testing import ConsoleBrowser, console_user, text, untranslated
from crmkit_campaigns import console

pytestmark = pytest.mark.crmkit_plugins("campaigns")

HX = {"HX-Request": "true"}


@pytest.fixture
def marketing(shop: Any) -> tuple[Any, ConsoleBrowser, dict[str, list[Any]]]:
    """Mai (marketing, reads English) signed in; three customers in Hà Nội, two in Huế, one Hà Nội customer
    who never consented to e-mail."""
    console_user(shop, "mai", roles=["marketing"], locale="en")
    people = {
        "hn": kit.people(shop, 3, prefix="An"),
        "hue": kit.people(shop, 2, prefix="Binh", city="Huế"),
        "no": kit.people(shop, 1, prefix="Cuong", consent=False),
    }
    browser = ConsoleBrowser(shop)
    assert browser.sign_in("mai").status_code == 303
    return shop, browser, people


def _count(browser: ConsoleBrowser, expression: str) -> Any:
    return browser.get("/console/campaigns/segments/count", query_string={"expression": expression}, headers=HX)


def _campaign(browser: ConsoleBrowser, **values: str) -> Any:
    form = {
        "name": "Tết",
        "segment": "",
        "channel": "email",
        "subject": "Chào {{ first_name }}",
        "body": "Ưu đãi Tết cho {{ name }}: https://shop.example.vn/tet",
        "holdout_percent": "0",
        "cost_per_message": "300",
        "budget": "",
        **values,
    }
    return browser.submit("/console/campaigns/new", "/console/campaigns/new", form)


def test_the_segment_builder_counts_as_the_marketer_types_and_saves(marketing: Any) -> None:
    crm, browser, _ = marketing
    page = browser.get("/console/campaigns/segments/new")
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and "Fields you can use" in text(page) and "province" in text(page)
    typed = re.search(r"<textarea[^>]*id=\"expression\"[^>]*>", html).group(0)
    assert 'hx-get="/console/campaigns/segments/count"' in typed and "delay:300ms" in typed  # debounced
    assert 'hx-target="#live-count"' in typed
    assert "6 customers in all" in text(page)  # nothing typed yet: everyone
    assert text(_count(browser, 'city = "ha noi"')) == "4 customers match"
    assert text(_count(browser, 'city = "ha noi" and has consent "email"')) == "3 customers match"
    assert text(_count(browser, 'city = "Hue"')) == "2 customers match"

    saved = browser.submit(
        "/console/campaigns/segments/new",
        "/console/campaigns/segments/new",
        {
            "name": "Hà Nội nhận e-mail",
            "expression": 'city = "ha noi" and has consent "email"',
            "description": "Khách ở thủ đô",
        },
    )
    assert saved.status_code == 303
    listing = browser.get(saved.headers["Location"])
    assert "Segment “Hà Nội nhận e-mail” saved." in text(listing)
    row = re.search(r"Hà Nội nhận e-mail Khách ở thủ đô (.*?) mai", text(listing)).group(1)
    assert row == 'city = "ha noi" and has consent "email" 3'  # the definition and its count now
    segment = crm.campaigns.segments.get("Hà Nội nhận e-mail")
    assert segment.created_by == "mai"
    assert f'href="/console/campaigns/new?segment={segment.id}">New campaign</a>' in listing.get_data(as_text=True)
    form = browser.get(f"/console/campaigns/new?segment={segment.id}").get_data(as_text=True)
    assert f'<option value="{segment.id}" selected>Hà Nội nhận e-mail</option>' in form  # its audience chosen


def test_a_bad_definition_shows_the_parsers_mistake_inline_and_is_not_saved(marketing: Any) -> None:
    crm, browser, _ = marketing
    unfinished = _count(browser, 'city = "ha noi" and')
    assert text(unfinished) == (
        'Mistake at column 20: expected a condition at the end of the expression city = "ha noi" and'
    )
    assert 'role="alert"' in unfinished.get_data(as_text=True)
    assert "<mark> </mark>" in unfinished.get_data(as_text=True)  # the end of the line is marked
    misspelt = _count(browser, 'provnce = "Huế"')
    assert text(misspelt).startswith("Mistake at column 1: unknown field 'provnce' (did you mean 'province'?)")
    assert "<mark>provnce = &#34;Huế&#34;</mark>" in misspelt.get_data(as_text=True)

    refused = browser.submit(
        "/console/campaigns/segments/new", "/console/campaigns/segments/new", {"name": "Sai", "expression": "age > ba"}
    )
    assert refused.status_code == 422
    shown = text(refused)
    assert "The form has errors" in shown and "Mistake at column 7:" in shown
    assert "age &gt; ba</textarea>" in refused.get_data(as_text=True)  # what was typed is kept
    assert crm.campaigns.segments.list() == []


def test_a_marketer_creates_previews_runs_and_reads_the_report(marketing: Any) -> None:
    crm, browser, people = marketing
    segment = crm.campaigns.segments.create("Hà Nội", 'city = "ha noi"')
    made = _campaign(browser, segment=str(segment.id))
    assert made.status_code == 303
    campaign = crm.campaigns.get("Tết")
    assert made.headers["Location"] == f"/console/campaigns/{campaign.id}?saved=1"
    assert (campaign.status, campaign.owner, campaign.cost_per_message_minor) == ("draft", "mai", 300)
    page = text(browser.get(made.headers["Location"]))
    assert "Tết Draft" in page and "Audience Hà Nội" in page and "Cost per message ₫300" in page
    assert "Chào {{ first_name }}" in page and "Run now" in page and "Schedule" in page

    an, cuong = people["hn"][0], people["no"][0]
    preview = browser.get(f"/console/campaigns/{campaign.id}/preview", query_string={"customer": an.id}, headers=HX)
    shown = text(preview)
    assert shown.startswith("This customer would receive it.")
    assert "Sent to a***@example.vn" in shown  # marketing sees no contact details
    assert "Subject Chào An0" in shown and "Ưu đãi Tết cho An 0: http" in shown
    not_consented = text(browser.get(f"/console/campaigns/{campaign.id}", query_string={"customer": cuong.id}))
    assert "This customer would not receive it: no consent for this channel." in not_consented
    assert f'<option value="{cuong.id}" selected>Cuong 0</option>' in browser.get(
        f"/console/campaigns/{campaign.id}", query_string={"customer": cuong.id}
    ).get_data(as_text=True)

    ran = browser.submit(f"/console/campaigns/{campaign.id}", f"/console/campaigns/{campaign.id}/run", {})
    assert ran.headers["Location"] == f"/console/campaigns/{campaign.id}/report?ran=1"
    report = text(browser.get(ran.headers["Location"]))
    assert "The campaign is running" in report and "3 messages are waiting to be sent." in report
    assert "no consent for this channel 1" in report  # Cường was left out, and says why

    crm.campaigns.dispatch()
    first = crm.campaigns.messages(campaign.id)[-1]
    crm.campaigns.tracking.record(first["id"], "delivered")
    crm.campaigns.tracking.record(first["id"], "opened")
    crm.campaigns.tracking.record(first["id"], "clicked")
    page = browser.get(f"/console/campaigns/{campaign.id}/report")
    report = text(page)
    assert "Report: Tết Done" in report
    assert "Audience 4 Sent 3 Received 1 33.3% Opened 1 33.3% Clicked 1 33.3% Converted 0 0%" in report
    assert "Revenue ₫0 Cost ₫900 ROI -100%" in report
    assert "Variant A 3 3 1 (33.3%) 1 (33.3%) 1 (33.3%) 0 (0%) ₫0" in report  # the chart's figures as a table
    chart = re.search(
        r'<img class="chart" src="data:image/svg\+xml;base64,([^"]+)" alt="([^"]+)"', page.get_data(as_text=True)
    )
    svg = base64.b64decode(chart.group(1)).decode()
    assert svg.lstrip().startswith("<?xml") and "conversion rate (%)" in svg and "Tết" in svg
    assert chart.group(2).startswith("Chart: conversion rate of each group")
    assert len(page.get_data()) < 200_000
    assert "Tết Done E-mail Hà Nội mai" in text(browser.get("/console/campaigns/"))


def test_the_customer_360_lists_her_campaign_messages_and_suppressions_and_home_shows_results(marketing: Any) -> None:
    crm, browser, people = marketing
    an = people["hn"][0]
    campaign = crm.campaigns.create(
        "Trung thu", channel="email", body="Bánh trung thu: https://shop.example.vn/tt", subject="Trung thu"
    )
    crm.campaigns.run(campaign.id)
    crm.campaigns.dispatch()
    mine = next(m for m in crm.campaigns.messages(campaign.id) if m["customer_id"] == an.id)
    crm.campaigns.tracking.record(mine["id"], "clicked")
    crm.campaigns.suppress(customer_id=an.id, channel="sms", reason="không nhận SMS")
    page = text(browser.get(f"/console/customers/{an.id}"))
    assert re.search(r"Campaign messages \S.* Trung thu · E-mail · Clicked", page)
    assert "On the suppression list SMS — không nhận SMS" in page
    cuong = people["no"][0]
    assert "Trung thu · E-mail · Not sent (no consent for this channel)" in text(
        browser.get(f"/console/customers/{cuong.id}")
    )

    home = text(browser.get("/console/"))
    assert "Campaign results Campaign Sent Click rate Trung thu 5 20%" in home


def test_a_template_mistake_is_shown_by_the_message_and_the_form_keeps_what_was_typed(marketing: Any) -> None:
    crm, browser, _ = marketing
    refused = _campaign(browser, body="Chào {{ first_nam }}", cost_per_message="1.5")
    assert refused.status_code == 422
    shown = text(refused)
    assert "VND amounts have 0 decimal places" in shown  # the amount is checked in the form first
    refused = _campaign(browser, body="Chào {{ first_nam }}")
    html = refused.get_data(as_text=True)
    assert refused.status_code == 422 and "unknown placeholder {{ first_nam }} (did you mean 'first_name'?)" in text(
        refused
    )
    assert re.search(r'<textarea id="body"[^>]*aria-invalid="true"[^>]*>Chào \{\{ first_nam \}\}</textarea>', html)
    assert crm.campaigns.list() == []


def test_a_run_nobody_may_receive_is_refused_on_the_page_and_a_draft_can_be_scheduled(marketing: Any) -> None:
    crm, browser, _ = marketing
    crm.campaigns.segments.create("Chưa đồng ý", 'name starts with "Cuong"')
    campaign = crm.campaigns.create("Không ai", channel="email", body="Xin chào", segment="Chưa đồng ý")
    refused = browser.submit(f"/console/campaigns/{campaign.id}", f"/console/campaigns/{campaign.id}/run", {})
    assert refused.status_code == 422
    assert "no customer can receive campaign 'Không ai': all 1 in the audience are excluded (no_consent 1)" in text(
        refused
    )
    assert crm.campaigns.get(campaign.id).status == "draft"

    scheduled = browser.submit(
        f"/console/campaigns/{campaign.id}", f"/console/campaigns/{campaign.id}/schedule", {"at": "2030-01-25T09:00"}
    )
    assert scheduled.status_code == 303
    assert crm.campaigns.get(campaign.id).scheduled_at.isoformat() == "2030-01-25T02:00:00+00:00"  # 09:00 in Hà Nội
    page = text(browser.get(f"/console/campaigns/{campaign.id}"))
    assert "Không ai Scheduled" in page and "Scheduled for Jan 25, 2030, 9:00 AM" in page
    assert "Run now" in page and "Send at" not in page  # scheduled: it can still run now, not be scheduled again

    texted = crm.campaigns.create("Tin nhắn", channel="sms", body="Xin chào")  # no adapter delivers SMS here
    an = crm.customers.find("An 0").items[0]
    preview = text(browser.get(f"/console/campaigns/{texted.id}", query_string={"customer": an.id}))
    assert "no adapter delivers channel 'sms' (channels ready: email)" in preview


def test_a_sales_user_without_campaign_permissions_gets_403_and_no_menu_panel_or_tile(marketing: Any) -> None:
    crm, mai, _ = marketing
    console_user(crm, "lan", roles=["sales"], locale="en")
    an = crm.customers.add(name="Nguyễn Văn An", owner="lan")
    campaign = crm.campaigns.create("Tết", channel="email", body="Chúc mừng năm mới")
    crm.campaigns.segments.create("Hà Nội", 'city = "ha noi"')
    lan = ConsoleBrowser(crm)
    lan.sign_in("lan")
    for path in (
        "/console/campaigns/",
        "/console/campaigns/segments",
        "/console/campaigns/segments/new",
        "/console/campaigns/new",
        f"/console/campaigns/{campaign.id}",
        f"/console/campaigns/{campaign.id}/report",
        "/console/campaigns/segments/count?expression=id%3D1",
    ):
        page = lan.get(path)
        assert (page.status_code, text(page).split(" · ")[0]) == (403, "You may not do this."), path
    home = text(lan.get("/console/"))
    assert "Campaigns" not in home and "Segments" not in home and "Campaign results" not in home
    assert "Campaign messages" not in text(lan.get(f"/console/customers/{an.id}"))
    page_token = re.search(r'"X-CSRF-Token": "([0-9a-f]+)"', lan.get("/console/").get_data(as_text=True)).group(1)
    refused = lan.post(f"/console/campaigns/{campaign.id}/run", headers={"X-CSRF-Token": page_token})
    assert refused.status_code == 403  # a genuine request from her page, refused for want of campaigns.send
    assert crm.campaigns.get(campaign.id).status == "draft"
    mai_token = re.search(r'"X-CSRF-Token": "([0-9a-f]+)"', mai.get("/console/").get_data(as_text=True)).group(1)
    assert mai.post(f"/console/campaigns/{campaign.id}/run", headers={"X-CSRF-Token": mai_token}).status_code == 303
    assert crm.campaigns.get(campaign.id).status == "running"  # the same request from a marketer runs it


def test_a_read_only_user_sees_campaigns_but_no_buttons_and_may_not_run_them(marketing: Any) -> None:
    crm, _, _ = marketing
    console_user(crm, "dung", roles=["read-only"], locale="en")
    campaign = crm.campaigns.create("Tết", channel="email", body="Chúc mừng năm mới")
    dung = ConsoleBrowser(crm)
    dung.sign_in("dung")
    listing = text(dung.get("/console/campaigns/"))
    assert "Tết Draft" in listing and "New campaign" not in listing
    page = dung.get(f"/console/campaigns/{campaign.id}")
    assert page.status_code == 200 and "Run now" not in text(page) and "Schedule" not in text(page)
    assert dung.get("/console/campaigns/new").status_code == 403
    assert "New segment" not in text(dung.get("/console/campaigns/segments"))


def test_a_vietnamese_marketer_reads_the_pages_in_vietnamese(shop: Any) -> None:
    console_user(shop, "yen", roles=["marketing"], locale="vi")
    kit.people(shop, 2, prefix="An")
    campaign = shop.campaigns.create("Tết", channel="email", body="Chúc mừng năm mới", cost_per_message_minor=1_500)
    shop.campaigns.run(campaign.id)
    shop.campaigns.dispatch()
    browser = ConsoleBrowser(shop)
    browser.sign_in("yen")
    home = text(browser.get("/console/"))
    assert "Chiến dịch Phân khúc" in home and "Kết quả chiến dịch Chiến dịch Đã gửi Tỷ lệ nhấp Tết 2 0%" in home
    assert "Chiến dịch mới" in text(browser.get("/console/campaigns/"))
    assert text(_count(browser, 'city = "ha noi"')) == "2 khách hàng phù hợp"
    assert text(_count(browser, 'city = "ha noi" and')).startswith("Lỗi ở cột 20:")
    report = text(browser.get(f"/console/campaigns/{campaign.id}/report"))
    assert "Báo cáo: Tết Hoàn tất" in report and "Đối tượng 2 Đã gửi 2" in report
    assert "Chi phí 3.000 ₫" in report  # money the Vietnamese way
    builder = text(browser.get("/console/campaigns/segments/new"))
    assert "Phân khúc mới" in builder and "Các trường có thể dùng" in builder


@pytest.mark.sqlite_only  # the catalogs, not the database
def test_every_text_of_the_console_part_has_a_vietnamese_translation(crm: Any) -> None:
    named = {
        *console.STATUSES.values(),
        *console.PROGRESS.values(),
        *console.REASONS.values(),
        *console.FIELD_TYPES.values(),
        "Audience",
        "Sent",
        "Received",
        "Opened",
        "Clicked",
        "Converted",
        "Revenue",
        "Cost",
    }  # the report's figures
    assert untranslated(crm, "campaigns", sources=("console.py", "reports.py"), also=named) == []
