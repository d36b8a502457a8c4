"""health_check returns a dict, not a PluginHealth."""

from __future__ import annotations

from demi.platforms import PluginHealth
from demi_testplugins._echo import HealthyEcho


class HealthGarbagePlatform(HealthyEcho):
    """health_check returns a dict, not a PluginHealth."""

    async def health_check(self) -> PluginHealth:
        return {"status": "healthy"}  # type: ignore[return-value]
