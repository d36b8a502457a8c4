"""One of two platforms registered as "twin" (the other is demi-testplugins-twin's)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from demi_testplugins._echo import HealthyEcho


class TwinPlatform(HealthyEcho):
    """A valid platform whose entry-point name is taken twice."""

    async def handle_request(self, request: Mapping[str, Any]) -> dict[str, Any]:
        return {"twin": "demi-testplugins"}
