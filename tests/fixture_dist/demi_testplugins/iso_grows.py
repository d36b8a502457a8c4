"""isolation: echoes, but a request {"fault": true} fills 400 MiB of memory and
holds it (tests/test_isolation.py runs it under a memory_limit_mb)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import anyio

from ._echo import HealthyEcho


class GrowsPlatform(HealthyEcho):
    async def handle_request(self, request: Mapping[str, Any]) -> dict[str, Any]:
        if request.get("fault"):
            held = b"x" * (400 * 1024 * 1024)  # written, so resident
            await anyio.sleep(60)
            return {"held": len(held)}
        return dict(request)
