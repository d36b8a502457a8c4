"""initialize raises ConnectionError."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from demi_testplugins._echo import HealthyEcho


class InitRaisesPlatform(HealthyEcho):
    """initialize raises ConnectionError."""

    async def initialize(self, config: Mapping[str, Any]) -> bool:
        raise ConnectionError("upstream refused the connection")
