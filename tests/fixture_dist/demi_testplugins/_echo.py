"""What the test platforms share: a healthy echo, and the counted hang of a call.

Not a plugin: no entry point names this module, and it imports no plugin, so a
plugin module may import it without importing a broken sibling.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, NoReturn

import anyio

from demi.platforms import BasePlatform, HealthStatus, PluginHealth


class HealthyEcho(BasePlatform):
    """Always initializes, always healthy, echoes requests, shuts down at once.

    A test platform subclasses it and overrides what makes it the platform it is.
    """

    async def initialize(self, config: Mapping[str, Any]) -> bool:
        return True

    async def health_check(self) -> PluginHealth:
        return PluginHealth(status=HealthStatus.HEALTHY)

    async def handle_request(self, request: Mapping[str, Any]) -> dict[str, Any]:
        return dict(request)

    async def shutdown(self) -> None:
        pass


class HangingEcho(HealthyEcho):
    """A HealthyEcho whose overridden call hangs through ``_hang``, counted."""

    #: Calls that started hanging, and calls that were released (cancelled); every
    #: subclass has counters of its own.
    hanging: ClassVar[int] = 0
    released: ClassVar[int] = 0

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.hanging = 0
        cls.released = 0

    async def _hang(self) -> NoReturn:
        """Never return (until cancelled)."""
        type(self).hanging += 1
        try:
            await anyio.sleep_forever()
            # anyio types sleep_forever as returning None; it never does.
            raise AssertionError("anyio.sleep_forever returned")
        finally:
            type(self).released += 1
