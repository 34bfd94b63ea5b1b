"""The console's customer tools: duplicates and merge review, import from a file, export of a list, erasure.

Each page calls the service the CLI and the API call, as the signed-in user, so the same permissions and scopes
hold: ``duplicate_pairs`` and ``merge`` (``customers.merge``), ``import_customers`` (``customers.create``), the
export's own writer (``write_customers``, the file ``crmkit customers export`` writes) over the customers ``find``
lists (``customers.export``), and ``erase`` (``customers.erase``).
"""

from __future__ import annotations

import csv
import io
import os
import re
import secrets
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

from werkzeug.wrappers import Response

from crmkit.console.app import MAX_UPLOAD
from crmkit.console.extensions import ConsolePage
from crmkit.core.transfer import REJECT_COLUMNS, import_customers, write_customers
from crmkit.errors import Conflict, NotFound, ValidationError

if TYPE_CHECKING:
    from crmkit.console.app import ConsoleRequest
    from crmkit.core.models import Customer, Page

DUPLICATE_PAIRS = 50
SHOWN_REJECTS = 20
EXPORT_PAGE = 1000
#: Reject files are kept this long for their download link (seconds).
REJECTS_KEPT = 24 * 3600
FORMATS = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl"}
LIST_FILTERS = ("q", "owner", "team", "tag", "stage")
#: The start of a duplicate finder's reason → its msgid (longest first: "same name and…" before "same name").
REASONS = (
    ("same email", "Same e-mail"),
    ("same phone", "Same phone"),
    ("same name and birth date", "Same name and birth date"),
    ("same name", "Same name"),
    ("similar name", "Similar name"),
)
_TOKEN = re.compile(r"[A-Za-z0-9_-]{20,64}")


def tool_pages() -> list[ConsolePage]:
    """The tools' routes (static paths: they win over ``/console/customers/<int:customer_id>``)."""
    one = "/console/customers/duplicates/<int:customer_id>/<int:other_id>"
    return [
        ConsolePage("/console/customers/duplicates", duplicates, permission="customers.read"),
        ConsolePage(one, compare, permission="customers.read"),
        ConsolePage(one + "/merge", merge, methods=("POST",), permission="customers.merge"),
        ConsolePage("/console/customers/import", import_file, methods=("GET", "POST"), permission="customers.create"),
        ConsolePage("/console/customers/import/rejects/<token>", rejects, permission="customers.create"),
        ConsolePage("/console/customers/export.csv", export, permission="customers.export"),
        ConsolePage(
            "/console/customers/<int:customer_id>/erase", erase, methods=("GET", "POST"), permission="customers.erase"
        ),
    ]


def list_filters(request: ConsoleRequest) -> dict[str, str]:
    """The customer list's filters from the query string (kept in paging, search and export links)."""
    return {name: request.http.args.get(name, "").strip() for name in LIST_FILTERS}


def find_filtered(request: ConsoleRequest, filters: dict[str, str], after: str | None, limit: int) -> Page[Customer]:
    """One page of ``crm.customers.find`` for the list's filters (as the user: scoped and masked)."""
    return request.crm.customers.find(
        filters["q"] or None,
        owner=filters["owner"] or None,
        team=filters["team"] or None,
        tag=filters["tag"] or None,
        lifecycle_stage=filters["stage"] or None,
        after=after,
        limit=limit,
    )


# -- duplicates and merge ----------------------------------------------------------------------------------


def reason_label(request: ConsoleRequest, reason: str) -> str:
    """Why two customers look the same, in the user's language, without the shared value itself."""
    for start, msgid in REASONS:
        if reason.startswith(start):
            return request.i18n.gettext(msgid)
    return reason


