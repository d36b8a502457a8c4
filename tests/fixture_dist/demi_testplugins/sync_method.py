"""A BasePlatform subclass whose health_check is a plain def, not async def."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from demi.platforms import BasePlatform, HealthStatus, PluginHealth


class SyncHealthPlatform(BasePlatform):
    """Everything right but one method."""

    async def initialize(self, config: Mapping[str, Any]) -> bool:
        return True

    def health_check(self) -> PluginHealth:  # type: ignore[override]
        return PluginHealth(status=HealthStatus.HEALTHY)

    async def handle_request(self, request: Mapping[str, Any]) -> dict[str, Any]:
        return dict(request)

    async def shutdown(self) -> None:
        pass
