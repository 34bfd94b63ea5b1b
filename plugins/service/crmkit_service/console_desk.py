"""The help desk's part of the case page in the web console: what the case concerns (contact, order, product), the merge pointer,
its attachments, and the forms to attach a file by reference, fold a duplicate into the case and send a canned
reply. ``console.case_page`` adds :func:`case_extras` to its page; the forms post to the routes declared here and
come back to the case page, or show it again with the refusal next to the field it names.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from crmkit import hookimpl
from crmkit.console import ConsolePage
from crmkit.errors import Conflict, NotFound, ValidationError
from crmkit_service.service import WRITE

if TYPE_CHECKING:
    from werkzeug.wrappers import Response

    from crmkit.console.app import ConsoleRequest
    from crmkit_service.service import Case

#: A form field → the service's field it carries (the page's inputs have ids of their own).
ATTACH_FIELDS = {"attachment_name": "name", "attachment_url": "url"}


def case_extras(request: ConsoleRequest, case: Case) -> dict[str, Any]:
    """What the case page shows beyond the case itself: its contact's name, its attachments, the canned replies."""
    crm = request.crm
    contact = None
    if case.contact_id is not None:
        try:
            contact = crm.customers.get(case.contact_id)
        except NotFound:  # outside the user's scope: the id alone is shown
            contact = None
    titles: dict[str, str] = {}  # a reply's title as the agent picks it: the Vietnamese variant's when there is one
    for reply in crm.service.canned.list():
        if reply.key not in titles or reply.language == "vi":
            titles[reply.key] = reply.title
    return {"contact": contact, "attachments": crm.service.attachments.list(case.id), "canned": sorted(titles.items())}


def _form_act(request: ConsoleRequest, action: Any, fields: dict[str, str]) -> Response:
    """Run a form; back to the case page, or the page again with the refusal next to the form field (``fields``
    maps the form's inputs to the service's field names)."""
    from crmkit_service.console import CASES, case_page

    form = request.http.form
    try:
        action(request.crm.service, request.params["case_id"], form)
    except ValidationError as exc:
        by_form = {service: name for name, service in fields.items()}
        errors = {by_form.get(key, key): words for key, words in exc.errors.items()}
        return case_page(request, errors=errors, values=dict(form), status=422)
    except Conflict as exc:
        return case_page(request, errors={"_": [str(exc)]}, values=dict(form), status=409)
    return request.redirect(f"{CASES}/{request.params['case_id']}")


def attach(request: ConsoleRequest) -> Response:
    return _form_act(
        request,
        lambda s, cid, f: s.attachments.add(cid, f.get("attachment_name", ""), url=f.get("attachment_url") or None),
        ATTACH_FIELDS,
    )


def merge(request: ConsoleRequest) -> Response:
    def run(service: Any, case_id: int, form: Any) -> None:
        text = form.get("merged", "").strip().lstrip("#")
        if not text.isdigit():
            raise ValidationError("give the number of the duplicate case", field="merged")
        service.merge(case_id, int(text))

    return _form_act(request, run, {})


def send_canned(request: ConsoleRequest) -> Response:
    return _form_act(request, lambda s, cid, f: s.canned.reply(cid, f.get("canned", "")), {})


@hookimpl
def crmkit_console_pages() -> list[ConsolePage]:
    from crmkit_service.console import CASES

    one = CASES + "/<int:case_id>"
    return [
        ConsolePage(one + "/attach", attach, methods=("POST",), permission=WRITE),
        ConsolePage(one + "/merge", merge, methods=("POST",), permission=WRITE),
        ConsolePage(one + "/canned", send_canned, methods=("POST",), permission=WRITE),
    ]
