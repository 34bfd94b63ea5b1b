"""A radar (spider) chart as inline SVG, drawn by hand: no plotting library needed to print the report.

Each series is a closed outline through the axes where it has a value (0–100); an axis where it
has none is skipped, not drawn at 0 — "not assessed" must not look like "scored zero".
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from html import escape

import attrs


@attrs.frozen
class Series:
    """One outline: a name for the legend, a colour and a value (or None) per axis."""

    name: str
    colour: str
    values: Sequence[float | None]
    dashed: bool = False


def svg(
    axes: Sequence[str],
    series: Sequence[Series],
    *,
    size: int = 560,
    rings: Sequence[int] = (20, 40, 60, 80, 100),
    notes: Mapping[int, str] | None = None,
    margin: int = 112,
    number: Callable[[float], str] = "{:.1f}".format,
) -> str:
    """The chart as an ``<svg>`` element: axes clockwise from the top, rings every 20 points, a legend below;
    ``margin`` is the room left around the rings for the axis labels (more for longer, e.g. Vietnamese, ones);
    ``number`` writes a score in a point's tooltip (the reader's locale: vi ``46,4``)."""
    n = len(axes)
    if n < 3:
        raise ValueError("a radar chart needs at least three axes")
    radius = (size - 2 * margin) / 2
    cx, cy = size / 2, margin - 30 + radius
    height = int(cy + radius + 70)
    legend_y = height - 18

    def point(i: int, value: float, *, clamp: bool = True) -> tuple[float, float]:
        angle = -math.pi / 2 + 2 * math.pi * i / n
        r = radius * (max(0.0, min(100.0, value)) if clamp else value) / 100
        return cx + r * math.cos(angle), cy + r * math.sin(angle)

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {size} {height}" width="{size}" height="{height}" '
        f'role="img" aria-label="Radar chart of QCI area scores" font-family="system-ui, sans-serif">',
        f'<rect width="{size}" height="{height}" fill="#fff"/>',
    ]
    for ring in rings:
        outline = " ".join(f"{x:.1f},{y:.1f}" for x, y in (point(i, ring) for i in range(n)))
        parts.append(f'<polygon points="{outline}" fill="none" stroke="#d5dae1" stroke-width="1"/>')
        x, y = point(0, ring)
        parts.append(f'<text x="{x + 5:.1f}" y="{y + 11:.1f}" font-size="10" fill="#8a93a0">{ring}</text>')
    for i, label in enumerate(axes):
        x, y = point(i, 100)
        parts.append(f'<line x1="{cx:.1f}" y1="{cy:.1f}" x2="{x:.1f}" y2="{y:.1f}" stroke="#d5dae1" stroke-width="1"/>')
        lx, ly = point(i, 114, clamp=False)
        anchor = "middle" if abs(lx - cx) < 8 else ("start" if lx > cx else "end")
        words = _wrap(label + ((" " + notes[i]) if notes and i in notes else ""), 18)
        height_of = 13 * (len(words) - 1)
        if ly < cy - radius * 0.5:
            first = ly - height_of  # above the centre: the block grows upwards from the label point
        elif ly > cy + radius * 0.5:
            first = ly + 8  # below: it hangs down
        else:
            first = ly + 4 - height_of / 2
        spans = "".join(
            f'<tspan x="{lx:.1f}" y="{first + 13 * k:.1f}">{escape(w)}</tspan>' for k, w in enumerate(words)
        )
        parts.append(f'<text font-size="12" fill="#1d2330" text-anchor="{anchor}">{spans}</text>')
    for s in series:
        known = [(i, v) for i, v in enumerate(s.values) if v is not None]
        dash = ' stroke-dasharray="6 4"' if s.dashed else ""
        if len(known) >= 3:
            outline = " ".join(f"{x:.1f},{y:.1f}" for x, y in (point(i, v) for i, v in known))
            parts.append(
                f'<polygon points="{outline}" fill="{s.colour}" fill-opacity="0.15" stroke="{s.colour}" '
                f'stroke-width="2.5"{dash}/>'
            )
        for i, v in known:
            x, y = point(i, v)
            parts.append(
                f'<circle cx="{x:.1f}" cy="{y:.1f}" r="4" fill="{s.colour}"><title>{escape(s.name)}: '
                f"{escape(axes[i])} {escape(number(v))}</title></circle>"
            )
    x = size / 2 - 110 * len(series) / 2
    for s in series:
        dash = ' stroke-dasharray="6 4"' if s.dashed else ""
        parts.append(
            f'<line x1="{x:.1f}" y1="{legend_y}" x2="{x + 26:.1f}" y2="{legend_y}" stroke="{s.colour}" '
            f'stroke-width="3"{dash}/>'
        )
        parts.append(f'<text x="{x + 32:.1f}" y="{legend_y + 4}" font-size="12" fill="#1d2330">{escape(s.name)}</text>')
        x += 110
    parts.append("</svg>")
    return "".join(parts)


def _wrap(text: str, width: int) -> list[str]:
    lines: list[str] = []
    for word in text.split():
        if lines and len(lines[-1]) + 1 + len(word) <= width:
            lines[-1] += " " + word
        else:
            lines.append(word)
    return lines or [""]
