"""A healthy platform that counts what is done to it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from demi_testplugins._echo import HealthyEcho


class CounterPlatform(HealthyEcho):
    """Counts its initializations and shutdowns (per class) and requests (each)."""

    initialized: ClassVar[int] = 0
    shut_down: ClassVar[int] = 0

    def __init__(self) -> None:
        self.requests = 0

    async def initialize(self, config: Mapping[str, Any]) -> bool:
        type(self).initialized += 1
        return True

    async def handle_request(self, request: Mapping[str, Any]) -> dict[str, Any]:
        self.requests += 1
        return {"count": self.requests}

    async def shutdown(self) -> None:
        type(self).shut_down += 1
