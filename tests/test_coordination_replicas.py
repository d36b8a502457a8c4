"""Many conductors, each connection owned once (issue 13), end to end: three real
``demi run --http`` replicas of one coordination group on a real etcd, a real Redis
and the file driver, with 30 ``account_conn`` instances whose connections the
loopback connection counter counts per account.

Every bound here is derived from the backend's own timeouts, which the URL sets low
(``?timeout=TIMEOUT``: tooz's membership and lock timeouts, in seconds), plus a
generous allowance for starting the instances on a loaded machine.
"""

from __future__ import annotations

import base64
import json
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from connection_counter import Account, ConnectionCounter
from prometheus_client.parser import text_string_to_metric_families
from replicas import Fleet, fleet, write_config
from services import EtcdServer, RedisServer, Server
from tcp_proxy import TcpProxy

pytestmark = pytest.mark.slow

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
MEMBERS = ["r1", "r2", "r3"]


@dataclass
class Backend:
    """A coordination backend: its tooz URL and, for a server, the server."""

    url: str
    server: Server | None


#: Coordination backend and conductor backend: the three drivers, alternating
#: asyncio and trio so each conductor backend meets a networked driver.
MATRIX = [("etcd", "asyncio"), ("redis", "trio"), ("file", "asyncio")]


@pytest.fixture
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
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


@pytest.mark.parametrize(("driver", "conductor"), MATRIX)
def test_replicas_own_each_account_once_fail_over_and_rebalance(
    tmp_path: Path,
    driver: str,
    conductor: str,
    backend: Backend,
    connection_counter: ConnectionCounter,
) -> None:
    """30 accounts over three replicas: each connected exactly once, the replicas'
    /health agree on the owners; SIGKILL one: its accounts connect elsewhere within
    FAILOVER; start it again: it owns some again; never two connections at once."""
    config = tmp_path / "demi.toml"
    accounts = write_config(tmp_path, connection_counter.address, INSTANCES)
    with fleet(tmp_path, MEMBERS, config, backend.url, conductor) as replicas:
        agreed, _ = replicas.wait(
            "every instance owned and active, and all connected once",
            lambda: (
                all_connected_once(connection_counter, accounts)
                and replicas.agreed_owners()
            ),
            CONVERGE,
        )
        never_doubled(connection_counter)
        assert set(agreed) == set(accounts)
        assert set(agreed.values()) == set(MEMBERS), agreed  # each owns a share
        assert connection_counter.connected() == set(accounts)

        # SIGKILL r2: the survivors take its accounts over.
        lost = sorted(a for a, owner in agreed.items() if owner == "r2")
        before = connection_counter.accounts()
        replicas.replicas["r2"].kill()
        took = fail_over(replicas, connection_counter, lost, before, "r2")
        never_doubled(connection_counter)
        assert took < FAILOVER

        # r2 comes back: the ring gives it a share again.
        replicas.replicas["r2"].start()
        rebalanced, _ = replicas.wait(
            "r2 owning a share again, and all connected once",
            lambda: (
                (owned := replicas.agreed_owners())
                and "r2" in owned.values()
                and all_connected_once(connection_counter, accounts)
                and owned
            ),
            CONVERGE,
        )
        assert set(rebalanced.values()) == set(MEMBERS)
        never_doubled(connection_counter)
        codes = {m: r.terminate() for m, r in replicas.replicas.items()}
    assert codes == dict.fromkeys(MEMBERS, 0), replicas.output()
    connection_counter.wait_for(lambda seen: not any(a.current for a in seen.values()))
    never_doubled(connection_counter)
    assert "Traceback" not in replicas.output()


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


