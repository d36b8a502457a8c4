"""Reading the JSON request of ``demi request`` (the rules are
:mod:`demi.core.request_json`'s, shared with the HTTP face)."""

from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import Any

from ..core.request_json import RequestJSONError, parse_request_json
from ._errors import UsageProblem

__all__ = ["parse_request"]


def parse_request(payload: str) -> Mapping[str, Any]:
    """The request of ``demi request``: ``payload``, or standard input for ``-``.

    :raises UsageProblem: it is not a JSON object demi accepts; the message names
        the problem and where the request came from.
    """
    try:
        if payload == "-":
            return parse_request_json(sys.stdin.buffer.read(), "standard input")
        return parse_request_json(payload, "the JSON argument")
    except RequestJSONError as err:
        raise UsageProblem(str(err)) from None
