"""``POST /platforms/{name}/request``: one JSON request dispatched to the platform
behind an instance (``Conductor.dispatch``), answered with its reply: what ``demi
request`` does, against the running demi.

It needs demi's bearer token when one is set, like every route but the probes and
the webhooks; the caller is the operator, so errors are answered with their message
(scrubbed of secrets, as every answer is).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response

from ..conductor import Conductor
from ..core.request_json import RequestJSONError, parse_request_json
from ..exceptions import (
    PlatformRequestError,
    PlatformTimeoutError,
    PlatformUnavailableError,
    PluginNotFoundError,
)
from ._json import SafeJSONResponse
from ._webhook import body_too_large, read_body

__all__ = ["request_endpoint"]


def request_endpoint(conductor: Conductor) -> Callable[[Request], Awaitable[Response]]:
    """The starlette endpoint for ``POST /platforms/{name}/request``.

    Answers: ``200`` with the reply; ``400`` when the body is not a JSON object;
    ``404`` for an unknown instance; ``413`` for a body over ``MAX_WEBHOOK_BODY``;
    ``502`` when the platform raised or answered with something that is not an
    object; ``503`` when the instance is not active or demi is stopping; ``504``
    when no answer came within the request timeout.
    """

    async def request(request: Request) -> Response:
        name = request.path_params["name"]
        # The webhooks' bound: one limit for what any caller may make demi buffer.
        body = await read_body(request)
        if body is None:
            return body_too_large()
        try:
            payload = parse_request_json(body, "the body")
        except RequestJSONError as err:
            return SafeJSONResponse({"error": str(err)}, 400)
        try:
            reply = await conductor.dispatch(name, payload)
        except PluginNotFoundError as err:
            return SafeJSONResponse({"error": str(err)}, 404)
        # Subclasses of PlatformRequestError first: each has its own status.
        except PlatformUnavailableError as err:
            return SafeJSONResponse({"error": str(err)}, 503)
        except PlatformTimeoutError as err:
            return SafeJSONResponse({"error": str(err)}, 504)
        except PlatformRequestError as err:
            return SafeJSONResponse({"error": str(err)}, 502)
        return SafeJSONResponse(reply)

    return request
