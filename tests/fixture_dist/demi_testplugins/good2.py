"""A second healthy platform, which says who answered."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from demi_testplugins._echo import HealthyEcho


class SecondGoodPlatform(HealthyEcho):
    """Answers with its own name and the request; always healthy."""

    async def handle_request(self, request: Mapping[str, Any]) -> dict[str, Any]:
        return {"from": self.name, "request": dict(request)}
