"""The HTTP face of ``demi run --http``: probes, health, Prometheus metrics and the
platforms' webhooks.

Needs the ``http`` extra (starlette, hypercorn, prometheus-client). Probes answer from
the supervisor's latest results and never run a plugin's health check in a request.
"""

from __future__ import annotations

from ._app import create_app as create_app
from ._server import address_of as address_of
from ._server import bind_socket as bind_socket
from ._server import is_loopback as is_loopback
from ._server import serve_http as serve_http
from ._webhook import MAX_WEBHOOK_BODY as MAX_WEBHOOK_BODY
from .metrics import Metrics as Metrics

__all__ = [
    "MAX_WEBHOOK_BODY",
    "Metrics",
    "address_of",
    "bind_socket",
    "create_app",
    "is_loopback",
    "serve_http",
]
