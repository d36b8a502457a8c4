"""Reading the JSON request of ``demi request``: strictly, and never too deep."""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from typing import Any

from ._errors import UsageProblem

__all__ = ["MAX_REQUEST_DEPTH", "parse_request"]

#: A request nested deeper than this is refused.
MAX_REQUEST_DEPTH = 100


def parse_request(payload: str) -> Mapping[str, Any]:
    """The request of ``demi request``: ``payload``, or standard input for ``-``.

    :raises UsageProblem: it is not UTF-8 text, not JSON, holds NaN or an infinity,
        is not an object, or nests more than :data:`MAX_REQUEST_DEPTH` levels;
        the message names the problem and where the request came from.
    """
    source = "standard input" if payload == "-" else "the JSON argument"

    def refuse(constant: str) -> Any:
        raise UsageProblem(f"{source} holds {constant}, which JSON does not allow")

    try:
        # Bytes, decoded strictly: the text layer would hide bad bytes as surrogates.
        text = sys.stdin.buffer.read().decode() if payload == "-" else payload
        body = json.loads(text, parse_constant=refuse)
    except UnicodeDecodeError as err:
        raise UsageProblem(f"{source} is not UTF-8 text: {err.reason}") from None
    except RecursionError:
        raise UsageProblem(
            f"{source} is nested more than {MAX_REQUEST_DEPTH} levels deep"
        ) from None
    except ValueError as err:  # JSONDecodeError, or an integer too long to read
        raise UsageProblem(f"{source} is not valid JSON: {err}") from None
    if not isinstance(body, dict):
        raise UsageProblem(f"{source} must be a JSON object, not {type(body).__name__}")
    if _too_deep(body, MAX_REQUEST_DEPTH):
        raise UsageProblem(
            f"{source} is nested more than {MAX_REQUEST_DEPTH} levels deep"
        )
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
