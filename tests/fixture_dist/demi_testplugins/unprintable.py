"""Platforms that raise an exception whose ``str()`` and ``repr()`` both raise."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from demi_testplugins._echo import HealthyEcho


class UnprintableError(Exception):
    """An exception that cannot be turned into text."""

    def __str__(self) -> str:
        raise RuntimeError("str() of UnprintableError")

    def __repr__(self) -> str:
        raise RuntimeError("repr() of UnprintableError")


class InitializeUnprintable(HealthyEcho):
    """initialize raises an UnprintableError."""

    async def initialize(self, config: Mapping[str, Any]) -> bool:
        raise UnprintableError


class RequestUnprintable(HealthyEcho):
    """handle_request raises an UnprintableError."""

    async def handle_request(self, request: Mapping[str, Any]) -> dict[str, Any]:
        raise UnprintableError
