"""Issue 13, in process: several conductors on tooz share one set of instances.

The settings (``coordination_url``, ``member_id``, ``coordination_group``, per
instance ``replicas``), the ownership function, and coordinators against real tooz
backends: the file driver in ``tmp_path``, etcd and Redis from tests/services.py.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from connection_counter import ConnectionCounter
from helpers import PATIENCE, wait_until
from services import Server

from demi import Conductor, ConfigError
from demi.coordination import Coordinator, group_of, owners, share_of
from demi.coordination._calls import THREADS, Calls
from demi.coordination._locks import lock_name
from demi.coordination._tooz import Backend, BackendError
from demi.coordination.views import health_section, owner_of_each, readiness_problems
from demi.core.config import DemiSettings, PlatformSettings, load_settings
from demi.core.secrets import SECRETS
from demi.http.metrics import Metrics
from demi.plugins.base import PluginState
from demi.supervision import Supervisor

SECRET = "hunter2-coordination-password"


def config_error(**overrides: Any) -> str:
    """The message of the ConfigError that load_settings raises."""
    with pytest.raises(ConfigError) as caught:
        load_settings(**overrides)
    return str(caught.value)


# -- settings -------------------------------------------------------------------


def test_without_a_coordination_url_nothing_is_coordinated() -> None:
    """Unset is today's behaviour; every instance runs on one replica by default."""
    settings = load_settings()
    assert settings.coordination_url is None
    assert settings.coordination_group is None
    assert settings.platforms["echo"].replicas == 1


def test_the_default_member_id_is_the_host_name_and_the_pid() -> None:
    assert load_settings().member_id.endswith(f"-{os.getpid()}")


