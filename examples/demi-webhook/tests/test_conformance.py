"""The webhook platform passes demi's conformance kit, against a real HTTP server."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import pytest
from demi_webhook import WebhookPlatform
from local_webhook import WebhookServer

from demi.testing import PlatformConformance


class TestWebhookConformance(PlatformConformance):
    """Every check of the kit, on asyncio and trio."""

    platform_class = WebhookPlatform
    sample_requests: ClassVar[list[Mapping[str, Any]]] = [
        {"event": "ping"},
        {"event": "message", "text": "hello", "tags": ["a", "b"], "count": 2},
    ]

    @pytest.fixture
    def platform_config(self, webhook_server: WebhookServer) -> Mapping[str, Any]:
        """Deliver to the test server."""
        return webhook_server.config()

    @pytest.fixture
    def platform_failing_config(
        self, webhook_server: WebhookServer
    ) -> Mapping[str, Any]:
        """A health URL that answers 503, so initialize refuses to start."""
        return webhook_server.config(health="/down")
