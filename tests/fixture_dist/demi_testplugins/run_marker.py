"""initialize writes a marker file (config key ``marker``): proof that it ran."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import anyio

from demi_testplugins._echo import HealthyEcho


class MarkerPlatform(HealthyEcho):
    """initialize writes the file named by ``marker`` in its config."""

    async def initialize(self, config: Mapping[str, Any]) -> bool:
        await anyio.Path(config["marker"]).write_text("initialized", encoding="utf-8")
        return True
