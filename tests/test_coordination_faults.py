"""Faults under ``demi run`` replicas of one coordination group (issue 13): the
backend stops and returns, one replica is partitioned from it, the backend drops a
lock under a running replica. Through all of it the connection counter must never
see two connections for one account. Shared bounds: tests/replica_checks.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from connection_counter import ConnectionCounter
from replica_checks import (
    CONDUCTORS,
    CONVERGE,
    FAILOVER,
    FENCE,
    MEMBERS,
    RELOCK,
    SERVERS,
    Backend,
    all_connected_once,
    connected,
    expire_lock,
    fail_over,
    never_doubled,
)
from replicas import fleet, write_config
from tcp_proxy import TcpProxy

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("conductor", CONDUCTORS)
@pytest.mark.parametrize("driver", SERVERS)
def test_replicas_cut_off_from_the_backend_fence_then_resume(
    tmp_path: Path,
    driver: str,
    conductor: str,
    coordination_backend: Backend,
    connection_counter: ConnectionCounter,
) -> None:
    """The backend stops: every replica stops its exclusive instances within FENCE
    (it can no longer prove it holds their locks), and keeps answering /health; the
    backend returns: every account is connected once again; never two at once."""
    assert coordination_backend.server is not None
    config = tmp_path / "demi.toml"
    accounts = write_config(tmp_path, connection_counter.address, 10)
    with fleet(
        tmp_path, MEMBERS[:2], config, coordination_backend.url, conductor
    ) as replicas:
        replicas.wait(
            "every instance owned, active and connected once",
            lambda: (
                all_connected_once(connection_counter, accounts)
                and replicas.agreed_owners()
            ),
            CONVERGE,
        )
        coordination_backend.server.stop()
        replicas.wait(
            "every connection closed after the backend stopped",
            lambda: not connection_counter.connected(),
            FENCE,
        )
        healths = replicas.healths()
        cut_metrics = [r.metrics() or "" for r in replicas.replicas.values()]
        never_doubled(connection_counter)

        coordination_backend.server.start()
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


@pytest.mark.parametrize("conductor", CONDUCTORS)
@pytest.mark.parametrize("driver", SERVERS)
def test_a_partitioned_replica_fences_before_the_others_take_over(
    tmp_path: Path,
    driver: str,
    conductor: str,
    coordination_backend: Backend,
    connection_counter: ConnectionCounter,
) -> None:
    """r1 reaches the backend through a proxy, r2 and r3 directly. The proxy
    blackholes (a partition of r1 alone): r1 stops its accounts' connections within
    FENCE, r2 and r3 connect them within FAILOVER, and at no moment are two open for
    one account. The partition heals: r1 rejoins and owns a share again."""
    assert coordination_backend.server is not None
    config = tmp_path / "demi.toml"
    accounts = write_config(tmp_path, connection_counter.address, 15)
    port = coordination_backend.url.split("?")[0].rpartition(":")[2]
    with TcpProxy(int(port)) as proxy:
        proxied = coordination_backend.url.replace(f":{port}", f":{proxy.port}")
        with fleet(
            tmp_path,
            MEMBERS,
            config,
            coordination_backend.url,
            conductor,
            urls={"r1": proxied},
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


@pytest.mark.parametrize("conductor", CONDUCTORS)
@pytest.mark.parametrize("driver", SERVERS)
def test_a_lock_lost_under_a_running_replica_stops_its_instance(
    tmp_path: Path,
    driver: str,
    conductor: str,
    coordination_backend: Backend,
    connection_counter: ConnectionCounter,
) -> None:
    """The backend drops one instance's lock (its lease or key gone, as on expiry)
    while the replica keeps in contact: the replica stops that instance (another
    member could take the lock now), then takes the lock again and reconnects it;
    the other instances are left alone."""
    config = tmp_path / "demi.toml"
    accounts = write_config(tmp_path, connection_counter.address, 3)
    with fleet(
        tmp_path, MEMBERS[:1], config, coordination_backend.url, conductor
    ) as replicas:
        replicas.wait(
            "every instance connected once",
            lambda: (
                all_connected_once(connection_counter, accounts)
                and replicas.agreed_owners()
            ),
            CONVERGE,
        )
        before = {a: s.total for a, s in connection_counter.accounts().items()}
        expire_lock(coordination_backend, "a01")
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
