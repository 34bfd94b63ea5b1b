"""The HTML report of an IDIC run: funnel across the four steps, tier × needs matrix, plan coverage, treatments.

Written in one language (``<html lang>``) by the translator the caller chose (``crmkit --locale``, else the
business setting), with the IDIC catalog for its words.
"""

from __future__ import annotations

from decimal import Decimal
from html import escape
from typing import TYPE_CHECKING, Any

from crmkit_idic.config import STEPS

if TYPE_CHECKING:
    from crmkit import CRM
    from crmkit.plugin_api import Translator
    from crmkit_idic.console import Words
    from crmkit_idic.runs import IdicRun

STYLE = (
    "body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;color:#222}"
    "table{border-collapse:collapse;margin:.5rem 0 1.5rem}td,th{border:1px solid #ccc;padding:.3rem .6rem}"
    "th{background:#f3f3f3}td.n{text-align:right}.bar{background:#4a7;height:1rem}"
)


def _table(t: Translator, words: Words, rows: list[dict[str, Any]], columns: list[str]) -> str:
    """``rows`` as an HTML table: column names through the catalog, numbers right-aligned in the locale's style,
    the workflow's tiers and needs groups by name."""
    if not rows:
        return f"<p><em>{escape(t.gettext('nothing'))}</em></p>"
    head = "".join(f"<th>{escape(t.gettext(c))}</th>" for c in columns)
    body = "".join("<tr>" + "".join(_cell(t, words, c, r.get(c)) for c in columns) + "</tr>" for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _cell(t: Translator, words: Words, column: str, value: Any) -> str:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return f"<td class='n'>{escape(t.format_number(Decimal(str(value))))}</td>"
    shown = {"tier": words.tier, "needs": words.needs}.get(column, str)
    return f"<td>{escape(shown(value) if value is not None else '')}</td>"


def render(crm: CRM, run: IdicRun, t: Translator) -> str:
    """The report as one self-contained HTML page (no script, no external resource) in ``t``'s language:
    ``<html lang>``, headings and the workflow's fixed words through the IDIC catalog, numbers, percentages and
    times (in the business's time zone, named) in the locale's style."""
    from crmkit_idic.console import Words

    words = Words(t)
    funnel_rows = []
    for step, key in zip(STEPS, ("customers_matched", "customers", "planned", "treated")):
        result = run.result(step)
        funnel_rows.append(
            {
                "step": step,
                "status": result.status if result else None,
                "customers": (result.counts.get(key, 0) if result else 0),
            }
        )
    top = max((r["customers"] for r in funnel_rows), default=0) or 1
    funnel = "".join(
        f"<tr><td>{escape(words.step(r['step']))}</td>"
        f"<td>{escape(words.status(r['status']) if r['status'] else t.gettext('not run'))}</td>"
        f"<td class='n'>{escape(t.format_number(r['customers']))}</td>"
        f"<td style='width:20rem'><div class='bar' style='width:{100 * r['customers'] / top:.0f}%'></div></td></tr>"
        for r in funnel_rows
    )
    title = t.gettext("IDIC run %(id)s") % {"id": run.id}
    started = t.gettext("%(status)s · started %(time)s by %(actor)s") % {
        "status": words.status(run.status),
        "time": t.format_datetime(run.started_at, crm.timezone),
        "actor": run.actor,
    }
    segment = run.segment or run.segment_id
    if segment:
        started += " · " + t.gettext("segment %(segment)s") % {"segment": segment}
    heading = [t.gettext(c) for c in ("step", "status", "customers")]
    parts = [
        f"<h1>{escape(title)}</h1><p>{escape(started)}</p>",
        *(
            [
                f"<p><strong>{escape(t.gettext('Scoped:'))}</strong> "
                + escape(
                    t.gettext(
                        "the figures count only the customers in %(user)s's scope (a run's own figures cover every "
                        "customer it ran over)."
                    )
                    % {"user": run.scoped}
                )
                + "</p>"
            ]
            if run.scoped
            else []
        ),
        f"<h2>{escape(t.gettext('Funnel'))}</h2><table><tr>"
        + "".join(f"<th>{escape(h)}</th>" for h in heading)
        + f"<th></th></tr>{funnel}</table>",
    ]
    identify = run.result("identify")
    if identify:
        counted = [{"count": words.count(k), "customers": v} for k, v in identify.counts.items()]
        parts.append(f"<h2>{escape(words.step('identify'))}</h2>" + _table(t, words, counted, ["count", "customers"]))
    differentiate = run.result("differentiate")
    if differentiate:
        parts.append(
            f"<h2>{escape(t.gettext('Tier × needs'))}</h2>"
            f"<p>{escape(str(differentiate.report.get('note', '')))}</p>"
            + _table(t, words, differentiate.report.get("matrix", []), ["tier", "needs", "customers", "value"])
        )
        needs = differentiate.report.get("needs") or {}
        if needs:
            method = "k-means" if needs.get("method") == "kmeans" else t.gettext("rules")
            parts.append(
                f"<h2>{escape(t.gettext('Needs groups (%(method)s)') % {'method': method})}</h2>"
                + _table(t, words, needs.get("groups", []), ["needs", "customers"])
            )
    interact = run.result("interact")
    if interact:
        coverage = t.gettext(
            "%(coverage)s of customers have a planned contact (%(planned)s of %(customers)s; "
            "%(without)s without a consented channel)."
        ) % {
            "coverage": t.format_percent(Decimal(str(interact.report.get("coverage", 0)))),
            "planned": t.format_number(interact.counts.get("planned", 0)),
            "customers": t.format_number(interact.counts.get("customers", 0)),
            "without": t.format_number(interact.counts.get("no_consented_channel", 0)),
        }
        parts.append(
            f"<h2>{escape(t.gettext('Plan coverage'))}</h2><p>{escape(coverage)}</p>"
            + _table(t, words, interact.report.get("by_owner", []), ["owner", "contacts"])
        )
    customize = run.result("customize")
    if customize:
        defaulted = t.gettext("%(count)s customers got their tier's default action.") % {
            "count": t.format_number(customize.counts.get("default_action", 0))
        }
        parts.append(
            f"<h2>{escape(t.gettext('Treatments assigned'))}</h2>"
            + _table(t, words, customize.report.get("treatments", []), ["treatment", "customers"])
            + f"<p>{escape(defaulted)}</p>"
        )
    return (
        f"<!doctype html><html lang='{t.locale}'><meta charset='utf-8'><title>{escape(title)}</title>"
        f"<style>{STYLE}</style><body>{''.join(parts)}</body></html>"
    )
