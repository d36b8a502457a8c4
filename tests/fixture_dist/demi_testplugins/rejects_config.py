"""Declares a config_model that the configuration it is given breaks."""

from __future__ import annotations

from pydantic import BaseModel, Field, SecretStr

from demi_testplugins._echo import HealthyEcho


class StrictConfig(BaseModel):
    """A level from 1 to 5 and an API key; nothing else."""

    model_config = {"extra": "forbid"}

    level: int = Field(ge=1, le=5)
    api_key: SecretStr


class RejectsConfigPlatform(HealthyEcho):
    """Would be fine, given a level from 1 to 5 and an API key."""

    config_model = StrictConfig
