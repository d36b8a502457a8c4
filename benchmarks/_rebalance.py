"""Case 12's measurement: how long a rebalance takes, from a member's death (SIGKILL)
to its instances active elsewhere, against the backend's own expiry.

Real ``demi run`` replicas of one coordination group (tests/replicas.py) run
``account_conn`` instances (tests/fixture_dist) whose connections the loopback
connection counter (tests/connection_counter.py) counts, on a real etcd or Redis
(tests/services.py) or the file driver. The tests own those parts; this module
only drives them. A survivor can only take a dead member's instances once the
backend has let the dead member's membership and locks expire, so the expiry (the
URL's ``?timeout=``: tooz's membership and lock timeouts) is the floor.

"Active elsewhere" is the moment the counter counted the instance's new connection
(its ``run`` connected and greeted, just before it reports itself ready): the
latest such moment among the dead member's instances ends the measurement.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]

__all__ = ["RebalanceUnavailable", "fail_overs"]


class RebalanceUnavailable(RuntimeError):
    """What case 12 needs is not installed."""


def _harness() -> Any:
    """The tests' harness modules (the servers, the counter, the replicas)."""
    missing = []
    if importlib.util.find_spec("tooz") is None:
        missing.append("demi-conductor[coordination]")
    if importlib.util.find_spec("hypercorn") is None:
        missing.append("demi-conductor[http]")
    if not importlib.metadata.entry_points(group="demi.platforms", name="account_conn"):
        missing.append("./tests/fixture_dist (the account_conn platform)")
    if missing:
        raise RebalanceUnavailable(
            "case 12 runs demi run replicas and needs: pip install "
            + " ".join(repr(m) for m in missing)
        )
    tests = str(ROOT / "tests")
    if tests not in sys.path:
        # One owner for the servers, the counter and the replicas: the tests.
        sys.path.insert(0, tests)
    return tuple(
        importlib.import_module(name)
        for name in ("connection_counter", "replicas", "services")
    )


def fail_overs(
    driver: str,
    *,
    timeout: int,
    members: int,
    instances: int,
    rounds: int,
    backend: str,
    log: Callable[[str], None],
) -> list[float]:
    """Seconds from a member's SIGKILL to the last of its instances connected
    elsewhere, once per round (each round kills the next member, then starts it
    again and waits for the ring to give it a share back)."""
    counting, fleets, services = _harness()
    names = [f"m{number}" for number in range(1, members + 1)]
    with tempfile.TemporaryDirectory(prefix="demi-bench-rebalance-") as folder:
        root = Path(folder)
        server = {"etcd": services.EtcdServer, "redis": services.RedisServer}.get(
            driver
        )
        running = server(root / driver) if server else None
        with counting.ConnectionCounter() as counter:
            if running is not None:
                running.start()
            try:
                url = _url(driver, running, root, timeout)
                accounts = fleets.write_config(root, counter.address, instances)
                config = root / "demi.toml"
                with fleets.fleet(root, names, config, url, backend) as fleet:
                    return [
                        _one_round(fleet, counter, accounts, names[n % members], log)
                        for n in range(rounds)
                    ]
            finally:
                if running is not None:
                    running.stop()


def _url(driver: str, server: Any, root: Path, timeout: int) -> str:
    query = f"?timeout={timeout}"
    if driver == "etcd":
        return f"etcd3+{server.url}{query}"
    if driver == "redis":
        return f"{server.url}{query}"
    return f"file://{root / 'coord'}{query}"


def _settled(fleet: Any, counter: Any, accounts: list[str]) -> Any:
    """The agreed owners once every account is connected exactly once and every
    running member owns a share; else None."""
    seen = counter.accounts()
    if not all(a in seen and seen[a].current == 1 for a in accounts):
        return None
    owned = fleet.agreed_owners()
    if not owned or set(owned.values()) != set(fleet.healths()):
        return None
    return owned


def _one_round(
    fleet: Any,
    counter: Any,
    accounts: list[str],
    victim: str,
    log: Callable[[str], None],
) -> float:
    owned, _ = fleet.wait(
        "the fleet settled", lambda: _settled(fleet, counter, accounts), 120
    )
    lost = [account for account, owner in owned.items() if owner == victim]
    before = counter.accounts()
    killed = time.monotonic()
    fleet.replicas[victim].kill()

    def moved() -> bool:
        seen = counter.accounts()
        return all(
            seen[a].current == 1 and seen[a].total > before[a].total for a in lost
        )

    fleet.wait(f"{victim}'s instances running elsewhere", moved, 120)
    took = max(counter.accounts()[a].since for a in lost) - killed
    log(
        f"case 12: {victim} killed, its {len(lost)} instances elsewhere in {took:.2f} s"
    )
    fleet.replicas[victim].start()
    return float(took)
