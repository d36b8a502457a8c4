"""initialize takes ``seconds`` (config, default 6) and then succeeds: a start-up
long enough for ``demi run`` to report its progress."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import anyio

from demi_testplugins._echo import HealthyEcho


class SlowInitPlatform(HealthyEcho):
    """Starts, slowly."""

    async def initialize(self, config: Mapping[str, Any]) -> bool:
        await anyio.sleep(float(config.get("seconds", 6)))
        return True
