"""handle_request answers with a dict that contains itself."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from demi_testplugins._echo import HealthyEcho


class RequestAnswersCyclePlatform(HealthyEcho):
    """Answers {"name": "loop", "self": <the same dict>}."""

    async def handle_request(self, request: Mapping[str, Any]) -> dict[str, Any]:
        answer: dict[str, Any] = {"name": "loop"}
        answer["self"] = answer
        return answer