def duplicates(request: ConsoleRequest) -> Response:
    """Likely duplicate pairs among the customers the user may read, the surest first, each with a compare link."""
    crm = request.crm
    pairs = crm.customers.duplicate_pairs(limit=DUPLICATE_PAIRS)
    shown: dict[int, Customer] = {}
    for customer_id in sorted({i for pair in pairs for i in (pair.customer_id, pair.other_id)}):
        shown[customer_id] = crm.customers.get(customer_id)
    rows = [(shown[p.customer_id], shown[p.other_id], reason_label(request, p.reason), p.score) for p in pairs]
    return request.render("customer_duplicates.html", rows=rows)


def compare(request: ConsoleRequest, *, error: str | None = None, status: int = 200) -> Response:
    """Two customers side by side (contacts, owner, stage, tags, interactions) and the form merging one into the other."""
    crm, first_id, second_id = request.crm, request.params["customer_id"], request.params["other_id"]
    first, second = crm.customers.profile(first_id), crm.customers.profile(second_id)
    if first.customer.id == second.customer.id:  # already merged: the customer they became
        return request.redirect(f"/console/customers/{first.customer.id}")
    kept = min((first.customer, second.customer), key=lambda c: (c.created_at, c.id)).id
    return request.render(
        "customer_compare.html",
        status=status,
        profiles=(first, second),
        kept=kept,
        error=error,
        action=f"/console/customers/duplicates/{first_id}/{second_id}/merge",
        can_merge=request.allowed("customers.merge"),
    )


def merge(request: ConsoleRequest) -> Response:
    """Merge the other customer into the one chosen to keep (``crm.customers.merge``), then show the kept one's 360."""
    pair = (request.params["customer_id"], request.params["other_id"])
    chosen = request.http.form.get("kept", "")
    if chosen not in {str(i) for i in pair}:
        return compare(request, error=request.i18n.gettext("Choose the customer to keep."), status=422)
    kept = int(chosen)
    merged = pair[1] if kept == pair[0] else pair[0]
    try:
        request.crm.customers.merge(kept, merged)
    except (Conflict, ValidationError) as exc:
        return compare(request, error=str(exc), status=409)
    return request.redirect(f"/console/customers/{kept}", merged=1)


# -- import ----------------------------------------------------------------------------------------------------


def _reject_folder() -> Path:
    """Where reject files wait for their download (shared by the server's processes on this machine)."""
    folder = Path(tempfile.gettempdir()) / "crmkit-console-rejects"
    folder.mkdir(mode=0o700, exist_ok=True)
    return folder


def _reject_file(request: ConsoleRequest, token: str) -> Path:
    """The reject file of this user's import ``token`` (another user's token names no file)."""
    assert request.user is not None  # noqa: S101 - the route requires sign-in; narrows the type for mypy
    return _reject_folder() / f"{request.user.id}-{token}.csv"


def _forget_old_rejects() -> None:
    """Delete reject files older than :data:`REJECTS_KEPT`."""
    limit = time.time() - REJECTS_KEPT
    for old in _reject_folder().glob("*.csv"):
        if old.stat().st_mtime < limit:
            old.unlink(missing_ok=True)


def _first_rejects(path: Path) -> list[dict[str, str]]:
    """The first rejected rows of a reject file: row, line and reason."""
    with path.open(encoding="utf-8-sig", newline="") as handle:
        reader = csv.DictReader(handle)
        return [{name: row[name] for name in REJECT_COLUMNS} for _, row in zip(range(SHOWN_REJECTS), reader)]


