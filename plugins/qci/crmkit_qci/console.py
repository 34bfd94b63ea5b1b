"""QCI in the web console: the list of assessments, the assessment form (the active question bank, area by
area), and an assessment's scorecard page with the radar chart, the area table and the action plan.

Every page calls ``crm.qci`` as the signed-in user, as ``crmkit qci`` and the API do: recording needs
``qci.assess``, reading ``qci.read`` (the data scores count only the customers its scope reaches), and
generating the plan ``qci.plan``. The radar is the report's own (``radar.py``), inlined as an SVG image with
its scores in the table beside it.
"""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING

from crmkit import ValidationError, hookimpl
from crmkit.console import ConsolePage, MenuEntry
from crmkit_qci.permissions import ASSESS, PLAN, READ
from crmkit_qci.report import STATUS_NAMES

if TYPE_CHECKING:
    from werkzeug.wrappers import Response

    from crmkit.plugin_api import ConsoleRequest
    from crmkit_qci.assessment import Assessment
    from crmkit_qci.bank import Bank

HOME = "/console/qci/"
NEW = "/console/qci/assessments/new"
TEMPLATES = "crmkit_qci:templates/console/"
NOT_APPLICABLE = "n"  # what the form's "Not applicable" choice sends (one of assessment.NOT_APPLICABLE)
#: The service's messages the form shows in the user's language: a phrase in the message → its msgid.
KNOWN_ERRORS = {
    "not answered": "Not answered: choose a point of the scale, or “Not applicable”.",
    "in the future": "The date cannot be in the future.",
    "is not a date": "Not a date: use the format YYYY-MM-DD.",
    "no answer given": "Answer the questions of at least one area.",
}


def _page(assessment_id: int) -> str:
    """The path of an assessment's scorecard page."""
    return f"/console/qci/assessments/{assessment_id}"


def assessments(request: ConsoleRequest) -> Response:
    """The most recent assessments, newest first, with a "New assessment" button for ``qci.assess``."""
    found = list(reversed(request.crm.qci.assessments.list(limit=50)))
    return request.render(
        TEMPLATES + "assessments.html", assessments=found, can_assess=request.allowed(ASSESS), new=NEW
    )


def _shown_errors(request: ConsoleRequest, exc: ValidationError) -> dict[str, list[str]]:
    """The service's errors by form input (``answers.AP1`` → ``AP1``), known ones in the user's language."""

    def shown(message: str) -> str:
        known = next((msgid for phrase, msgid in KNOWN_ERRORS.items() if phrase in message), None)
        return request.i18n.gettext(known) if known else message

    errors: dict[str, list[str]] = {}
    for field, messages in exc.errors.items():
        name = field.removeprefix("answers.")
        listed = messages if isinstance(messages, list) else [messages]
        errors.setdefault(name, []).extend(dict.fromkeys(shown(str(m)) for m in listed))
    return errors


def _form(
    request: ConsoleRequest, bank: Bank, values: dict[str, str], errors: dict[str, list[str]], status: int = 200
) -> Response:
    """The assessment form with the values entered so far and the errors by their inputs."""
    return request.render(
        TEMPLATES + "assessment_form.html",
        status=status,
        bank=bank,
        values=values,
        errors=errors,
        action=NEW,
        not_applicable=NOT_APPLICABLE,
    )


def assessment_new(request: ConsoleRequest) -> Response:
    """The assessment form: one question after another, grouped by area, each a choice on its scale or "Not
    applicable"; saved with ``crm.qci.assessments.record`` (its errors shown by each question)."""
    qci = request.crm.qci
    bank = qci.bank()
    if request.http.method == "GET":
        return _form(request, bank, {"assessed_on": request.crm.today().isoformat(), "label": ""}, {})
    form = request.http.form
    values = {name: form.get(name, "").strip() for name in ("assessed_on", "label")}
    answers = {}
    for question in bank.questions():
        given = form.get(f"answers.{question.id}", "").strip()
        if given:
            values[question.id] = answers[question.id] = given
    try:
        done = qci.assessments.record(answers, assessed_on=values["assessed_on"] or None, label=values["label"] or None)
    except ValidationError as exc:
        return _form(request, bank, values, _shown_errors(request, exc), status=422)
    return request.redirect(_page(done.id), saved=1)


