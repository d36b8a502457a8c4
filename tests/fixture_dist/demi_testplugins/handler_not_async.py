"""Not a handler: a plain function where a coroutine function belongs."""

from __future__ import annotations

from typing import Any


def blocking(event: Any) -> None:
    return None
