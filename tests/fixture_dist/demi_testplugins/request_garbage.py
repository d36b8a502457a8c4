"""handle_request returns a list, not a dict."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from demi_testplugins._echo import HealthyEcho


class RequestGarbagePlatform(HealthyEcho):
    """handle_request returns a list, not a dict."""

    async def handle_request(self, request: Mapping[str, Any]) -> dict[str, Any]:
        return ["not", "a", "dict"]  # type: ignore[return-value]
