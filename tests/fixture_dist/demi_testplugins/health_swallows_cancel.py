"""health_check swallows the cancellation its timeout delivers, once, and
reports healthy anyway: a result that arrives after the deadline."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import anyio

from demi.platforms import BasePlatform, HealthStatus, PluginHealth


class SwallowsCancelPlatform(BasePlatform):
    """Catches the cancellation of its health check and answers late."""

    #: Cancellations swallowed so far.
    swallowed: ClassVar[int] = 0

    async def initialize(self, config: Mapping[str, Any]) -> bool:
        return True

    async def health_check(self) -> PluginHealth:
        try:
            await anyio.sleep_forever()
        except anyio.get_cancelled_exc_class():
            type(self).swallowed += 1
        return PluginHealth(status=HealthStatus.HEALTHY)

    async def handle_request(self, request: Mapping[str, Any]) -> dict[str, Any]:
        return dict(request)

    async def shutdown(self) -> None:
        pass
