"""health_check returns a PluginHealth that was tampered with after it was built."""

from __future__ import annotations

from demi.platforms import HealthStatus, PluginHealth
from demi_testplugins._echo import HealthyEcho

#: Five megabytes of error message.
HUGE = "x" * (5 * 1024 * 1024)


class _Opaque:
    """An object that is neither a string nor a health status."""

    def __repr__(self) -> str:
        return "<opaque>"


def _tampered(field: str, value: object) -> PluginHealth:
    health = PluginHealth(status=HealthStatus.UNHEALTHY, error_message="set")
    # Frozen, but nothing stops object.__setattr__.
    object.__setattr__(health, field, value)
    return health


class BogusStatus(HealthyEcho):
    """Its health's status is the string "bogus", not a HealthStatus."""

    async def health_check(self) -> PluginHealth:
        return _tampered("status", "bogus")


class IntMessage(HealthyEcho):
    """Its health's error_message is an int."""

    async def health_check(self) -> PluginHealth:
        return _tampered("error_message", 42)


class ObjectMessage(HealthyEcho):
    """Its health's error_message is an arbitrary object."""

    async def health_check(self) -> PluginHealth:
        return _tampered("error_message", _Opaque())


class HugeMessage(HealthyEcho):
    """Its health's error_message is five megabytes long."""

    async def health_check(self) -> PluginHealth:
        return PluginHealth(status=HealthStatus.UNHEALTHY, error_message=HUGE)
