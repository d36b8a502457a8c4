"""handle_request raises ValueError."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from demi_testplugins._echo import HealthyEcho


class RequestRaisesPlatform(HealthyEcho):
    """handle_request raises ValueError."""

    async def handle_request(self, request: Mapping[str, Any]) -> dict[str, Any]:
        raise ValueError("cannot handle that request")
