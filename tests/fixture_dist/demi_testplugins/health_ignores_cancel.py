"""health_check swallows the cancellation its timeout delivers and carries on for
``stuck_for`` seconds (config, default 2) as if nothing happened: a check no deadline
can end. Unlike health_swallows_cancel, which answers at once after swallowing."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import anyio

from demi.platforms import HealthStatus, PluginHealth
from demi_testplugins._echo import HealthyEcho


class IgnoresCancelPlatform(HealthyEcho):
    """Each health check runs ``stuck_for`` seconds whatever cancels it."""

    #: Health checks begun, and those running now (tests read them).
    begun: ClassVar[int] = 0
    running: ClassVar[int] = 0

    async def initialize(self, config: Mapping[str, Any]) -> bool:
        self.stuck_for = float(config.get("stuck_for", 2.0))
        return True

    async def health_check(self) -> PluginHealth:
        cls = type(self)
        cls.begun += 1
        cls.running += 1
        deadline = anyio.current_time() + self.stuck_for
        try:
            try:
                await anyio.sleep(self.stuck_for)
            except anyio.get_cancelled_exc_class():
                pass  # swallowed; then the rest of the time, deaf to cancellation
            with anyio.CancelScope(shield=True):
                await anyio.sleep(max(deadline - anyio.current_time(), 0))
        finally:
            cls.running -= 1
        return PluginHealth(status=HealthStatus.HEALTHY)
