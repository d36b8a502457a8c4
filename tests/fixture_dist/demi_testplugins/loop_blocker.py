"""Async methods that block the event loop with time.sleep instead of awaiting."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from demi.platforms import PluginHealth
from demi_testplugins._echo import HealthyEcho

#: Seconds each call holds the loop: three times demi's default threshold.
BLOCK = 0.3


class BlocksInRequest(HealthyEcho):
    """handle_request holds the loop for BLOCK seconds."""

    async def handle_request(self, request: Mapping[str, Any]) -> dict[str, Any]:
        time.sleep(BLOCK)  # noqa: ASYNC251 - blocking the loop is the point
        return dict(request)


class BlocksInHealth(HealthyEcho):
    """health_check holds the loop for BLOCK seconds."""

    async def health_check(self) -> PluginHealth:
        time.sleep(BLOCK)  # noqa: ASYNC251 - blocking the loop is the point
        return await super().health_check()
