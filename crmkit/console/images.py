"""Pictures in console pages: a chart's SVG as a ``data:`` URI for an ``<img src>``.

The console's CSP allows ``img-src data:`` but no inline styles, so a plugin's chart (matplotlib's SVG, a
hand-drawn radar) goes into a page as an image, with its figures in a table or text beside it.
"""

from __future__ import annotations

import base64


def svg_data_uri(svg: str | bytes) -> str:
    """``data:image/svg+xml;base64,…`` of an SVG document (text or UTF-8 bytes)."""
    data = svg.encode("utf-8") if isinstance(svg, str) else svg
    return "data:image/svg+xml;base64," + base64.b64encode(data).decode("ascii")
