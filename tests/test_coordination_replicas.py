"""Many conductors, each connection owned once (issue 13), end to end: three real
``demi run --http`` replicas of one coordination group on a real etcd, a real Redis
and the file driver, with 30 ``account_conn`` instances whose connections the
loopback connection counter counts per account: ownership, fail-over, rebalance,
a rolling update. The faults (a backend gone, a partition, a lost lock) are in
tests/test_coordination_faults.py; the shared bounds in tests/replica_checks.py.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from connection_counter import ConnectionCounter
from replica_checks import (
    CONDUCTORS,
    CONVERGE,
    DRIVERS,
    FAILOVER,
    HANDOVER,
    INSTANCES,
    MEMBERS,
    TIMEOUT,
    Backend,
    all_connected_once,
    fail_over,
    never_doubled,
)
from replicas import fleet, write_config

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("conductor", CONDUCTORS)
@pytest.mark.parametrize("driver", DRIVERS)
def test_replicas_own_each_account_once_fail_over_and_rebalance(
    tmp_path: Path,
    driver: str,
    conductor: str,
    coordination_backend: Backend,
    connection_counter: ConnectionCounter,
) -> None:
    """30 accounts over three replicas: each connected exactly once, the replicas'
    /health agree on the owners; SIGKILL one: its accounts connect elsewhere within
    FAILOVER; start it again: it owns some again; never two connections at once."""
    config = tmp_path / "demi.toml"
    accounts = write_config(tmp_path, connection_counter.address, INSTANCES)
    with fleet(
        tmp_path, MEMBERS, config, coordination_backend.url, conductor
    ) as replicas:
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


# etcd, as in a StatefulSet; the file driver, as under demi@.service.
@pytest.mark.parametrize(
    ("driver", "conductor"), [("etcd", "trio"), ("file", "asyncio")]
)
def test_a_rolling_update_moves_instances_without_double_connections(
    tmp_path: Path,
    driver: str,
    conductor: str,
    coordination_backend: Backend,
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

    with fleet(
        tmp_path, MEMBERS, config, coordination_backend.url, conductor
    ) as replicas:
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


@pytest.mark.parametrize(
    ("driver", "conductor"), [("redis", "asyncio"), ("etcd", "trio")]
)
def test_a_single_replica_connects_each_account_once(
    tmp_path: Path,
    driver: str,
    conductor: str,
    coordination_backend: Backend,
    connection_counter: ConnectionCounter,
) -> None:
    """One replica on a fresh group owns everything from the start: each account
    is connected once and stays so for a whole expiry after (no self-fencing while
    the backend answers, however long creating the group took)."""
    config = tmp_path / "demi.toml"
    accounts = write_config(tmp_path, connection_counter.address, 3)
    with fleet(
        tmp_path, MEMBERS[:1], config, coordination_backend.url, conductor
    ) as replicas:
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
