"""isolation: echoes (after {"wait": seconds}, if given), but a request
{"fault": true} reads address 0 (SIGSEGV)."""

from __future__ import annotations

import ctypes
from collections.abc import Mapping
from typing import Any

import anyio

from ._echo import HealthyEcho


class SegfaultsPlatform(HealthyEcho):
    async def handle_request(self, request: Mapping[str, Any]) -> dict[str, Any]:
        if request.get("fault"):
            ctypes.string_at(0)
        if request.get("wait"):
            await anyio.sleep(float(request["wait"]))
        return dict(request)
