"""IDIC in the web console: the cycle's status with "Run now", the review queue of possible duplicates with the
merge log, the user's agenda of contacts to make, the treatment rules, an "IDIC" panel on the customer 360 and
a home tile.

Every handler calls ``crm.idic`` (the service ``crmkit idic …`` and the API call) as the signed-in user, so its
permissions (``idic.read``, ``idic.run``, ``idic.review``, ``idic.plan``) and record scopes hold here too.
What the workflow writes as fixed English (tiers, default needs groups and next-best-actions, match reasons,
plan purposes) is shown through :func:`explain`, :func:`action` and the ``*_LABELS`` msgids, translated per user.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any

from crmkit import hookimpl
from crmkit.console import ConsolePage, MenuEntry, Panel, Tile, static_files
from crmkit.errors import Conflict, NotFound, ValidationError
from crmkit_idic.access import MERGE, PLAN, READ, REVIEW, RUN
from crmkit_idic.config import TIERS
from crmkit_idic.service import TREATMENT_FIELDS
from crmkit_idic.steps import DEFAULT_ACTIONS

if TYPE_CHECKING:
    from werkzeug.wrappers import Response

    from crmkit import CRM, Customer
    from crmkit.plugin_api import ConsoleRequest, Translator

HOME = "/console/idic/"
REVIEWS = "/console/idic/reviews"
AGENDA = "/console/idic/agenda"
TREATMENTS = "/console/idic/treatments"
TEMPLATES = "crmkit_idic:templates/console/"
RUNS_SHOWN = 20
REVIEWS_SHOWN = 50

# Fixed English values of the workflow, by kind → their msgids (values not listed are data, shown as they are).
TIER_LABELS = {
    "most_valuable": "Most valuable",
    "most_growable": "Most growable",
    "maintain": "Maintain",
    "below_zero": "Below zero",
    "unknown": "Unknown value",
}
NEEDS_LABELS = {
    "general": "General",
    "service": "Service and warranty",
    "price": "Price and promotions",
    "delivery": "Delivery",
}
STEP_LABELS = {
    "identify": "Identify",
    "differentiate": "Differentiate",
    "interact": "Interact",
    "customize": "Customize",
}
STATUS_LABELS = {
    "running": "Running",
    "failed": "Failed",
    "done": "Done",
    "never run": "Never run",
    "pending": "Pending",
    "accepted": "Accepted",
    "rejected": "Rejected",
    "merged": "Merged",
    "undone": "Undone",
}
CHANNEL_LABELS = {
    "phone": "Phone",
    "sms": "SMS",
    "email": "E-mail",
    "chat": "Chat",
    "social": "Social network",
    "in_person": "Visit in person",
    "zalo": "Zalo",
}
KIND_LABELS = {
    "email": "e-mail",
    "phone": "phone number",
    "external_id": "external id",
    "person": "person",
    "organization": "organization",
}
COUNT_LABELS = {
    "identifiers": "Identifiers gathered",
    "shared_identifiers": "Shared identifiers (ignored)",
    "candidate_pairs": "Candidate pairs",
    "customers_matched": "Customers matched",
    "merged": "Merged automatically",
    "queued": "Sent to review",
    "conflicts": "Conflicts",
    "interactions_routed": "Interactions routed",
    "prospects_created": "Prospects created",
    "customers": "Customers",
    "planned": "Contacts planned",
    "no_consented_channel": "Without a consented channel",
    "previous_items_cancelled": "Earlier contacts replaced",
    "treated": "Given a treatment",
    "default_action": "Given the default action",
    **{f"tier_{tier}": label for tier, label in TIER_LABELS.items()},
}


def _label(labels: dict[str, str]) -> Callable[[Translator, str], str]:
    return lambda i18n, value: i18n.gettext(labels[value]) if value in labels else value


def _kind(i18n: Translator, value: str) -> str:
    return value.partition(":")[2].capitalize() if value.startswith("social:") else _label(KIND_LABELS)(i18n, value)


def _iso_date(i18n: Translator, value: str) -> str:
    try:
        return i18n.format_date(date.fromisoformat(value))
    except ValueError:
        return value


#: How a placeholder of a sentence below is shown (others are shown as written).
_PLACEHOLDERS: dict[str, Callable[[Translator, str], str]] = {
    "tier": _label(TIER_LABELS),
    "needs": _label(NEEDS_LABELS),
    "kind": _kind,
    "one": _kind,
    "two": _kind,
    "date": _iso_date,
    "first": _iso_date,
    "second": _iso_date,
}
Sentences = list[tuple[re.Pattern[str], str]]


def _sentences(*pairs: tuple[str, str]) -> Sentences:
    return [(re.compile(pattern), msgid) for pattern, msgid in pairs]


#: The sentences IDIC writes into match, needs and treatment reasons and plan purposes (regex, msgid with the
#: regex's named groups).
REASONS = _sentences(
    (r"same phone (?P<value>\S+), similar name", "same phone %(value)s, similar name"),
    (r"same phone (?P<value>\S+), different name", "same phone %(value)s, different name"),
    (r"same (?P<kind>\S+) (?P<value>\S+), similar name", "same %(kind)s %(value)s, similar name"),
    (r"same (?P<kind>\S+) (?P<value>\S+), different name", "same %(kind)s %(value)s, different name"),
    (r"(?P<count>\d+) shared identifiers, similar name", "%(count)s shared identifiers, similar name"),
    (r"same name and birth date (?P<date>\S+)", "same name and birth date %(date)s"),
    (
        r"interaction sender (?P<value>\S+) is the other's (?P<kind>\S+)",
        "interaction sender %(value)s is the other's %(kind)s",
    ),
    (r"conflict: a (?P<one>\w+) and a (?P<two>\w+)", "conflict: a %(one)s and a %(two)s"),
    (
        r"conflict: birth dates differ \((?P<first>[^ ]+) / (?P<second>[^)]+)\)",
        "conflict: birth dates differ (%(first)s / %(second)s)",
    ),
    (r"held: its cluster joins customers kept apart", "held: its cluster joins customers kept apart"),
    (r"(?P<tier>[a-z ]+): contact every (?P<days>\d+) days", "%(tier)s: contact every %(days)s days"),
    (r"category bought most", "category bought most"),
    (r"tag (?P<prefix>.+)…", "tag %(prefix)s…"),
    (r"interactions about “(?P<keyword>.+)”", "interactions about “%(keyword)s”"),
    (r"no signal: default group", "no signal: default group"),
    (r"rule “(?P<name>.+)” \(priority (?P<priority>-?\d+)\)", "rule “%(name)s” (priority %(priority)s)"),
    (r"tier (?P<tier>\w+)", "tier %(tier)s"),
    (r"needs (?P<needs>.+)", "needs group %(needs)s"),
    (r"condition (?P<condition>.+)", "condition %(condition)s"),
    (
        r"no treatment rule matched: default for tier (?P<tier>\w+)",
        "no treatment rule matched: default for tier %(tier)s",
    ),
)
#: What a next-best-action holds besides a treatment's own message or offer (kept as written): the tiers'
#: default actions and the treatment's price list and service level (see ``steps.action_of``).
ACTIONS = _sentences(
    *((re.escape(action), action) for action in DEFAULT_ACTIONS.values()),
    (r"price list (?P<value>.+)", "price list %(value)s"),
    (r"service level (?P<value>.+)", "service level %(value)s"),
)
_ACCEPTED = re.compile(r"accepted by (?P<user>[^:]+): (?P<reason>.*)")


def explain(i18n: Translator, text: str | None) -> str:
    """A match, needs or treatment reason or a plan purpose IDIC wrote in English, in the user's language: each
    of its ``; ``- or ``, ``-separated sentences that IDIC writes is translated; anything else is left as written."""
    if not text:
        return ""
    accepted = _ACCEPTED.fullmatch(text)
    if accepted:
        return i18n.gettext("accepted by %(user)s: %(reason)s") % {
            "user": accepted["user"],
            "reason": explain(i18n, accepted["reason"]),
        }
    return "; ".join(
        _sentence(i18n, part, REASONS)
        or ", ".join(_sentence(i18n, piece, REASONS) or piece for piece in part.split(", "))
        for part in text.split("; ")
    )


def action(i18n: Translator, text: str | None) -> str:
    """A next-best-action in the user's language: a tier's default action, and the price list and service level
    parts of a treatment's, translated; the treatment's own words left as the business wrote them."""
    return "; ".join(_sentence(i18n, part, ACTIONS) or part for part in (text or "").split("; ")) if text else ""


def _sentence(i18n: Translator, text: str, sentences: Sentences) -> str | None:
    """One sentence IDIC writes, translated (its placeholders shown per :data:`_PLACEHOLDERS`), or None."""
    for pattern, msgid in sentences:
        found = pattern.fullmatch(text)
        if found:
            values = {
                k: _PLACEHOLDERS.get(k, lambda _, v: v)(i18n, v if k != "tier" else v.replace(" ", "_"))
                for k, v in found.groupdict().items()
            }
            return i18n.gettext(msgid) % values
    return None


class Words:
    """Stored values in the user's language, for templates (``w.tier("maintain")``, ``w.explain(reason)``…);
    the customer-360 panel gets the class in its data (``data.words(i18n)``), as it renders in the core's page."""

    def __init__(self, i18n: Translator) -> None:
        self.i18n = i18n

    def _of(self, table: dict[str, str], value: str | None) -> str:
        return _label(table)(self.i18n, value) if value else ""

    def tier(self, value: str | None) -> str:
        """A value tier's name (``most_valuable`` → "Most valuable")."""
        return self._of(TIER_LABELS, value)

    def needs(self, value: str | None) -> str:
        """A needs group's name: the default groups translated, others (categories, tags) as they are."""
        return self._of(NEEDS_LABELS, value)

    def step(self, value: str | None) -> str:
        """An IDIC step's name."""
        return self._of(STEP_LABELS, value)

    def status(self, value: str | None) -> str:
        """A run's, step's, review item's or merge's status."""
        return self._of(STATUS_LABELS, value)

    def channel(self, value: str | None) -> str:
        """A contact channel's name."""
        return self._of(CHANNEL_LABELS, value)

    def kind(self, value: str | None) -> str:
        """An identifier's kind (``email``, ``social:zalo``…)."""
        return _kind(self.i18n, value or "")

    def count(self, value: str) -> str:
        """What a step's count counts."""
        return self._of(COUNT_LABELS, value)

    def explain(self, value: str | None) -> str:
        """A match, needs or treatment reason or a plan purpose (see :func:`explain`)."""
        return explain(self.i18n, value)

    def action(self, value: str | None) -> str:
        """A next-best-action (see :func:`action`)."""
        return action(self.i18n, value)

    def weekday(self, value: int | None) -> str:
        """A weekday by number (0 = Monday), by name."""
        return self.i18n.format_weekday(date(2024, 1, 1) + timedelta(days=value)) if value is not None else ""


