"""isolation: a platform on an asyncio-only SDK; it answers with the event loop
library it runs on and its process id."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any, ClassVar

import sniffio

from ._echo import HealthyEcho


class AsyncioOnlyPlatform(HealthyEcho):
    supported_backends: ClassVar[tuple[str, ...] | None] = ("asyncio",)

    async def handle_request(self, request: Mapping[str, Any]) -> dict[str, Any]:
        return {"loop": sniffio.current_async_library(), "pid": os.getpid()}
