"""handle_request never returns (until cancelled)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from demi_testplugins._echo import HangingEcho


class RequestHangsPlatform(HangingEcho):
    """handle_request never returns (until cancelled)."""

    async def handle_request(self, request: Mapping[str, Any]) -> dict[str, Any]:
        await self._hang()
