"""initialize never ends and swallows every cancellation."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import anyio

from demi_testplugins._echo import HealthyEcho


class InitSwallowsPlatform(HealthyEcho):
    """initialize sleeps forever, catching every cancellation."""

    async def initialize(self, config: Mapping[str, Any]) -> bool:
        while True:
            try:
                await anyio.sleep(3600)
            except anyio.get_cancelled_exc_class():
                pass
