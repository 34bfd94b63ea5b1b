"""Charts for the report (matplotlib, Agg backend): each function takes computed figures and returns a Figure.

``render(figure, "png"|"svg")`` gives the bytes (the report inlines them, or saves them to a folder).
Amounts arrive in minor units and are shown in major units of the currency. A chart's captions go through
its ``text`` argument (a gettext function: the web console and the report pass the reader's; English by default),
its numbers through ``locale`` (a :class:`~crmkit.i18n.Translator`: vi ``1.234.567`` and ``67%``; English without).
"""

from __future__ import annotations

import textwrap
from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal
from io import BytesIO
from typing import TYPE_CHECKING, Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from crmkit.money import minor_units

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from crmkit.plugin_api import Translator

PALETTE = {
    "champions": "#1b7837",
    "loyal": "#5aae61",
    "potential_loyalists": "#a6dba0",
    "new": "#92c5de",
    "promising": "#4393c3",
    "need_attention": "#fee08b",
    "at_risk": "#f46d43",
    "cant_lose": "#d73027",
    "hibernating": "#bababa",
    "lost": "#878787",
}
DARK = {"champions", "cant_lose"}
TYPE_COLOURS = {
    "loyal": "#1b7837",
    "potential": "#a6dba0",
    "new": "#4393c3",
    "prospect": "#92c5de",
    "at_risk": "#f46d43",
    "lost": "#878787",
}


def _english(message: str) -> str:
    return message


def _number(locale: Translator | None) -> Callable[[float], str]:
    """How a chart writes a count or an amount, rounded to a whole number: vi ``1.234.567``, English ``1,234,567``."""
    if locale is None:
        return lambda value: f"{value:,.0f}"
    return lambda value: locale.format_number(Decimal(round(value)))


def _percent(locale: Translator | None) -> Callable[[float], str]:
    """How a chart writes a ratio, as a whole percentage: ``0.667`` is ``67%`` (vi and English alike)."""
    if locale is None:
        return lambda ratio: f"{ratio:.0%}"
    return lambda ratio: locale.format_percent(Decimal(round(ratio, 2)).quantize(Decimal("0.01")))


def _axis(show: Callable[[float], str]) -> Any:
    """A tick formatter writing each value with ``show``."""
    return matplotlib.ticker.FuncFormatter(lambda value, _: show(value))


def _figure(width: float = 7.5, height: float = 4.2) -> tuple[Figure, Any]:
    fig, ax = plt.subplots(figsize=(width, height), dpi=110, layout="constrained")
    return fig, ax


def major(amount_minor: float, currency: str) -> float:
    """An amount in major units of ``currency`` (for axes only: never stored)."""
    return amount_minor / 10 ** minor_units(currency)


def rfm_grid(
    grid: Sequence[Sequence[int]],
    segment_of: Any,
    labels: Mapping[str, str],
    text: Callable[[str], str] = _english,
    *,
    locale: Translator | None = None,
) -> Figure:
    """The 5×5 R × FM grid: cell colour = segment, text = customers in the cell."""
    number = _number(locale)
    fig, ax = _figure(7.5, 5.2)
    for r in range(1, 6):
        for fm in range(1, 6):
            segment = segment_of(r, fm)
            count = grid[r - 1][fm - 1]
            ax.add_patch(plt.Rectangle((fm - 0.5, r - 0.5), 1, 1, color=PALETTE[segment], ec="white", lw=2))
            ink = "white" if segment in DARK else "black"
            ax.text(fm, r + 0.15, number(count), ha="center", va="center", fontsize=11, weight="bold", color=ink)
            ax.text(fm, r - 0.2, textwrap.fill(labels[segment], 12), ha="center", va="center", fontsize=7, color=ink)
    ax.set_xlim(0.5, 5.5)
    ax.set_ylim(0.5, 5.5)
    ax.set_xticks(range(1, 6))
    ax.set_yticks(range(1, 6))
    ax.set_xlabel(text("FM score (frequency and money, 5 = best)"))
    ax.set_ylabel(text("R score (recency, 5 = most recent)"))
    ax.set_title(text("RFM grid: customers per cell"))
    ax.set_aspect("equal")
    return fig


def segment_sizes(
    sizes: Mapping[str, int],
    labels: Mapping[str, str],
    colours: Mapping[str, str],
    title: str,
    text: Callable[[str], str] = _english,
    *,
    locale: Translator | None = None,
) -> Figure:
    """Horizontal bars: customers per segment (or type), with their share."""
    number, percent = _number(locale), _percent(locale)
    fig, ax = _figure()
    names = list(sizes)[::-1]
    counts = [sizes[n] for n in names]
    total = sum(counts) or 1
    bars = ax.barh([labels[n] for n in names], counts, color=[colours[n] for n in names])
    for bar, count in zip(bars, counts):
        ax.text(
            bar.get_width(),
            bar.get_y() + bar.get_height() / 2,
            f" {number(count)} ({percent(count / total)})",
            va="center",
            fontsize=8,
        )
    ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
    ax.xaxis.set_major_formatter(_axis(number))
    ax.set_xlabel(text("customers"))
    ax.set_title(title)
    ax.margins(x=0.2)
    return fig


def clv_distribution(
    values_minor: np.ndarray, currency: str, text: Callable[[str], str] = _english, *, locale: Translator | None = None
) -> Figure:
    """Histogram of customers by lifetime value (the top 1% are grouped in the last bar)."""
    number = _number(locale)
    fig, ax = _figure()
    values = np.asarray(values_minor, dtype=np.float64) / 10 ** minor_units(currency)
    cap = float(np.percentile(values, 99)) if len(values) else 0.0
    clipped = np.minimum(values, cap) if cap > 0 else values
    ax.hist(clipped, bins=40, color="#4393c3", edgecolor="white")
    ax.set_xlabel(
        text("expected lifetime value over the horizon (%(currency)s; last bar: top 1%%)") % {"currency": currency}
    )
    ax.set_ylabel(text("customers"))
    ax.yaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
    ax.yaxis.set_major_formatter(_axis(number))
    ax.set_title(text("How lifetime value is spread over customers"))
    ax.xaxis.set_major_formatter(_axis(number))
    return fig


