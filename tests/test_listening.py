"""Platforms that listen: ``run`` started after ``initialize``, ready at
``task_status.started()``, lost when it ends on its own, cancelled before
``shutdown``; and every event an inbox accepted handled exactly once across swaps,
restarts, reloads and the stop."""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from typing import Any, ClassVar

import anyio
import pytest
from anyio.abc import TaskStatus

from demi import (
    BasePlatform,
    DemiSettings,
    HealthStatus,
    InboundEvent,
    Inbox,
    PlatformFatalError,
    PlatformSettings,
    PluginHealth,
    PluginManager,
    PluginState,
)
from demi.conductor import Conductor

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


class Recorder:
    """A handler that records every event it is given."""

    def __init__(self) -> None:
        self.events: list[InboundEvent] = []

    async def __call__(self, event: InboundEvent) -> None:
        self.events.append(event)


def conductor_of(
    settings: DemiSettings,
    classes: Mapping[str, type[BasePlatform]],
    handler: Recorder | None = None,
) -> Conductor:
    return Conductor(
        settings,
        handler=handler or Recorder(),
        manager=PluginManager.from_classes(classes, settings=settings),
    )


async def wait_until(predicate: Any) -> None:
    with anyio.fail_after(PATIENCE):
        while not predicate():  # noqa: ASYNC110 (plain state: polling is the point)
            await anyio.sleep(0.001)


