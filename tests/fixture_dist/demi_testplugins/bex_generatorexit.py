"""Platforms that raise GeneratorExit from one lifecycle call each.

GeneratorExit is not an Exception: code that catches only Exception lets it end the
process. Each class misbehaves in one place; every other call is a healthy echo's.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NoReturn

from demi.platforms import PluginHealth
from demi_testplugins._echo import HealthyEcho


def _raise() -> NoReturn:
    raise GeneratorExit("from a plugin")


class ConstructRaises(HealthyEcho):
    """Its constructor raises GeneratorExit."""

    def __init__(self) -> None:
        super().__init__()
        _raise()


class InitializeRaises(HealthyEcho):
    """initialize raises GeneratorExit."""

    async def initialize(self, config: Mapping[str, Any]) -> bool:
        _raise()


class HealthCheckRaises(HealthyEcho):
    """health_check raises GeneratorExit."""

    async def health_check(self) -> PluginHealth:
        _raise()


class HandleRequestRaises(HealthyEcho):
    """handle_request raises GeneratorExit."""

    async def handle_request(self, request: Mapping[str, Any]) -> dict[str, Any]:
        _raise()


class ShutdownRaises(HealthyEcho):
    """shutdown raises GeneratorExit."""

    async def shutdown(self) -> None:
        _raise()
