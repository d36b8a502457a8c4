"""Fixtures: both anyio backends, a real ngircd, and the person in the channel."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fake_inbox import FakeInbox
from ngircd import Ngircd
from person import Person


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    """Run every async test on asyncio and on trio; a missing trio fails."""
    return str(request.param)


@pytest.fixture
def ircd(tmp_path: Path) -> Iterator[Ngircd]:
    """A real ngircd on a free loopback port, for one test; a missing ngircd fails."""
    server = Ngircd(tmp_path / "ngircd")
    server.directory.mkdir()
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def person(ircd: Ngircd) -> Iterator[Person]:
    """Alice, connected to the server and sitting in #demi."""
    alice = Person(ircd.port, "alice")
    alice.join("#demi")
    try:
        yield alice
    finally:
        alice.close()


@pytest.fixture
def inbox() -> Iterator[FakeInbox]:
    """A fake inbox for a platform's run(), closed after the test."""
    fake = FakeInbox()
    try:
        yield fake
    finally:
        fake.close()