def cohort_heatmap(
    rows: Sequence[Mapping[str, Any]], text: Callable[[str], str] = _english, *, locale: Translator | None = None
) -> Figure:
    """Cohorts (first-purchase month) × months since: share of the cohort buying in that month."""
    number, percent = _number(locale), _percent(locale)
    width = max((len(r["retention"]) for r in rows), default=1)
    matrix = np.full((len(rows), width), np.nan)
    for i, row in enumerate(rows):
        for k, value in enumerate(row["retention"]):
            if value is not None:
                matrix[i, k] = value
    fig, ax = _figure(8.5, max(2.5, 0.42 * len(rows) + 1.4))
    image = ax.imshow(matrix, cmap="Blues", vmin=0, vmax=1, aspect="auto")
    for i in range(len(rows)):
        for k in range(width):
            if not np.isnan(matrix[i, k]):
                ax.text(
                    k,
                    i,
                    percent(matrix[i, k]),
                    ha="center",
                    va="center",
                    fontsize=7,
                    color="white" if matrix[i, k] > 0.6 else "black",
                )
    ax.set_yticks(range(len(rows)), [f"{r['cohort']} ({number(r['customers'])})" for r in rows], fontsize=8)
    ax.set_xticks(range(width), [str(k) for k in range(width)], fontsize=8)
    ax.set_xlabel(text("months since first purchase"))
    ax.set_title(text("Cohort retention: share of each month's new buyers who bought again"))
    fig.colorbar(image, ax=ax, shrink=0.8, format=_axis(percent))
    return fig


def monthly_trend(
    months: Sequence[Mapping[str, Any]],
    currency: str,
    text: Callable[[str], str] = _english,
    *,
    locale: Translator | None = None,
) -> Figure:
    """Revenue per month (bars) and active customers (line)."""
    number = _number(locale)
    fig, ax = _figure(8.5, 4.2)
    labels = [m["month"] for m in months]
    revenue, active = text("revenue"), text("active customers")
    ax.bar(labels, [major(m["revenue_minor"], currency) for m in months], color="#92c5de", label=revenue)
    ax.set_ylabel(text("revenue (%(currency)s)") % {"currency": currency})
    ax.yaxis.set_major_formatter(_axis(number))
    ax.tick_params(axis="x", labelrotation=45, labelsize=8)
    other = ax.twinx()
    other.plot(labels, [m["active"] for m in months], color="#d73027", marker="o", label=active)
    other.set_ylabel(active)
    other.set_ylim(bottom=0)
    other.yaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
    other.yaxis.set_major_formatter(_axis(number))
    ax.set_title(text("Revenue and active customers per month"))
    handles = ax.get_legend_handles_labels()[0] + other.get_legend_handles_labels()[0]
    ax.legend(handles, [revenue, active], loc="upper left", fontsize=8)
    return fig


def render(fig: Figure, fmt: str = "png", *, close: bool = True) -> bytes:
    """The figure as PNG or SVG bytes (closed afterwards unless ``close=False``)."""
    if fmt not in ("png", "svg"):
        raise ValueError(f"charts are PNG or SVG, not {fmt!r}")
    buffer = BytesIO()
    fig.savefig(buffer, format=fmt)
    if close:
        plt.close(fig)
    return buffer.getvalue()


def data_uri(fig: Figure) -> str:
    """The figure as an SVG ``data:`` URI for an ``<img>`` (text kept as text, not glyph outlines: a few KB
    lighter per chart, and the browser's fonts draw Vietnamese); the figure is closed."""
    from crmkit.plugin_api import svg_data_uri

    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": "crmkit"}):
        return svg_data_uri(render(fig, "svg"))


def holdout_by_frequency(rows: Sequence[Mapping[str, Any]], text: Callable[[str], str] = _english) -> Figure:
    """The hold-out check: mean repeat purchases per customer, actual and predicted, by calibration frequency."""
    fig, ax = _figure()
    shown = [r for r in rows if r["customers"]]
    positions = np.arange(len(shown))
    ax.bar(positions - 0.2, [r["actual"] for r in shown], 0.4, label=text("actual"), color="#4393c3")
    ax.bar(positions + 0.2, [r["predicted"] for r in shown], 0.4, label=text("predicted"), color="#f46d43")
    ax.set_xticks(positions, [r["frequency"] for r in shown])
    ax.set_xlabel(text("repeat purchases in the calibration period"))
    ax.set_ylabel(text("repeat purchases in the hold-out, per customer"))
    ax.legend()
    return fig


def tracking(
    weekly: Sequence[Mapping[str, Any]], calibration_end: str, text: Callable[[str], str] = _english
) -> Figure:
    """Cumulative repeat purchases week by week, actual and predicted, the calibration's end marked."""
    fig, ax = _figure()
    weeks = [w["week"] for w in weekly]
    ax.plot(weeks, [w["actual"] for w in weekly], label=text("actual"), color="#4393c3")
    ax.plot(weeks, [w["predicted"] for w in weekly], "--", label=text("predicted"), color="#f46d43")
    split = next((w["week"] for w in weekly if w["ending"] >= calibration_end), None)
    if split is not None:
        ax.axvline(split, color="#878787", lw=1)
    ax.set_xlabel(text("week"))
    ax.set_ylabel(text("cumulative repeat purchases"))
    ax.legend()
    return fig
