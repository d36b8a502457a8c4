"""health_check raises RuntimeError."""

from __future__ import annotations

from demi.platforms import PluginHealth
from demi_testplugins._echo import HealthyEcho


class HealthRaisesPlatform(HealthyEcho):
    """health_check raises RuntimeError."""

    async def health_check(self) -> PluginHealth:
        raise RuntimeError("health probe exploded")
