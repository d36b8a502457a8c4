"""A class with all four coroutine methods that does not inherit BasePlatform."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


class StandalonePlatform:
    """Looks like a platform (duck typing is not enough)."""

    async def initialize(self, config: Mapping[str, Any]) -> bool:
        return True

    async def health_check(self) -> dict[str, str]:
        return {"status": "healthy"}

    async def handle_request(self, request: Mapping[str, Any]) -> dict[str, Any]:
        return dict(request)

    async def shutdown(self) -> None:
        pass
