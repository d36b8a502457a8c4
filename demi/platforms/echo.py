"""The built-in ``echo`` platform: the default that ``demi check`` runs on."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .base import BasePlatform, HealthStatus, PluginHealth

__all__ = ["EchoPlatform"]


class EchoPlatform(BasePlatform):
    """Answers every request with the request itself; always healthy.

    It needs no configuration and touches no network, which makes it the platform
    for smoke tests, examples and the README's first command.
    """

    async def initialize(self, config: Mapping[str, Any]) -> bool:
        """Accept any configuration; there is nothing to connect to."""
        return True

    async def health_check(self) -> PluginHealth:
        """Always healthy."""
        return PluginHealth(status=HealthStatus.HEALTHY)

    async def handle_request(self, request: Mapping[str, Any]) -> dict[str, Any]:
        """Return a copy of the request."""
        return dict(request)

    async def shutdown(self) -> None:
        """Nothing to release."""
