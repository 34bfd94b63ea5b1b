"""``crmkit serve``: run the HTTP API (and every plugin's routes) on a production server."""

from __future__ import annotations

import os

import click

from crmkit.cli.context import CLIContext


@click.command()
@click.option(
    "--bind",
    "-b",
    multiple=True,
    default=("127.0.0.1:8000",),
    show_default=True,
    help="HOST:PORT (or unix:PATH) to listen on; repeat for several.",
)
@click.option(
    "--workers",
    "-w",
    type=click.IntRange(1, 64),
    default=min(4, 2 * (os.cpu_count() or 1)),
    show_default="2 per core, at most 4",
    help="Worker processes (each with its own database pool).",
)
@click.option("--threads", type=click.IntRange(1, 64), default=4, show_default=True, help="Threads per worker.")
@click.option(
    "--timeout",
    type=click.IntRange(5, 3600),
    default=30,
    show_default=True,
    help="Seconds before a stuck request's worker is restarted.",
)
@click.option(
    "--graceful-timeout",
    type=click.IntRange(1, 3600),
    default=None,
    show_default="--timeout",
    help="Seconds a stopping worker has to finish the requests it is serving.",
)
@click.option(
    "--keep-alive",
    "keepalive",
    type=click.IntRange(0, 300),
    default=5,
    show_default=True,
    help="Seconds an idle kept-alive connection stays open (0: close after each response).",
)
@click.option(
    "--read-timeout",
    type=click.FloatRange(1, 3600),
    default=30,
    show_default=True,
    help="Seconds a request has, in all, to send its headers and body (slow clients are dropped).",
)
@click.option("--access-log/--no-access-log", default=True, show_default=True, help="Log each request to stdout.")
@click.option(
    "--console-templates",
    type=click.Path(exists=True, file_okay=False),
    envvar="CRMKIT_CONSOLE_TEMPLATES",
    help="A folder of templates replacing the console's own of the same name (e.g. base.html).",
)
@click.pass_obj
def serve(
    ctx: CLIContext,
    bind: tuple[str, ...],
    workers: int,
    threads: int,
    timeout: int,
    graceful_timeout: int | None,
    keepalive: int,
    read_timeout: float,
    access_log: bool,
    console_templates: str | None,
) -> None:
    """Serve the HTTP API: /openapi.json, the docs at /docs, every plugin's routes (TLS by your reverse proxy)."""
    from crmkit.console.app import TEMPLATES_ENV
    from crmkit.web.server import Server, gunicorn_options

    if console_templates:  # each worker builds its console from it
        os.environ[TEMPLATES_ENV] = os.path.abspath(console_templates)

    crm = ctx.crm  # opened once here so a bad URL or an outdated schema fails now, with one line
    database = crm.engine.url.render_as_string(hide_password=False)
    ctx.close()
    click.echo(
        f"crmkit API on {', '.join(bind)} with {workers} worker(s) × {threads} thread(s); docs at /docs", err=True
    )
    options = gunicorn_options(
        bind,
        workers,
        threads,
        timeout,
        access_log,
        graceful_timeout=graceful_timeout,
        keepalive=keepalive,
        read_timeout=read_timeout,
    )
    Server(database, options, plugins=ctx.plugins).run()
