"""The HTTP API under load: ``GET /customers/{id}`` and ``GET /customers?q=…`` served by ``crmkit serve``'s gunicorn.

With 1,000,000 customers, 2 server worker processes and 32 concurrent keep-alive clients for 60 s
each, prints requests/s, p99 and errors against the target (0 errors; requests/s ≥ 1/2 of the
peer). The peer, measured in the same run on the same database and the same server settings, is
a bare WSGI handler of the same framework (Werkzeug on gunicorn) answering the same read through
the raw driver: what crmkit's API (token check, scope, services, JSON) costs on top of it. The
same bare handler is also served by uvicorn (through a2wsgi): the measured reason ``crmkit serve``
uses gunicorn.

    python bench/bench_api.py --size full [--postgres postgresql://…/postgres]
"""

from __future__ import annotations

import http.client
import json
import multiprocessing
import os
import random
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import datagen
from bench._report import parse_args, percentile, report, scale
from crmkit.core.customers import SEARCH_SLACK
from crmkit.core.search import prefix_upper_bound, query_prefixes

CLIENT_PROCESSES, THREADS_PER_PROCESS = 4, 8  # 32 concurrent clients
PAGE = 20  # the API's default page of search results
SEARCH_BATCH = PAGE + 1 + SEARCH_SLACK  # the keys crmkit's search reads at a time
SERVER_WORKERS, SERVER_THREADS = 2, 4
KINDS = ("crmkit", "peer", "peer-asgi")
CHILDREN = (
    ("customer_contact_points", "customer_id"),
    ("customer_addresses", "customer_id"),
    ("customer_tags", "customer_id"),
    ("customer_consents", "customer_id"),
    ("customer_memberships", "person_id"),
)
WORDS = (
    "nguyen",
    "tran",
    "le",
    "pham",
    "hoang",
    "vu",
    "dang",
    "bui",
    "do",
    "ho",
    "ngo",
    "duong",
    "ly",
    "an",
    "binh",
    "lan",
    "mai",
    "minh",
    "hung",
    "thu",
    "smith",
    "john",
    "mary",
)


# --- the peer: the same framework, a bare handler over the raw driver ----------------------------------


def peer_app(url: str) -> Any:
    """A Werkzeug app answering the same two reads with hand-written SQL (one connection per thread): the
    customer with its child rows, and crmkit's search algorithm (so only the framework's cost differs)."""
    from werkzeug.wrappers import Request, Response

    local = threading.local()
    sqlite = url.startswith("sqlite")

    def connection() -> Any:
        if not hasattr(local, "conn"):
            if sqlite:
                import sqlite3

                local.conn = sqlite3.connect(url.removeprefix("sqlite:///"), check_same_thread=False)
            else:
                import psycopg

                local.conn = psycopg.connect(datagen.libpq_url(url), autocommit=True)
        return local.conn

    mark = "?" if sqlite else "%s"
    scan = f"SELECT key, customer_id FROM customer_search_keys WHERE key >= {mark} AND key < {mark}"
    after = f" AND (key, customer_id) > ({mark}, {mark})"
    batch = f" ORDER BY key, customer_id LIMIT {SEARCH_BATCH}"

    def rows(sql: str, params: Sequence[Any]) -> list[dict[str, Any]]:
        cursor = connection().execute(sql, params)
        names = [d[0] for d in cursor.description]
        return [
            dict(zip(names, (str(v) if v is not None and not isinstance(v, (int, str)) else v for v in row)))
            for row in cursor.fetchall()
        ]

    def customers(ids: list[int]) -> list[dict[str, Any]]:
        """The customers with their child rows, as crmkit reads them: one query per table for all of them."""
        if not ids:
            return []
        marks = ", ".join([mark] * len(ids))
        found = {r["id"]: r for r in rows(f"SELECT * FROM customers WHERE id IN ({marks})", ids)}
        for table, key in CHILDREN:
            for child in rows(f"SELECT * FROM {table} WHERE {key} IN ({marks})", ids):
                found[child[key]].setdefault(table, []).append(child)
        return [found[i] for i in ids if i in found]

    def search(query: str) -> list[int]:
        """crmkit's search (the same key ranges, keyset batches and first-key rule) in hand-written SQL."""
        ranges = [(prefix, prefix_upper_bound(prefix)) for prefix in sorted(query_prefixes(query))]
        any_range = " OR ".join([f"(key >= {mark} AND key < {mark})"] * len(ranges))
        shown: list[tuple[str, int]] = []
        for low, high in ranges:
            position: tuple[Any, ...] = ()
            while len(shown) <= PAGE:
                hits = (
                    connection().execute(scan + (after if position else "") + batch, (low, high, *position)).fetchall()
                )
                if hits:
                    ids = list({cid for _, cid in hits})
                    first = dict(
                        connection()
                        .execute(
                            f"SELECT customer_id, min(key) FROM customer_search_keys WHERE customer_id IN "
                            f"({', '.join([mark] * len(ids))}) AND ({any_range}) GROUP BY customer_id",
                            (*ids, *(bound for pair in ranges for bound in pair)),
                        )
                        .fetchall()
                    )
                    shown.extend((key, cid) for key, cid in hits if first[cid] == key)
                    position = tuple(hits[-1])
                if len(hits) < SEARCH_BATCH:
                    break
            if len(shown) > PAGE:
                break
        return [cid for _, cid in shown[:PAGE]]

    def app(environ: dict[str, Any], start_response: Any) -> Any:
        request = Request(environ)
        if request.path.startswith("/customers/"):
            found = customers([int(request.path.rsplit("/", 1)[1])])
            body: Any = found[0] if found else None
        else:
            body = {"items": customers(search(request.args["q"]))}
        return Response(json.dumps(body), content_type="application/json")(environ, start_response)

    return app


