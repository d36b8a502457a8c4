"""Fixtures of the coordination tests (loaded by tests/conftest.py as a plugin): real
etcd and Redis servers (tests/services.py), the loopback connection counter
(tests/connection_counter.py), each started for one test and stopped after it, and
``coordination_backend``, the coordination backend a replica test's ``driver`` parameter names.

A server that cannot be run fails the test with the reason (for a missing binary,
the Debian package to install): never a skip.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TypeVar

import pytest
from connection_counter import ConnectionCounter
from replica_checks import TIMEOUT, Backend
from services import EtcdServer, RedisServer, Server, ServerError

S = TypeVar("S", bound=Server)


def serve(kind: type[S], folder: Path) -> Iterator[S]:
    """A started ``kind`` of server in ``folder``, stopped afterwards; a server that
    cannot be run fails the test."""
    try:
        server = kind(folder)
        server.start()
    except ServerError as error:
        pytest.fail(str(error), pytrace=False)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def etcd_server(tmp_path: Path) -> Iterator[EtcdServer]:
    """A running etcd for this test."""
    yield from serve(EtcdServer, tmp_path / "etcd")


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    """A running Redis for this test."""
    yield from serve(RedisServer, tmp_path / "redis")


@pytest.fixture
def connection_counter() -> Iterator[ConnectionCounter]:
    """A running connection counter for this test."""
    with ConnectionCounter() as counter:
        yield counter


@pytest.fixture
def coordination_backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    """The coordination backend named by the test's ``driver`` parameter."""
    driver = request.node.callspec.params["driver"]
    query = f"?timeout={TIMEOUT}"
    if driver == "etcd":
        etcd: EtcdServer = request.getfixturevalue("etcd_server")
        return Backend(f"etcd3+{etcd.url}{query}", etcd)
    if driver == "redis":
        redis: RedisServer = request.getfixturevalue("redis_server")
        return Backend(f"{redis.url}{query}", redis)
    return Backend(f"file://{tmp_path / 'coord'}{query}", None)
