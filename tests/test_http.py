"""The HTTP face: probes, /health, /metrics and the bearer token, through a real server."""

from __future__ import annotations

import json
import re
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from functools import partial
from typing import Any, ClassVar

import anyio

# httpx imports httpcore lazily and caches its exception classes on first use; a
# pytester.inline_run elsewhere in the suite drops modules first imported inside it,
# after which a fresh httpcore raises a ConnectError httpx no longer maps. Importing
# it here, at collection, keeps one httpcore for the whole session.
import httpcore  # noqa: F401
import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from demi import DemiSettings, PluginManager
from demi.conductor import Conductor
from demi.core.config import PlatformSettings
from demi.core.secrets import register_secrets
from demi.exceptions import PlatformRequestError
from demi.http import MAX_WEBHOOK_BODY, bind_socket, create_app, serve_http
from demi.platforms import (
    BasePlatform,
    HealthStatus,
    Inbox,
    PluginHealth,
    WebhookRequest,
    WebhookResponse,
)
from demi.platforms.echo import EchoPlatform
from demi.supervision import Supervisor

TOKEN = "s3cret-token"

#: The names dashboards depend on (counters as their samples are named).
METRIC_NAMES = (
    "demi_platform_up",
    "demi_platform_health_status",
    "demi_health_check_duration_seconds",
    "demi_requests_total",
    "demi_request_errors_total",
    "demi_request_duration_seconds",
    "demi_platform_restarts_total",
)


class Switchable(BasePlatform):
    """Healthy until a test sets ``sick`` on an instance; counts its health checks."""

    checks: ClassVar[int] = 0
    instances: ClassVar[list[Switchable]] = []

    def __init__(self) -> None:
        self.sick = False

    async def initialize(self, config: Mapping[str, Any]) -> bool:
        type(self).instances.append(self)
        return True

    async def health_check(self) -> PluginHealth:
        type(self).checks += 1
        if self.sick:
            return PluginHealth(
                status=HealthStatus.UNHEALTHY, error_message="switched off"
            )
        return PluginHealth(status=HealthStatus.HEALTHY)

    async def handle_request(self, request: Mapping[str, Any]) -> dict[str, Any]:
        if request.get("fail"):
            raise RuntimeError("asked to fail")
        return {"generation": len(type(self).instances), **request}

    async def shutdown(self) -> None:
        pass


@pytest.fixture
def switch() -> type[Switchable]:
    """A fresh Switchable class, so counts never leak between tests."""

    class Fresh(Switchable):
        pass

    Fresh.checks = 0
    Fresh.instances = []
    return Fresh


@pytest.fixture
def conductor(switch: type[Switchable]) -> Conductor:
    """A required "primary" (switchable) and an optional "steady" (echo) instance."""
    quick: dict[str, Any] = {
        "backoff_initial": 0.01,
        "backoff_max": 0.02,
        "failure_threshold": 1,
    }
    settings = DemiSettings(
        health_timeout=2,
        stop_timeout=5,
        platforms={
            "primary": PlatformSettings(driver="switch", required=True, **quick),
            "steady": PlatformSettings(driver="echo", **quick),
        },
    )
    manager = PluginManager.from_classes(
        {"switch": switch, "echo": EchoPlatform}, settings=settings
    )
    return Conductor(settings, manager=manager)