def test_coordination_settings_come_from_their_variables(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DEMI_COORDINATION_URL", "etcd3+http://127.0.0.1:2379?timeout=5")
    monkeypatch.setenv("DEMI_MEMBER_ID", "demi-0")
    monkeypatch.setenv("DEMI_COORDINATION_GROUP", "bots")
    monkeypatch.setenv("DEMI_PLATFORMS__CHAT__DRIVER", "echo")
    monkeypatch.setenv("DEMI_PLATFORMS__CHAT__REPLICAS", "all")
    monkeypatch.setenv("DEMI_PLATFORMS__MAIL__DRIVER", "echo")
    monkeypatch.setenv("DEMI_PLATFORMS__MAIL__REPLICAS", "1")
    settings = load_settings()
    assert settings.coordination_url is not None
    # Passed on as it is, query included.
    url = settings.coordination_url.get_secret_value()
    assert url == "etcd3+http://127.0.0.1:2379?timeout=5"
    assert (settings.member_id, settings.coordination_group) == ("demi-0", "bots")
    assert settings.platforms["chat"].replicas == "all"
    assert settings.platforms["mail"].replicas == 1


def test_the_coordination_url_is_a_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    """It may carry a password: never shown by demi config, scrubbed everywhere."""
    SECRETS.reset()
    url = f"redis://:{SECRET}@127.0.0.1:6379?timeout=5"
    monkeypatch.setenv("DEMI_COORDINATION_URL", url)
    settings = load_settings()
    assert SECRET not in str(settings.model_dump())
    assert SECRET not in repr(settings)


@pytest.mark.parametrize(
    ("variable", "value", "key"),
    [
        ("DEMI_COORDINATION_URL", SECRET, "coordination_url"),
        ("DEMI_COORDINATION_URL", "", "coordination_url"),
        ("DEMI_MEMBER_ID", "two words", "member_id"),
        ("DEMI_MEMBER_ID", "", "member_id"),
        ("DEMI_COORDINATION_GROUP", "a/b", "coordination_group"),
        ("DEMI_PLATFORMS__CHAT__REPLICAS", "2", "platforms.chat.replicas"),
    ],
)
def test_a_bad_coordination_value_names_the_setting_and_its_source(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, key: str
) -> None:
    monkeypatch.setenv("DEMI_PLATFORMS__CHAT__DRIVER", "echo")
    monkeypatch.setenv(variable, value)
    message = config_error()
    assert f"{key}: " in message
    assert f"(from environment variable {variable})" in message
    assert SECRET not in message


def test_replicas_in_toml(tmp_path: Path) -> None:
    path = tmp_path / "demi.toml"
    path.write_text('[platforms.chat]\ndriver = "echo"\nreplicas = 3\n')
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    assert "platforms.chat.replicas: " in str(caught.value)
    assert repr(str(path)) in str(caught.value)


# -- who owns what ----------------------------------------------------------------

ECHO = PlatformSettings(driver="echo")
EVERYWHERE_ECHO = PlatformSettings(driver="echo", replicas="all")


def test_each_instance_has_exactly_one_owner_and_all_runs_everywhere() -> None:
    specs = {f"i{n}": ECHO for n in range(40)} | {"every": EVERYWHERE_ECHO}
    members = ["a", "b", "c"]
    shares = {member: share_of(member, specs, members) for member in members}
    for name in specs:
        holders = [member for member, share in shares.items() if name in share]
        assert holders == (members if name == "every" else holders[:1]), name
        assert len(holders) == (3 if name == "every" else 1), name
    # The ring spreads them: every member gets some of forty.
    assert all(len(share) > 1 for share in shares.values())
    # Every member computes the same owners, whatever order it lists the members in.
    assert owners(specs, members) == owners(specs, list(reversed(members)))


def test_a_member_leaving_moves_only_its_own_instances() -> None:
    specs = {f"i{n}": ECHO for n in range(60)}
    before = owners(specs, ["a", "b", "c"])
    after = owners(specs, ["a", "b"])
    moved = {name for name in specs if before[name] != after[name]}
    assert moved == {name for name, owner in before.items() if owner == "c"}


def test_a_member_counts_itself_before_the_backend_lists_it() -> None:
    specs = {f"i{n}": ECHO for n in range(10)}
    assert share_of("a", specs, []) == set(specs)
    assert owners(specs, []) == dict.fromkeys(specs)


# -- calls into tooz ---------------------------------------------------------------


async def test_a_call_into_tooz_that_hangs_is_abandoned_at_its_bound() -> None:
    """tooz never holds the loop: a call that does not return is given up on."""
    assert THREADS == 4
    calls = Calls()
    release = threading.Event()
    began = time.monotonic()
    with pytest.raises(BackendError, match=r"heartbeat: no answer within 0\.2s"):
        await calls.run(release.wait, 0.2, "heartbeat")
    assert time.monotonic() - began < 5
    # Its thread is a daemon: a call that never returns cannot keep the process
    # alive once demi has stopped.
    (hung,) = [t for t in threading.enumerate() if t.name == "demi-tooz heartbeat"]
    assert hung.daemon
    release.set()


def test_an_unknown_backend_scheme_names_the_setting_and_its_source(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DEMI_COORDINATION_URL", f"nosuch://user:{SECRET}@host")
    settings = load_settings()
    with pytest.raises(ConfigError) as caught:
        Coordinator(Conductor(settings))
    message = str(caught.value)
    assert "coordination_url: tooz has no driver for the scheme 'nosuch'" in message
    assert "(from environment variable DEMI_COORDINATION_URL)" in message
    assert SECRET not in message


# -- replicas in one process, on real backends -------------------------------------

#: The backends' expiry in these tests (``?timeout=``): fencing after T/2.
EXPIRY = 6


@pytest.fixture(params=["file", "etcd", "redis"])
def backend(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[tuple[str, Server | None]]:
    """A tooz URL of a running backend (and its server, when it has one)."""
    if request.param == "file":
        yield f"file://{tmp_path / 'coord'}?timeout={EXPIRY}", None
        return
    fixture = f"{request.param}_server"
    server: Server = request.getfixturevalue(fixture)
    scheme = "etcd3+" if request.param == "etcd" else ""
    yield f"{scheme}{server.url}?timeout={EXPIRY}", server  # type: ignore[attr-defined]


def fleet(
    url: str, member: str, counter: ConnectionCounter, accounts: int = 6, **extra: Any
) -> DemiSettings:
    """The configuration every replica of a test shares: ``accounts`` exclusive
    connections (account_conn), three echoes and one echo on every replica."""
    platforms: dict[str, Any] = {
        f"acct{n}": PlatformSettings(
            driver="account_conn",
            config={"address": counter.address, "account": f"acct{n}"},
        )
        for n in range(accounts)
    }
    platforms |= {f"plain{n}": ECHO for n in range(3)}
    platforms["every"] = EVERYWHERE_ECHO
    return DemiSettings(
        coordination_url=url,
        member_id=member,
        platforms=platforms,
        health_interval=60,
        **extra,
    )


class Replica:
    """One conductor and its coordinator, run in a task group of the test."""

    def __init__(self, settings: DemiSettings) -> None:
        self.conductor = Conductor(settings)
        self.coordinator = Coordinator(self.conductor)
        self.done = anyio.Event()
        self._stop = anyio.Event()

    def active(self) -> set[str]:
        """The instances active here now."""
        return {
            status.instance
            for status in self.conductor.instances()
            if status.state is PluginState.ACTIVE
        }

    async def run(self) -> None:
        """Join, start the share, rebalance until :meth:`stop`; then stop and leave."""
        conductor, coordinator = self.conductor, self.coordinator
        try:
            async with conductor.session(), coordinator.membership():
                await coordinator.join()
                await conductor.start()
                async with anyio.create_task_group() as group:
                    group.start_soon(coordinator.rebalancing)
                    await self._stop.wait()
                    group.cancel_scope.cancel()
                await conductor.stop()
        finally:
            self.done.set()

    async def stop(self) -> None:
        """Stop it (SIGTERM's path: stop, then release and leave) and wait."""
        self._stop.set()
        await self.done.wait()


def runs_once(replicas: list[Replica], names: Iterable[str]) -> bool:
    """Whether each of ``names`` is active on exactly one of ``replicas``."""
    return all(sum(name in r.active() for r in replicas) == 1 for name in names)


ACCOUNTS = [f"acct{n}" for n in range(6)]
PLAIN = [f"plain{n}" for n in range(3)]


async def test_replicas_share_the_instances_and_take_over_when_one_leaves(
    backend: tuple[str, Server | None], connection_counter: ConnectionCounter
) -> None:
    url, _ = backend
    replicas = [Replica(fleet(url, m, connection_counter)) for m in ("a", "b", "c")]
    async with anyio.create_task_group() as group:
        for replica in replicas:
            group.start_soon(replica.run)
        with anyio.fail_after(PATIENCE):
            await wait_until(
                lambda: (
                    all(len(r.coordinator.members) == 3 for r in replicas)
                    and runs_once(replicas, ACCOUNTS + PLAIN)
                )
            )
        assert all("every" in r.active() for r in replicas)
        # Every replica names the same owner, and the owner is the one running it.
        # ("every" runs on each: each replica names itself.)
        named = [owner_of_each(r.coordinator) for r in replicas]
        assert [n.pop("every") for n in named] == ["a", "b", "c"]
        assert named[0] == named[1] == named[2]
        for replica in replicas:
            member = replica.coordinator.member_id
            mine = {name for name, owner in named[0].items() if owner == member}
            assert mine == replica.active() - {"every"}
        assert connection_counter.connected() == set(ACCOUNTS)
        # c leaves: a and b take its share, each instance started once.
        leaving = replicas.pop()
        await leaving.stop()
        assert leaving.active() == set()
        with anyio.fail_after(EXPIRY + PATIENCE):
            await wait_until(
                lambda: (
                    runs_once(replicas, ACCOUNTS + PLAIN)
                    and connection_counter.connected() == set(ACCOUNTS)
                )
            )
        assert all(r.coordinator.members == {"a", "b"} for r in replicas)
        assert sum(r.coordinator.rebalances for r in replicas) >= 1
        for replica in replicas:
            await replica.stop()
    seen = connection_counter.accounts()
    # Never two connections for one account, at any moment.
    assert {name: account.most for name, account in seen.items()} == dict.fromkeys(
        ACCOUNTS, 1
    )


async def test_a_held_lock_keeps_its_instance_from_starting_until_released(
    backend: tuple[str, Server | None],
    connection_counter: ConnectionCounter,
    tmp_path: Path,
) -> None:
    """The owner of an exclusive instance starts it only once it holds its lock;
    meanwhile /readyz names it (it is required) and nothing connects."""
    url, _ = backend
    settings = fleet(url, "a", connection_counter, accounts=1)
    settings.platforms["acct0"].required = True
    squatter = Backend(url, "squatter", "other-group")
    await anyio.to_thread.run_sync(squatter.start)
    lock = squatter.lock(lock_name(group_of(settings), "acct0"))
    assert await anyio.to_thread.run_sync(lock.acquire)
    replica = Replica(settings)
    try:
        async with anyio.create_task_group() as group:
            group.start_soon(replica.run)
            with anyio.fail_after(PATIENCE):
                await wait_until(lambda: {"plain0", "every"} <= replica.active())
            await anyio.sleep(EXPIRY / 2)
            assert "acct0" not in replica.active()
            assert connection_counter.connected() == set()
            assert readiness_problems(replica.coordinator) == {
                "acct0": "owned here but not started: waiting for its lock"
            }
            await anyio.to_thread.run_sync(lock.release)
            with anyio.fail_after(PATIENCE):
                await wait_until(lambda: "acct0" in replica.active())
            assert connection_counter.connected() == {"acct0"}
            assert readiness_problems(replica.coordinator) == {}
            await replica.stop()
    finally:
        await anyio.to_thread.run_sync(squatter.leave)


def cut_off(url: str, server: Server | None) -> Callable[[], None]:
    """Make the backend unreachable now; return what brings it back. The file
    driver's folder becomes a file (every call fails, as for root too), a server
    stops."""
    if server is not None:
        server.stop()
        return server.start
    folder = Path(url.removeprefix("file://").split("?")[0])
    away = folder.with_name("away")
    folder.rename(away)
    folder.write_text("not a folder\n")

    def restore() -> None:
        folder.unlink()
        away.rename(folder)

    return restore


async def test_a_replica_cut_off_stops_its_exclusive_instances_in_time_and_resumes(
    backend: tuple[str, Server | None], connection_counter: ConnectionCounter
) -> None:
    url, server = backend
    replica = Replica(fleet(url, "a", connection_counter, accounts=2))
    metrics = Metrics(
        replica.conductor, Supervisor(replica.conductor), replica.coordinator
    )
    async with anyio.create_task_group() as group:
        group.start_soon(replica.run)
        with anyio.fail_after(PATIENCE):
            await wait_until(lambda: {"acct0", "acct1", "plain0"} <= replica.active())
        assert connection_counter.connected() == {"acct0", "acct1"}
        assert "demi_coordination_connected 1.0" in metrics.render().decode()
        began = time.monotonic()
        restore = await anyio.to_thread.run_sync(cut_off, url, server)
        with anyio.fail_after(EXPIRY + PATIENCE):
            await wait_until(lambda: connection_counter.connected() == set())
        fenced_after = time.monotonic() - began
        # Closed before any lock of this replica could expire (T after its last
        # answer, which came before the cut).
        assert fenced_after < EXPIRY, fenced_after
        assert not {"acct0", "acct1"} & replica.active()
        # Its non-exclusive share keeps serving while it can still be its own.
        assert {"plain0", "every"} <= replica.active()
        section = health_section(replica.coordinator)
        assert section is not None and section["connected"] is False
        assert "demi_coordination_connected 0.0" in metrics.render().decode()
        await anyio.to_thread.run_sync(restore)
        with anyio.fail_after(EXPIRY + PATIENCE):
            await wait_until(
                lambda: connection_counter.connected() == {"acct0", "acct1"}
            )
        assert replica.coordinator.connected
        await replica.stop()
    seen = connection_counter.accounts()
    assert {name: account.most for name, account in seen.items()} == {
        "acct0": 1,
        "acct1": 1,
    }


def test_without_coordination_the_metrics_say_so_and_there_is_no_owner() -> None:
    settings = DemiSettings(platforms={"a": ECHO, "b": ECHO})
    conductor = Conductor(settings)
    text = Metrics(conductor, Supervisor(conductor)).render().decode()
    for line in (
        "demi_coordination_members 0.0",
        "demi_coordination_connected 0.0",
        "demi_owned_instances 2.0",
        "demi_rebalances_total 0.0",
    ):
        assert line in text.splitlines(), line
    assert health_section(None) is None
    assert owner_of_each(None) == {}
    assert readiness_problems(None) == {}


# -- demi check beside a fleet ------------------------------------------------------

DEMI = Path(sys.executable).with_name("demi")


def fleet_toml(url: str, counter: ConnectionCounter) -> str:
    """The same fleet as :func:`fleet`, as demi.toml (two accounts)."""
    lines = [f"coordination_url = {json.dumps(url)}"]
    for n in range(2):
        lines += [
            f"[platforms.acct{n}]",
            'driver = "account_conn"',
            f'config = {{ address = "{counter.address}", account = "acct{n}" }}',
        ]
    lines += ["[platforms.plain0]", 'driver = "echo"']
    lines += ["[platforms.every]", 'driver = "echo"', 'replicas = "all"']
    return "\n".join(lines) + "\n"


async def check_json(cwd: Path, member: str) -> tuple[int, dict[str, Any]]:
    """``demi check --json`` in ``cwd`` as ``member``: exit code and output."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DEMI_")}
    env["DEMI_MEMBER_ID"] = member
    with anyio.fail_after(PATIENCE * 3):
        done = await anyio.run_process(
            [str(DEMI), "check", "--json"], cwd=cwd, env=env, check=False
        )
    return done.returncode, json.loads(done.stdout)


@pytest.mark.slow
async def test_demi_check_never_joins_and_leaves_held_instances_unchecked(
    tmp_path: Path, connection_counter: ConnectionCounter
) -> None:
    url = f"file://{tmp_path / 'coord'}?timeout={EXPIRY}"
    (tmp_path / "demi.toml").write_text(fleet_toml(url, connection_counter))
    replica = Replica(fleet(url, "a", connection_counter, accounts=2))
    async with anyio.create_task_group() as group:
        group.start_soon(replica.run)
        with anyio.fail_after(PATIENCE):
            await wait_until(lambda: {"acct0", "acct1", "plain0"} <= replica.active())
        code, report = await check_json(tmp_path, "checker")
        rows = {row["instance"]: row for row in report["platforms"]}
        assert code == 0, report
        for name in ("acct0", "acct1"):
            assert (rows[name]["health"], rows[name]["owner"]) == ("unchecked", "a")
        assert (rows["plain0"]["health"], rows["plain0"]["owner"]) == ("healthy", "a")
        assert rows["every"]["owner"] == "checker"
        # The check did not join: the replica's group and share did not move.
        assert replica.coordinator.members == {"a"}
        assert replica.coordinator.rebalances == 0
        await replica.stop()
    # With nobody holding them, the check takes the locks and checks them itself.
    code, report = await check_json(tmp_path, "checker")
    rows = {row["instance"]: row for row in report["platforms"]}
    assert code == 0, report
    for name in ("acct0", "acct1"):
        assert (rows[name]["health"], rows[name]["owner"]) == ("healthy", "checker")
    seen = connection_counter.accounts()
    assert {name: (a.most, a.total) for name, a in seen.items()} == {
        "acct0": (1, 2),
        "acct1": (1, 2),
    }


def test_without_coordination_demi_check_names_no_owner(tmp_path: Path) -> None:
    done = subprocess.run(
        [str(DEMI), "check", "--json"],
        cwd=tmp_path,
        env={k: v for k, v in os.environ.items() if not k.startswith("DEMI_")},
        capture_output=True,
        text=True,
        timeout=PATIENCE * 3,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    (row,) = json.loads(done.stdout)["platforms"]
    assert (row["instance"], row["owner"]) == ("echo", None)


# -- the conductor's share -----------------------------------------------------------


async def test_a_conductor_never_restarts_or_reloads_into_what_is_not_its_share() -> (
    None
):
    settings = DemiSettings(platforms={"mine": ECHO, "theirs": ECHO})
    async with Conductor(settings) as conductor:
        await conductor.run_only({"mine"})
        assert conductor.runs_here("mine") and not conductor.runs_here("theirs")
        states = {s.instance: s.state for s in conductor.instances()}
        assert states == {"mine": PluginState.ACTIVE, "theirs": None}
        # A restart (the supervisor's, an operator's) starts nothing here.
        assert await conductor.restart("theirs") is False
        added = DemiSettings(platforms={"mine": ECHO, "theirs": ECHO, "new": ECHO})
        result = await conductor.reload(added)
        assert "new" in result.added
        states = {s.instance: s.state for s in conductor.instances()}
        assert states == {"mine": PluginState.ACTIVE, "theirs": None, "new": None}
        # Given back, it starts through the same path.
        await conductor.run_only({"mine", "theirs"})
        assert {s.instance for s in conductor.instances() if s.state} == {
            "mine",
            "theirs",
        }


async def test_calls_into_tooz_never_use_more_than_their_threads() -> None:
    """Hung calls keep their threads: the next call waits for one, within its own
    bound, instead of starting a fifth."""
    calls = Calls()
    release = threading.Event()
    for n in range(THREADS):
        with pytest.raises(BackendError):
            await calls.run(release.wait, 0.05, f"hung {n}")
    with pytest.raises(BackendError, match="one more: no answer"):
        await calls.run(lambda: True, 0.3, "one more")
    assert (
        len([t for t in threading.enumerate() if t.name.startswith("demi-tooz")])
        == THREADS
    )
    release.set()
    with anyio.fail_after(PATIENCE):
        # The freed threads are noticed by polling: there is no event to wait on.
        while not await _answers(calls):  # noqa: ASYNC110
            await anyio.sleep(0.01)


async def _answers(calls: Calls) -> bool:
    try:
        return await calls.run(lambda: True, 0.2, "after")
    except BackendError:
        return False


async def test_a_replica_back_under_its_old_name_is_seen_by_the_others(
    tmp_path: Path, connection_counter: ConnectionCounter
) -> None:
    """A replica killed and started again as the same member (systemd's demi@1, a
    StatefulSet's pod) finds its old record on the file driver, expired but not
    cleared: it joins afresh, so the others count it again."""
    url = f"file://{tmp_path / 'coord'}?timeout=2"
    dead = Backend(url, "a", "demi.platforms")
    await anyio.to_thread.run_sync(dead.start)
    await anyio.to_thread.run_sync(dead.beat, [])  # joined; then never heard of
    await anyio.sleep(2.5)  # its record expires, and stays
    replicas = [Replica(fleet(url, m, connection_counter, accounts=2)) for m in "ab"]
    async with anyio.create_task_group() as group:
        for replica in replicas:
            group.start_soon(replica.run)
        with anyio.fail_after(PATIENCE):
            await wait_until(
                lambda: all(r.coordinator.members == {"a", "b"} for r in replicas)
            )
            await wait_until(lambda: runs_once(replicas, ["acct0", "acct1", "plain0"]))
        for replica in replicas:
            await replica.stop()


@pytest.mark.parametrize("command", [["run"], ["check"]])
def test_a_backend_tooz_does_not_know_is_a_usage_error_before_anything_starts(
    tmp_path: Path, command: list[str]
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DEMI_")}
    env["DEMI_COORDINATION_URL"] = f"nosuch://user:{SECRET}@127.0.0.1"
    done = subprocess.run(
        [str(DEMI), *command],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=PATIENCE * 3,
        check=False,
    )
    assert done.returncode == 2, done.stderr
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith("demi: error: coordination_url: tooz has no driver")
    assert "(from environment variable DEMI_COORDINATION_URL)" in line
    assert SECRET not in done.stderr + done.stdout


@pytest.fixture(params=["etcd", "redis"])
def expiring_backend(request: pytest.FixtureRequest) -> str:
    """A tooz URL of a backend whose locks can be lost (they expire, or are broken):
    etcd and Redis (the file driver's locks go only with their process)."""
    server: Any = request.getfixturevalue(f"{request.param}_server")
    scheme = "etcd3+" if request.param == "etcd" else ""
    return f"{scheme}{server.url}?timeout={EXPIRY}"


async def test_a_lock_lost_to_another_holder_stops_its_instance_at_once(
    expiring_backend: str, connection_counter: ConnectionCounter
) -> None:
    """An operator breaks the lock and another holder takes it: the next heartbeat
    finds it lost (not an outage), the instance stops, and it stays stopped while
    the other holds it."""
    url = expiring_backend
    replica = Replica(fleet(url, "a", connection_counter, accounts=1))
    thief = Backend(url, "thief", "elsewhere")
    await anyio.to_thread.run_sync(thief.start)
    try:
        async with anyio.create_task_group() as group:
            group.start_soon(replica.run)
            with anyio.fail_after(PATIENCE):
                await wait_until(lambda: {"acct0", "plain0"} <= replica.active())
            lock = thief.lock(lock_name("demi.platforms", "acct0"))
            await anyio.to_thread.run_sync(lock._lock.break_)
            assert await anyio.to_thread.run_sync(lock.acquire)
            began = time.monotonic()
            with anyio.fail_after(EXPIRY + PATIENCE):
                await wait_until(lambda: connection_counter.connected() == set())
            assert time.monotonic() - began < EXPIRY
            assert replica.coordinator.connected  # a loss, not an outage
            await anyio.sleep(EXPIRY / 2)
            assert "acct0" not in replica.active()
            assert "plain0" in replica.active()
            await anyio.to_thread.run_sync(lock.release)
            with anyio.fail_after(PATIENCE):
                await wait_until(lambda: connection_counter.connected() == {"acct0"})
            await replica.stop()
    finally:
        await anyio.to_thread.run_sync(thief.leave)


#: Runs demi's command line in a Python where tooz cannot be imported.
WITHOUT_TOOZ = (
    "import sys; sys.modules['tooz'] = None; from demi.cli import main; "
    "sys.argv = ['demi', *sys.argv[1:]]; sys.exit(main())"
)


@pytest.mark.parametrize("coordinated", [False, True])
def test_demi_runs_without_tooz_until_coordination_is_asked_for(
    tmp_path: Path, coordinated: bool
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DEMI_")}
    if coordinated:
        env["DEMI_COORDINATION_URL"] = f"file://{tmp_path / 'coord'}"
    done = subprocess.run(
        [sys.executable, "-c", WITHOUT_TOOZ, "check", "--json"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=PATIENCE * 3,
        check=False,
    )
    if not coordinated:
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout)["healthy"] is True
        return
    assert done.returncode == 2, done.stderr
    assert (
        "coordination_url needs tooz: pip install 'demi-conductor[coordination]'"
        in (done.stderr)
    )
