"""handle_request answers with a dict holding a value JSON cannot encode."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from demi_testplugins._echo import HealthyEcho


class ReplySet(HealthyEcho):
    """Answers with a set."""

    async def handle_request(self, request: Mapping[str, Any]) -> dict[str, Any]:
        return {"value": {1, 2}}


class ReplyBytes(HealthyEcho):
    """Answers with bytes."""

    async def handle_request(self, request: Mapping[str, Any]) -> dict[str, Any]:
        return {"value": b"\x00\xff"}


class ReplyNan(HealthyEcho):
    """Answers with a NaN, which JSON has no spelling for."""

    async def handle_request(self, request: Mapping[str, Any]) -> dict[str, Any]:
        return {"value": float("nan")}


class ReplyObject(HealthyEcho):
    """Answers with an arbitrary object, nested."""

    async def handle_request(self, request: Mapping[str, Any]) -> dict[str, Any]:
        return {"outer": {"value": object()}}
