"""The conductor's calls into platforms, and what their failures mean to a caller:
each becomes a :class:`~demi.PlatformRequestError` (or a subclass) naming the
instance."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ._routing import Route, json_problem
from .exceptions import (
    PlatformRequestError,
    PlatformTimeoutError,
    PlatformUnavailableError,
    PluginNotFoundError,
)
from .platforms.base import takes_webhooks
from .platforms.inbound import WebhookRequest, WebhookResponse
from .plugins._calls import describe
from .plugins.manager import PluginManager

__all__ = ["deliver_webhook", "send"]


async def send(
    manager: PluginManager, route: Route, request: Mapping[str, Any], timeout: float
) -> dict[str, Any]:
    """Send one request to the platform behind ``route``; return its reply.

    :raises PlatformRequestError: (or a subclass) naming the instance: not active,
        no answer in time, the platform raised, or the reply is not a dict JSON can
        carry.
    """
    instance = route.instance
    with _Failures(instance, timeout, "request"):
        response = await manager.handle_request(route.key, request, timeout=timeout)
    if not isinstance(response, dict):
        raise PlatformRequestError(
            instance,
            f"platform {instance!r} answered with {type(response).__name__}, not a dict",
        )
    problem = json_problem(response)
    if problem is not None:
        raise PlatformRequestError(
            instance,
            f"platform {instance!r} answered with {problem}, which JSON cannot carry",
        )
    return response


async def deliver_webhook(
    manager: PluginManager, route: Route, request: WebhookRequest, timeout: float
) -> WebhookResponse:
    """Hand an HTTP callback to the platform behind ``route``; return its response.

    :raises PluginNotFoundError: its platform takes no webhooks.
    :raises PlatformRequestError: (or a subclass) naming the instance, as for
        :func:`send`.
    """
    instance = route.instance
    if not _may_take_webhooks(manager, route):
        raise PluginNotFoundError(instance, f"platform {instance!r} takes no webhooks")
    with _Failures(instance, timeout, "webhook"):
        response = await manager.handle_webhook(route.key, request, timeout=timeout)
    if not isinstance(response, WebhookResponse):
        raise PlatformRequestError(
            instance,
            f"platform {instance!r} answered the webhook with "
            f"{type(response).__name__}, not a WebhookResponse",
        )
    return response


def _may_take_webhooks(manager: PluginManager, route: Route) -> bool:
    """Whether the platform behind ``route`` takes webhooks, as far as known: the
    active platform says (a process-isolated one for its child); else its class,
    if imported; else yes, and the call says why not."""
    try:
        return takes_webhooks(manager.get_plugin(route.key))
    except PluginNotFoundError:
        plugin = manager.registry.get(route.spec.driver)
        return plugin is None or takes_webhooks(plugin)


class _Failures:
    """Turns what a call into a platform raised into the error its caller gets,
    naming the instance. The plugin's own exception stays the cause, so --debug
    shows its (scrubbed) traceback."""

    __slots__ = ("_instance", "_timeout", "_what")

    def __init__(self, instance: str, timeout: float, what: str) -> None:
        self._instance = instance
        self._timeout = timeout
        self._what = what

    def __enter__(self) -> None:
        return None

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: object,
    ) -> None:
        instance = self._instance
        if error is None or not isinstance(error, Exception):
            return
        if isinstance(error, PluginNotFoundError):
            raise PlatformUnavailableError(instance, str(error)) from None
        if isinstance(error, PlatformUnavailableError):
            # The platform itself says it cannot serve now (a process-isolated one
            # whose child died): the caller may retry, as for an inactive one.
            raise PlatformUnavailableError(
                instance, f"platform {instance!r} is unavailable: {describe(error)}"
            ) from error
        if isinstance(error, TimeoutError):
            raise PlatformTimeoutError(
                instance,
                f"platform {instance!r} did not answer within {self._timeout:g}s",
            ) from None
        raise PlatformRequestError(
            instance,
            f"platform {instance!r} failed the {self._what}: {describe(error)}",
        ) from error
