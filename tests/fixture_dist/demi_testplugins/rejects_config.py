"""Declares a config_model that the configuration it is given breaks."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, Field, SecretStr

from demi.platforms import BasePlatform, HealthStatus, PluginHealth


class StrictConfig(BaseModel):
    """A level from 1 to 5 and an API key; nothing else."""

    model_config = {"extra": "forbid"}

    level: int = Field(ge=1, le=5)
    api_key: SecretStr


class RejectsConfigPlatform(BasePlatform):
    """Would be fine, given a level from 1 to 5 and an API key."""

    config_model = StrictConfig

    async def initialize(self, config: Mapping[str, Any]) -> bool:
        return True

    async def health_check(self) -> PluginHealth:
        return PluginHealth(status=HealthStatus.HEALTHY)

    async def handle_request(self, request: Mapping[str, Any]) -> dict[str, Any]:
        return dict(request)

    async def shutdown(self) -> None:
        pass
