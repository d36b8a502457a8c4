"""health_check swallows the cancellation its timeout delivers and carries on, deaf
to any further cancellation, until the platform is shut down (or ``stuck_for``
seconds have passed, config, default 60): a check no deadline can end. Unlike
health_swallows_cancel, which answers at once after swallowing."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import anyio

from demi.platforms import HealthStatus, PluginHealth
from demi_testplugins._echo import HealthyEcho


class IgnoresCancelPlatform(HealthyEcho):
    """Each health check runs until shutdown, whatever cancels it."""

    #: Health checks begun, and those running now (tests read them).
    begun: ClassVar[int] = 0
    running: ClassVar[int] = 0

    async def initialize(self, config: Mapping[str, Any]) -> bool:
        self.stuck_for = float(config.get("stuck_for", 60.0))
        self.released = anyio.Event()
        return True

    async def health_check(self) -> PluginHealth:
        cls = type(self)
        cls.begun += 1
        cls.running += 1
        try:
            try:
                await self.released.wait()
            except anyio.get_cancelled_exc_class():
                pass  # swallowed; from here on deaf to cancellation
            with anyio.CancelScope(shield=True), anyio.move_on_after(self.stuck_for):
                await self.released.wait()
        finally:
            cls.running -= 1
        return PluginHealth(status=HealthStatus.HEALTHY)

    async def shutdown(self) -> None:
        self.released.set()
