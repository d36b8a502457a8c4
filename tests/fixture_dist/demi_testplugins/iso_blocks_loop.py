"""isolation: echoes, but a request {"fault": true} blocks its event loop with
time.sleep for a minute."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from ._echo import HealthyEcho


class BlocksLoopPlatform(HealthyEcho):
    async def handle_request(self, request: Mapping[str, Any]) -> dict[str, Any]:
        if request.get("fault"):
            time.sleep(60)  # noqa: ASYNC251 - the hostile part
        return dict(request)
