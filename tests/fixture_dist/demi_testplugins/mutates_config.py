"""initialize changes the configuration it is given, at every depth it can reach."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from demi_testplugins._echo import HealthyEcho


class MutatesConfigPlatform(HealthyEcho):
    """Takes what it was given as its own scratch space (no config_model)."""

    async def initialize(self, config: Mapping[str, Any]) -> bool:
        assert isinstance(config, dict)
        for value in config.values():
            if isinstance(value, dict):
                value["added_by_plugin"] = True
                value.pop("keep", None)
            if isinstance(value, list):
                value.append("added_by_plugin")
        config["added_by_plugin"] = True
        return True
