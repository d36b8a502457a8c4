"""Imports cleanly, but has no NoSuchPlatform: the entry point names a missing attribute."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from demi.platforms import BasePlatform, HealthStatus, PluginHealth


class OtherPlatform(BasePlatform):
    """A valid platform, but not the one the entry point names."""

    async def initialize(self, config: Mapping[str, Any]) -> bool:
        return True

    async def health_check(self) -> PluginHealth:
        return PluginHealth(status=HealthStatus.HEALTHY)

    async def handle_request(self, request: Mapping[str, Any]) -> dict[str, Any]:
        return dict(request)

    async def shutdown(self) -> None:
        pass
