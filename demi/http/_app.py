"""The ASGI application (starlette): probes, health, metrics, operator commands
(restart, a request to a platform), and the platforms' webhooks."""

from __future__ import annotations

import hmac
import time
from collections.abc import Awaitable, Callable

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ..conductor import Conductor
from ..coordination import Coordinator
from ..coordination.views import health_section, owner_of_each, readiness_problems
from ..supervision import Supervisor
from ._json import SafeJSONResponse
from ._request import request_endpoint
from ._webhook import is_webhook_path, webhook_endpoint
from .metrics import CONTENT_TYPE, Metrics

__all__ = ["create_app"]

#: Paths an orchestrator probes without credentials.
PUBLIC_PATHS = frozenset({"/healthz", "/readyz"})


class _BearerToken(BaseHTTPMiddleware):
    """Require ``Authorization: Bearer <token>`` on every path but the probes and
    the webhooks."""

    def __init__(self, app: Callable[..., Awaitable[None]], token: str) -> None:
        super().__init__(app)
        self._expected = f"Bearer {token}".encode()

    async def dispatch(
        self, request: Request, call_next: RequestResponseEndpoint
    ) -> Response:
        path = request.url.path
        # A webhook's caller is a service that cannot send demi's token; the
        # platform verifies the service's own signature instead.
        if path not in PUBLIC_PATHS and not is_webhook_path(path):
            given = request.headers.get("authorization", "").encode()
            if not hmac.compare_digest(given, self._expected):
                return SafeJSONResponse(
                    {"error": "a valid bearer token is required"},
                    status_code=401,
                    headers={"WWW-Authenticate": "Bearer"},
                )
        return await call_next(request)


def create_app(
    conductor: Conductor,
    supervisor: Supervisor,
    *,
    token: str | None = None,
    heartbeat: Callable[[], float] | None = None,
    stale_after: float = 10.0,
    coordinator: Coordinator | None = None,
) -> Starlette:
    """Build the ASGI app.

    :param token: when set, required as a bearer token on all but the probes and
        the webhooks (whose platforms verify their services' signatures).
    :param coordinator: this replica's membership of a coordination group, if it
        has one: ``/health`` then names each instance's ``owner`` and shows the
        group, ``/readyz`` waits for this replica's own share, ``/metrics`` counts.
    :param heartbeat: returns the monotonic time the conductor's loop last ticked;
        ``/healthz`` fails once it is older than ``stale_after`` seconds, and also
        whenever ``supervisor.liveness()`` names a reason (health rounds stopped).

    Every JSON answer is strict JSON with registered secrets redacted, whatever a
    plugin put into its health or errors: ``/readyz`` needs no token.
    """
    metrics = Metrics(conductor, supervisor, coordinator)

    def readiness() -> tuple[bool, dict[str, str]]:
        # This replica's own share: the supervisor's view, and what it owns but
        # cannot run yet (its lock held elsewhere, the backend unreachable).
        ready, problems = supervisor.readiness()
        problems.update(readiness_problems(coordinator))
        return ready and not problems, problems

    async def healthz(request: Request) -> Response:
        age = time.monotonic() - heartbeat() if heartbeat else 0.0
        if age > stale_after:
            return SafeJSONResponse(
                {"status": "stalled", "seconds_since_tick": age}, 503
            )
        # A ticking loop is not enough: the supervisor's rounds may have stopped
        # (a hung round), and then nothing heals or reports any more.
        reason = supervisor.liveness()
        if reason is not None:
            return SafeJSONResponse({"status": "stalled", "reason": reason}, 503)
        return SafeJSONResponse({"status": "alive"})

    async def readyz(request: Request) -> Response:
        ready, problems = readiness()
        if ready:
            return SafeJSONResponse({"status": "ready"})
        return SafeJSONResponse({"status": "not ready", "platforms": problems}, 503)

    async def health(request: Request) -> Response:
        body = supervisor.snapshot()
        owners = owner_of_each(coordinator)
        for name, platform in body["platforms"].items():
            platform["owner"] = owners.get(name)
        body["coordination"] = health_section(coordinator)
        ready, _ = readiness()
        if body["ready"] and not ready:
            body.update(ready=False, status="unhealthy")
        return SafeJSONResponse(body)

    async def prometheus(request: Request) -> Response:
        return Response(metrics.render(), media_type=CONTENT_TYPE)

    async def restart(request: Request) -> Response:
        name = request.path_params["name"]
        if not conductor.accepting:
            # Stopping: a restart now would start a platform the stop never sees.
            return SafeJSONResponse(
                {"error": "demi is stopping; nothing restarted"}, 503
            )
        if conductor.spec_of(name) is None:
            return SafeJSONResponse({"error": f"no platform instance {name!r}"}, 404)
        supervisor.reset(name)
        active = await supervisor.restart(name, reason="operator")
        return SafeJSONResponse(
            {"platform": name, "active": active}, 200 if active else 502
        )

    middleware = [Middleware(_BearerToken, token=token)] if token else []
    return Starlette(
        routes=[
            Route("/healthz", healthz),
            Route("/readyz", readyz),
            Route("/health", health),
            Route("/metrics", prometheus),
            Route("/platforms/{name}/restart", restart, methods=["POST"]),
            Route(
                "/platforms/{name}/request",
                request_endpoint(conductor),
                methods=["POST"],
            ),  # fmt: skip
            Route(
                "/platforms/{name}/webhook",
                webhook_endpoint(conductor),
                methods=["POST"],
            ),  # fmt: skip
        ],
        middleware=middleware,
    )
