"""Platforms that raise SystemExit from one lifecycle call each.

SystemExit is not an Exception: code that catches only Exception lets it end the
process. Each class misbehaves in one place; every other call is a healthy echo's.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NoReturn

from demi.platforms import PluginHealth
from demi_testplugins._echo import HealthyEcho


def _raise() -> NoReturn:
    raise SystemExit(3)


class ConstructRaises(HealthyEcho):
    """Its constructor raises SystemExit."""

    def __init__(self) -> None:
        super().__init__()
        _raise()


class InitializeRaises(HealthyEcho):
    """initialize raises SystemExit."""

    async def initialize(self, config: Mapping[str, Any]) -> bool:
        _raise()


class HealthCheckRaises(HealthyEcho):
    """health_check raises SystemExit."""

    async def health_check(self) -> PluginHealth:
        _raise()


class HandleRequestRaises(HealthyEcho):
    """handle_request raises SystemExit."""

    async def handle_request(self, request: Mapping[str, Any]) -> dict[str, Any]:
        _raise()


class ShutdownRaises(HealthyEcho):
    """shutdown raises SystemExit."""

    async def shutdown(self) -> None:
        _raise()
