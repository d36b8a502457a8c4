"""Platforms that raise KeyboardInterrupt from one lifecycle call each.

KeyboardInterrupt is not an Exception: code that catches only Exception lets it end the
process. Each class misbehaves in one place; every other call is a healthy echo's.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NoReturn

from demi.platforms import PluginHealth
from demi_testplugins._echo import HealthyEcho


def _raise() -> NoReturn:
    raise KeyboardInterrupt("from a plugin")


class ConstructRaises(HealthyEcho):
    """Its constructor raises KeyboardInterrupt."""

    def __init__(self) -> None:
        super().__init__()
        _raise()


class InitializeRaises(HealthyEcho):
    """initialize raises KeyboardInterrupt."""

    async def initialize(self, config: Mapping[str, Any]) -> bool:
        _raise()


class HealthCheckRaises(HealthyEcho):
    """health_check raises KeyboardInterrupt."""

    async def health_check(self) -> PluginHealth:
        _raise()


class HandleRequestRaises(HealthyEcho):
    """handle_request raises KeyboardInterrupt."""

    async def handle_request(self, request: Mapping[str, Any]) -> dict[str, Any]:
        _raise()


class ShutdownRaises(HealthyEcho):
    """shutdown raises KeyboardInterrupt."""

    async def shutdown(self) -> None:
        _raise()
