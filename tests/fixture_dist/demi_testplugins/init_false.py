"""initialize returns False: the platform says it is not ready."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from demi_testplugins._echo import HealthyEcho


class InitFalsePlatform(HealthyEcho):
    """initialize returns False: the platform says it is not ready."""

    async def initialize(self, config: Mapping[str, Any]) -> bool:
        return False
