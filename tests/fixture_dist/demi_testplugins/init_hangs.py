"""initialize never returns (until cancelled)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import anyio

from demi.platforms import BasePlatform, HealthStatus, PluginHealth


class InitHangsPlatform(BasePlatform):
    """initialize never returns (until cancelled)."""

    #: Calls that started hanging, and calls that were released (cancelled).
    hanging: ClassVar[int] = 0
    released: ClassVar[int] = 0

    async def initialize(self, config: Mapping[str, Any]) -> bool:
        type(self).hanging += 1
        try:
            await anyio.sleep_forever()
        finally:
            type(self).released += 1

    async def health_check(self) -> PluginHealth:
        return PluginHealth(status=HealthStatus.HEALTHY)

    async def handle_request(self, request: Mapping[str, Any]) -> dict[str, Any]:
        return dict(request)

    async def shutdown(self) -> None:
        pass
