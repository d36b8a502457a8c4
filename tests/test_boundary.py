"""The manager and conductor keep their word around one platform's misbehaviour:
restarts that keep serving, exclusive platforms that never run twice, reloads that
win over restarts in flight, time a blocking platform steals charged to it alone,
and worker threads that cannot grow without limit."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

import anyio
import pytest

from demi import (
    BasePlatform,
    DemiSettings,
    HealthStatus,
    PlatformRequestError,
    PlatformSettings,
    PlatformUnavailableError,
    PluginHealth,
    PluginManager,
    PluginState,
    SyncPlatform,
)
from demi.conductor import Conductor
from demi.testing import make_manager

PATIENCE = 20.0


def settings_for(platforms: Mapping[str, str], **overrides: Any) -> DemiSettings:
    values: dict[str, Any] = {
        "init_timeout": 5.0,
        "request_timeout": 5.0,
        "shutdown_timeout": 5.0,
        "stop_timeout": 10.0,
    }
    values.update(overrides)
    specs = {name: PlatformSettings(driver=d) for name, d in platforms.items()}
    return DemiSettings(platforms=specs, **values)


def conductor_of(
    settings: DemiSettings,
    classes: Mapping[str, type[BasePlatform] | type[SyncPlatform]],
) -> Conductor:
    return Conductor(settings, manager=make_manager(settings, **classes))


async def wait_until(predicate: Callable[[], bool]) -> None:
    with anyio.fail_after(PATIENCE):
        while not predicate():  # noqa: ASYNC110 (plain state: polling is the point)
            await anyio.sleep(0.001)


class Journal(BasePlatform):
    """Records, class-wide, when each of its objects initializes and shuts down."""

    events: ClassVar[list[str]] = []
    generation: ClassVar[int] = 0
    gate: ClassVar[anyio.Event | None] = None
    #: The instances started at first, so that only a restart meets the gate.
    first: ClassVar[tuple[str, ...]] = ("chat",)

    async def initialize(self, config: Mapping[str, Any]) -> bool:
        type(self).generation += 1
        self.number = type(self).generation
        gate = type(self).gate
        # Only a restart waits: the first platforms of every instance start freely.
        if gate is not None and self.number > len(self.first):
            await gate.wait()
        self.events.append(f"init {self.number}")
        return True

    async def health_check(self) -> PluginHealth:
        return PluginHealth(HealthStatus.HEALTHY)

    async def handle_request(self, request: Mapping[str, Any]) -> dict[str, Any]:
        await anyio.sleep(0.002)
        return {"by": self.number}

    async def shutdown(self) -> None:
        self.events.append(f"shutdown {getattr(self, 'number', 0)}")


@pytest.fixture
def journal() -> type[Journal]:
    class Shared(Journal):
        events: ClassVar[list[str]] = []
        generation: ClassVar[int] = 0
        gate: ClassVar[anyio.Event | None] = None

    return Shared


@pytest.fixture
def exclusive_journal() -> type[Journal]:
    class Exclusive(Journal):
        exclusive = True
        events: ClassVar[list[str]] = []
        generation: ClassVar[int] = 0
        gate: ClassVar[anyio.Event | None] = None

    return Exclusive


async def keep_dispatching(
    conductor: Conductor, stop: anyio.Event, failures: list[BaseException]
) -> int:
    answered = 0
    while not stop.is_set():
        try:
            await conductor.dispatch("chat", {})
            answered += 1
        except PlatformRequestError as err:
            failures.append(err)
            await anyio.sleep(0.001)
    return answered


async def test_restart_keeps_serving(journal: type[Journal]) -> None:
    """A restart starts the fresh platform beside the old one: requests during the
    restart are answered, none refused, and the old one retires after."""
    conductor = conductor_of(settings_for({"chat": "j"}), {"j": journal})
    failures: list[BaseException] = []
    stop = anyio.Event()
    async with conductor, anyio.create_task_group() as group:
        for _ in range(4):
            group.start_soon(keep_dispatching, conductor, stop, failures)
        assert await conductor.restart("chat")
        assert (await conductor.dispatch("chat", {}))["by"] == 2
        stop.set()
    assert failures == []
    assert journal.events.index("init 2") < journal.events.index("shutdown 1")


async def test_exclusive_platform_stops_before_its_successor_starts(
    exclusive_journal: type[Journal],
) -> None:
    """An exclusive platform gets stop-then-start: at no moment do two exist."""
    conductor = conductor_of(settings_for({"chat": "x"}), {"x": exclusive_journal})
    async with conductor:
        assert await conductor.restart("chat")
    assert exclusive_journal.events[:3] == ["init 1", "shutdown 1", "init 2"]


async def test_requests_in_an_exclusive_restart_gap_are_unavailable(
    exclusive_journal: type[Journal],
) -> None:
    """While an exclusive platform's successor is starting, requests get
    PlatformUnavailableError rather than waiting or reaching the old one."""
    exclusive_journal.gate = anyio.Event()
    conductor = conductor_of(settings_for({"chat": "x"}), {"x": exclusive_journal})
    async with conductor, anyio.create_task_group() as group:
        group.start_soon(conductor.restart, "chat")
        await wait_until(lambda: "shutdown 1" in exclusive_journal.events)
        with pytest.raises(PlatformUnavailableError):
            await conductor.dispatch("chat", {})
        exclusive_journal.gate.set()
    assert exclusive_journal.events[-1] == "shutdown 2"


async def test_reload_that_removes_an_instance_wins_over_its_restart(
    journal: type[Journal],
) -> None:
    """A reload that removes an instance while a restart of it is starting the fresh
    platform leaves it removed: the fresh platform is shut down, nothing routed."""
    journal.gate = anyio.Event()
    journal.first = ("chat", "other")
    before = settings_for({"chat": "j", "other": "j"})
    after = settings_for({"other": "j"})
    conductor = conductor_of(before, {"j": journal})
    async with conductor:
        restarted: list[bool] = []

        async def restart() -> None:
            restarted.append(await conductor.restart("chat"))

        async with anyio.create_task_group() as group:
            group.start_soon(restart)
            await wait_until(lambda: journal.generation == 3)
            result = await conductor.reload(after)
            assert result.removed == ["chat"]
            journal.gate.set()
        assert restarted == [False]
        assert [s.instance for s in conductor.instances()] == ["other"]
        assert journal.events.count("init 3") == journal.events.count("shutdown 3")
        assert conductor.manager.active_names() == ["other"]


async def test_swapped_generations_never_take_a_configured_name_and_are_forgotten(
    journal: type[Journal],
) -> None:
    """The manager's keys for a swapped generation can never equal an instance name
    (instance names cannot hold the mark), and stopped generations are forgotten."""
    conductor = conductor_of(settings_for({"chat": "j"}), {"j": journal})
    async with conductor:
        for _ in range(20):
            assert await conductor.restart("chat")
        keys = [meta.name for meta in conductor.manager.list_plugins()]
        loaded = [key for key in keys if key.startswith("chat")]
        assert len(loaded) == 1 and "#" in loaded[0]
        assert len(conductor.manager._slots) == 1
        assert len(conductor.manager._locks) <= 2


async def test_cancelled_start_up_shuts_down_what_had_started() -> None:
    """Cancelling ``async with Conductor()`` while one platform is still starting
    shuts down the one that had started, shielded, before the cancellation ends."""
    shut: list[str] = []

    class Quick(Journal):
        async def shutdown(self) -> None:
            shut.append("quick")

    class Slow(Journal):
        async def initialize(self, config: Mapping[str, Any]) -> bool:
            await anyio.sleep_forever()
            raise AssertionError("unreachable")

    settings = settings_for({"quick": "quick", "slow": "slow"})
    conductor = conductor_of(settings, {"quick": Quick, "slow": Slow})
    with anyio.move_on_after(0.5):
        async with conductor:
            raise AssertionError("start-up should not have finished")
    assert shut == ["quick"]
    assert conductor.manager.active_names() == []


class Blocker(BasePlatform):
    """Holds the event loop with time.sleep in initialize (a plugin bug)."""

    async def initialize(self, config: Mapping[str, Any]) -> bool:
        time.sleep(1.0)  # noqa: ASYNC251 (the fault under test)
        return True

    async def health_check(self) -> PluginHealth:
        return PluginHealth(HealthStatus.HEALTHY)

    async def handle_request(self, request: Mapping[str, Any]) -> dict[str, Any]:
        return {}

    async def shutdown(self) -> None:
        pass


class Innocent(Blocker):
    async def initialize(self, config: Mapping[str, Any]) -> bool:
        await anyio.sleep(0.3)
        return True


async def test_time_a_blocking_platform_steals_is_charged_to_it_alone(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A platform that blocks the loop past everyone's deadline fails for it (its
    result came late), is named in a warning, and the innocent platform that
    started beside it is not timed out for time it never had."""
    settings = settings_for({"bad": "blocker", "good": "innocent"}, init_timeout=0.8)
    conductor = conductor_of(settings, {"blocker": Blocker, "innocent": Innocent})
    async with conductor:
        states = {s.instance: s for s in conductor.instances()}
    assert states["good"].state is PluginState.ACTIVE
    assert states["bad"].state is PluginState.FAILED
    assert "did not finish within 0.8s" in (states["bad"].error or "")
    assert any(
        "platform bad blocked the event loop" in r.getMessage()
        and "initialize" in r.getMessage()
        for r in caplog.records
    )


