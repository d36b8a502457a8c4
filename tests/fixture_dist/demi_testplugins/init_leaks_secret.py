"""initialize returns, instead of True, an object whose repr shows its secret."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from demi_testplugins._echo import HealthyEcho


class Leaky:
    """Shows the whole configuration it holds, secrets included."""

    def __init__(self, config: Mapping[str, Any]) -> None:
        self.config = dict(config)

    def __repr__(self) -> str:
        # Short enough that no repr shortening hides the secret.
        return f"Leaky({self.config.get('api_key')})"


class ReturnsLeakyObject(HealthyEcho):
    """initialize returns a Leaky holding its config."""

    async def initialize(self, config: Mapping[str, Any]) -> bool:
        return Leaky(config)  # type: ignore[return-value]
