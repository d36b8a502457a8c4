"""Placeholder until the config stream lands: one function prepares a plugin's
config. (Replaced by the full version on merge.)"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from .secrets import register_secrets

if TYPE_CHECKING:
    from pydantic import BaseModel

    from .config import DemiSettings

__all__ = ["prepare_config"]


def prepare_config(
    model: type[BaseModel] | None,
    raw: Mapping[str, Any],
    *,
    instance: str,
    settings: DemiSettings | None = None,
) -> dict[str, Any]:
    """A fresh, validated copy of ``raw`` for the platform ``instance``."""
    options = copy.deepcopy(dict(raw))
    register_secrets(options)
    if model is None:
        return options
    from pydantic import ValidationError

    try:
        dumped = model.model_validate(options).model_dump()
    except ValidationError as err:
        fields = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or '(config)'}: {e['msg']}"
            for e in err.errors(include_input=False)
        )
        raise ValueError(f"rejected its configuration: {fields}") from None
    register_secrets(dumped)
    return dumped
