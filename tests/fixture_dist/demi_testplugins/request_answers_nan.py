"""handle_request answers with numbers JSON cannot hold: NaN and the infinities."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from demi_testplugins._echo import HealthyEcho


class RequestAnswersNanPlatform(HealthyEcho):
    """Answers {"nan": NaN, "inf": Infinity, "ninf": -Infinity, "ok": 1.5}."""

    async def handle_request(self, request: Mapping[str, Any]) -> dict[str, Any]:
        nan, inf = float("nan"), float("inf")
        return {"nan": nan, "inf": inf, "ninf": -inf, "ok": 1.5}
