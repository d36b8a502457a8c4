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
    try:
        response = await manager.handle_request(route.key, request, timeout=timeout)
    except PluginNotFoundError as err:
        raise PlatformUnavailableError(instance, str(err)) from None
    except TimeoutError:
        raise PlatformTimeoutError(
            instance, f"platform {instance!r} did not answer within {timeout:g}s"
        ) from None
    except Exception as err:
        # Chained, so --debug shows the plugin's own traceback (scrubbed).
        raise PlatformRequestError(
            instance, f"platform {instance!r} failed the request: {describe(err)}"
        ) from err
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
    try:
        response = await manager.handle_webhook(route.key, request, timeout=timeout)
    except PluginNotFoundError as err:
        raise PlatformUnavailableError(instance, str(err)) from None
    except LookupError as err:
        raise PluginNotFoundError(instance, str(err)) from None
    except TimeoutError:
        raise PlatformTimeoutError(
            instance, f"platform {instance!r} did not answer within {timeout:g}s"
        ) from None
    except Exception as err:
        raise PlatformRequestError(
            instance, f"platform {instance!r} failed the webhook: {describe(err)}"
        ) from err
    if not isinstance(response, WebhookResponse):
        raise PlatformRequestError(
            instance,
            f"platform {instance!r} answered the webhook with "
            f"{type(response).__name__}, not a WebhookResponse",
        )
    return response