@asynccontextmanager
async def serving(app: Any, backend: str) -> AsyncIterator[httpx.AsyncClient]:
    """Serve ``app`` with hypercorn on a free loopback port; yield a client for it."""
    sock = bind_socket("127.0.0.1", 0)
    base = f"http://127.0.0.1:{sock.getsockname()[1]}"
    stop = anyio.Event()
    async with anyio.create_task_group() as group:
        # Started means listening: the first request needs no retry.
        await group.start(partial(serve_http, app, sock, backend=backend, stop=stop))
        async with httpx.AsyncClient(base_url=base, timeout=5) as client:
            try:
                yield client
            finally:
                stop.set()


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of an exposition, by (sample name, labels)."""
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(text: str, name: str, **labels: str) -> float:
    """The sum of the samples ``name`` that carry ``labels`` (and maybe others, such
    as a restart's ``reason``); fails if there is none."""
    wanted = set(labels.items())
    found = [v for (n, ls), v in samples(text).items() if n == name and wanted <= ls]
    # A labelled child may only appear once counted; its family must exist though.
    assert found or declared(text, name), f"no metric {name}"
    return sum(found)


def declared(text: str, sample_name: str) -> bool:
    """Whether the exposition declares the family ``sample_name`` belongs to."""
    family = re.sub(r"_(total|count|sum|bucket|created)$", "", sample_name)
    return f"# TYPE {family} " in text


def bearer(token: str = TOKEN) -> dict[str, str]:
    """The Authorization header carrying ``token``."""
    return {"Authorization": f"Bearer {token}"}


async def until_status(
    client: httpx.AsyncClient, path: str, status: int, timeout: float = 10
) -> httpx.Response:
    """Poll ``path`` until it answers ``status`` (bounded); return that response."""
    with anyio.fail_after(timeout):
        while True:
            response = await client.get(path)
            if response.status_code == status:
                return response
            await anyio.sleep(0.02)


async def primary_health(client: httpx.AsyncClient) -> str:
    """The latest health of the "primary" instance, as /health shows it."""
    health = (await client.get("/health")).json()
    return str(health["platforms"]["primary"]["health"])


# -- through a real server ------------------------------------------------------


async def test_probes_and_health_answer_through_a_real_server(
    conductor: Conductor, anyio_backend: str
) -> None:
    """/healthz and /readyz answer 200 and /health shows every platform's state."""
    supervisor = Supervisor(conductor, interval=60)
    async with conductor:
        await supervisor.round()
        app = create_app(conductor, supervisor)
        async with serving(app, anyio_backend) as client:
            healthz = await client.get("/healthz")
            readyz = await client.get("/readyz")
            health = await client.get("/health")
    assert (healthz.status_code, healthz.json()) == (200, {"status": "alive"})
    assert (readyz.status_code, readyz.json()) == (200, {"status": "ready"})
    assert health.status_code == 200
    body = health.json()
    assert body["status"] == "healthy"
    assert set(body["platforms"]) == {"primary", "steady"}
    for name, driver in (("primary", "switch"), ("steady", "echo")):
        entry = body["platforms"][name]
        assert entry["driver"] == driver
        assert entry["state"] == "active"
        assert entry["health"] == "healthy"
        assert entry["consecutive_failures"] == 0
        assert entry["restarts"] == 0


async def test_readyz_goes_503_naming_the_broken_platform_and_back_after_a_restart(
    conductor: Conductor, switch: type[Switchable], anyio_backend: str
) -> None:
    """An unhealthy required platform makes /readyz 503 (naming it) while /healthz stays
    200; the supervisor's restart brings /readyz back to 200 and moves the metrics."""
    supervisor = Supervisor(conductor, interval=0.01, rng=lambda: 1.0)
    async with conductor:
        app = create_app(conductor, supervisor)
        async with serving(app, anyio_backend) as client:
            assert (await client.get("/readyz")).status_code == 200
            before = (await client.get("/metrics")).text
            switch.instances[0].sick = True
            await supervisor.round()  # not running yet: records, does not restart
            broken = await client.get("/readyz")
            alive = await client.get("/healthz")
            unhealthy = (await client.get("/health")).json()
            # Cancel only the supervisor: hypercorn must be stopped, not cancelled.
            async with anyio.create_task_group() as group:
                await group.start(supervisor.run)
                await until_status(client, "/readyz", 200)
                # Ready comes with the restart; the fresh platform's first health
                # result with the next round.
                with anyio.fail_after(10):
                    while await primary_health(client) != "healthy":  # noqa: ASYNC110
                        await anyio.sleep(0.01)
                group.cancel_scope.cancel()
            after = (await client.get("/metrics")).text
            health = (await client.get("/health")).json()
            steady = await conductor.dispatch("steady", {"still": "serving"})
    assert broken.status_code == 503
    assert broken.json()["status"] == "not ready"
    assert list(broken.json()["platforms"]) == ["primary"]
    assert "switched off" in broken.json()["platforms"]["primary"]
    assert alive.status_code == 200
    assert unhealthy["status"] == "unhealthy"
    assert unhealthy["platforms"]["primary"]["health"] == "unhealthy"
    assert unhealthy["platforms"]["primary"]["consecutive_failures"] == 1
    assert value(before, "demi_platform_restarts_total", platform="primary") == 0
    assert value(after, "demi_platform_restarts_total", platform="primary") == 1
    assert value(after, "demi_platform_restarts_total", platform="steady") == 0
    assert health["platforms"]["primary"]["restarts"] == 1
    assert health["platforms"]["primary"]["health"] == "healthy"
    assert len(switch.instances) == 2
    assert steady == {"still": "serving"}


async def test_metrics_carry_every_name_labelled_by_platform_and_move(
    conductor: Conductor, anyio_backend: str
) -> None:
    """/metrics exposes the seven documented names per platform; request counters,
    durations and health series follow what happens."""
    supervisor = Supervisor(conductor, interval=60)
    async with conductor:
        app = create_app(conductor, supervisor, token=TOKEN)
        async with serving(app, anyio_backend) as client:
            before = (await client.get("/metrics", headers=bearer())).text
            await supervisor.round()
            await conductor.dispatch("steady", {"a": 1})
            await conductor.dispatch("steady", {"a": 2})
            with pytest.raises(PlatformRequestError):
                await conductor.dispatch("primary", {"fail": True})
            response = await client.get("/metrics", headers=bearer())
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    after = response.text
    names = {name for name, _ in samples(after)}
    for metric in METRIC_NAMES:
        platforms = {
            dict(labels).get("platform")
            for name, labels in samples(after)
            if name == metric or name.startswith(metric + "_")
        }
        assert platforms >= {"primary", "steady"}, (metric, platforms)
    assert "demi_request_duration_seconds_count" in names
    assert value(before, "demi_requests_total", platform="steady") == 0
    assert value(after, "demi_requests_total", platform="steady") == 2
    assert value(after, "demi_requests_total", platform="primary") == 1
    assert value(after, "demi_request_errors_total", platform="primary") == 1
    assert value(after, "demi_request_errors_total", platform="steady") == 0
    assert value(after, "demi_request_duration_seconds_count", platform="steady") == 2
    assert (
        value(after, "demi_health_check_duration_seconds_count", platform="primary")
        == 1
    )
    assert value(after, "demi_platform_up", platform="primary") == 1
    healthy = {"platform": "primary", "status": "healthy"}
    unhealthy = {"platform": "primary", "status": "unhealthy"}
    assert value(after, "demi_platform_health_status", **healthy) == 1
    assert value(after, "demi_platform_health_status", **unhealthy) == 0


@pytest.mark.parametrize("path", ["/health", "/metrics"])
async def test_bearer_token_is_required_beyond_the_probes(
    conductor: Conductor, path: str, anyio_backend: str
) -> None:
    """With a token set, /health and /metrics answer 401 without it or with a wrong
    one, and 200 with it."""
    supervisor = Supervisor(conductor, interval=60)
    async with conductor:
        app = create_app(conductor, supervisor, token=TOKEN)
        async with serving(app, anyio_backend) as client:
            missing = await client.get(path)
            wrong = await client.get(path, headers=bearer("not-the-token"))
            basic = await client.get(path, headers={"Authorization": TOKEN})
            right = await client.get(path, headers=bearer())
    assert missing.status_code == 401
    assert missing.headers["www-authenticate"] == "Bearer"
    assert wrong.status_code == 401
    assert basic.status_code == 401
    assert right.status_code == 200


@pytest.mark.parametrize("path", ["/healthz", "/readyz"])
async def test_probes_need_no_token(
    conductor: Conductor, path: str, anyio_backend: str
) -> None:
    """The orchestrator's probes answer without credentials even when a token is set."""
    supervisor = Supervisor(conductor, interval=60)
    async with conductor:
        app = create_app(conductor, supervisor, token=TOKEN)
        async with serving(app, anyio_backend) as client:
            response = await client.get(path)
    assert response.status_code == 200


async def test_restart_endpoint_restarts_a_platform_with_the_token(
    conductor: Conductor, switch: type[Switchable], anyio_backend: str
) -> None:
    """POST /platforms/{name}/restart needs the token, restarts the instance, clears a
    give-up and answers 404 for an unknown instance."""
    supervisor = Supervisor(conductor, interval=60)
    async with conductor:
        supervisor.record("primary").gave_up = "gave up after 5 restarts in 60s"
        app = create_app(conductor, supervisor, token=TOKEN)
        async with serving(app, anyio_backend) as client:
            refused = await client.post("/platforms/primary/restart")
            assert len(switch.instances) == 1
            done = await client.post("/platforms/primary/restart", headers=bearer())
            unknown = await client.post("/platforms/nope/restart", headers=bearer())
            wrong_method = await client.get(
                "/platforms/primary/restart", headers=bearer()
            )
            reply = await conductor.dispatch("primary", {})
    assert refused.status_code == 401
    assert (done.status_code, done.json()) == (
        200,
        {"platform": "primary", "active": True},
    )
    assert len(switch.instances) == 2
    assert reply == {"generation": 2}
    assert supervisor.record("primary").gave_up is None
    assert unknown.status_code == 404
    assert "nope" in unknown.json()["error"]
    assert wrong_method.status_code == 405


# -- the app alone --------------------------------------------------------------


@asynccontextmanager
async def in_process(app: Any) -> AsyncIterator[httpx.AsyncClient]:
    """A client that calls the ASGI app directly, without a server."""
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://demi") as client:
        yield client


async def test_probes_never_run_a_health_check(
    conductor: Conductor, switch: type[Switchable]
) -> None:
    """Every endpoint answers from the supervisor's results: no plugin health_check
    runs inside a request."""
    supervisor = Supervisor(conductor, interval=60)
    async with conductor:
        await supervisor.round()
        checks = switch.checks
        assert checks == 1
        async with in_process(create_app(conductor, supervisor)) as client:
            for _ in range(5):
                for path in ("/healthz", "/readyz", "/health", "/metrics"):
                    assert (await client.get(path)).status_code == 200
    assert switch.checks == checks


async def test_readyz_before_any_round_reflects_the_platform_states(
    conductor: Conductor, switch: type[Switchable]
) -> None:
    """Without a round yet, /readyz answers from the lifecycle states and checks nothing."""
    supervisor = Supervisor(conductor, interval=60)
    async with conductor:
        async with in_process(create_app(conductor, supervisor)) as client:
            response = await client.get("/readyz")
    assert response.status_code == 200
    assert switch.checks == 0


async def test_healthz_fails_once_the_loop_heartbeat_is_stale(
    conductor: Conductor,
) -> None:
    """/healthz is 503 when the conductor loop has not ticked within stale_after."""
    supervisor = Supervisor(conductor, interval=60)
    beat: list[float] = [time.monotonic()]

    def heartbeat() -> float:
        return beat[0]

    async with conductor:
        app = create_app(conductor, supervisor, heartbeat=heartbeat, stale_after=5)
        async with in_process(app) as client:
            fresh = await client.get("/healthz")
            beat[0] = time.monotonic() - 60
            stale = await client.get("/healthz")
    assert fresh.status_code == 200
    assert stale.status_code == 503
    assert stale.json()["status"] == "stalled"


async def test_healthz_ignores_platform_health(
    conductor: Conductor, switch: type[Switchable]
) -> None:
    """Liveness stays 200 while a required platform is unhealthy and readiness is 503."""
    supervisor = Supervisor(conductor, interval=60)
    async with conductor:
        switch.instances[0].sick = True
        await supervisor.round()
        async with in_process(create_app(conductor, supervisor)) as client:
            alive = await client.get("/healthz")
            ready = await client.get("/readyz")
    assert alive.status_code == 200
    assert ready.status_code == 503


async def test_readyz_is_503_once_demi_stops_accepting(conductor: Conductor) -> None:
    """While stopping, /readyz is 503 and names demi itself."""
    supervisor = Supervisor(conductor, interval=60)
    async with conductor:
        await supervisor.round()
    async with in_process(create_app(conductor, supervisor)) as client:
        response = await client.get("/readyz")
    assert response.status_code == 503
    assert "demi" in response.json()["platforms"]


class RecordingSupervisor(Supervisor):
    """A real supervisor that records the operator restarts it is asked for."""

    def __init__(self, conductor: Conductor) -> None:
        super().__init__(conductor, interval=60)
        self.asked: list[tuple[str, str]] = []

    async def restart(self, instance: str, *, reason: str) -> bool:
        self.asked.append((instance, reason))
        return await super().restart(instance, reason=reason)


async def test_restart_goes_through_the_supervisor_as_an_operator_restart(
    conductor: Conductor, switch: type[Switchable], anyio_backend: str
) -> None:
    """POST /platforms/NAME/restart asks the supervisor, with reason "operator", so
    the restart is counted like the supervisor's own."""
    supervisor = RecordingSupervisor(conductor)
    async with conductor:
        async with serving(create_app(conductor, supervisor), anyio_backend) as client:
            done = await client.post("/platforms/primary/restart")
    assert done.status_code == 200
    assert supervisor.asked == [("primary", "operator")]
    assert len(switch.instances) == 2


async def test_restart_while_stopping_answers_503_and_starts_nothing(
    conductor: Conductor, switch: type[Switchable], anyio_backend: str
) -> None:
    """Once demi stops accepting, a restart request is refused with 503: starting a
    platform now would leave it running past the stop."""
    supervisor = RecordingSupervisor(conductor)
    async with conductor:
        pass  # started, then stopped: no longer accepting
    async with serving(create_app(conductor, supervisor), anyio_backend) as client:
        refused = await client.post("/platforms/primary/restart")
    assert refused.status_code == 503
    assert "stopping" in refused.json()["error"]
    assert supervisor.asked == []
    assert len(switch.instances) == 1


class StalledSupervisor(Supervisor):
    """A supervisor whose health rounds have stopped."""

    def liveness(self) -> str | None:
        return "no health round for 95s"


async def test_healthz_fails_when_health_rounds_stop_though_the_loop_ticks(
    conductor: Conductor, anyio_backend: str
) -> None:
    """A fresh loop heartbeat is not enough: /healthz is 503 with the supervisor's
    reason once its rounds have stopped."""
    supervisor = StalledSupervisor(conductor, interval=60)
    app = create_app(conductor, supervisor, heartbeat=time.monotonic, stale_after=5)
    async with conductor, serving(app, anyio_backend) as client:
        response = await client.get("/healthz")
    assert response.status_code == 503
    assert response.json() == {
        "status": "stalled",
        "reason": "no health round for 95s",
    }


async def test_every_answer_is_strict_json_with_secrets_scrubbed(
    conductor: Conductor, anyio_backend: str
) -> None:
    """A health result holding a registered secret, NaN and an object JSON cannot
    hold still gives strict JSON on /readyz and /health, secret redacted."""
    secret = "app-level-s3cret-0042"
    register_secrets({"token": secret})
    supervisor = Supervisor(conductor, interval=60)

    class Odd:
        def __str__(self) -> str:
            return f"odd object quoting {secret}"

    async with conductor:
        await supervisor.round()
        odd: Any = {"ratio": float("nan"), "what": Odd(), secret: [float("inf")]}
        # The latest verdict's one owner is the manager, behind the conductor.
        conductor.record_health(
            "primary", PluginHealth(status=HealthStatus.UNHEALTHY, error_message=odd)
        )
        app = create_app(conductor, supervisor)
        async with serving(app, anyio_backend) as client:
            readyz = await client.get("/readyz")
            health = await client.get("/health")

    def refuse(constant: str) -> None:
        raise AssertionError(f"not JSON: {constant}")

    for response in (readyz, health):
        assert secret not in response.text
        json.loads(response.text, parse_constant=refuse)
    assert readyz.status_code == 503
    error = health.json()["platforms"]["primary"]["error"]
    assert error == {"ratio": None, "what": "odd object quoting **********",
                     "**********": [None]}  # fmt: skip


# -- webhooks -------------------------------------------------------------------


class Hooked(EchoPlatform):
    """Takes webhooks: answers with what it was given (and 418 for ``teapot``)."""

    async def handle_webhook(
        self, request: WebhookRequest, inbox: Inbox
    ) -> WebhookResponse:
        if request.body == b"teapot":
            return WebhookResponse(418, "short and stout", headers={"x-pot": "1"})
        if request.body == b"bad status":
            return WebhookResponse(1000)
        return WebhookResponse(
            202,
            {
                "method": request.method,
                "path": request.path,
                "headers": {
                    k: v for k, v in request.headers.items() if k.startswith("x-")
                },
                "query": dict(request.query),
                "body": request.body.decode(),
            },
        )


def hooked_conductor() -> Conductor:
    """A "hook" instance that takes webhooks and a "plain" one that does not."""
    settings = DemiSettings(
        stop_timeout=5,
        platforms={
            "hook": PlatformSettings(driver="hooked"),
            "plain": PlatformSettings(driver="echo"),
        },
    )
    manager = PluginManager.from_classes(
        {"hooked": Hooked, "echo": EchoPlatform}, settings=settings
    )
    return Conductor(settings, manager=manager)


async def test_a_webhook_gets_the_raw_request_and_sends_the_platforms_answer(
    anyio_backend: str,
) -> None:
    """Through a real server, without the token that every other route needs: the
    platform sees the raw body, lower-cased headers (a repeated one joined) and the
    query, and its status, headers, body and content type go back as they are."""
    conductor = hooked_conductor()
    app = create_app(conductor, Supervisor(conductor), token=TOKEN)
    async with conductor, serving(app, anyio_backend) as client:
        answer = await client.post(
            "/platforms/hook/webhook?a=1&a=2&b=x",
            content=b'{"raw": true}',
            headers=[("X-Sig", "abc"), ("X-Twice", "1"), ("X-Twice", "2")],
        )
        teapot = await client.post("/platforms/hook/webhook", content=b"teapot")
        odd = await client.post("/platforms/hook/webhook", content=b"bad status")
        restart = await client.post("/platforms/hook/restart")
        nested = await client.post("/platforms/hook/webhook/more", content=b"x")
        unknown = await client.post("/platforms/nobody/webhook", content=b"x")
        plain = await client.post("/platforms/plain/webhook", content=b"x")
    assert answer.status_code == 202, answer.text
    assert answer.json() == {
        "method": "POST",
        "path": "/platforms/hook/webhook",
        "headers": {"x-sig": "abc", "x-twice": "1, 2"},
        "query": {"a": "2", "b": "x"},
        "body": '{"raw": true}',
    }
    assert teapot.status_code == 418 and teapot.text == "short and stout"
    assert teapot.headers["x-pot"] == "1"
    assert teapot.headers["content-type"].startswith("text/plain")
    assert odd.status_code == 502
    # The exemption is the webhook route only.
    assert restart.status_code == 401 and nested.status_code == 401
    assert unknown.status_code == 404 and plain.status_code == 404


async def test_a_webhook_while_stopping_is_503_and_reaches_no_platform() -> None:
    conductor = hooked_conductor()
    app = create_app(conductor, Supervisor(conductor))
    async with conductor:
        pass  # started, then stopped: no longer accepting
    async with in_process(app) as client:
        refused = await client.post("/platforms/hook/webhook", content=b"x")
    assert refused.status_code == 503


async def test_an_oversized_webhook_body_is_413() -> None:
    conductor = hooked_conductor()
    app = create_app(conductor, Supervisor(conductor))
    async with conductor, in_process(app) as client:
        limit = await client.post(
            "/platforms/hook/webhook", content=b"x" * MAX_WEBHOOK_BODY
        )
        over = await client.post(
            "/platforms/hook/webhook", content=b"x" * (MAX_WEBHOOK_BODY + 1)
        )
    assert limit.status_code == 202
    assert over.status_code == 413
