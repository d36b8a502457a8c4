"""initialize never ends and swallows every cancellation."""

from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import Any

import anyio

from demi_testplugins._echo import HealthyEcho


class InitSwallowsPlatform(HealthyEcho):
    """initialize sleeps forever, catching every cancellation."""

    async def initialize(self, config: Mapping[str, Any]) -> bool:
        # Tells a test that the hang has begun (loading covers the import too).
        sys.stderr.write("run_init_swallows: initializing\n")
        sys.stderr.flush()
        while True:
            try:
                await anyio.sleep(3600)
            except anyio.get_cancelled_exc_class():
                pass
