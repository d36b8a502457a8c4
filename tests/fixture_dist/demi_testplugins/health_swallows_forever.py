"""health_check swallows every cancellation, forever."""

from __future__ import annotations

from demi.platforms import PluginHealth
from demi_testplugins._echo import HealthyEcho
from demi_testplugins._stubborn import hold_on_forever


class HealthSwallowsForeverPlatform(HealthyEcho):
    """health_check never returns, whatever cancels it."""

    async def health_check(self) -> PluginHealth:
        await hold_on_forever("health_check")
