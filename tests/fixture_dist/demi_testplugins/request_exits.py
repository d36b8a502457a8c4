"""handle_request raises SystemExit(0), as a careless sys.exit() would."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from demi_testplugins._echo import HealthyEcho


class RequestExitsPlatform(HealthyEcho):
    """handle_request raises SystemExit(0)."""

    async def handle_request(self, request: Mapping[str, Any]) -> dict[str, Any]:
        raise SystemExit(0)
