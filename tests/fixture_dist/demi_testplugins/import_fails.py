"""Imports a module that is not installed: ModuleNotFoundError at import."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import demi_testplugins_missing_dependency  # noqa: F401

from demi.platforms import BasePlatform, HealthStatus, PluginHealth


class ImportFailsPlatform(BasePlatform):
    """Never reached: its module cannot be imported."""

    async def initialize(self, config: Mapping[str, Any]) -> bool:
        return True

    async def health_check(self) -> PluginHealth:
        return PluginHealth(status=HealthStatus.HEALTHY)

    async def handle_request(self, request: Mapping[str, Any]) -> dict[str, Any]:
        return dict(request)

    async def shutdown(self) -> None:
        pass
