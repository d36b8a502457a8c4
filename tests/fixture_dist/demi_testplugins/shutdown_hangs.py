"""shutdown never returns (until cancelled)."""

from __future__ import annotations

from demi_testplugins._echo import HangingEcho


class ShutdownHangsPlatform(HangingEcho):
    """shutdown never returns (until cancelled)."""

    async def shutdown(self) -> None:
        await self._hang()