def asgi_peer() -> Any:
    """The peer as an ASGI app (a2wsgi runs the synchronous handler in a thread pool), for uvicorn's factory."""
    from a2wsgi import WSGIMiddleware

    return WSGIMiddleware(peer_app(os.environ["CRMKIT_BENCH_URL"]), workers=SERVER_THREADS)


def serve(kind: str, url: str, port: int) -> None:
    """Run ``kind`` until killed: ``crmkit`` or ``peer`` on gunicorn with crmkit's settings, ``peer-asgi`` on uvicorn."""
    if kind == "peer-asgi":
        import uvicorn

        os.environ["CRMKIT_BENCH_URL"] = url
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        uvicorn.run(
            "bench_api:asgi_peer",
            factory=True,
            host="127.0.0.1",
            port=port,
            workers=SERVER_WORKERS,
            log_level="warning",
            access_log=False,
        )
        return
    from crmkit.web.server import Server, gunicorn_options

    options = gunicorn_options([f"127.0.0.1:{port}"], SERVER_WORKERS, SERVER_THREADS, 60, False)
    options["errorlog"] = os.devnull
    make = (lambda crm: peer_app(url)) if kind == "peer" else None
    Server(url, options, plugins=[], make_app=make).run()


def start_server(kind: str, url: str) -> tuple[subprocess.Popen[bytes], int]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = subprocess.Popen([sys.executable, __file__, "--serve", kind, url, str(port)])
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/health" if kind == "crmkit" else "/customers/1")
            conn.getresponse().read()
            return process, port
        except OSError:
            time.sleep(0.2)
    process.kill()
    raise SystemExit(f"the {kind} server did not start")


# --- the clients -----------------------------------------------------------------------------------------