@pytest.mark.parametrize(
    ("driver", "conductor"), [("etcd", "trio"), ("redis", "asyncio")]
)
def test_replicas_cut_off_from_the_backend_fence_then_resume(
    tmp_path: Path,
    driver: str,
    conductor: str,
    backend: Backend,
    connection_counter: ConnectionCounter,
) -> None:
    """The backend stops: every replica stops its exclusive instances within FENCE
    (it can no longer prove it holds their locks), and keeps answering /health; the
    backend returns: every account is connected once again; never two at once."""
    assert backend.server is not None
    config = tmp_path / "demi.toml"
    accounts = write_config(tmp_path, connection_counter.address, 10)
    with fleet(tmp_path, MEMBERS[:2], config, backend.url, conductor) as replicas:
        replicas.wait(
            "every instance owned, active and connected once",
            lambda: (
                all_connected_once(connection_counter, accounts)
                and replicas.agreed_owners()
            ),
            CONVERGE,
        )
        backend.server.stop()
        replicas.wait(
            "every connection closed after the backend stopped",
            lambda: not connection_counter.connected(),
            FENCE,
        )
        healths = replicas.healths()
        cut_metrics = [r.metrics() or "" for r in replicas.replicas.values()]
        never_doubled(connection_counter)

        backend.server.start()
        replicas.wait(
            "every account connected once again after the backend returned",
            lambda: (
                all_connected_once(connection_counter, accounts)
                and replicas.agreed_owners()
            ),
            CONVERGE,
        )
        never_doubled(connection_counter)
        codes = {m: r.terminate() for m, r in replicas.replicas.items()}
    assert codes == dict.fromkeys(MEMBERS[:2], 0), replicas.output()
    # Cut off, each kept answering, and said so in /health, /metrics and its log.
    assert all(h and h["coordination"]["connected"] is False for h in healths.values())
    assert [connected(text) for text in cut_metrics] == [0.0, 0.0]
    for replica in replicas.replicas.values():
        log = replica.log.read_text(errors="replace")
        assert "no answer from the backend" in log, log[-3000:]
        assert "back in contact" in log, log[-3000:]


@pytest.mark.parametrize(
    ("driver", "conductor"), [("etcd", "asyncio"), ("redis", "trio")]
)
def test_a_partitioned_replica_fences_before_the_others_take_over(
    tmp_path: Path,
    driver: str,
    conductor: str,
    backend: Backend,
    connection_counter: ConnectionCounter,
) -> None:
    """r1 reaches the backend through a proxy, r2 and r3 directly. The proxy
    blackholes (a partition of r1 alone): r1 stops its accounts' connections within
    FENCE, r2 and r3 connect them within FAILOVER, and at no moment are two open for
    one account. The partition heals: r1 rejoins and owns a share again."""
    assert backend.server is not None
    config = tmp_path / "demi.toml"
    accounts = write_config(tmp_path, connection_counter.address, 15)
    port = backend.url.split("?")[0].rpartition(":")[2]
    with TcpProxy(int(port)) as proxy:
        proxied = backend.url.replace(f":{port}", f":{proxy.port}")
        with fleet(
            tmp_path, MEMBERS, config, backend.url, conductor, urls={"r1": proxied}
        ) as replicas:
            agreed, _ = replicas.wait(
                "every instance owned, active and connected once",
                lambda: (
                    all_connected_once(connection_counter, accounts)
                    and replicas.agreed_owners()
                ),
                CONVERGE,
            )
            cut_off = sorted(a for a, owner in agreed.items() if owner == "r1")
            assert cut_off, agreed
            before = connection_counter.accounts()
            proxy.cut()
            replicas.wait(
                "r1's connections closed once it was cut off",
                lambda: not connection_counter.connected() & set(cut_off),
                FENCE,
            )
            # It keeps answering, and says it is cut off.
            replicas.wait(
                "r1's /health saying it is not connected",
                lambda: (
                    (h := replicas.replicas["r1"].health())
                    and h["coordination"]["connected"] is False
                ),
                FENCE,
            )
            took = fail_over(replicas, connection_counter, cut_off, before, "r1")
            never_doubled(connection_counter)
            proxy.restore()
            replicas.wait(
                "r1 back in the group with a share, all connected once",
                lambda: (
                    (owned := replicas.agreed_owners())
                    and "r1" in owned.values()
                    and all_connected_once(connection_counter, accounts)
                ),
                CONVERGE,
            )
            never_doubled(connection_counter)
            codes = {m: r.terminate() for m, r in replicas.replicas.items()}
    assert took < FAILOVER
    assert codes == dict.fromkeys(MEMBERS, 0), replicas.output()


#: A replica that stops (SIGTERM) releases its locks and leaves the group: the
#: others see it at their next heartbeat (T/4), then start its instances.
HANDOVER = 0.25 * TIMEOUT + ALLOWANCE / 2


