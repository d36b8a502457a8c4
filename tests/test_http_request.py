"""``POST /platforms/NAME/request``: one request to a platform of the running demi,
through a real server, answered with its reply or an error status that says which
failure it was."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import anyio
import pytest
from helpers import MinimalPlatform, make_settings, with_classes
from test_http import TOKEN, bearer, in_process, serving, value

from demi.conductor import Conductor
from demi.http import MAX_WEBHOOK_BODY, create_app
from demi.platforms.echo import EchoPlatform
from demi.supervision import Supervisor


class Raises(MinimalPlatform):
    """Raises on every request."""

    async def handle_request(self, request: Mapping[str, Any]) -> dict[str, Any]:
        raise RuntimeError("asked for too much")


class Dawdles(MinimalPlatform):
    """Answers a minute late."""

    async def handle_request(self, request: Mapping[str, Any]) -> dict[str, Any]:
        await anyio.sleep(60)
        return {}


class InitFails(MinimalPlatform):
    """Never becomes active."""

    async def initialize(self, config: Mapping[str, Any]) -> bool:
        return False


def conductor() -> Conductor:
    """An echo, a raising, a dawdling and a never-active instance."""
    settings = make_settings(
        {"echo": "echo", "raises": "raises", "dawdles": "dawdles", "down": "down"},
        request_timeout=0.3,
    )
    classes = {
        "echo": EchoPlatform,
        "raises": Raises,
        "dawdles": Dawdles,
        "down": InitFails,
    }
    return with_classes(settings, classes)


async def test_a_request_gets_the_platforms_reply_or_the_status_of_its_failure(
    anyio_backend: str,
) -> None:
    demi = conductor()
    app = create_app(demi, Supervisor(demi, interval=60), token=TOKEN)
    async with demi, serving(app, anyio_backend) as client:

        async def post(name: str, **kwargs: Any) -> tuple[int, Any]:
            answer = await client.post(
                f"/platforms/{name}/request", headers=bearer(), **kwargs
            )
            return answer.status_code, answer.json()

        unauthorised = await client.post("/platforms/echo/request", json={"a": 1})
        ok = await post("echo", json={"text": "hi", "n": [1, 2]})
        raised = await post("raises", json={})
        timed_out = await post("dawdles", json={})
        down = await post("down", json={})
        unknown = await post("nobody", json={})
        not_an_object = await post("echo", json=[1, 2])
        not_json = await post("echo", content=b"{nope")
        not_a_number = await post("echo", content=b'{"n": NaN}')
        metrics = (await client.get("/metrics", headers=bearer())).text
    assert unauthorised.status_code == 401
    assert ok == (200, {"text": "hi", "n": [1, 2]})
    assert raised[0] == 502 and "asked for too much" in raised[1]["error"]
    assert "'raises'" in raised[1]["error"]  # names the platform
    assert timed_out[0] == 504 and "'dawdles'" in timed_out[1]["error"]
    assert down[0] == 503 and "'down'" in down[1]["error"]
    assert unknown[0] == 404 and "'nobody'" in unknown[1]["error"]
    assert not_an_object == (400, {"error": "the body must be a JSON object, not list"})
    assert not_json[0] == 400 and "not valid JSON" in not_json[1]["error"]
    # The same strict rules as demi request: what JSON does not allow is refused.
    assert not_a_number == (
        400, {"error": "the body holds NaN, which JSON does not allow"}
    )  # fmt: skip
    # Dispatched like any request: counted, and the failures as errors.
    assert value(metrics, "demi_requests_total", platform="echo") == 1
    assert value(metrics, "demi_request_errors_total", platform="raises") == 1


async def test_a_request_while_stopping_is_503_and_reaches_no_platform() -> None:
    demi = conductor()
    app = create_app(demi, Supervisor(demi))
    async with demi:
        pass  # started, then stopped: no longer accepting
    async with in_process(app) as client:
        refused = await client.post("/platforms/echo/request", json={"a": 1})
    assert refused.status_code == 503
    assert "demi is not running" in refused.json()["error"]


@pytest.mark.parametrize("extra", [0, 1])
async def test_a_request_body_over_the_bound_is_413(extra: int) -> None:
    demi = conductor()
    app = create_app(demi, Supervisor(demi))
    # A JSON object of exactly the bound, and one byte more.
    body = b'{"x": "' + b"x" * (MAX_WEBHOOK_BODY - 9 + extra) + b'"}'
    async with demi, in_process(app) as client:
        answer = await client.post("/platforms/echo/request", content=body)
    assert answer.status_code == (413 if extra else 200)
