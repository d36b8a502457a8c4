"""A config_model whose validator raises an exception that cannot be turned into text."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, model_validator

from demi_testplugins._echo import HealthyEcho


class UnprintableError(Exception):
    """Its __str__ itself raises."""

    def __str__(self) -> str:
        raise RuntimeError("no text for you")


class UnprintableConfig(BaseModel):
    """Any configuration makes its validator raise UnprintableError."""

    @model_validator(mode="before")
    @classmethod
    def _explode(cls, data: Any) -> Any:
        raise UnprintableError


class ConfigModelUnprintablePlatform(HealthyEcho):
    """Its config_model raises an exception whose message cannot be shown."""

    config_model = UnprintableConfig
