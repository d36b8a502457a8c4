"""Fixtures: both anyio backends, and a real HTTP server to deliver to."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from local_webhook import WebhookServer, serving


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    """Run every async test on asyncio and on trio; a missing trio fails."""
    return str(request.param)


@pytest.fixture
def webhook_server() -> Iterator[WebhookServer]:
    """A real HTTP server on 127.0.0.1, served from a thread for one test."""
    with serving() as server:
        yield server
