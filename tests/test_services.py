"""The real backends the coordination tests run (tests/services.py): they start on
loopback, answer, stop, and start again where they were."""

from __future__ import annotations

import json
import socket
import urllib.request
from pathlib import Path

import pytest
from coordination_fixtures import serve
from services import EtcdServer, RedisServer, ServerError, require

pytestmark = pytest.mark.slow


def _etcd_put_get(etcd: EtcdServer, key: str, value: str | None = None) -> str | None:
    """Put ``value`` under ``key`` through etcd's v3 JSON gateway (when given), then
    read the key back; None when it is absent."""
    from base64 import b64decode, b64encode

    def call(path: str, body: dict[str, str]) -> dict[str, object]:
        request = urllib.request.Request(
            f"{etcd.url}/v3/{path}", data=json.dumps(body).encode(), method="POST"
        )
        with urllib.request.urlopen(request, timeout=5) as reply:
            answer: dict[str, object] = json.loads(reply.read())
            return answer

    encoded = b64encode(key.encode()).decode()
    if value is not None:
        call("kv/put", {"key": encoded, "value": b64encode(value.encode()).decode()})
    kvs = call("kv/range", {"key": encoded}).get("kvs")
    if not isinstance(kvs, list) or not kvs:
        return None
    return b64decode(kvs[0]["value"]).decode()


def _redis(redis: RedisServer, *command: str) -> bytes:
    """One Redis command (inline protocol); its raw reply."""
    with socket.create_connection(("127.0.0.1", redis.port), timeout=5) as sock:
        sock.sendall(" ".join(command).encode() + b"\r\n")
        return sock.recv(1024)


def test_etcd_answers_on_loopback_and_keeps_its_data_across_a_restart(
    tmp_path: Path,
) -> None:
    """A started etcd answers its v3 API on 127.0.0.1; stopped, its port refuses;
    started again, on the same port, it still has what was written."""
    with EtcdServer(tmp_path / "etcd") as etcd:
        assert etcd.url.startswith("http://127.0.0.1:")
        assert _etcd_put_get(etcd, "k", "v1") == "v1"
        etcd.stop()
        assert not etcd.running
        assert not etcd.answers()
        etcd.start()
        assert etcd.url == f"http://127.0.0.1:{etcd.client_port}"
        assert _etcd_put_get(etcd, "k") == "v1"
    assert not etcd.running
    assert not etcd.answers()


def test_redis_answers_on_loopback_stops_and_starts_again(tmp_path: Path) -> None:
    """A started Redis answers PING and keeps a key; stopped, its port refuses;
    started again on the same port it answers (empty: nothing is persisted)."""
    with RedisServer(tmp_path / "redis") as redis:
        assert redis.url == f"redis://127.0.0.1:{redis.port}"
        assert _redis(redis, "SET", "k", "v") == b"+OK\r\n"
        assert _redis(redis, "GET", "k") == b"$1\r\nv\r\n"
        redis.stop(kill=True)
        assert not redis.answers()
        redis.start()
        assert _redis(redis, "GET", "k") == b"$-1\r\n"
    assert not redis.answers()
    assert not list((tmp_path / "redis").glob("*.rdb"))


def test_the_fixtures_give_running_servers(
    etcd_server: EtcdServer, redis_server: RedisServer
) -> None:
    """``etcd_server`` and ``redis_server`` are started servers that answer."""
    assert etcd_server.running and etcd_server.answers()
    assert redis_server.running and redis_server.answers()


def test_a_missing_server_fails_the_test_naming_the_package(tmp_path: Path) -> None:
    """A binary that is not installed is an error naming the package; through the
    fixtures it fails the test (pytest.fail), never skips it."""

    class Missing(EtcdServer):
        binary = "demi-no-such-etcd"

    with pytest.raises(ServerError, match="apt-get install no-such-pkg"):
        require("demi-no-such-server", "no-such-pkg")
    with pytest.raises(pytest.fail.Exception, match="apt-get install etcd-server"):
        next(serve(Missing, tmp_path))
