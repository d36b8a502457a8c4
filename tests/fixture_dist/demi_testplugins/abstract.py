"""A BasePlatform subclass that leaves handle_request and shutdown abstract."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from demi.platforms import BasePlatform, HealthStatus, PluginHealth


class HalfDonePlatform(BasePlatform):
    """Implements only initialize and health_check."""

    async def initialize(self, config: Mapping[str, Any]) -> bool:
        return True

    async def health_check(self) -> PluginHealth:
        return PluginHealth(status=HealthStatus.HEALTHY)
