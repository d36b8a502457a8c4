"""health_check raises RuntimeError."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from demi.platforms import BasePlatform, PluginHealth


class HealthRaisesPlatform(BasePlatform):
    """health_check raises RuntimeError."""

    async def initialize(self, config: Mapping[str, Any]) -> bool:
        return True

    async def health_check(self) -> PluginHealth:
        raise RuntimeError("health probe exploded")

    async def handle_request(self, request: Mapping[str, Any]) -> dict[str, Any]:
        return dict(request)

    async def shutdown(self) -> None:
        pass
