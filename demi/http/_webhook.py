"""``POST /platforms/{name}/webhook``: a service's HTTP callback, handed to the
platform behind the instance (``Conductor.webhook``) and answered with what it says.

demi's bearer token does not apply here (the service cannot send it): the platform
verifies its service's signature over the raw body itself. Errors are answered
briefly, since the caller is not authenticated; the log has the details.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response

from ..conductor import Conductor
from ..core.logger import get_logger
from ..exceptions import (
    PlatformRequestError,
    PlatformUnavailableError,
    PluginNotFoundError,
)
from ..platforms.inbound import WebhookRequest, WebhookResponse
from ._json import SafeJSONResponse

__all__ = [
    "MAX_WEBHOOK_BODY",
    "body_too_large",
    "is_webhook_path",
    "read_body",
    "webhook_endpoint",
]

LOG = get_logger("demi.http.webhook")

#: The largest body a webhook may carry (1 MiB); a larger one is answered 413.
#: Services send events of a few kilobytes; this bounds what one caller can buffer.
MAX_WEBHOOK_BODY = 1024 * 1024

#: How much of an oversized body is read (and dropped) before the answer.
_DISCARD = 16 * MAX_WEBHOOK_BODY

_PATH = re.compile(r"/platforms/[^/]+/webhook")


def is_webhook_path(path: str) -> bool:
    """Whether ``path`` is a webhook route (exempt from demi's bearer token)."""
    return _PATH.fullmatch(path) is not None


def webhook_endpoint(conductor: Conductor) -> Callable[[Request], Awaitable[Response]]:
    """The starlette endpoint for ``POST /platforms/{name}/webhook``."""

    async def webhook(request: Request) -> Response:
        name = request.path_params["name"]
        if not conductor.accepting:
            return SafeJSONResponse({"error": "demi is stopping"}, 503)
        body = await read_body(request)
        if body is None:
            return body_too_large()
        callback = WebhookRequest(
            method=request.method,
            path=request.url.path,
            headers=_headers(request),
            query=dict(request.query_params),
            body=body,
        )
        try:
            answer = await conductor.webhook(name, callback)
        except PluginNotFoundError:
            return SafeJSONResponse({"error": f"no webhook for {name!r}"}, 404)
        except PlatformUnavailableError as err:
            LOG.warning("webhook for %s refused: %s", name, err)
            return SafeJSONResponse({"error": f"{name!r} is not available"}, 503)
        except PlatformRequestError as err:
            LOG.error("webhook for %s failed: %s", name, err)
            return SafeJSONResponse({"error": f"{name!r} failed the webhook"}, 502)
        return _response(name, answer)

    return webhook


def body_too_large() -> Response:
    """The answer to a body over :data:`MAX_WEBHOOK_BODY` (the connection closes:
    the rest of it was never read)."""
    return SafeJSONResponse(
        {"error": f"the body is larger than {MAX_WEBHOOK_BODY} bytes"},
        413,
        headers={"Connection": "close"},
    )


async def read_body(request: Request) -> bytes | None:
    """The raw body, or ``None`` when it exceeds :data:`MAX_WEBHOOK_BODY`.

    The excess is read and dropped (up to :data:`_DISCARD`), never kept: a client
    that is still sending reads no answer, so a 413 sent early would reach it as a
    broken connection or a timeout instead.
    """
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size <= MAX_WEBHOOK_BODY:
            chunks.append(chunk)
        elif size > _DISCARD:
            break  # the answer closes the connection
    return b"".join(chunks) if size <= MAX_WEBHOOK_BODY else None


def _headers(request: Request) -> dict[str, str]:
    """Header names lower-cased; a repeated header's values joined with ``", "``."""
    headers: dict[str, str] = {}
    for raw_name, raw_value in request.headers.raw:
        name, value = raw_name.decode("latin-1").lower(), raw_value.decode("latin-1")
        headers[name] = f"{headers[name]}, {value}" if name in headers else value
    return headers


def _response(name: str, answer: WebhookResponse) -> Response:
    """The platform's answer as sent; one that cannot be sent is a 502."""
    try:
        if not 100 <= answer.status <= 599:
            raise ValueError(f"status {answer.status} is not an HTTP status")
        return Response(
            answer.encoded_body(),
            status_code=answer.status,
            headers=dict(answer.headers),
            media_type=answer.media_type,
        )
    except (TypeError, ValueError) as err:
        LOG.error("webhook for %s: its answer cannot be sent: %s", name, err)
        return SafeJSONResponse({"error": f"{name!r} failed the webhook"}, 502)
