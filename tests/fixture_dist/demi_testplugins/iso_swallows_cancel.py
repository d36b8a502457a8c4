"""isolation: echoes, but a request {"fault": true} swallows every cancellation
forever."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import anyio

from ._echo import HealthyEcho


class SwallowsCancelPlatform(HealthyEcho):
    async def handle_request(self, request: Mapping[str, Any]) -> dict[str, Any]:
        if request.get("fault"):
            while True:
                try:
                    await anyio.sleep(3600)
                except BaseException:  # the hostile part
                    continue
        return dict(request)
