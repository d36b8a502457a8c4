"""handle_request raises ValueError."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from demi.platforms import BasePlatform, HealthStatus, PluginHealth


class RequestRaisesPlatform(BasePlatform):
    """handle_request raises ValueError."""

    async def initialize(self, config: Mapping[str, Any]) -> bool:
        return True

    async def health_check(self) -> PluginHealth:
        return PluginHealth(status=HealthStatus.HEALTHY)

    async def handle_request(self, request: Mapping[str, Any]) -> dict[str, Any]:
        raise ValueError("cannot handle that request")

    async def shutdown(self) -> None:
        pass
