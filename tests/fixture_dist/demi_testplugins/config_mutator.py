"""initialize changes the configuration mapping it was given, nested parts too."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any, ClassVar

from demi_testplugins._echo import HealthyEcho


class MutatesConfig(HealthyEcho):
    """Adds and changes keys of its config, at the top and inside nested values."""

    #: A copy of the config each initialize was given, before it changed it (for
    #: tests/test_fault_matrix.py, which resets it).
    received: ClassVar[list[dict[str, Any]]] = []

    async def initialize(self, config: Mapping[str, Any]) -> bool:
        type(self).received.append(copy.deepcopy(dict(config)))
        mutable: Any = config
        mutable["added"] = "by the plugin"
        mutable["level"] = "changed by the plugin"
        mutable["nested"]["inner"] = "changed by the plugin"
        mutable["nested"]["added"] = "by the plugin"
        mutable["items"].append("appended by the plugin")
        return True
