"""The HTML report of an IDIC run: funnel across the four steps, tier × needs matrix, plan coverage, treatments."""

from __future__ import annotations

from html import escape
from typing import TYPE_CHECKING, Any

from crmkit_idic.config import STEPS

if TYPE_CHECKING:
    from crmkit import CRM
    from crmkit_idic.runs import IdicRun

STYLE = ("body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;color:#222}"
         "table{border-collapse:collapse;margin:.5rem 0 1.5rem}td,th{border:1px solid #ccc;padding:.3rem .6rem}"
         "th{background:#f3f3f3}td.n{text-align:right}.bar{background:#4a7;height:1rem}")


def _table(rows: list[dict[str, Any]], columns: list[str]) -> str:
    if not rows:
        return "<p><em>nothing</em></p>"
    head = "".join(f"<th>{escape(c)}</th>" for c in columns)
    body = "".join(
        "<tr>" + "".join(f"<td class='{'n' if isinstance(r.get(c), (int, float)) else ''}'>{escape(str(r.get(c, '')))}</td>"
                         for c in columns) + "</tr>" for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def render(crm: CRM, run: IdicRun) -> str:
    """The report as one self-contained HTML page (no script, no external resource)."""
    funnel_rows = []
    for step, key in zip(STEPS, ("customers_matched", "customers", "planned", "treated")):
        result = run.result(step)
        funnel_rows.append({"step": step, "status": result.status if result else "not run",
                            "customers": (result.counts.get(key, 0) if result else 0)})
    top = max((r["customers"] for r in funnel_rows), default=0) or 1
    funnel = "".join(
        f"<tr><td>{escape(r['step'])}</td><td>{escape(r['status'])}</td><td class='n'>{r['customers']}</td>"
        f"<td style='width:20rem'><div class='bar' style='width:{100 * r['customers'] / top:.0f}%'></div></td></tr>"
        for r in funnel_rows)
    parts = [f"<h1>IDIC run {run.id}</h1><p>{escape(run.status)} · started {run.started_at:%Y-%m-%d %H:%M} UTC by "
             f"{escape(run.actor)}" + (f" · segment {escape(str(run.segment or run.segment_id))}" if run.segment or run.segment_id else "")
             + "</p>",
             *([f"<p><strong>Scoped:</strong> the figures count only the customers in {escape(run.scoped)}'s scope "
                "(a run's own figures cover every customer it ran over).</p>"] if run.scoped else []),
             f"<h2>Funnel</h2><table><tr><th>step</th><th>status</th><th>customers</th><th></th></tr>{funnel}</table>"]
    identify = run.result("identify")
    if identify:
        parts.append("<h2>Identify</h2>" + _table([identify.counts], list(identify.counts)))
    differentiate = run.result("differentiate")
    if differentiate:
        parts.append(f"<h2>Tier × needs</h2><p>{escape(str(differentiate.report.get('note', '')))}</p>"
                     + _table(differentiate.report.get("matrix", []), ["tier", "needs", "customers", "value"]))
        needs = differentiate.report.get("needs") or {}
        if needs:
            method = "k-means" if needs.get("method") == "kmeans" else "rules"
            parts.append(f"<h2>Needs groups ({method})</h2>" + _table(needs.get("groups", []), ["needs", "customers"]))
    interact = run.result("interact")
    if interact:
        coverage = interact.report.get("coverage", 0)
        parts.append(f"<h2>Plan coverage</h2><p>{coverage:.0%} of customers have a planned contact "
                     f"({interact.counts.get('planned', 0)} of {interact.counts.get('customers', 0)}; "
                     f"{interact.counts.get('no_consented_channel', 0)} without a consented channel).</p>"
                     + _table(interact.report.get("by_owner", []), ["owner", "contacts"]))
    customize = run.result("customize")
    if customize:
        parts.append("<h2>Treatments assigned</h2>" + _table(customize.report.get("treatments", []), ["treatment", "customers"])
                     + f"<p>{customize.counts.get('default_action', 0)} customers got their tier's default action.</p>")
    return (f"<!doctype html><html lang='en'><meta charset='utf-8'><title>IDIC run {run.id}</title>"
            f"<style>{STYLE}</style><body>{''.join(parts)}</body></html>")
