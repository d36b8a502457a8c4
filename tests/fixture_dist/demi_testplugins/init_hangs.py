"""initialize never returns (until cancelled)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from demi_testplugins._echo import HangingEcho


class InitHangsPlatform(HangingEcho):
    """initialize never returns (until cancelled)."""

    async def initialize(self, config: Mapping[str, Any]) -> bool:
        await self._hang()
