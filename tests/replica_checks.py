"""What the replica tests (tests/test_coordination_replicas.py,
tests/test_coordination_faults.py) share: the backend's expiry and every bound
derived from it, the coordination backend a test runs on, and the checks on what the
connection counter saw.

Every bound is derived from the backend's own timeouts, which the URL sets low
(``?timeout=TIMEOUT``: tooz's membership and lock timeouts, in seconds), plus a
generous allowance for starting the instances on a loaded machine.
"""

from __future__ import annotations

import base64
import json
import urllib.request
from dataclasses import dataclass
from typing import Any

from connection_counter import Account, ConnectionCounter
from prometheus_client.parser import text_string_to_metric_families
from replicas import Fleet
from services import EtcdServer, RedisServer, Server

#: The backend's expiry T: tooz's membership and lock timeouts, through ``?timeout=``.
#: Every other time of a replica derives from it (demi/coordination/_timing.py).
TIMEOUT = 3
#: Starting (or moving) instances on a loaded machine: processes, imports, joins.
ALLOWANCE = 20.0
#: Three replicas joining and starting their shares, from nothing.
CONVERGE = 30.0 + ALLOWANCE
#: A dead member's membership and locks expire at most T after its last heartbeat;
#: the survivors see it at their next heartbeat (every T/4) and retry its locks
#: (every T/4 at most): about 1.5 T, then the start.
FAILOVER = 1.5 * TIMEOUT + ALLOWANCE / 2
#: Self-fencing: T/2 after the last answer the exclusive instances stop, each stop
#: bounded by T/4, so they are down by 3T/4, before any lock can expire (T). The
#: last answer came before the cut; a few seconds more for a loaded machine.
FENCE = 0.75 * TIMEOUT + 4.0
INSTANCES = 30
#: The tooz drivers the tests run on; those with a server to stop, cut off or
#: reach into; and the conductor's backends.
DRIVERS = ["etcd", "redis", "file"]
SERVERS = ["etcd", "redis"]
CONDUCTORS = ["asyncio", "trio"]
MEMBERS = ["r1", "r2", "r3"]
#: A replica that stops (SIGTERM) releases its locks and leaves the group: the
#: others see it at their next heartbeat (T/4), then start its instances.
HANDOVER = 0.25 * TIMEOUT + ALLOWANCE / 2
#: A lost lock is found at the next heartbeat (T/4); the instance then stops, and
#: starts again once its lock is taken afresh.
RELOCK = 0.25 * TIMEOUT + ALLOWANCE / 2


@dataclass
class Backend:
    """A coordination backend: its tooz URL and, for a server, the server."""

    url: str
    server: Server | None


def connected(metrics: str) -> float | None:
    """``demi_coordination_connected`` in a /metrics text (None if absent)."""
    for family in text_string_to_metric_families(metrics):
        for sample in family.samples:
            if sample.name == "demi_coordination_connected":
                return float(sample.value)
    return None


def all_connected_once(counter: ConnectionCounter, accounts: list[str]) -> bool:
    """Every account has exactly one open connection now."""
    seen = counter.accounts()
    return all(seen.get(a, Account()).current == 1 for a in accounts)


def never_doubled(counter: ConnectionCounter) -> None:
    """No account ever had two connections at once."""
    doubled = {a: s for a, s in counter.accounts().items() if s.most > 1}
    assert not doubled, f"two connections at once for {doubled}"


def fail_over(
    replicas: Fleet,
    counter: ConnectionCounter,
    lost: list[str],
    before: dict[str, Account],
    dead: str,
) -> float:
    """Wait until every account in ``lost`` was connected again (a new connection,
    open now) and the survivors agree on owners other than ``dead``; return the
    seconds that took."""

    def moved() -> bool:
        seen = counter.accounts()
        reconnected = all(
            seen[a].current == 1 and seen[a].total > before[a].total for a in lost
        )
        owned = replicas.agreed_owners(among=set(replicas.replicas) - {dead})
        return reconnected and owned is not None

    _, took = replicas.wait(f"{dead}'s accounts {lost} connected elsewhere", moved, 60)
    return took


def expire_lock(backend: Backend, instance: str) -> None:
    """Make the backend drop the lock that guards ``instance``, as its expiry would:
    on etcd, revoke the lease the lock's key lives on; on Redis, delete its key."""
    if isinstance(backend.server, EtcdServer):
        found = _etcd(
            backend.server, "kv/range", key="/tooz/locks", range_end="/tooz/lockt"
        )
        kvs = [
            kv
            for kv in found.get("kvs", [])
            if _text(kv["key"]).endswith(f".{instance}")
        ]
        assert len(kvs) == 1, found
        _etcd(backend.server, "lease/revoke", ID=kvs[0]["lease"])
    else:
        assert isinstance(backend.server, RedisServer)
        import redis

        with redis.Redis(port=backend.server.port) as client:
            keys = client.keys(f"*.{instance}_lock")
            assert len(keys) == 1, keys
            assert client.delete(*keys) == 1


def _text(encoded: str) -> str:
    return base64.b64decode(encoded).decode()


def _etcd(etcd: EtcdServer, path: str, **body: str) -> dict[str, Any]:
    """A call to etcd's v3 JSON gateway; keys (``key``, ``range_end``) are given as
    text and sent base64-encoded, as the gateway wants them."""
    for name in ("key", "range_end"):
        if name in body:
            body[name] = base64.b64encode(body[name].encode()).decode()
    request = urllib.request.Request(
        f"{etcd.url}/v3/{path}", data=json.dumps(body).encode(), method="POST"
    )
    with urllib.request.urlopen(request, timeout=5) as reply:
        answer: dict[str, Any] = json.loads(reply.read())
        return answer