def _render(request: ConsoleRequest, name: str, *, status: int = 200, **values: Any) -> Response:
    return request.render(TEMPLATES + name, status=status, w=Words(request.i18n), **values)


def _notice(request: ConsoleRequest) -> str | None:
    """The message a redirect after a change asked the page to show (a msgid chosen here, never the URL's text)."""
    return NOTICES.get(request.http.args.get("done", ""))


NOTICES = {
    "run": "The IDIC run finished.",
    "resumed": "The IDIC run was resumed and finished.",
    "accepted": "Merged: the two records are one customer now.",
    "rejected": "Kept apart: the two customers will not be merged.",
    "unmerged": "The merge was undone.",
    "added": "Treatment added.",
    "removed": "Treatment removed.",
    "handed": "Handed to campaigns: a segment and a draft campaign were created.",
}


# -- status and runs ----------------------------------------------------------------------------------------


def status_page(request: ConsoleRequest, *, error: str | None = None, status: int = 200) -> Response:
    """Where the cycle stands: the last run and its steps, counts per tier, queue and plan sizes, the runs."""
    idic = request.crm.idic
    runs = idic.runs(limit=RUNS_SHOWN)
    return _render(
        request,
        "status.html",
        status=status,
        summary=idic.status(),
        last=runs[0] if runs else None,
        runs=runs,
        tiers=TIERS,
        error=error,
        notice=_notice(request),
        can_run=request.allowed(RUN) and request.allowed(MERGE),
    )


