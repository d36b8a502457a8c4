"""handle_request returns a list, not a dict."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from demi.platforms import BasePlatform, HealthStatus, PluginHealth


class RequestGarbagePlatform(BasePlatform):
    """handle_request returns a list, not a dict."""

    async def initialize(self, config: Mapping[str, Any]) -> bool:
        return True

    async def health_check(self) -> PluginHealth:
        return PluginHealth(status=HealthStatus.HEALTHY)

    async def handle_request(self, request: Mapping[str, Any]) -> dict[str, Any]:
        return ["not", "a", "dict"]  # type: ignore[return-value]

    async def shutdown(self) -> None:
        pass
