"""A blocking platform whose health_check and handle_request never return."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from demi import SyncPlatform
from demi.platforms import PluginHealth


class SyncBlocksPlatform(SyncPlatform):
    """Each health_check and handle_request blocks its worker thread for an hour."""

    def initialize(self, config: Mapping[str, Any]) -> bool:
        return True

    def health_check(self) -> PluginHealth:
        time.sleep(3600)
        raise AssertionError("unreachable")

    def handle_request(self, request: Mapping[str, Any]) -> dict[str, Any]:
        time.sleep(3600)
        return {}

    def shutdown(self) -> None:
        pass