def run_now(request: ConsoleRequest) -> Response:
    """Run all four steps now, as ``crmkit idic run`` does (synchronously); back to the status page."""
    try:
        request.crm.idic.run()
    except (ValidationError, Conflict) as exc:
        return status_page(request, error=str(exc), status=422)
    return request.redirect(HOME, done="run")


def resume(request: ConsoleRequest) -> Response:
    """Continue a failed run from the step it stopped at (``crmkit idic resume``)."""
    try:
        request.crm.idic.resume(request.params["run_id"])
    except (ValidationError, Conflict) as exc:
        return status_page(request, error=str(exc), status=422)
    return request.redirect(HOME, done="resumed")


# -- review queue and merges --------------------------------------------------------------------------------


def reviews_page(request: ConsoleRequest, *, error: str | None = None, status: int = 200) -> Response:
    """Pending pairs, surest first, each with both customers side by side; below, the merge log with Unmerge."""
    crm = request.crm
    pairs = [
        {**item, "customers": [crm.customers.get(item["customer_id"]), crm.customers.get(item["other_id"])]}
        for item in crm.idic.reviews(limit=REVIEWS_SHOWN)
    ]
    merges = [{**merge, "kept_name": _name(crm, merge["kept_id"])} for merge in crm.idic.merges()]
    return _render(
        request,
        "reviews.html",
        status=status,
        pairs=pairs,
        merges=merges,
        can_merge=request.allowed(MERGE),
        error=error,
        notice=_notice(request),
    )


