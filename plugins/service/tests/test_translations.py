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
