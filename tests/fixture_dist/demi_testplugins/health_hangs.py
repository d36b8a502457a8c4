"""health_check never returns (until cancelled)."""

from __future__ import annotations

from demi.platforms import PluginHealth
from demi_testplugins._echo import HangingEcho


class HealthHangsPlatform(HangingEcho):
    """health_check never returns (until cancelled)."""

    async def health_check(self) -> PluginHealth:
        await self._hang()