def _name(crm: CRM, customer_id: int) -> str | None:
    """A customer's name as the user may see it (None once erased)."""
    try:
        return crm.customers.get(customer_id).name
    except NotFound:
        return None


def _decided(request: ConsoleRequest, decide: Callable[[], Any], done: str) -> Response:
    """Apply a reviewer's decision; an item decided meanwhile shows the queue again with a message."""
    try:
        decide()
    except Conflict:
        return reviews_page(request, error="This pair was already decided.", status=409)
    except ValidationError as exc:
        return reviews_page(request, error=str(exc), status=422)
    return request.redirect(REVIEWS, done=done)


def accept(request: ConsoleRequest) -> Response:
    """The pair is one customer: merge it (``crm.idic.accept``)."""
    return _decided(request, lambda: request.crm.idic.accept(request.params["review_id"]), "accepted")


def reject(request: ConsoleRequest) -> Response:
    """The pair are two customers: keep them apart for good, with the reviewer's reason if given."""
    reason = request.http.form.get("reason", "").strip()
    return _decided(
        request,
        lambda: request.crm.idic.reject(request.params["review_id"], **({"reason": reason} if reason else {})),
        "rejected",
    )


def unmerge(request: ConsoleRequest) -> Response:
    """Undo a merge of the log (``crm.idic.unmerge``)."""
    return _decided(request, lambda: request.crm.idic.unmerge(request.params["merge_id"]), "unmerged")


# -- agenda -------------------------------------------------------------------------------------------------


def agenda_page(request: ConsoleRequest) -> Response:
    """The contacts due today or earlier: the user's own, or (``?who=all``) everyone's within their scope."""
    crm = request.crm
    everyone = request.http.args.get("who") == "all"
    items = crm.idic.agenda(None if everyone else crm.access.principal.username)
    return _render(request, "agenda.html", items=items, everyone=everyone, today=crm.today())


# -- treatments ---------------------------------------------------------------------------------------------

FORM_FIELDS = ("name", "tier", "needs", "condition", "priority", *TREATMENT_FIELDS)
BLANK_FORM = {**dict.fromkeys(FORM_FIELDS, ""), "priority": "100"}


def treatments_page(
    request: ConsoleRequest,
    *,
    values: dict[str, str] | None = None,
    errors: dict[str, list[str]] | None = None,
    error: str | None = None,
    status: int = 200,
) -> Response:
    """The treatment rules in the order they are tried; the add form and Remove for ``idic.plan`` holders."""
    crm = request.crm
    return _render(
        request,
        "treatments.html",
        status=status,
        treatments=crm.idic.treatments(),
        can_plan=request.allowed(PLAN),
        has_campaigns=crm.has_service("campaigns"),
        values=values or BLANK_FORM,
        errors=errors or {},
        error=error,
        notice=_notice(request),
        tier_choices=[(tier, request.i18n.gettext(TIER_LABELS[tier])) for tier in TIERS],
    )


def add_treatment(request: ConsoleRequest) -> Response:
    """Save the add form through ``crm.idic.add_treatment``; its errors are shown by the fields, values kept."""
    values = {name: request.http.form.get(name, "").strip() for name in FORM_FIELDS}
    try:
        if not re.fullmatch(r"-?\d{1,9}", values["priority"]):
            raise ValidationError("must be a whole number", field="priority")
        request.crm.idic.add_treatment(
            values["name"],
            tier=values["tier"] or None,
            needs=values["needs"] or None,
            condition_=values["condition"] or None,
            priority=int(values["priority"]),
            **{field: values[field] or None for field in TREATMENT_FIELDS},
        )
    except Conflict:
        return treatments_page(
            request,
            values=values,
            errors={"name": [request.i18n.gettext("A treatment with this name already exists.")]},
            status=409,
        )
    except ValidationError as exc:
        errors = {
            field if field in FORM_FIELDS else "_": [str(m) for m in (v if isinstance(v, list) else [v])]
            for field, v in exc.errors.items()
        }
        return treatments_page(request, values=values, errors=errors, status=422)
    return request.redirect(TREATMENTS, done="added")