@pytest.mark.parametrize(("driver", "conductor"), [("etcd", "trio")])
def test_a_rolling_update_moves_instances_without_double_connections(
    tmp_path: Path,
    driver: str,
    conductor: str,
    backend: Backend,
    connection_counter: ConnectionCounter,
) -> None:
    """As a StatefulSet's rolling update does: each replica in turn gets SIGTERM,
    exits 0, and a new one starts under the same member id. Each time the others
    run the stopped one's accounts within HANDOVER, the new one gets its share back,
    and no account ever has two connections."""
    config = tmp_path / "demi.toml"
    accounts = write_config(tmp_path, connection_counter.address, 15)

    def settled() -> dict[str, str] | None:
        owned = replicas.agreed_owners()
        if owned and set(owned.values()) == set(MEMBERS):
            return owned if all_connected_once(connection_counter, accounts) else None
        return None

    with fleet(tmp_path, MEMBERS, config, backend.url, conductor) as replicas:
        handovers = {}
        for member in reversed(MEMBERS):
            agreed, _ = replicas.wait(
                "every member running its share", settled, CONVERGE
            )
            moving = sorted(a for a, owner in agreed.items() if owner == member)
            before = connection_counter.accounts()
            assert replicas.replicas[member].terminate() == 0, replicas.output()
            handovers[member] = fail_over(
                replicas, connection_counter, moving, before, member
            )
            never_doubled(connection_counter)
            replicas.replicas[member].start()
        replicas.wait("every member running its share", settled, CONVERGE)
        never_doubled(connection_counter)
    assert all(took < HANDOVER for took in handovers.values()), handovers


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


#: A lost lock is found at the next heartbeat (T/4); the instance then stops, and
#: starts again once its lock is taken afresh.
RELOCK = 0.25 * TIMEOUT + ALLOWANCE / 2


@pytest.mark.parametrize(
    ("driver", "conductor"), [("etcd", "asyncio"), ("redis", "trio")]
)
def test_a_lock_lost_under_a_running_replica_stops_its_instance(
    tmp_path: Path,
    driver: str,
    conductor: str,
    backend: Backend,
    connection_counter: ConnectionCounter,
) -> None:
    """The backend drops one instance's lock (its lease or key gone, as on expiry)
    while the replica keeps in contact: the replica stops that instance (another
    member could take the lock now), then takes the lock again and reconnects it;
    the other instances are left alone."""
    config = tmp_path / "demi.toml"
    accounts = write_config(tmp_path, connection_counter.address, 3)
    with fleet(tmp_path, MEMBERS[:1], config, backend.url, conductor) as replicas:
        replicas.wait(
            "every instance connected once",
            lambda: (
                all_connected_once(connection_counter, accounts)
                and replicas.agreed_owners()
            ),
            CONVERGE,
        )
        # Past the start-up, where a slow join can make a replica fence itself
        # once (see test_a_single_replica_connects_each_account_once).
        time.sleep(TIMEOUT)
        before = {a: s.total for a, s in connection_counter.accounts().items()}
        expire_lock(backend, "a01")
        replicas.wait(
            "a01 reconnected under a new lock",
            lambda: (
                (seen := connection_counter.accounts())["a01"].total
                == before["a01"] + 1
                and seen["a01"].current == 1
            ),
            RELOCK,
        )
        never_doubled(connection_counter)
        after = {a: s.total for a, s in connection_counter.accounts().items()}
        codes = [r.terminate() for r in replicas.replicas.values()]
    assert after == {**before, "a01": before["a01"] + 1}
    assert codes == [0], replicas.output()
    assert "a01: its lock was lost" in replicas.output()


@pytest.mark.parametrize(("driver", "conductor"), [("redis", "asyncio")])
def test_a_single_replica_connects_each_account_once(
    tmp_path: Path,
    driver: str,
    conductor: str,
    backend: Backend,
    connection_counter: ConnectionCounter,
) -> None:
    """One replica on a fresh group owns everything from the start: each account
    is connected once and stays so for a whole expiry after (no self-fencing while
    the backend answers, however long creating the group took)."""
    config = tmp_path / "demi.toml"
    accounts = write_config(tmp_path, connection_counter.address, 3)
    with fleet(tmp_path, MEMBERS[:1], config, backend.url, conductor) as replicas:
        replicas.wait(
            "every instance connected",
            lambda: all_connected_once(connection_counter, accounts),
            CONVERGE,
        )
        time.sleep(TIMEOUT)  # nothing may happen: a whole expiry of quiet
        totals = {a: s.total for a, s in connection_counter.accounts().items()}
        codes = [r.terminate() for r in replicas.replicas.values()]
    assert totals == dict.fromkeys(accounts, 1), replicas.output()
    assert codes == [0], replicas.output()
    assert "no answer from the backend" not in replicas.output()
