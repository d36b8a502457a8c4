"""shutdown swallows every cancellation, forever."""

from __future__ import annotations

from demi_testplugins._echo import HealthyEcho
from demi_testplugins._stubborn import hold_on_forever


class ShutdownSwallowsForeverPlatform(HealthyEcho):
    """shutdown never returns, whatever cancels it."""

    async def shutdown(self) -> None:
        await hold_on_forever("shutdown")