def remove_treatment(request: ConsoleRequest) -> Response:
    """Delete the treatment the form names (``crm.idic.remove_treatment``)."""
    request.crm.idic.remove_treatment(request.http.form.get("name", ""))
    return request.redirect(TREATMENTS, done="removed")


def handoff(request: ConsoleRequest) -> Response:
    """Hand the treatment the form names to campaigns: its segment and a draft campaign (``crm.idic.handoff``)."""
    try:
        request.crm.idic.handoff(request.http.form.get("name", ""))
    except (ValidationError, Conflict) as exc:
        return treatments_page(request, error=str(exc), status=422)
    return request.redirect(TREATMENTS, done="handed")


# -- customer 360 and home ----------------------------------------------------------------------------------


def panel_data(crm: CRM, customer: Customer) -> dict[str, Any] | None:
    """The customer's IDIC section (tier, needs, treatment, channel, plan, identifiers) and :class:`Words` to show it;
    None outside the user's scope."""
    with crm.reading() as conn:
        section = crm.idic.profile_section(conn, customer)
    if section is None:
        return None
    shown = {(i["kind"], i["value"]): i for i in section["identifiers"]}  # one line per identifier, any source
    return {**section, "identifiers": list(shown.values()), "words": Words}


def tile_data(crm: CRM) -> dict[str, Any]:
    """How many contacts the user has due today or earlier, and the review queue size they can decide."""
    return {
        "due": len(crm.idic.agenda(crm.access.principal.username)),
        "reviews": crm.idic.status()["review_queue"] if crm.access.allowed(REVIEW) else None,
    }


# -- hooks --------------------------------------------------------------------------------------------------


@hookimpl
def crmkit_console_pages() -> list[ConsolePage]:
    post = ("POST",)
    return [
        ConsolePage(HOME, status_page, permission=READ),
        ConsolePage("/console/idic/run", run_now, methods=post, permission=RUN),
        ConsolePage("/console/idic/runs/<int:run_id>/resume", resume, methods=post, permission=RUN),
        ConsolePage(REVIEWS, reviews_page, permission=REVIEW),
        ConsolePage("/console/idic/reviews/<int:review_id>/accept", accept, methods=post, permission=REVIEW),
        ConsolePage("/console/idic/reviews/<int:review_id>/reject", reject, methods=post, permission=REVIEW),
        ConsolePage("/console/idic/merges/<int:merge_id>/unmerge", unmerge, methods=post, permission=REVIEW),
        ConsolePage(AGENDA, agenda_page, permission=READ),
        ConsolePage(TREATMENTS, treatments_page, permission=READ),
        ConsolePage("/console/idic/treatments/add", add_treatment, methods=post, permission=PLAN),
        ConsolePage("/console/idic/treatments/remove", remove_treatment, methods=post, permission=PLAN),
        ConsolePage("/console/idic/treatments/handoff", handoff, methods=post, permission=PLAN),
        static_files("idic", "crmkit_idic"),
    ]


@hookimpl
def crmkit_console_menu() -> list[MenuEntry]:
    return [
        MenuEntry("IDIC", HOME, permission=READ),
        MenuEntry("Review queue", REVIEWS, permission=REVIEW),
        MenuEntry("My agenda", AGENDA, permission=READ),
    ]


@hookimpl
def crmkit_customer_panels() -> list[Panel]:
    return [Panel("idic", "IDIC", TEMPLATES + "panel.html", panel_data, permission=READ)]


@hookimpl
def crmkit_home_tiles() -> list[Tile]:
    return [Tile("idic", "IDIC", TEMPLATES + "tile.html", tile_data, permission=READ)]


@hookimpl
def crmkit_translations() -> list[tuple[str, str]]:
    return [("crmkit_idic", "crmkit_idic")]  # crmkit_idic/locale/vi/LC_MESSAGES/crmkit_idic.po
