"""The HTTP face of ``demi run --http``: probes, health and Prometheus metrics.

Needs the ``http`` extra (starlette, hypercorn, prometheus-client). Probes answer from
the supervisor's latest results and never run a plugin's health check in a request.
"""

from __future__ import annotations

from ._app import create_app as create_app
from ._server import serve_http as serve_http
from .metrics import Metrics as Metrics

__all__ = ["Metrics", "create_app", "serve_http"]
