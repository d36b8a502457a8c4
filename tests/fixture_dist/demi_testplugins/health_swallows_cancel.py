"""health_check swallows the cancellation its timeout delivers, once, and
reports healthy anyway: a result that arrives after the deadline."""

from __future__ import annotations

from typing import ClassVar

import anyio

from demi.platforms import HealthStatus, PluginHealth
from demi_testplugins._echo import HealthyEcho


class SwallowsCancelPlatform(HealthyEcho):
    """Catches the cancellation of its health check and answers late."""

    #: Cancellations swallowed so far.
    swallowed: ClassVar[int] = 0

    async def health_check(self) -> PluginHealth:
        try:
            await anyio.sleep_forever()
        except anyio.get_cancelled_exc_class():
            type(self).swallowed += 1
        return PluginHealth(status=HealthStatus.HEALTHY)
