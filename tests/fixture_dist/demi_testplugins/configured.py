"""A platform that declares its configuration as a pydantic model."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, SecretStr

from demi_testplugins._echo import HealthyEcho


class ConfiguredConfig(BaseModel):
    """What the platform needs: an endpoint (required) and a secret token."""

    endpoint: str
    token: SecretStr
    retries: int = 3


class ConfiguredPlatform(HealthyEcho):
    """Keeps its validated configuration; answers with what it may show of it."""

    config_model = ConfiguredConfig

    async def initialize(self, config: Mapping[str, Any]) -> bool:
        self.config = dict(config)
        return isinstance(self.config["token"], SecretStr)

    async def handle_request(self, request: Mapping[str, Any]) -> dict[str, Any]:
        return {
            "endpoint": self.config["endpoint"],
            "retries": self.config["retries"],
            "token_length": len(self.config["token"].get_secret_value()),
        }
