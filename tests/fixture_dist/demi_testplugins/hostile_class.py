"""A platform class whose metaclass raises SystemExit when it is inspected."""

from __future__ import annotations

import abc
from typing import Any

from demi_testplugins._echo import HealthyEcho


class _HostileMeta(abc.ABCMeta):
    """Raises SystemExit when anyone asks whether the class is ``blocking``."""

    def __getattribute__(cls, name: str) -> Any:
        if name == "blocking":
            raise SystemExit("asked whether HostileClassPlatform blocks")
        return super().__getattribute__(name)


class HostileClassPlatform(HealthyEcho, metaclass=_HostileMeta):
    """Imports fine; validating it raises SystemExit."""
