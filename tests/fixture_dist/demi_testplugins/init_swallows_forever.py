"""initialize swallows every cancellation, forever."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from demi_testplugins._echo import HealthyEcho
from demi_testplugins._stubborn import hold_on_forever


class InitSwallowsForeverPlatform(HealthyEcho):
    """initialize never returns, whatever cancels it."""

    async def initialize(self, config: Mapping[str, Any]) -> bool:
        await hold_on_forever("initialize")
