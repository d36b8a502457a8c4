"""Unhealthy, with an error message that is not a string (nor JSON)."""

from __future__ import annotations

from demi.platforms import HealthStatus, PluginHealth
from demi_testplugins._echo import HealthyEcho


class Opaque:
    """An object JSON cannot hold."""

    def __repr__(self) -> str:
        return "<opaque>"


class OddHealthPlatform(HealthyEcho):
    """Reports unhealthy with a dict holding NaN and an arbitrary object as its
    error message."""

    async def health_check(self) -> PluginHealth:
        odd = {"ratio": float("nan"), "limit": float("inf"), "what": Opaque()}
        return PluginHealth(
            status=HealthStatus.UNHEALTHY,
            error_message=odd,  # type: ignore[arg-type]
        )
