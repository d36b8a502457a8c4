"""The entry point names a factory function, not a platform class."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from demi.platforms import BasePlatform, HealthStatus, PluginHealth


class _HiddenPlatform(BasePlatform):
    async def initialize(self, config: Mapping[str, Any]) -> bool:
        return True

    async def health_check(self) -> PluginHealth:
        return PluginHealth(status=HealthStatus.HEALTHY)

    async def handle_request(self, request: Mapping[str, Any]) -> dict[str, Any]:
        return dict(request)

    async def shutdown(self) -> None:
        pass


def make_platform() -> BasePlatform:
    """Build a platform: useful, but the manager wants the class itself."""
    return _HiddenPlatform()
