"""Prints to standard output at import, in initialize and in health_check (and
writes to file descriptor 1 directly): chatter that must not reach demi's output."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from demi.platforms import PluginHealth
from demi_testplugins._echo import HealthyEcho

print("prints_to_stdout: imported")  # noqa: T201  (the point of this plugin)


class PrintsToStdoutPlatform(HealthyEcho):
    """A healthy echo that talks on stdout."""

    async def initialize(self, config: Mapping[str, Any]) -> bool:
        print("prints_to_stdout: initializing {")  # noqa: T201
        os.write(1, b"prints_to_stdout: straight to fd 1\n")
        return True

    async def health_check(self) -> PluginHealth:
        print("prints_to_stdout: checking ]")  # noqa: T201
        return await super().health_check()