class Listener(BasePlatform):
    """Connects, says hello once, then waits; records what happens to it."""

    journal: ClassVar[list[str]]

    async def initialize(self, config: Mapping[str, Any]) -> bool:
        self.journal.append("initialize")
        return True

    async def health_check(self) -> PluginHealth:
        return PluginHealth(HealthStatus.HEALTHY)

    async def handle_request(self, request: Mapping[str, Any]) -> dict[str, Any]:
        return {"echo": dict(request)}

    async def shutdown(self) -> None:
        self.journal.append("shutdown")

    async def run(
        self, inbox: Inbox, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        task_status.started()
        self.journal.append("connected")
        await inbox.send(InboundEvent("message", {"text": "hello"}, "hello-1", "#c"))
        try:
            await anyio.sleep_forever()
        finally:
            self.journal.append("run cancelled")


@pytest.fixture
def listener() -> type[Listener]:
    class Fresh(Listener):
        journal: ClassVar[list[str]] = []

    return Fresh


async def test_a_listening_platform_connects_and_its_events_reach_the_handler(
    listener: type[Listener],
) -> None:
    recorder = Recorder()
    conductor = conductor_of(settings_for({"chat": "l"}), {"l": listener}, recorder)
    async with conductor:
        await wait_until(lambda: recorder.events)
        (status,) = conductor.instances()
        assert status.state is PluginState.ACTIVE and status.connected is True
    (event,) = recorder.events
    assert (event.instance, event.event_id, event.conversation) == (
        "chat",
        "hello-1",
        "#c",
    )
    assert listener.journal == [
        "initialize",
        "connected",
        "run cancelled",
        "shutdown",
    ]


async def test_run_is_cancelled_before_shutdown_on_unload(
    listener: type[Listener],
) -> None:
    conductor = conductor_of(settings_for({"chat": "l"}), {"l": listener})
    async with conductor:
        await conductor.restart("chat")
    assert listener.journal.index("run cancelled") < listener.journal.index("shutdown")


async def test_a_listening_platform_is_exclusive_by_default(
    listener: type[Listener],
) -> None:
    """Its restart stops the old connection before the new platform initializes."""
    conductor = conductor_of(settings_for({"chat": "l"}), {"l": listener})
    async with conductor:
        await conductor.restart("chat")
    assert listener.journal[:6] == [
        "initialize",
        "connected",
        "run cancelled",
        "shutdown",
        "initialize",
        "connected",
    ]


class NeverReady(Listener):
    async def run(
        self, inbox: Inbox, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        await anyio.sleep_forever()


class FailsToConnect(Listener):
    async def run(
        self, inbox: Inbox, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        raise ConnectionRefusedError("the gateway said no")


@pytest.mark.parametrize(
    ("cls", "reason"),
    [
        (NeverReady, "run did not call task_status.started() within 0.3s"),
        (FailsToConnect, "ConnectionRefusedError: the gateway said no"),
    ],
)
async def test_a_platform_that_never_gets_ready_fails_and_the_rest_carry_on(
    cls: type[Listener], reason: str, listener: type[Listener]
) -> None:
    class Broken(cls):  # type: ignore[valid-type,misc]
        journal: ClassVar[list[str]] = []

    settings = settings_for({"bad": "bad", "good": "good"}, init_timeout=0.3)
    conductor = conductor_of(settings, {"bad": Broken, "good": listener})
    async with conductor:
        states = {s.instance: s for s in conductor.instances()}
        assert states["good"].state is PluginState.ACTIVE
    assert states["bad"].state is PluginState.FAILED
    assert reason in (states["bad"].error or "")
    assert "shutdown" in Broken.journal


class Drops(Listener):
    """Connects, then loses the connection."""

    async def run(
        self, inbox: Inbox, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        task_status.started()
        await anyio.sleep(0.01)
        raise ConnectionResetError("the gateway went away")


class Banned(Listener):
    async def run(
        self, inbox: Inbox, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        task_status.started()
        await anyio.sleep(0.01)
        raise PlatformFatalError("the account is banned")


@pytest.mark.parametrize(
    ("cls", "reason", "fatal"),
    [
        (Drops, "connection lost: run raised ConnectionResetError", False),
        (Banned, "fatal: run raised PlatformFatalError: the account is banned", True),
    ],
)
async def test_a_connection_that_ends_fails_the_instance_with_the_reason(
    cls: type[Listener], reason: str, fatal: bool
) -> None:
    class Lossy(cls):  # type: ignore[valid-type,misc]
        journal: ClassVar[list[str]] = []

    conductor = conductor_of(settings_for({"chat": "x"}), {"x": Lossy})
    async with conductor:
        await wait_until(lambda: "shutdown" in Lossy.journal)
        await wait_until(lambda: conductor.instances()[0].state is PluginState.FAILED)
        (status,) = conductor.instances()
    assert reason in (status.error or "")
    assert status.fatal is fatal
    assert status.connected in (False, None)


async def test_a_listening_platform_outside_a_session_fails_saying_why(
    listener: type[Listener],
) -> None:
    conductor = conductor_of(settings_for({"chat": "l"}), {"l": listener})
    await conductor.start()
    try:
        (status,) = conductor.instances()
    finally:
        await conductor.stop()
    assert status.state is PluginState.FAILED
    assert "needs an inbox and a running manager" in (status.error or "")


async def test_a_platform_on_a_backend_it_does_not_support_fails_naming_it(
    listener: type[Listener], anyio_backend: str
) -> None:
    other = "trio" if anyio_backend == "asyncio" else "asyncio"

    class Picky(listener):  # type: ignore[valid-type,misc]
        supported_backends = (other,)

    conductor = conductor_of(settings_for({"chat": "p"}), {"p": Picky})
    async with conductor:
        (status,) = conductor.instances()
    assert status.state is PluginState.FAILED
    assert f"runs only on {other}, and demi runs on {anyio_backend}" in (
        status.error or ""
    )


# -- nothing accepted is lost -------------------------------------------------------


class Stream(BasePlatform):
    """Sends events non-stop, numbered across every platform object of the test;
    records the id of every event its inbox accepted."""

    numbers: ClassVar[itertools.count[int]]
    accepted: ClassVar[list[str]]

    async def initialize(self, config: Mapping[str, Any]) -> bool:
        return True

    async def health_check(self) -> PluginHealth:
        return PluginHealth(HealthStatus.HEALTHY)

    async def handle_request(self, request: Mapping[str, Any]) -> dict[str, Any]:
        return {}

    async def shutdown(self) -> None:
        pass

    async def run(
        self, inbox: Inbox, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        task_status.started()
        while True:
            number = next(self.numbers)
            event = InboundEvent(
                "message", {"text": str(number)}, f"e{number}", f"c{number % 3}"
            )
            if await inbox.send(event):
                self.accepted.append(event.event_id)
            await anyio.sleep(0.0005)


async def test_every_accepted_event_is_handled_exactly_once_through_swaps_and_stop() -> (
    None
):
    """Under a continuous stream of events, a switch, a restart, a reload and the
    stop lose none and handle none twice, counted by event id."""

    class StreamA(Stream):
        numbers = itertools.count()
        accepted: ClassVar[list[str]] = []

    class StreamB(StreamA):
        pass

    recorder = Recorder()
    before = settings_for({"chat": "a", "other": "a"})
    after = DemiSettings(
        platforms={
            "chat": PlatformSettings(driver="a"),
            "other": PlatformSettings(driver="a", config={"v": 2}),
        },
        **{k: getattr(before, k) for k in ("init_timeout", "stop_timeout")},
    )
    conductor = conductor_of(before, {"a": StreamA, "b": StreamB}, recorder)

    def grew(by: int) -> Any:
        target = len(StreamA.accepted) + by
        return lambda: len(StreamA.accepted) >= target

    async with conductor:
        await wait_until(grew(50))
        await conductor.switch_driver("chat", "b")
        await wait_until(grew(50))
        assert await conductor.restart("other")
        await wait_until(grew(50))
        result = await conductor.reload(after)
        assert sorted(result.switched) == ["chat", "other"]
        await wait_until(grew(50))
    handled = [event.event_id for event in recorder.events]
    assert len(handled) == len(set(handled)), "an event was handled twice"
    assert sorted(handled) == sorted(StreamA.accepted), "an accepted event was lost"
    assert len(handled) >= 200
