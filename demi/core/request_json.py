"""The one way demi reads a request someone typed or posted as JSON (``demi
request`` and ``POST /platforms/NAME/request``): strictly, and never too deep."""

from __future__ import annotations

import json
from typing import Any

__all__ = ["MAX_REQUEST_DEPTH", "RequestJSONError", "parse_request_json"]

#: A request nested deeper than this is refused.
MAX_REQUEST_DEPTH = 100


class RequestJSONError(ValueError):
    """A request is not what demi accepts; the message is one sentence naming
    the problem and where the request came from."""


def parse_request_json(raw: bytes | str, source: str) -> dict[str, Any]:
    """The JSON object in ``raw`` (bytes are decoded as strict UTF-8).

    :param source: where it came from, for the message ("standard input").
    :raises RequestJSONError: it is not UTF-8 text, not JSON, holds NaN or an
        infinity, is not an object, or nests more than :data:`MAX_REQUEST_DEPTH`
        levels.
    """

    def refuse(constant: str) -> Any:
        raise RequestJSONError(f"{source} holds {constant}, which JSON does not allow")

    too_deep = f"{source} is nested more than {MAX_REQUEST_DEPTH} levels deep"
    try:
        # Decoded strictly here: a text layer would hide bad bytes as surrogates.
        text = raw.decode() if isinstance(raw, bytes) else raw
        body = json.loads(text, parse_constant=refuse)
    except UnicodeDecodeError as err:
        raise RequestJSONError(f"{source} is not UTF-8 text: {err.reason}") from None
    except RecursionError:
        raise RequestJSONError(too_deep) from None
    except RequestJSONError:
        raise
    except ValueError as err:  # JSONDecodeError, or an integer too long to read
        raise RequestJSONError(f"{source} is not valid JSON: {err}") from None
    if not isinstance(body, dict):
        raise RequestJSONError(
            f"{source} must be a JSON object, not {type(body).__name__}"
        )
    if _too_deep(body, MAX_REQUEST_DEPTH):
        raise RequestJSONError(too_deep)
    return body


def _too_deep(value: Any, limit: int) -> bool:
    """Whether objects and arrays nest more than ``limit`` levels in ``value``."""
    stack = [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict):
            item = list(item.values())
        if not isinstance(item, list):
            continue
        if level > limit:
            return True
        stack.extend((child, level + 1) for child in item)
    return False
