"""Takes two seconds to import: an import that outlives a short init timeout.

Registered in a group of its own (demi_testplugins.slow), so no scan of
demi.platforms ever waits for it.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from demi.platforms import BasePlatform, HealthStatus, PluginHealth

time.sleep(2.0)


class SlowImportPlatform(BasePlatform):
    """A good platform behind a slow import."""

    async def initialize(self, config: Mapping[str, Any]) -> bool:
        return True

    async def health_check(self) -> PluginHealth:
        return PluginHealth(status=HealthStatus.HEALTHY)

    async def handle_request(self, request: Mapping[str, Any]) -> dict[str, Any]:
        return dict(request)

    async def shutdown(self) -> None:
        pass
