"""isolation: echoes, but a request {"fault": true} calls os._exit(3)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from ._echo import HealthyEcho


class ExitsPlatform(HealthyEcho):
    async def handle_request(self, request: Mapping[str, Any]) -> dict[str, Any]:
        if request.get("fault"):
            os._exit(3)
        return dict(request)
