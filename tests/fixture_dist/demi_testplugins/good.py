"""A healthy platform that answers every request with the request."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from demi_testplugins._echo import HealthyEcho


class GoodPlatform(HealthyEcho):
    """Echoes requests; always healthy."""

    async def initialize(self, config: Mapping[str, Any]) -> bool:
        self.config = dict(config)
        return True