def import_file(request: ConsoleRequest) -> Response:
    """Upload a CSV or JSON Lines file; it is imported while the page waits, then the counts and the rejects show."""
    if request.http.method == "GET":
        return request.render("customer_import.html", summary=None, error=None)
    upload = request.http.files.get("file")
    fmt = FORMATS.get(Path(upload.filename or "").suffix.lower()) if upload else None
    gettext = request.i18n.gettext
    if upload is None or not upload.filename:
        return request.render("customer_import.html", status=422, summary=None, error=gettext("Choose a file."))
    if fmt is None:
        return request.render(
            "customer_import.html",
            status=422,
            summary=None,
            error=gettext("The file must be CSV (.csv) or JSON Lines (.jsonl)."),
        )
    _forget_old_rejects()
    token = secrets.token_urlsafe(24)
    reject_path = _reject_file(request, token)
    handle, path = tempfile.mkstemp(suffix="." + fmt)
    try:
        with os.fdopen(handle, "wb") as saved:
            size = 0
            while chunk := upload.stream.read(1 << 16):
                size += len(chunk)
                if size > MAX_UPLOAD:
                    return request.render(
                        "customer_import.html",
                        status=413,
                        summary=None,
                        error=gettext(
                            "The file is larger than 10 MB: import it with the command crmkit customers import."
                        ),
                    )
                saved.write(chunk)
        summary = import_customers(request.crm, path, format=fmt, reject_path=reject_path)
    except ValidationError as exc:
        return request.render("customer_import.html", status=422, summary=None, error=str(exc))
    finally:
        os.unlink(path)
    shown = _first_rejects(reject_path) if summary.reject_path else []
    return request.render(
        "customer_import.html",
        summary=summary,
        error=None,
        rejects=shown,
        file=upload.filename,
        rejects_url=request.url(f"/console/customers/import/rejects/{token}") if summary.reject_path else None,
    )


def rejects(request: ConsoleRequest) -> Response:
    """The reject file of the user's own import: each rejected row with its row, line and reason naming the field."""
    token = request.params["token"]
    path = _reject_file(request, token) if _TOKEN.fullmatch(token) else None
    if path is None or not path.is_file():
        raise NotFound("reject file", token)
    return Response(
        path.read_bytes(),
        content_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="rejects.csv"'},
    )


# -- export ----------------------------------------------------------------------------------------------------


def _exported(request: ConsoleRequest, filters: dict[str, str]) -> list[list[Customer]]:
    """Every customer of the filtered list within the user's ``customers.export`` scope (masked as find shows them),
    a page at a time."""
    access = request.crm.access
    found: list[list[Customer]] = []
    after: str | None = None
    while True:
        page = find_filtered(request, filters, after, EXPORT_PAGE)
        found.append([c for c in page.items if access.covers(c.owner, "customers.export")])
        after = page.next_cursor
        if after is None:
            return found


def export(request: ConsoleRequest) -> Response:
    """The customer list as filtered on the page, as the CSV file ``crmkit customers export`` writes for them
    (the import's columns, links by external id, Excel-ready: UTF-8 BOM): importing it gives them back."""
    crm = request.crm
    try:
        pages = _exported(request, list_filters(request))
    except ValidationError as exc:
        return request.render("error.html", status=422, message=str(exc))
    keys = sorted({key for page in pages for customer in page for key in customer.attributes})
    out = io.StringIO()
    write_customers(crm, out, pages, keys, bom=True)
    name = f"customers-{crm.today().isoformat()}.csv"  # the business's day, as the export's times
    return Response(
        out.getvalue().encode("utf-8"),
        content_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


# -- erasure ---------------------------------------------------------------------------------------------------


def erase(request: ConsoleRequest) -> Response:
    """Ask the user to type the customer's name, then erase them for good (``crm.customers.erase``)."""
    crm, customer_id = request.crm, request.params["customer_id"]
    customer = crm.customers.get(customer_id)
    if customer.id != customer_id or customer.status != "active":
        raise NotFound("customer", customer_id)
    action = f"/console/customers/{customer_id}/erase"
    if request.http.method == "GET":
        return request.render("customer_erase.html", customer=customer, action=action, typed="", error=None)
    typed = request.http.form.get("confirm", "").strip()
    if typed != customer.name:
        return request.render(
            "customer_erase.html",
            status=422,
            customer=customer,
            action=action,
            typed=typed,
            error=request.i18n.gettext("Type the customer's name exactly as shown to erase them."),
        )
    try:
        crm.customers.erase(customer_id, reason="erasure request via the console")
    except Conflict as exc:
        return request.render(
            "customer_erase.html", status=409, customer=customer, action=action, typed=typed, error=str(exc)
        )
    return request.redirect("/console/customers", erased=1)
