"""URL maps built once per process for each set of routes.

Building a Werkzeug ``Map`` compiles every rule: about 0.1 s for the API's routes with every plugin. Each app made
for the same plugins (every gunicorn worker's after the fork, an embedding app's, each test's) has the same routes,
so they share one map; a ``Map`` is only read once built (``bind_to_environ`` makes a new adapter per request).
"""

from __future__ import annotations

from collections.abc import Hashable
from functools import lru_cache

from werkzeug.routing import Map, Rule

#: One route: its rule (``/customers/<int:customer_id>``), its endpoint and its methods.
Route = tuple[str, Hashable, tuple[str, ...]]


@lru_cache(maxsize=64)
def url_map(routes: tuple[Route, ...]) -> Map:
    """The map of these routes, in this order (no strict or merged slashes), made once per process."""
    return Map(
        [Rule(rule, endpoint=endpoint, methods=list(methods)) for rule, endpoint, methods in routes],
        strict_slashes=False,
        merge_slashes=False,
    )
