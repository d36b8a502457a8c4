"""The webhook platform and its configuration."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Mapping
from typing import Any

import httpx
from pydantic import BaseModel, ConfigDict, HttpUrl, PositiveFloat, SecretStr

from demi import PlatformRequestError
from demi.platforms import BasePlatform, HealthStatus, PluginHealth

__all__ = ["WebhookConfig", "WebhookPlatform"]

LOG = logging.getLogger(__name__)


class WebhookConfig(BaseModel):
    """Where the webhook is and how to authenticate to it."""

    model_config = ConfigDict(extra="forbid")

    #: Each request is POSTed here as JSON.
    url: HttpUrl
    #: Answers 2xx (to a GET) while the webhook's service is healthy.
    health_url: HttpUrl
    #: Sent as ``Authorization: Bearer <token>``; never logged, never returned.
    token: SecretStr
    #: Seconds one HTTP exchange may take; keep it below demi's timeouts.
    timeout: PositiveFloat = 5.0
    #: Check ``health_url`` in ``initialize`` and refuse to start while unhealthy.
    check_on_start: bool = True


class WebhookPlatform(BasePlatform):
    """Delivers each request as JSON to a webhook and reports the webhook's health.

    A request's answer is ``{"status": <HTTP status>, "body": <JSON or text>}``. A
    non-2xx answer, or a webhook that cannot be reached, raises
    :class:`~demi.PlatformRequestError`.
    """

    config_model = WebhookConfig

    def __init__(self) -> None:
        self._config: WebhookConfig | None = None
        self._client: httpx.AsyncClient | None = None

    async def initialize(self, config: Mapping[str, Any]) -> bool:
        """Open the HTTP client; with ``check_on_start``, ready only once healthy."""
        settings = WebhookConfig.model_validate(config)
        self._config = settings
        self._client = httpx.AsyncClient(
            headers={"Authorization": f"Bearer {settings.token.get_secret_value()}"},
            timeout=settings.timeout,
        )
        if not settings.check_on_start:
            return True
        health = await self.health_check()
        if not health.is_healthy:
            LOG.warning("%s not ready: %s", self.name, health.error_message)
        return health.is_healthy

    async def health_check(self) -> PluginHealth:
        """Healthy when ``health_url`` answers a GET with a 2xx status."""
        if self._client is None or self._config is None:
            return PluginHealth(HealthStatus.UNHEALTHY, error_message="not initialized")
        try:
            response = await self._client.get(str(self._config.health_url))
        except httpx.HTTPError as err:
            reason = f"health URL unreachable: {_describe(err)}"
            return PluginHealth(HealthStatus.UNHEALTHY, error_message=reason)
        if not response.is_success:
            reason = f"health URL answered {response.status_code}"
            return PluginHealth(HealthStatus.UNHEALTHY, error_message=reason)
        return PluginHealth(HealthStatus.HEALTHY)

    async def handle_request(self, request: Mapping[str, Any]) -> dict[str, Any]:
        """POST ``request`` as JSON to ``url``; return the status and the body.

        :raises PlatformRequestError: the webhook answered non-2xx or was unreachable.
        """
        if self._client is None or self._config is None:
            raise PlatformRequestError(self.name, f"{self.name} is not initialized")
        post = self._client.build_request("POST", str(self._config.url), json=request)
        post.stream = _Body(post.content)
        try:
            response = await self._client.send(post)
        except httpx.HTTPError as err:
            raise PlatformRequestError(
                self.name, f"webhook unreachable: {_describe(err)}"
            ) from err
        LOG.debug("%s: webhook answered %d", self.name, response.status_code)
        if not response.is_success:
            raise PlatformRequestError(
                self.name, f"webhook answered {response.status_code}"
            )
        return {"status": response.status_code, "body": _body(response)}

    async def shutdown(self) -> None:
        """Close the HTTP client; safe to repeat, and before or after initialize."""
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()


class _Body(httpx.AsyncByteStream):
    """A request body that httpx sends without an async generator.

    httpx's own body stream is an async generator, which a request cancelled mid-send
    leaves unexhausted; trio then warns and finalizes it in a task of its own, after
    the request is gone (https://github.com/encode/httpx/issues/3686).
    """

    def __init__(self, content: bytes) -> None:
        self._content = content

    def __aiter__(self) -> AsyncIterator[bytes]:
        return _Chunks([self._content])


class _Chunks:
    """An async iterator over chunks that are already in memory."""

    def __init__(self, chunks: list[bytes]) -> None:
        self._chunks = chunks

    def __aiter__(self) -> _Chunks:
        return self

    async def __anext__(self) -> bytes:
        if not self._chunks:
            raise StopAsyncIteration
        return self._chunks.pop(0)


def _body(response: httpx.Response) -> Any:
    """The JSON body when the webhook sent JSON, else the text (``None`` if empty)."""
    if not response.content:
        return None
    if response.headers.get("content-type", "").startswith("application/json"):
        try:
            return response.json()
        except ValueError:
            pass
    return response.text


def _describe(err: Exception) -> str:
    # httpx's messages name the host and the failure, never the request's headers.
    return f"{type(err).__name__}: {err}" if str(err) else type(err).__name__
