"""JSON the HTTP face can always send: valid, finite and scrubbed of secrets."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

from starlette.responses import JSONResponse

from ..core.secrets import scrub

__all__ = ["SafeJSONResponse", "safe_json"]


def _clean(value: Any) -> Any:
    """``value`` as plain JSON data: every string scrubbed, NaN and infinities as
    ``null``, and anything JSON cannot hold as its scrubbed text."""
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, str):
        return scrub(value)
    if isinstance(value, Mapping):
        return {_text(key): _clean(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(item) for item in value]
    # A plugin's odd object (an exception, a set, a custom class): show its text,
    # never fail the response on it.
    return _text(value)


def _text(value: Any) -> str:
    try:
        text = value if isinstance(value, str) else str(value)
    except Exception:  # a __str__ that raises must not break a probe
        text = f"<unprintable {type(value).__name__}>"
    return scrub(text)


def safe_json(content: Any) -> bytes:
    """``content`` rendered as strict JSON (no NaN), secrets redacted."""
    return json.dumps(
        _clean(content), allow_nan=False, ensure_ascii=False, separators=(",", ":")
    ).encode("utf-8")


class SafeJSONResponse(JSONResponse):
    """A JSON response that is always valid JSON and never carries a secret."""

    def render(self, content: Any) -> bytes:
        """Render through :func:`safe_json`."""
        return safe_json(content)
