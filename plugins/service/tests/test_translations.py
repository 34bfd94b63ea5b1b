"""Every text the plugin's console shows has a Vietnamese translation in its own catalog."""

from __future__ import annotations

import re
from importlib import resources

from crmkit_service import console

PACKAGE = resources.files("crmkit_service")


def catalog() -> dict[str, str]:
    text = PACKAGE.joinpath("locale/vi/LC_MESSAGES/crmkit_service.po").read_text(encoding="utf-8")
    return dict(re.findall(r'^msgid "(.+)"\nmsgstr "(.*)"$', text, flags=re.MULTILINE))


def test_every_console_text_is_translated():
    used = set(console.STATUS_LABELS.values()) | set(console.PRIORITY_LABELS.values()) | {"Cases", "My open cases"}
    for template in PACKAGE.joinpath("templates/console").iterdir():
        used |= set(re.findall(r'_\("([^"]+)"\)', template.read_text(encoding="utf-8")))
    translated = catalog()
    missing = sorted(msgid for msgid in used if not translated.get(msgid))
    assert not missing, f"untranslated: {missing}"


def test_every_report_rule_and_survey_text_is_translated(crm_factory):
    from crmkit_service import report_pages
    from crmkit_service.commands_quality import RULE_COLUMNS

    crm = crm_factory(plugins=["service"])
    an = crm.customers.add(name="Nguyễn Văn An")
    crm.service.open(an.id, "Còn mở")
    done = crm.service.open(an.id, "Đã xong")
    crm.service.set_status(done.id, "resolved", resolution="Đã xử lý")
    crm.service.csat.record(done.id, 5)
    columns = {key for name in report_pages.TITLES for row in crm.service.reports.run(name) for key in row}
    used = set(report_pages.TITLES.values()) | set(RULE_COLUMNS) | columns
    used |= {"Service reports", "Nothing to report for this period.", "Rule removed.", "There was no such rule."}
    used |= {"HTML report written to %(path)s", "name", "value"}
    translated = catalog()
    missing = sorted(msgid for msgid in used if not translated.get(msgid))
    assert not missing, f"untranslated: {missing}"
