"""initialize changes the configuration mapping it was given, nested parts too."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from demi_testplugins._echo import HealthyEcho


class MutatesConfig(HealthyEcho):
    """Adds and changes keys of its config, at the top and inside nested values."""

    async def initialize(self, config: Mapping[str, Any]) -> bool:
        mutable: Any = config
        mutable["added"] = "by the plugin"
        mutable["level"] = "changed by the plugin"
        mutable["nested"]["inner"] = "changed by the plugin"
        mutable["nested"]["added"] = "by the plugin"
        mutable["items"].append("appended by the plugin")
        return True
