"""initialize starts a non-daemon thread that never ends."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

from demi_testplugins._echo import HealthyEcho


class LeavesThreadPlatform(HealthyEcho):
    """Leaves a non-daemon thread behind, waiting forever."""

    async def initialize(self, config: Mapping[str, Any]) -> bool:
        forever = threading.Event()
        threading.Thread(target=forever.wait, name="left-behind", daemon=False).start()
        return True
