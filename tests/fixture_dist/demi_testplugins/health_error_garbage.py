"""health_check reports unhealthy with an error_message that is not text: an
object whose str() raises, inside a dict with NaN and infinity."""

from __future__ import annotations

from demi.platforms import HealthStatus, PluginHealth
from demi_testplugins._echo import HealthyEcho


class _Unprintable:
    def __str__(self) -> str:
        raise RuntimeError("no text for you")

    __repr__ = __str__


class HealthErrorGarbagePlatform(HealthyEcho):
    """Unhealthy, with garbage for a reason."""

    async def health_check(self) -> PluginHealth:
        garbage = {"nan": float("nan"), "inf": float("inf"), "obj": _Unprintable()}
        return PluginHealth(HealthStatus.UNHEALTHY, error_message=garbage)  # type: ignore[arg-type]