def _radar(request: ConsoleRequest, assessment: Assessment, data: dict[str, float | None]) -> str:
    """The radar of the assessment's area scores against the data scores, as an image ``src``."""
    from crmkit.plugin_api import svg_data_uri
    from crmkit_qci import radar
    from crmkit_qci.areas import AREAS
    from crmkit_qci.report import ASSESSMENT_COLOUR, DATA_COLOUR

    _ = request.i18n.gettext
    mine = [assessment.score(area.key) for area in AREAS]
    measured = [data[area.key] for area in AREAS]
    return svg_data_uri(
        radar.svg(
            [_(area.title) for area in AREAS],
            [
                radar.Series(_("Assessment"), ASSESSMENT_COLOUR, mine),
                radar.Series(_("Data"), DATA_COLOUR, measured, dashed=True),
            ],
            notes={i: _("(no score)") for i, (a, d) in enumerate(zip(mine, measured)) if a is None and d is None},
            size=640,
            margin=150,
            number=lambda v: request.i18n.format_number(Decimal(str(v)), 1),
        )
    )


def assessment_page(request: ConsoleRequest) -> Response:
    """An assessment's scorecard: overall score, the radar against the period's data scores, each area's
    scores, the KPI lights, and the action plan (with "Make a plan" for ``qci.plan``)."""
    from crmkit_qci.areas import AREAS

    qci, assessment_id = request.crm.qci, request.params["assessment_id"]
    assessment = qci.assessments.get(assessment_id)
    card = qci.scorecard()
    data = card.area_scores()
    rows = [{"title": area.title, "score": assessment.areas.get(area.key), "data": data[area.key]} for area in AREAS]
    actions = qci.plan.list()
    return request.render(
        TEMPLATES + "assessment.html",
        assessment=assessment,
        radar=_radar(request, assessment, data),
        rows=rows,
        card=card,
        lights=card.lights(),
        actions=actions,
        progress=qci.plan.progress(),
        today=qci.plan.today(),
        status_names=STATUS_NAMES,
        area_titles={area.key: area.title for area in AREAS},
        can_plan=request.allowed(PLAN),
        plan_action=_page(assessment_id) + "/plan",
        saved=request.http.args.get("saved"),
        generated=request.http.args.get("generated"),
    )


def generate_plan(request: ConsoleRequest) -> Response:
    """ "Make a plan": the weakest areas' actions added with ``crm.qci.generate_plan``, as ``crmkit qci plan
    --generate`` does; back on the scorecard page, which says how many were added (or why none)."""
    assessment_id = request.params["assessment_id"]
    request.crm.qci.assessments.get(assessment_id)  # a 404 for an assessment that does not exist
    try:
        generated = request.crm.qci.generate_plan()
    except ValidationError:
        return request.redirect(_page(assessment_id), generated="none")
    return request.redirect(_page(assessment_id), generated=len(generated.created))


@hookimpl
def crmkit_console_pages() -> list[ConsolePage]:
    return [
        ConsolePage(HOME, assessments, permission=READ),
        ConsolePage(NEW, assessment_new, methods=("GET", "POST"), permission=ASSESS),
        ConsolePage("/console/qci/assessments/<int:assessment_id>", assessment_page, permission=READ),
        ConsolePage(
            "/console/qci/assessments/<int:assessment_id>/plan", generate_plan, methods=("POST",), permission=PLAN
        ),
    ]


@hookimpl
def crmkit_console_menu() -> list[MenuEntry]:
    return [MenuEntry("QCI", HOME, permission=READ)]


@hookimpl
def crmkit_translations() -> list[tuple[str, str]]:
    return [("crmkit_qci", "crmkit_qci")]  # crmkit_qci/locale/vi/LC_MESSAGES/crmkit_qci.po
