"""The webhook platform: delivery, answers, health, configuration and its secret."""

from __future__ import annotations

import importlib.metadata
import logging

import pytest
from demi_webhook import WebhookConfig, WebhookPlatform
from local_webhook import TOKEN, WebhookServer
from pydantic import ValidationError

from demi import (
    DemiSettings,
    PlatformRequestError,
    PluginLoadError,
    PluginManager,
    PluginState,
)
from demi.platforms import HealthStatus
from demi.testing import make_manager


def _manager() -> PluginManager:
    return make_manager(DemiSettings(), webhook=WebhookPlatform)


async def test_request_is_posted_as_json_to_the_url(
    webhook_server: WebhookServer,
) -> None:
    """handle_request POSTs the request, as JSON, to the configured URL."""
    async with _manager() as manager:
        await manager.load_plugin("webhook", webhook_server.config())
        await manager.handle_request("webhook", {"event": "ping", "n": [1, 2]})
    posted = [r for r in webhook_server.received if r.method == "POST"]
    assert [(r.path, r.json()) for r in posted] == [
        ("/hook", {"event": "ping", "n": [1, 2]})
    ]
    assert posted[0].headers["content-type"] == "application/json"


async def test_token_is_sent_as_a_bearer_header(webhook_server: WebhookServer) -> None:
    """Every request to the webhook carries the token as a bearer credential."""
    async with _manager() as manager:
        await manager.load_plugin("webhook", webhook_server.config())
        await manager.handle_request("webhook", {"event": "ping"})
    assert {r.headers["authorization"] for r in webhook_server.received} == {
        f"Bearer {TOKEN}"
    }


async def test_answer_carries_the_status_and_the_json_body(
    webhook_server: WebhookServer,
) -> None:
    """A JSON answer comes back parsed, with its HTTP status."""
    async with _manager() as manager:
        await manager.load_plugin("webhook", webhook_server.config())
        answer = await manager.handle_request("webhook", {"event": "ping"})
    assert answer == {"status": 200, "body": {"received": {"event": "ping"}}}


async def test_a_text_answer_comes_back_as_text(webhook_server: WebhookServer) -> None:
    """An answer that is not JSON comes back as its text."""
    async with _manager() as manager:
        await manager.load_plugin("webhook", webhook_server.config(hook="/text"))
        answer = await manager.handle_request("webhook", {"event": "ping"})
    assert answer == {"status": 200, "body": "thanks"}


async def test_an_error_status_raises_a_request_error(
    webhook_server: WebhookServer,
) -> None:
    """A non-2xx answer raises PlatformRequestError naming the status."""
    async with _manager() as manager:
        await manager.load_plugin("webhook", webhook_server.config(hook="/fail"))
        with pytest.raises(PlatformRequestError, match="webhook answered 500"):
            await manager.handle_request("webhook", {"event": "ping"})


async def test_an_unreachable_webhook_raises_a_request_error(
    webhook_server: WebhookServer, free_tcp_port: int
) -> None:
    """A webhook nobody listens on raises PlatformRequestError."""
    config = webhook_server.config() | {"url": f"http://127.0.0.1:{free_tcp_port}/"}
    async with _manager() as manager:
        await manager.load_plugin("webhook", config)
        with pytest.raises(PlatformRequestError, match="webhook unreachable"):
            await manager.handle_request("webhook", {"event": "ping"})


async def test_healthy_while_the_health_url_answers_2xx(
    webhook_server: WebhookServer,
) -> None:
    """The platform is healthy while its health URL answers 200."""
    async with _manager() as manager:
        await manager.load_plugin("webhook", webhook_server.config())
        health = await manager.health_check("webhook")
    assert health.status is HealthStatus.HEALTHY
    assert ("GET", "/health") in [(r.method, r.path) for r in webhook_server.received]


async def test_unhealthy_when_the_health_url_answers_an_error(
    webhook_server: WebhookServer,
) -> None:
    """A health URL answering 503 makes the platform unhealthy, saying so."""
    config = webhook_server.config(health="/down", check_on_start=False)
    async with _manager() as manager:
        await manager.load_plugin("webhook", config)
        health = await manager.health_check("webhook")
    assert health.status is HealthStatus.UNHEALTHY
    assert health.error_message == "health URL answered 503"


async def test_unhealthy_when_the_health_url_is_unreachable(
    webhook_server: WebhookServer, free_tcp_port: int
) -> None:
    """A health URL nobody listens on makes the platform unhealthy, saying so."""
    config = webhook_server.config(check_on_start=False) | {
        "health_url": f"http://127.0.0.1:{free_tcp_port}/health"
    }
    async with _manager() as manager:
        await manager.load_plugin("webhook", config)
        health = await manager.health_check("webhook")
    assert health.status is HealthStatus.UNHEALTHY
    assert (health.error_message or "").startswith("health URL unreachable: ")


async def test_does_not_start_while_the_health_url_is_down(
    webhook_server: WebhookServer,
) -> None:
    """With check_on_start, a failing health URL fails the load."""
    async with _manager() as manager:
        with pytest.raises(PluginLoadError, match="returned False"):
            await manager.load_plugin("webhook", webhook_server.config(health="/down"))
        assert manager.state_of("webhook") is PluginState.FAILED


async def test_the_token_is_never_logged_returned_or_reported(
    webhook_server: WebhookServer, caplog: pytest.LogCaptureFixture
) -> None:
    """No log record, answer, health report or error carries the token."""
    caplog.set_level(logging.DEBUG)
    seen: list[object] = []
    async with _manager() as manager:
        platform = await manager.load_plugin("webhook", webhook_server.config())
        seen += [platform, vars(platform)]
        seen.append(await manager.handle_request("webhook", {"event": "ping"}))
        seen.append(await manager.health_check("webhook"))
    async with _manager() as manager:
        await manager.load_plugin("webhook", webhook_server.config(hook="/fail"))
        with pytest.raises(PlatformRequestError) as failure:
            await manager.handle_request("webhook", {"event": "ping"})
        seen.append(failure.value)
    shown = caplog.text + "".join(f"{item!r} {item!s}" for item in seen)
    assert TOKEN not in shown


def test_config_requires_a_token() -> None:
    """A configuration without a token is rejected."""
    with pytest.raises(ValidationError, match="token"):
        WebhookConfig.model_validate(
            {"url": "http://127.0.0.1/", "health_url": "http://127.0.0.1/"}
        )


def test_config_rejects_a_url_that_is_not_http() -> None:
    """The webhook URL must be http or https."""
    with pytest.raises(ValidationError, match="url"):
        WebhookConfig.model_validate(
            {"url": "ftp://example.com/", "health_url": "http://x/", "token": "t"}
        )


def test_config_keeps_the_token_secret() -> None:
    """The configuration's repr shows the token masked."""
    config = WebhookConfig.model_validate(
        {"url": "http://x/", "health_url": "http://x/", "token": TOKEN}
    )
    assert TOKEN not in repr(config)


def test_installed_entry_point_names_the_platform() -> None:
    """The distribution registers WebhookPlatform as "webhook" in demi.platforms."""
    (entry_point,) = importlib.metadata.entry_points(
        group="demi.platforms", name="webhook"
    )
    assert entry_point.load() is WebhookPlatform


async def test_manager_loads_it_from_its_entry_point(
    webhook_server: WebhookServer,
) -> None:
    """demi's manager finds the installed platform by name and uses it."""
    async with PluginManager(settings=DemiSettings()) as manager:
        await manager.load_plugin("webhook", webhook_server.config())
        answer = await manager.handle_request("webhook", {"event": "ping"})
    assert answer["status"] == 200
