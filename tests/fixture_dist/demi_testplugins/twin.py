"""One of two platforms registered as "twin" (the other is demi-testplugins-twin's)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from demi.platforms import BasePlatform, HealthStatus, PluginHealth


class TwinPlatform(BasePlatform):
    """A valid platform whose entry-point name is taken twice."""

    async def initialize(self, config: Mapping[str, Any]) -> bool:
        return True

    async def health_check(self) -> PluginHealth:
        return PluginHealth(status=HealthStatus.HEALTHY)

    async def handle_request(self, request: Mapping[str, Any]) -> dict[str, Any]:
        return {"twin": "demi-testplugins"}

    async def shutdown(self) -> None:
        pass
