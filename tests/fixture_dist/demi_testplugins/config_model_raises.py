"""A config_model whose validator raises RuntimeError: the plugin's fault, not the operator's."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, model_validator

from demi_testplugins._echo import HealthyEcho


class BrokenConfig(BaseModel):
    """Any configuration makes its validator raise RuntimeError."""

    level: int = 1

    @model_validator(mode="before")
    @classmethod
    def _explode(cls, data: Any) -> Any:
        raise RuntimeError("the model's own bug")


class ConfigModelRaisesPlatform(HealthyEcho):
    """Would be fine, if its config_model could validate anything."""

    config_model = BrokenConfig
