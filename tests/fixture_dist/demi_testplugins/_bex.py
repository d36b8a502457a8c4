"""What the bex_* plugins share: a healthy echo that raises one BaseException from
one lifecycle call each. A bex_* module names the exception; each of its classes
misbehaves in one place, and every other call is a healthy echo's.

Not a plugin: no entry point names this module.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, ClassVar, NoReturn

from demi.platforms import PluginHealth
from demi_testplugins._echo import HealthyEcho


class Hostile(HealthyEcho):
    """Raises what :attr:`error` makes, where a subclass says."""

    error: ClassVar[Callable[[], BaseException]]

    def _raise(self) -> NoReturn:
        raise type(self).error()


class ConstructRaises(Hostile):
    """Its constructor raises."""

    def __init__(self) -> None:
        super().__init__()
        self._raise()


class InitializeRaises(Hostile):
    """initialize raises."""

    async def initialize(self, config: Mapping[str, Any]) -> bool:
        self._raise()


class HealthCheckRaises(Hostile):
    """health_check raises."""

    async def health_check(self) -> PluginHealth:
        self._raise()


class HandleRequestRaises(Hostile):
    """handle_request raises."""

    async def handle_request(self, request: Mapping[str, Any]) -> dict[str, Any]:
        self._raise()


class ShutdownRaises(Hostile):
    """shutdown raises."""

    async def shutdown(self) -> None:
        self._raise()
