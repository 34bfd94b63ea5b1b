"""The service reports in the web console (``/console/service/reports``; its menu entry "Service reports" is in
``console.py``): pick a report and a period, see its bar chart and its table — the same rows as
``crmkit service report`` and the API, in the user's scope and language."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

from crmkit import hookimpl
from crmkit.console import ConsolePage
from crmkit.errors import ValidationError
from crmkit.plugin_api import utcnow
from crmkit_service.console import REPORTS
from crmkit_service.report_pages import TITLES, chart, table
from crmkit_service.service import READ

if TYPE_CHECKING:
    from werkzeug.wrappers import Response

    from crmkit.plugin_api import ConsoleRequest

PERIODS = (30, 90, 365)


def reports_page(request: ConsoleRequest) -> Response:
    """One report (the backlog unless chosen) over the last 30, 90 or 365 days."""
    args = request.http.args
    name = args.get("name", "backlog")
    if name not in TITLES:  # a hand-made URL: show the backlog
        name = "backlog"
    days = int(args["days"]) if args.get("days", "").isdigit() and int(args["days"]) in PERIODS else 90
    options = {} if name == "backlog" else {"since": utcnow() - timedelta(days=days)}
    error = None
    try:
        rows = request.crm.service.reports.run(name, **options)
    except ValidationError as exc:
        rows, error = [], "; ".join(m for words in exc.errors.values() for m in words)
    t = request.i18n
    return request.render(
        "crmkit_service:templates/console/reports.html",
        names={key: t.gettext(title) for key, title in TITLES.items()},
        selected=name,
        periods=PERIODS,
        days=days,
        chart=chart(name, rows, t),
        table=table(rows, t),
        error=error,
    )


@hookimpl
def crmkit_console_pages() -> list[ConsolePage]:
    return [ConsolePage(REPORTS, reports_page, permission=READ)]