class SlowHealth(Blocker):
    async def initialize(self, config: Mapping[str, Any]) -> bool:
        return True

    async def health_check(self) -> PluginHealth:
        time.sleep(0.3)  # noqa: ASYNC251 (the fault under test)
        return PluginHealth(HealthStatus.HEALTHY)


async def test_a_health_result_that_arrives_after_its_deadline_is_a_timeout() -> None:
    """A check that holds the loop past the health timeout and then says healthy is
    unhealthy: its answer came too late."""
    manager = PluginManager.from_classes(
        {"slow": SlowHealth}, settings=DemiSettings(health_timeout=0.1)
    )
    async with manager:
        await manager.load_plugin("slow")
        health = await manager.health_check("slow")
    assert health.status is HealthStatus.UNHEALTHY
    assert "did not finish within 0.1s" in (health.error_message or "")


class Stuck(SyncPlatform):
    """A blocking platform whose requests never return until released."""

    release: ClassVar[threading.Event]

    def initialize(self, config: Mapping[str, Any]) -> bool:
        return True

    def health_check(self) -> PluginHealth:
        return PluginHealth(HealthStatus.HEALTHY)

    def handle_request(self, request: Mapping[str, Any]) -> dict[str, Any]:
        self.release.wait(30)
        return {}

    def shutdown(self) -> None:
        pass


async def test_restarting_a_hanging_blocking_platform_bounds_its_threads() -> None:
    """Each timed-out call of a blocking platform leaves its thread behind; across
    many restarts the threads it holds stay within its budget."""

    class Hanging(Stuck):
        release = threading.Event()

    settings = settings_for({"chat": "stuck"}, request_timeout=0.01)
    conductor = conductor_of(settings, {"stuck": Hanging})
    before = threading.active_count()
    try:
        async with conductor:
            for _ in range(40):
                with pytest.raises(PlatformRequestError):
                    await conductor.dispatch("chat", {})
                await conductor.restart("chat")
            grown = threading.active_count() - before
    finally:
        Hanging.release.set()
    assert grown <= 16 + 4, grown


async def test_manager_discovers_in_the_namespace_its_settings_name() -> None:
    """Settings own the namespace: a manager given settings with another namespace
    scans that one."""
    manager = PluginManager(
        settings=DemiSettings(namespace="demi_testplugins.only_good")
    )
    assert manager.namespace == "demi_testplugins.only_good"
    assert sorted(await manager.discover_and_register()) == ["good", "good2"]
