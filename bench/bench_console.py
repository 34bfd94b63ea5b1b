"""The console's customer-360 page: server time and page weight, against the API's JSON for the same customer.

With 1,000,000 customers and 10,000,000 interactions (skewed: a few big accounts hold thousands),
renders ``/console/customers/{id}`` for random customers as a signed-in administrator and prints
the server time's p99 against the target (< 50 ms on SQLite) and the page weight, HTML plus the
stylesheets and scripts it loads, against < 200 KB. The peer, taking turns with the page in the
same run on the same database, is ``GET /customers/{id}/profile`` of the HTTP API: the same
customer 360 as JSON, so the figure shows what templates, translations and panels add.

Server time is the WSGI app's own: from the request's environment to the last byte of the body.

    python bench/bench_console.py --size full [--postgres postgresql://…/postgres]
"""

from __future__ import annotations

import os
import random
import re
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import datagen
from bench._report import parse_args, percentile, report, scale

TARGET_MS = 50.0
TARGET_KB = 200.0
USER = "bench.console"
_ASSET = re.compile(r'<(?:link[^>]+href|script[^>]+src)="([^"]+)"')


def server_ms(app: Any, environ_of: Callable[[str], dict[str, Any]]) -> Callable[[str], tuple[float, bytes]]:
    """A timer of ``app``: milliseconds from a request's environment to its body's last byte, and the body."""

    def timed(path: str) -> tuple[float, bytes]:
        environ = environ_of(path)
        status: list[str] = []
        start = time.perf_counter()
        body = b"".join(app(environ, lambda s, headers, exc_info=None: status.append(s)))
        elapsed = (time.perf_counter() - start) * 1000
        if not status[0].startswith("200"):
            raise SystemExit(f"{path} answered {status[0]}")
        return elapsed, body

    return timed


def page_weight_kb(page: bytes, fetch: Callable[[str], bytes]) -> float:
    """The page and every stylesheet and script it loads, in KB."""
    assets = set(_ASSET.findall(page.decode()))
    return (len(page) + sum(len(fetch(url)) for url in assets)) / 1024


def measure(backend: str, url: str, spec: datagen.Spec, lookups: int) -> None:
    """The 360 page and the API's profile, taking turns on random customers, as one administrator."""
    from werkzeug.test import Client, EnvironBuilder

    from crmkit import CRM
    from crmkit.console.testing import ConsoleBrowser, console_user
    from crmkit.web import create_app

    print(f"{backend}: {datagen.warm(url)}", flush=True)
    with CRM(url, plugins=[], upgrade=True) as crm:
        crm.set_setting("api.rate_limit", 0)
        if USER not in {u.username for u in crm.users.list()}:
            console_user(crm, USER, roles=["administrator"], locale="vi")
        token = crm.users.create_token(USER, f"bench {time.time():.0f}").secret
        app = create_app(crm)
        browser = ConsoleBrowser(crm, app=app)
        browser.sign_in(USER)
        cookies = "; ".join(f"{c.key}={c.value}" for c in browser.client._cookies.values())

        def environ(path: str, headers: dict[str, str]) -> dict[str, Any]:
            return EnvironBuilder(path=path, base_url="http://localhost", headers=headers).get_environ()

        page = server_ms(app, lambda p: environ(p, {"Cookie": cookies, "Accept-Language": "vi"}))
        api = server_ms(app, lambda p: environ(p, {"Authorization": f"Bearer {token}"}))
        rng = random.Random(spec.seed)
        warmup = lookups // 10
        samples: dict[str, list[float]] = {"page": [], "api": []}
        weights: list[float] = []
        fetch = Client(app)
        for n in range(lookups + warmup):
            customer_id = rng.randint(1, spec.customers)
            page_ms, body = page(f"/console/customers/{customer_id}")
            api_ms, _ = api(f"/customers/{customer_id}/profile")
            if n >= warmup:
                samples["page"].append(page_ms)
                samples["api"].append(api_ms)
            if n % 50 == 0:
                weights.append(page_weight_kb(body, lambda asset: fetch.get(asset).get_data()))
    p99, api_p99 = percentile(samples["page"], 99), percentile(samples["api"], 99)
    report(
        f"console customer-360 page, server time p99 ({backend}, {spec.customers:,} customers, "
        f"{spec.interactions:,} interactions)",
        p99,
        "ms",
        target=f"< {TARGET_MS:g} ms",
        ok=p99 < TARGET_MS,
        peer=f"the API's GET /customers/{{id}}/profile: p99 {api_p99:.2f} ms, p50 "
        f"{percentile(samples['api'], 50):.2f} ms (page/API p99 = {p99 / api_p99:.1f}x)",
        p50=f"{percentile(samples['page'], 50):.2f} ms",
        lookups=f"{len(samples['page']):,}",
        load=f"{os.getloadavg()[0]:.1f}",
    )
    report(
        f"console customer-360 page weight with its assets ({backend})",
        max(weights),
        "KB",
        target=f"< {TARGET_KB:g} KB",
        ok=max(weights) < TARGET_KB,
        peer=f"median {sorted(weights)[len(weights) // 2]:.1f} KB over {len(weights)} pages",
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run the SQLite half (the target's), and the PostgreSQL half when a server URL is given."""
    args = parse_args(__doc__.split("\n\n")[0], argv)
    spec = datagen.Spec.for_size(args.size)
    lookups = scale(args.size, tiny=40, small=1_000, full=5_000)
    path = datagen.sqlite_database(spec, args.workdir)
    measure("SQLite", f"sqlite:///{path}", spec, lookups)
    if args.postgres:
        measure("PostgreSQL", datagen.postgres_database(spec, args.postgres), spec, lookups)
    else:
        print("PostgreSQL half skipped: give --postgres URL or set CRMKIT_BENCH_POSTGRES_URL", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
