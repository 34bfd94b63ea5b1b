"""``crmkit serve``: the app on gunicorn, several worker processes each with its own CRM (and connection pool).

gunicorn runs the WSGI app because the services are synchronous (SQLAlchemy sessions, the
write lock of SQLite): an ASGI server would hand every request to a thread pool anyway. Each
worker process opens the CRM after the fork (no connection crosses a fork) and serves requests
on a few threads; TLS and HTTP/2 belong to the reverse proxy in front (see the README).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from gunicorn.app.base import BaseApplication

if TYPE_CHECKING:
    from crmkit.plugin import Plugin
    from crmkit.web.app import ApiApp


class Server(BaseApplication):  # type: ignore[misc]  # gunicorn ships no type hints
    """A gunicorn application whose workers each build ``create_app(CRM(database))``."""

    def __init__(self, database: str | None, options: dict[str, Any], *,
                 plugins: Sequence[Plugin | str] | None = None,
                 make_app: Callable[[Any], ApiApp] | None = None) -> None:
        self.database = database
        self.options = options
        self.plugins = plugins
        self.make_app = make_app
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self) -> ApiApp:
        from crmkit.crm import CRM
        from crmkit.web import create_app

        crm = CRM(self.database, plugins=self.plugins)
        return (self.make_app or create_app)(crm)


def gunicorn_options(bind: Sequence[str], workers: int, threads: int, timeout: int, access_log: bool) -> dict[str, Any]:
    """gunicorn settings for crmkit: threaded workers, a request timeout, graceful restarts, bounded headers."""
    return {
        "bind": list(bind), "workers": workers, "threads": threads, "worker_class": "gthread",
        "timeout": timeout, "graceful_timeout": timeout, "keepalive": 5,
        "limit_request_line": 8190, "limit_request_fields": 100, "limit_request_field_size": 8190,
        "accesslog": "-" if access_log else None, "errorlog": "-", "proc_name": "crmkit",
        "forwarded_allow_ips": "127.0.0.1,::1",
    }