def client_process(port: int, paths: list[str], token: str, seconds: float, out: Any) -> None:
    """``THREADS_PER_PROCESS`` keep-alive clients sending ``paths`` in turn for ``seconds``; sends latencies back."""
    latencies: list[float] = []
    errors = [0]
    lock = threading.Lock()
    stop = time.monotonic() + seconds

    def run(offset: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        mine, failed, n = [], 0, offset
        while time.monotonic() < stop:
            path = paths[n % len(paths)]
            n += THREADS_PER_PROCESS
            start = time.perf_counter()
            try:
                conn.request("GET", path, headers={"Authorization": f"Bearer {token}"})
                response = conn.getresponse()
                response.read()
                if response.status != 200:
                    failed += 1
            except OSError:
                failed += 1
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            mine.append(time.perf_counter() - start)
        with lock:
            latencies.extend(mine)
            errors[0] += failed

    threads = [threading.Thread(target=run, args=(i,)) for i in range(THREADS_PER_PROCESS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    out.put((latencies, errors[0]))


def load(port: int, paths: list[str], token: str, seconds: float) -> tuple[int, float, list[float], int]:
    """Requests answered, seconds taken, latencies and errors of 32 clients hammering ``paths`` for ``seconds``."""
    queue: Any = multiprocessing.Queue()
    chunks = [paths[i::CLIENT_PROCESSES] for i in range(CLIENT_PROCESSES)]
    started = time.perf_counter()
    workers = [
        multiprocessing.Process(target=client_process, args=(port, chunk, token, seconds, queue)) for chunk in chunks
    ]
    for worker in workers:
        worker.start()
    results = [queue.get() for _ in workers]
    for worker in workers:
        worker.join()
    latencies = [s for got, _ in results for s in got]
    return len(latencies), time.perf_counter() - started, latencies, sum(e for _, e in results)


def measure(backend: str, url: str, spec: datagen.Spec, seconds: float, rounds: int) -> None:
    """Both reads by crmkit and the peers, taking turns, on the same database with the same server settings."""
    from crmkit import CRM

    print(f"{backend}: {datagen.warm(url)}", flush=True)
    with CRM(url, plugins=[], upgrade=True) as crm:
        crm.set_setting("api.rate_limit", 0)  # one token, 32 clients: the limit would measure itself
        if "bench.api" not in {u.username for u in crm.users.list()}:
            crm.users.add("bench.api", roles=["administrator"])
        token = crm.users.create_token("bench.api", f"bench {time.time():.0f}").secret
    rng = random.Random(spec.seed)
    reads = {
        "GET /customers/{id}": [f"/customers/{rng.randint(1, spec.customers)}" for _ in range(20_000)],
        "GET /customers?q=…": [f"/customers?q={rng.choice(WORDS)}" for _ in range(2_000)],
    }
    servers = {kind: start_server(kind, url) for kind in KINDS}
    totals: dict[str, dict[str, list[Any]]] = {name: {kind: [0, 0.0, [], 0] for kind in KINDS} for name in reads}
    try:  # the servers take turns, a slice at a time, so a change in the machine's load falls on all of them
        for _ in range(rounds):
            for name, paths in reads.items():
                for kind, (_, port) in servers.items():
                    count, elapsed, latencies, errors = load(port, paths, token, seconds / rounds)
                    tally = totals[name][kind]
                    tally[0] += count
                    tally[1] += elapsed
                    tally[2].extend(latencies)
                    tally[3] += errors
    finally:
        for process, _ in servers.values():
            process.terminate()
            process.wait(timeout=30)
    figures = {
        name: {
            kind: (count / elapsed, percentile(latencies, 99) * 1000, errors)
            for kind, (count, elapsed, latencies, errors) in by_kind.items()
        }
        for name, by_kind in totals.items()
    }
    for name, by_kind in figures.items():
        rate, p99, errors = by_kind["crmkit"]
        peer_rate, peer_p99, peer_errors = by_kind["peer"]
        report(
            f"API {name} ({backend}, {spec.customers:,} customers, {SERVER_WORKERS} workers, "
            f"{CLIENT_PROCESSES * THREADS_PER_PROCESS} clients, {seconds:g} s)",
            rate,
            "requests/s",
            target="0 errors and >= 1/2 of the peer's requests/s",
            ok=errors == 0 and rate >= peer_rate / 2,
            peer=f"peer bare Werkzeug + raw driver: {peer_rate:,.0f} requests/s, p99 {peer_p99:.1f} ms, "
            f"{peer_errors} errors (crmkit/peer = {rate / peer_rate:.2f}x)",
            p99=f"{p99:.1f} ms",
            errors=errors,
            load=f"{os.getloadavg()[0]:.1f}",
        )
        asgi_rate, asgi_p99, asgi_errors = by_kind["peer-asgi"]
        report(
            f"server choice: the peer on gunicorn gthread vs uvicorn + a2wsgi, {name} ({backend})",
            peer_rate,
            "requests/s",
            target="gunicorn >= uvicorn for synchronous handlers",
            ok=peer_rate >= asgi_rate,
            peer=f"uvicorn ({SERVER_WORKERS} workers, a2wsgi thread pool of {SERVER_THREADS}): "
            f"{asgi_rate:,.0f} requests/s, p99 {asgi_p99:.1f} ms, {asgi_errors} errors "
            f"(gunicorn/uvicorn = {peer_rate / asgi_rate:.2f}x)",
        )


def main(argv: Sequence[str] | None = None) -> int:
    """Run the SQLite half, and the PostgreSQL half (the target's) when a server URL is given."""
    args = parse_args(__doc__.split("\n\n")[0], argv)
    spec = datagen.Spec.for_size(args.size)
    seconds = scale(args.size, tiny=1, small=10, full=60)
    rounds = scale(args.size, tiny=1, small=3, full=4)  # turns each server takes at each read
    if args.postgres:
        measure("PostgreSQL", datagen.postgres_database(spec, args.postgres), spec, seconds, rounds)
    else:
        print("PostgreSQL half skipped: give --postgres URL or set CRMKIT_BENCH_POSTGRES_URL", flush=True)
    path = datagen.sqlite_database(spec, args.workdir)
    measure("SQLite", f"sqlite:///{path}", spec, seconds, rounds)
    return 0


if __name__ == "__main__":
    if sys.argv[1:2] == ["--serve"]:
        serve(sys.argv[2], sys.argv[3], int(sys.argv[4]))
    else:
        sys.exit(main())
