"""health_check returns a dict, not a PluginHealth."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from demi.platforms import BasePlatform, PluginHealth


class HealthGarbagePlatform(BasePlatform):
    """health_check returns a dict, not a PluginHealth."""

    async def initialize(self, config: Mapping[str, Any]) -> bool:
        return True

    async def health_check(self) -> PluginHealth:
        return {"status": "healthy"}  # type: ignore[return-value]

    async def handle_request(self, request: Mapping[str, Any]) -> dict[str, Any]:
        return dict(request)

    async def shutdown(self) -> None:
        pass
