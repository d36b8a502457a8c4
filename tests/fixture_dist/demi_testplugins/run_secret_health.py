"""Unhealthy, with the configured ``token`` in its error message."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from demi.platforms import HealthStatus, PluginHealth
from demi_testplugins._echo import HealthyEcho


class SecretHealthPlatform(HealthyEcho):
    """Reports unhealthy with an error message that quotes its ``token``."""

    async def initialize(self, config: Mapping[str, Any]) -> bool:
        self._token = str(config["token"])
        return True

    async def health_check(self) -> PluginHealth:
        return PluginHealth(
            status=HealthStatus.UNHEALTHY,
            error_message=f"login refused for token {self._token}",
        )
