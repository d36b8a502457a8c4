"""A healthy echo whose shutdown writes the file named by its ``marker`` option, so
a test can see that it was shut down."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from demi_testplugins._echo import HealthyEcho


class MarksShutdownPlatform(HealthyEcho):
    """Writes ``config["marker"]`` when shut down."""

    async def initialize(self, config: Mapping[str, Any]) -> bool:
        self.marker = Path(config["marker"])
        return True

    async def shutdown(self) -> None:
        self.marker.write_text("shut down\n")
