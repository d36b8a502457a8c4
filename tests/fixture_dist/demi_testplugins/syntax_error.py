"""Does not compile: SyntaxError at import (a module-level return).

The error is one CPython reports when compiling, not a parse error, so that ruff and
ruff format can still read the file.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from demi.platforms import BasePlatform, HealthStatus, PluginHealth


class SyntaxErrorPlatform(BasePlatform):
    """Never reached: its module does not compile."""

    async def initialize(self, config: Mapping[str, Any]) -> bool:
        return True

    async def health_check(self) -> PluginHealth:
        return PluginHealth(status=HealthStatus.HEALTHY)

    async def handle_request(self, request: Mapping[str, Any]) -> dict[str, Any]:
        return dict(request)

    async def shutdown(self) -> None:
        pass


return None  # noqa: F706
