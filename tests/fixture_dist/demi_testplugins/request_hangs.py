"""handle_request never returns (until cancelled)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import anyio

from demi.platforms import BasePlatform, HealthStatus, PluginHealth


class RequestHangsPlatform(BasePlatform):
    """handle_request never returns (until cancelled)."""

    #: Calls that started hanging, and calls that were released (cancelled).
    hanging: ClassVar[int] = 0
    released: ClassVar[int] = 0

    async def initialize(self, config: Mapping[str, Any]) -> bool:
        return True

    async def health_check(self) -> PluginHealth:
        return PluginHealth(status=HealthStatus.HEALTHY)

    async def handle_request(self, request: Mapping[str, Any]) -> dict[str, Any]:
        type(self).hanging += 1
        try:
            await anyio.sleep_forever()
        finally:
            type(self).released += 1

    async def shutdown(self) -> None:
        pass
