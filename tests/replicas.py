"""Several ``demi run --http`` replicas of one coordination group, for the replica
tests (tests/test_coordination_replicas.py) and the rebalance benchmark's harness.

Each replica is a real process with its own working folder, HTTP port and
``DEMI_MEMBER_ID``, all sharing one ``demi.toml`` of ``account_conn`` instances (one
account each) pointed at the connection counter, and one ``DEMI_COORDINATION_URL``.
Nothing here asserts; the tests say what must hold.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Collection, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from helpers import free_port

DEMI = Path(sys.executable).with_name("demi")
#: DEMI_STOP_TIMEOUT of every replica.
STOP_TIMEOUT = 5.0


def write_config(folder: Path, counter_address: str, count: int) -> list[str]:
    """A demi.toml in ``folder`` with ``count`` instances ``a00``.. of
    ``account_conn``, each its own account (named as the instance); return the
    account names."""
    accounts = [f"a{number:02d}" for number in range(count)]
    lines = []
    for account in accounts:
        lines += [
            f"[platforms.{account}]",
            'driver = "account_conn"',
            "backoff_initial = 0.2",
            "backoff_max = 1.0",
            f'config = {{ address = "{counter_address}", account = "{account}" }}',
            "",
        ]
    (folder / "demi.toml").write_text("\n".join(lines), encoding="utf-8")
    return accounts


@dataclass
class Replica:
    """One ``demi run --http`` process of the group (started again and again under
    the same member id, in the same folder)."""

    member: str
    folder: Path
    config: Path
    coordination_url: str
    backend: str
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def log(self) -> Path:
        """Everything the replica logged, across its starts."""
        return self.folder / "demi.log"

    def output(self) -> str:
        """The end of the replica's log, for a failure message."""
        if not self.log.exists():
            return ""
        return self.log.read_text(errors="replace")[-6000:]

    @property
    def alive(self) -> bool:
        """Whether the process runs."""
        return self.process is not None and self.process.poll() is None

    def start(self) -> None:
        """Start ``demi run --http`` (on a fresh port: the old one may linger)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("DEMI_")}
        env.update(
            DEMI_CONFIG=str(self.config),
            DEMI_MEMBER_ID=self.member,
            DEMI_COORDINATION_URL=self.coordination_url,
            DEMI_HEALTH_INTERVAL="0.2",
            DEMI_STOP_TIMEOUT=str(STOP_TIMEOUT),
            PYTHONUNBUFFERED="1",
        )
        command = [
            str(DEMI), "run", "--http", f"127.0.0.1:{self.port}",
            "--backend", self.backend,
        ]  # fmt: skip
        with self.log.open("ab") as sink:
            self.process = subprocess.Popen(
                command, cwd=self.folder, env=env, stdin=subprocess.DEVNULL,
                stdout=sink, stderr=subprocess.STDOUT,
            )  # fmt: skip

    def kill(self) -> None:
        """SIGKILL: the replica dies without a word to the group."""
        assert self.process is not None
        process, self.process = self.process, None
        process.kill()
        process.wait()

    def terminate(self, timeout: float = STOP_TIMEOUT + 15.0) -> int:
        """SIGTERM; return the exit code (killed, and -9, after ``timeout``)."""
        assert self.process is not None
        process, self.process = self.process, None
        process.send_signal(signal.SIGTERM)
        try:
            return process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            return process.wait()

    def health(self) -> dict[str, Any] | None:
        """``GET /health``, or None while the replica does not answer."""
        body = self._get("/health")
        return None if body is None else dict(json.loads(body))

    def metrics(self) -> str | None:
        """``GET /metrics``, or None while the replica does not answer."""
        body = self._get("/metrics")
        return None if body is None else body.decode()

    def _get(self, path: str) -> bytes | None:
        # urllib, not httpx: the benchmark runs this without the test dependencies.
        if not self.alive:
            return None
        url = f"http://127.0.0.1:{self.port}{path}"
        try:
            with urllib.request.urlopen(url, timeout=2) as reply:
                body: bytes = reply.read()
                return body
        except (OSError, ValueError):
            return None


def owners(health: dict[str, Any]) -> dict[str, str | None]:
    """Instance name to the member that owns it, as one replica's /health says."""
    platforms: dict[str, dict[str, Any]] = health.get("platforms", {})
    return {name: entry.get("owner") for name, entry in platforms.items()}


def active(health: dict[str, Any]) -> set[str]:
    """The instances one replica's /health shows active."""
    platforms: dict[str, dict[str, Any]] = health.get("platforms", {})
    return {name for name, entry in platforms.items() if entry["state"] == "active"}


@dataclass
class Fleet:
    """The replicas of one group."""

    replicas: dict[str, Replica]

    def healths(
        self, among: Collection[str] | None = None
    ) -> dict[str, dict[str, Any] | None]:
        """Each running replica's /health (None for one that does not answer), of
        the members ``among`` (default: all)."""
        return {
            m: r.health()
            for m, r in self.replicas.items()
            if r.alive and (among is None or m in among)
        }

    def agreed_owners(
        self, among: Collection[str] | None = None
    ) -> dict[str, str] | None:
        """The owners the /health of every running replica (of the members
        ``among``) names, when they all answer and agree and every instance has an
        owner among them that shows it active; else None."""
        healths = self.healths(among)
        if not healths or any(h is None for h in healths.values()):
            return None
        views = [owners(h) for h in healths.values() if h is not None]
        first = views[0]
        if any(view != first for view in views[1:]):
            return None
        if any(owner not in healths for owner in first.values()):
            return None
        for member, health in healths.items():
            assert health is not None
            mine = {name for name, owner in first.items() if owner == member}
            if not mine <= active(health):
                return None
        return {name: str(owner) for name, owner in first.items()}

    def exited(self) -> list[str]:
        """Members whose process ended although the test neither killed nor
        stopped it."""
        return [m for m, r in self.replicas.items() if r.process and not r.alive]

    def output(self) -> str:
        """Every replica's log tail, for a failure message."""
        return "\n".join(
            f"--- {member} ---\n{replica.output()}"
            for member, replica in self.replicas.items()
        )

    def wait(
        self, what: str, check: Callable[[], Any], timeout: float
    ) -> tuple[Any, float]:
        """Poll ``check`` until it returns something truthy; return that and the
        seconds it took. Raise AssertionError naming ``what``, with the logs,
        after ``timeout``."""
        started = time.monotonic()
        while not (result := check()):
            if exited := self.exited():
                raise AssertionError(f"{what}: {exited} exited\n{self.output()}")
            if time.monotonic() - started > timeout:
                raise AssertionError(
                    f"{what}: not within {timeout:.0f} s\n{self.output()}"
                )
            time.sleep(0.1)
        return result, time.monotonic() - started


@contextmanager
def fleet(
    root: Path,
    members: list[str],
    config: Path,
    coordination_url: str,
    backend: str,
    urls: Mapping[str, str] | None = None,
) -> Iterator[Fleet]:
    """Start one replica per member id, each with ``coordination_url`` unless
    ``urls`` gives it another (a way to the same backend through a proxy); stop
    (SIGTERM, then SIGKILL) whatever still runs afterwards."""
    urls = urls or {}
    replicas = {
        member: Replica(
            member, root / member, config, urls.get(member, coordination_url), backend
        )
        for member in members
    }
    try:
        for replica in replicas.values():
            replica.start()
        yield Fleet(replicas)
    finally:
        for replica in replicas.values():
            if replica.alive:
                replica.terminate()
