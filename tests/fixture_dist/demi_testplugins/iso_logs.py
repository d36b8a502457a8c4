"""isolation: logs what it is asked, and its secret token, in every request."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, SecretStr

from ._echo import HealthyEcho

LOG = logging.getLogger("demi_testplugins.iso_logs")


class _Config(BaseModel):
    token: SecretStr


class LogsPlatform(HealthyEcho):
    config_model = _Config

    async def initialize(self, config: Mapping[str, Any]) -> bool:
        self.token = config["token"]
        return True

    async def handle_request(self, request: Mapping[str, Any]) -> dict[str, Any]:
        LOG.warning("asked %s", request.get("text"))
        LOG.warning("my token is %s", self.token.get_secret_value())
        return dict(request)
