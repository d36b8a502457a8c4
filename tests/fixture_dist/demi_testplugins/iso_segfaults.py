"""isolation: echoes, but a request {"fault": true} reads address 0 (SIGSEGV)."""

from __future__ import annotations

import ctypes
from collections.abc import Mapping
from typing import Any

from ._echo import HealthyEcho


class SegfaultsPlatform(HealthyEcho):
    async def handle_request(self, request: Mapping[str, Any]) -> dict[str, Any]:
        if request.get("fault"):
            ctypes.string_at(0)
        return dict(request)
