"""``crmkit plugins new NAME``: write a complete plugin distribution that installs with pip and passes its own tests.

The templates are package data under ``templates/``: ``base`` always, ``api`` and ``console`` on request. In their
paths ``pkg`` becomes ``crmkit_NAME`` and ``NAME`` the plugin's name; in their text ``%%name%%`` is the name,
``%%Name%%`` its CamelCase form, and ``%%hooks%%``, ``%%package_data%%``, ``%%readme_rows%%`` what the chosen
parts add. Every file ends in ``.tmpl`` so that no tool mistakes a template for the project's own code.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterable, Iterator
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path

from crmkit.errors import ValidationError

#: Optional parts ``--with`` adds: a resource of the HTTP API and a console panel, each with its tests.
EXTRAS = ("api", "console")
#: Names a plugin cannot take: the core's commands and services (``crmkit NAME``, ``crm.NAME`` would clash).
CORE_NAMES = frozenset(
    {
        "access", "audit", "catalogs", "core", "crm", "crmkit", "customers", "db", "demo", "doctor", "engine",
        "events", "fields", "hooks", "init", "interactions", "permissions", "plugins", "registry", "roles", "serve",
        "settings", "teams", "testing", "users", "webhooks", "worker",
    }
)  # fmt: skip
_NAME = re.compile(r"[a-z][a-z0-9_]*")
_PARTS = {
    "api": ('"crmkit_%%name%%.api"', "| `crmkit_%%name%%/api.py` | `GET`/`POST /%%name%%/customers/{id}` |"),
    "console": (
        '"crmkit_%%name%%.console"',
        "| `crmkit_%%name%%/console.py` | the customer-360 panel (`templates/%%name%%_panel.html`) |",
    ),
}


def _english(message: str) -> str:
    return message


def check_name(name: str, installed: Iterable[str] = (), gettext: Callable[[str], str] = _english) -> None:
    """Refuse a plugin name that is not a lower-case identifier or clashes with the core or an installed plugin
    (the message in the language of ``gettext``, e.g. ``current_translator().gettext``; English by default)."""
    if not _NAME.fullmatch(name):
        raise ValidationError(
            {
                "name": [
                    gettext("%(name)s: a plugin name is lower-case letters, digits and _, a letter first")
                    % {"name": repr(name)}
                ]
            }
        )
    if name in CORE_NAMES:
        said = gettext("%(quoted)s is a name of crmkit's core (`crmkit %(name)s` / `crm.%(name)s`)")
        raise ValidationError({"name": [said % {"quoted": repr(name), "name": name}]})
    if name in set(installed):
        raise ValidationError({"name": [gettext("%(name)s is the name of an installed plugin") % {"name": repr(name)}]})


def create(
    name: str,
    into: Path,
    extras: Iterable[str] = (),
    installed: Iterable[str] = (),
    gettext: Callable[[str], str] = _english,
) -> Path:
    """Write the distribution ``into/crmkit-NAME`` and return its folder; bad input writes nothing (and is refused
    in the language of ``gettext``)."""
    chosen = sorted(set(extras))
    unknown = [extra for extra in chosen if extra not in EXTRAS]
    if unknown:
        said = gettext("unknown part(s) %(parts)s: choose from %(choices)s")
        raise ValidationError({"with": [said % {"parts": ", ".join(unknown), "choices": ", ".join(EXTRAS)}]})
    check_name(name, installed, gettext)
    target = Path(into) / f"crmkit-{name}"
    if target.exists():
        said = gettext("%(folder)s already exists: nothing was written")
        raise ValidationError({"into": [said % {"folder": target}]})
    hooks = ['"crmkit_%%name%%.hooks"'] + [_PARTS[extra][0] for extra in chosen]
    package_data = ['"migrations/*.py"', '"py.typed"'] + (['"templates/*"'] if "console" in chosen else [])
    words = {
        "%%hooks%%": ", ".join(hooks) + ("," if len(hooks) == 1 else ""),
        "%%package_data%%": ", ".join(package_data),
        "%%readme_rows%%": "\n".join(_PARTS[extra][1] for extra in chosen),
    }
    words |= {"%%name%%": name, "%%Name%%": "".join(part.capitalize() for part in name.split("_"))}
    files = {path: text for part in ["base", *chosen] for path, text in _rendered(part, name, words)}
    for path, text in sorted(files.items()):
        out = target / path
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text.rstrip("\n") + "\n" if text.strip() else "", encoding="utf-8")
    return target


def template_hash() -> str:
    """A digest of every template: what a cache of generated plugins is keyed by."""
    digest = hashlib.sha256()
    for path, item in sorted(_walk(resources.files(__name__) / "templates", ())):
        digest.update("/".join(path).encode() + b"\0" + item.read_bytes())
    return digest.hexdigest()[:16]


def _rendered(part: str, name: str, words: dict[str, str]) -> Iterator[tuple[str, str]]:
    for path, item in _walk(resources.files(__name__) / "templates" / part, ()):
        relative = "/".join(path).removesuffix(".tmpl").replace("NAME", name)
        relative = f"crmkit_{name}{relative[3:]}" if relative.startswith("pkg/") else relative
        text = item.read_text(encoding="utf-8")
        for key in ("%%hooks%%", "%%package_data%%", "%%readme_rows%%", "%%name%%", "%%Name%%"):
            text = text.replace(key, words[key])  # the composite words hold %%name%% themselves: they go first
        yield relative, text


def _walk(folder: Traversable, prefix: tuple[str, ...]) -> Iterator[tuple[tuple[str, ...], Traversable]]:
    for item in folder.iterdir():
        if item.is_dir():
            if item.name != "__pycache__":
                yield from _walk(item, (*prefix, item.name))
        elif item.name.endswith(".tmpl"):
            yield (*prefix, item.name), item
