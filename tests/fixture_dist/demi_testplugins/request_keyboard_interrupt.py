"""handle_request raises KeyboardInterrupt: no signal, just code that raises it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from demi_testplugins._echo import HealthyEcho


class RequestKeyboardInterruptPlatform(HealthyEcho):
    """handle_request raises KeyboardInterrupt."""

    async def handle_request(self, request: Mapping[str, Any]) -> dict[str, Any]:
        raise KeyboardInterrupt
