"""A BasePlatform subclass whose health_check is a plain def, not async def."""

from __future__ import annotations

from demi.platforms import HealthStatus, PluginHealth
from demi_testplugins._echo import HealthyEcho


class SyncHealthPlatform(HealthyEcho):
    """Everything right but one method."""

    def health_check(self) -> PluginHealth:  # type: ignore[override]
        return PluginHealth(status=HealthStatus.HEALTHY)
