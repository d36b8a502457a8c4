"""Raises AssertionError while being imported; stevedore lets this one escape."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from demi.platforms import BasePlatform, HealthStatus, PluginHealth


class AssertsAtImportPlatform(BasePlatform):
    """Never reached: its module fails an assertion at import."""

    async def initialize(self, config: Mapping[str, Any]) -> bool:
        return True

    async def health_check(self) -> PluginHealth:
        return PluginHealth(status=HealthStatus.HEALTHY)

    async def handle_request(self, request: Mapping[str, Any]) -> dict[str, Any]:
        return dict(request)

    async def shutdown(self) -> None:
        pass


# Raised rather than asserted, so that python -O still fails.
raise AssertionError("demi_testplugins.asserts_at_import failed a check")
