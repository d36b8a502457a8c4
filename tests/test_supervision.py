"""Supervision: health rounds, restart policies, backoff, intensity limit, readiness."""

from __future__ import annotations

import logging
import random
import time
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from types import SimpleNamespace
from typing import Any, ClassVar

import anyio
import pytest
from demi_testplugins.health_ignores_cancel import IgnoresCancelPlatform
from prometheus_client.parser import text_string_to_metric_families

from demi import DemiSettings, PluginManager, PluginState
from demi import supervision as supervision_module
from demi.conductor import Conductor
from demi.core.config import PlatformSettings
from demi.exceptions import PluginLoadError
from demi.http.metrics import Metrics
from demi.platforms import BasePlatform, HealthStatus, PluginHealth
from demi.platforms.echo import EchoPlatform
from demi.supervision import HISTORY, Supervisor, backoff_delay

#: Tiny backoffs keep the tests quick: 0.01 s doubling up to 0.04 s.
INITIAL, MAXIMUM = 0.01, 0.04


class Patient(BasePlatform):
    """A platform whose health and start-up the test scripts; see :func:`patient`."""

    #: Unhealthy after this many checks (``None``: never of itself).
    healthy_checks: ClassVar[int | None] = None
    #: Only the first this many instances fall ill; later ones stay healthy.
    sick_instances: ClassVar[int] = 1
    #: The first this many ``initialize`` calls raise.
    failing_inits: ClassVar[int] = 0
    inits: ClassVar[int] = 0
    shutdowns: ClassVar[int] = 0
    instances: ClassVar[list[Patient]] = []

    def __init__(self) -> None:
        self.checks = 0
        self.generation = 0
        #: Set by a test to make this instance unhealthy at once.
        self.sick = False
        self.sick_after: int | None = None
        #: Set by a test to hold this instance's health checks until it is set.
        self.gate: anyio.Event | None = None

    async def initialize(self, config: Mapping[str, Any]) -> bool:
        cls = type(self)
        cls.inits += 1
        if cls.inits <= cls.failing_inits:
            raise RuntimeError(f"not ready yet (attempt {cls.inits})")
        cls.instances.append(self)
        self.generation = len(cls.instances)
        if self.generation <= cls.sick_instances:
            self.sick_after = cls.healthy_checks
        return True

    async def health_check(self) -> PluginHealth:
        self.checks += 1
        if self.gate is not None:
            await self.gate.wait()
        if self.sick or (self.sick_after is not None and self.checks > self.sick_after):
            return PluginHealth(
                status=HealthStatus.UNHEALTHY,
                error_message=f"generation {self.generation} is sick",
            )
        return PluginHealth(status=HealthStatus.HEALTHY)

    async def handle_request(self, request: Mapping[str, Any]) -> dict[str, Any]:
        return {"generation": self.generation, **request}

    async def shutdown(self) -> None:
        type(self).shutdowns += 1


def patient(
    *,
    healthy_checks: int | None = None,
    sick_instances: int = 1,
    failing_inits: int = 0,
) -> type[Patient]:
    """A fresh Patient class, so no state leaks between tests or backends."""

    class Fresh(Patient):
        pass

    Fresh.healthy_checks = healthy_checks
    Fresh.sick_instances = sick_instances
    Fresh.failing_inits = failing_inits
    Fresh.inits = 0
    Fresh.shutdowns = 0
    Fresh.instances = []
    return Fresh


def spec(driver: str, **overrides: Any) -> PlatformSettings:
    """Settings of one instance with tiny backoffs."""
    values: dict[str, Any] = {
        "backoff_initial": INITIAL,
        "backoff_max": MAXIMUM,
        "failure_threshold": 2,
    }
    values.update(overrides)
    return PlatformSettings(driver=driver, **values)


def make_conductor(
    classes: Mapping[str, type[BasePlatform]], **platforms: PlatformSettings
) -> Conductor:
    """A conductor over the given classes (plus echo) and instances."""
    settings = DemiSettings(
        health_interval=0.01, health_timeout=2, stop_timeout=5, platforms=platforms
    )
    manager = PluginManager.from_classes(
        {"echo": EchoPlatform, **classes}, settings=settings
    )
    return Conductor(settings, manager=manager)


@asynccontextmanager
async def supervised(
    conductor: Conductor,
    *,
    interval: float = 0.01,
    rng: Callable[[], float] = lambda: 1.0,
) -> AsyncIterator[Supervisor]:
    """Start ``conductor``, run a supervisor over it, stop both afterwards."""
    supervisor = Supervisor(conductor, interval=interval, rng=rng)
    async with conductor, anyio.create_task_group() as group:
        await group.start(supervisor.run)
        yield supervisor
        group.cancel_scope.cancel()


async def until(
    supervisor: Supervisor, condition: Callable[[], bool], timeout: float = 10.0
) -> None:
    """Await health rounds until ``condition`` holds (bounded)."""
    with anyio.fail_after(timeout):
        while not condition():
            await supervisor.wait_round()


async def rounds(supervisor: Supervisor, count: int) -> None:
    """Await ``count`` more health rounds."""
    with anyio.fail_after(10):
        for _ in range(count):
            await supervisor.wait_round()


class Traffic:
    """Requests sent to an instance in the background, to show it keeps serving."""

    def __init__(self, conductor: Conductor, instance: str) -> None:
        self.conductor = conductor
        self.instance = instance
        self.served = 0

    async def run(self) -> None:
        """Dispatch until cancelled; any failure ends the test's task group."""
        while True:
            reply = await self.conductor.dispatch(self.instance, {"n": self.served})
            assert reply == {"n": self.served}
            self.served += 1
            await anyio.sleep(0.002)


@pytest.fixture
def delays(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, float]]:
    """Every backoff the supervisor computes, as (attempt, seconds)."""
    seen: list[tuple[int, float]] = []

    def spy(
        attempt: int,
        spec: PlatformSettings,
        rng: Callable[[], float] = random.random,
    ) -> float:
        delay = backoff_delay(attempt, spec, rng)
        seen.append((attempt, delay))
        return delay

    monkeypatch.setattr(supervision_module, "backoff_delay", spy)
    return seen


def state_of(conductor: Conductor, instance: str) -> PluginState | None:
    """The lifecycle state of one instance."""
    return next(s.state for s in conductor.instances() if s.instance == instance)


def flips(seen: list[bool]) -> list[bool]:
    """``seen`` with repeats collapsed: [T, T, F, F, T] -> [T, F, T]."""
    return [value for i, value in enumerate(seen) if i == 0 or seen[i - 1] != value]


# -- backoff_delay --------------------------------------------------------------


def test_backoff_without_jitter_doubles_up_to_the_maximum() -> None:
    """With the jitter at its top the delay doubles from backoff_initial to backoff_max."""
    policy = PlatformSettings(driver="x", backoff_initial=1, backoff_max=60)
    assert [backoff_delay(n, policy, lambda: 1.0) for n in range(9)] == [
        1, 2, 4, 8, 16, 32, 60, 60, 60,
    ]  # fmt: skip


def test_backoff_jitter_at_its_bottom_halves_the_delay() -> None:
    """With the jitter at its bottom the delay is half the doubled, capped value."""
    policy = PlatformSettings(driver="x", backoff_initial=1, backoff_max=60)
    assert [backoff_delay(n, policy, lambda: 0.0) for n in range(8)] == [
        0.5, 1, 2, 4, 8, 16, 30, 30,
    ]  # fmt: skip


def test_backoff_jitter_spreads_within_half_to_full() -> None:
    """Random jitter lands between half and all of the ceiling, and actually varies."""
    policy = PlatformSettings(driver="x", backoff_initial=0.5, backoff_max=10)
    rng = random.Random(4).random
    for attempt in range(10):
        ceiling = min(10.0, 0.5 * 2**attempt)
        samples = [backoff_delay(attempt, policy, rng) for _ in range(50)]
        assert all(ceiling / 2 <= s <= ceiling for s in samples)
        assert len(set(samples)) > 1


def test_backoff_uses_random_jitter_by_default() -> None:
    """Without an rng the default jitter still stays within bounds."""
    policy = PlatformSettings(driver="x", backoff_initial=2, backoff_max=3)
    samples = [backoff_delay(5, policy) for _ in range(50)]
    assert all(1.5 <= s <= 3 for s in samples)
    assert len(set(samples)) > 1


# -- rounds ---------------------------------------------------------------------


async def test_round_keeps_a_bounded_history_and_counts_failures() -> None:
    """A round records each result; history is capped and failures are counted."""
    sick = patient(healthy_checks=2)
    conductor = make_conductor(
        {"sick": sick}, primary=spec("sick"), steady=spec("echo")
    )
    supervisor = Supervisor(conductor, interval=60)
    async with conductor:
        for _ in range(HISTORY + 5):
            results = await supervisor.round()
            assert set(results) == {"primary", "steady"}
    primary, steady = supervisor.record("primary"), supervisor.record("steady")
    assert len(primary.history) == HISTORY
    assert primary.consecutive_failures == HISTORY + 5 - 2
    assert steady.consecutive_failures == 0
    assert primary.history[-1].status is HealthStatus.UNHEALTHY
    assert supervisor.rounds == HISTORY + 5
    assert supervisor.last_round is not None


async def test_a_healthy_result_resets_consecutive_failures() -> None:
    """Consecutive failures go back to zero on the first healthy check."""
    sick = patient()
    conductor = make_conductor({"sick": sick}, primary=spec("sick"))
    supervisor = Supervisor(conductor, interval=60)
    async with conductor:
        sick.instances[0].sick = True
        await supervisor.round()
        await supervisor.round()
        assert supervisor.record("primary").consecutive_failures == 2
        sick.instances[0].sick = False
        await supervisor.round()
    assert supervisor.record("primary").consecutive_failures == 0


async def test_health_checks_of_a_round_run_concurrently() -> None:
    """Each check waits for the other, so a sequential round would time them out."""

    class Rendezvous(BasePlatform):
        arrived: ClassVar[int] = 0
        together: ClassVar[anyio.Event]

        async def initialize(self, config: Mapping[str, Any]) -> bool:
            return True

        async def health_check(self) -> PluginHealth:
            cls = type(self)
            cls.arrived += 1
            if cls.arrived == 2:
                cls.together.set()
            await cls.together.wait()
            return PluginHealth(status=HealthStatus.HEALTHY)

        async def handle_request(self, request: Mapping[str, Any]) -> dict[str, Any]:
            return {}

        async def shutdown(self) -> None:
            pass

    Rendezvous.together = anyio.Event()
    conductor = make_conductor({"meet": Rendezvous}, a=spec("meet"), b=spec("meet"))
    supervisor = Supervisor(conductor, interval=60)
    async with conductor:
        with anyio.fail_after(5):
            results = await supervisor.round()
    assert {name: h.status for name, h in results.items()} == {
        "a": HealthStatus.HEALTHY,
        "b": HealthStatus.HEALTHY,
    }


async def test_round_survives_a_platform_taken_out_while_its_check_is_pending() -> None:
    """A platform failed after a round began (a give-up, a restart) is skipped by that
    round instead of crashing it."""

    class Saboteur(BasePlatform):
        """Its health check takes the "victim" instance out of service."""

        conductor: ClassVar[Conductor]

        async def initialize(self, config: Mapping[str, Any]) -> bool:
            return True

        async def health_check(self) -> PluginHealth:
            await type(self).conductor.fail("victim", "taken out mid-round")
            return PluginHealth(status=HealthStatus.HEALTHY)

        async def handle_request(self, request: Mapping[str, Any]) -> dict[str, Any]:
            return {}

        async def shutdown(self) -> None:
            pass

    victim = patient()
    conductor = make_conductor(
        {"saboteur": Saboteur, "victim": victim},
        saboteur=spec("saboteur"),
        victim=spec("victim"),
    )
    Saboteur.conductor = conductor
    supervisor = Supervisor(conductor, interval=60)
    async with conductor:
        # The order of a round's checks varies (trio shuffles), so try it often.
        for _ in range(20):
            assert await conductor.restart("victim")
            results = await supervisor.round()
            assert results["saboteur"].is_healthy
            assert state_of(conductor, "victim") is PluginState.FAILED


async def test_wait_round_wakes_when_the_next_round_completes() -> None:
    """wait_round() returns once a round has finished, not before."""
    conductor = make_conductor({}, steady=spec("echo"))
    supervisor = Supervisor(conductor, interval=60)
    woke: list[int] = []

    async def waiter() -> None:
        await supervisor.wait_round()
        woke.append(supervisor.rounds)

    async with conductor, anyio.create_task_group() as group:
        group.start_soon(waiter)
        await anyio.wait_all_tasks_blocked()
        assert woke == []
        await supervisor.round()
    assert woke == [1]


# -- restarts -------------------------------------------------------------------


async def test_unhealthy_required_platform_is_restarted_and_readiness_recovers(
    delays: list[tuple[int, float]],
) -> None:
    """After failure_threshold unhealthy rounds it is restarted with backoff; readiness
    goes false, then true again, while another platform keeps serving."""
    flaky = patient(healthy_checks=2)
    conductor = make_conductor(
        {"flaky": flaky},
        primary=spec("flaky", required=True, failure_threshold=2),
        steady=spec("echo"),
    )
    readiness: list[bool] = []
    restarted: list[tuple[str, str]] = []
    async with supervised(conductor) as supervisor, anyio.create_task_group() as group:
        supervisor.add_round_observer(
            lambda _: readiness.append(supervisor.readiness()[0])
        )
        supervisor.add_restart_observer(lambda name, why: restarted.append((name, why)))
        traffic = Traffic(conductor, "steady")
        group.start_soon(traffic.run)
        record = supervisor.record("primary")
        await until(supervisor, lambda: record.restarts == 1 and readiness[-1])
        served_during = traffic.served
        reply = await conductor.dispatch("primary", {"after": "restart"})
        group.cancel_scope.cancel()
    assert flips(readiness) == [True, False, True]
    assert restarted == [("primary", "unhealthy")]
    assert delays == [(0, INITIAL)]
    assert flaky.inits == 2
    assert flaky.shutdowns >= 1
    assert reply == {"generation": 2, "after": "restart"}
    assert record.gave_up is None
    assert record.consecutive_failures == 0
    assert [h.status for h in record.history].count(HealthStatus.UNHEALTHY) >= 2
    assert served_during > 0


async def test_a_check_of_the_old_instance_does_not_count_against_the_new_one() -> None:
    """A round whose check began before a restart and ended after it does not count
    that stale result, so it cannot trigger a second restart."""
    flaky = patient()
    conductor = make_conductor(
        {"flaky": flaky},
        primary=spec("flaky", failure_threshold=1, backoff_initial=0.05),
    )
    restarted = anyio.Event()
    # Rounds are driven by hand; run() only provides the group restarts run in.
    async with supervised(conductor, interval=60) as supervisor:
        supervisor.add_restart_observer(lambda *_: restarted.set())
        record = supervisor.record("primary")
        old = flaky.instances[0]
        old.sick = True
        await supervisor.round()
        assert record.restarting
        old.gate = anyio.Event()
        async with anyio.create_task_group() as group:
            group.start_soon(supervisor.round)
            with anyio.fail_after(5):
                await restarted.wait()
            old.gate.set()
        # The stale unhealthy result scheduled no second restart.
        assert not supervisor.record("primary").restarting
        await supervisor.round()
    assert record.restarts == 1
    assert flaky.inits == 2
    assert record.consecutive_failures == 0


async def test_restart_waits_for_its_backoff() -> None:
    """A restart happens no sooner than its backoff delay after it was decided."""
    flaky = patient(healthy_checks=0)
    conductor = make_conductor(
        {"flaky": flaky},
        primary=spec(
            "flaky", failure_threshold=1, backoff_initial=0.3, backoff_max=0.3
        ),
    )
    async with supervised(conductor, rng=lambda: 0.0) as supervisor:
        record = supervisor.record("primary")
        await until(supervisor, lambda: record.restarting)
        decided = time.monotonic()
        await until(supervisor, lambda: flaky.inits == 2)
        waited = time.monotonic() - decided
    # rng 0.0 gives half of the 0.3 s ceiling.
    assert waited >= 0.15 * 0.9


async def test_never_recovering_platform_hits_the_intensity_limit_and_stays_failed(
    delays: list[tuple[int, float]],
) -> None:
    """At most max_restarts restarts, with doubling backoff; then it is given up on,
    stays failed and keeps readiness false while the others still serve."""
    hopeless = patient(healthy_checks=0, sick_instances=1000)
    conductor = make_conductor(
        {"hopeless": hopeless},
        primary=spec("hopeless", required=True, failure_threshold=1, max_restarts=4),
        steady=spec("echo"),
    )
    started = time.monotonic()
    async with supervised(conductor) as supervisor, anyio.create_task_group() as group:
        traffic = Traffic(conductor, "steady")
        group.start_soon(traffic.run)
        record = supervisor.record("primary")
        await until(
            supervisor,
            lambda: (
                record.gave_up is not None
                and state_of(conductor, "primary") is PluginState.FAILED
            ),
        )
        elapsed = time.monotonic() - started
        served_at_give_up = traffic.served
        await rounds(supervisor, 10)
        ready, problems = supervisor.readiness()
        snapshot = supervisor.snapshot()
        status = next(s for s in conductor.instances() if s.instance == "primary")
        assert await conductor.dispatch("steady", {"n": -1}) == {"n": -1}
        group.cancel_scope.cancel()
    assert record.restarts == 4
    assert hopeless.inits == 5
    assert delays == [(0, 0.01), (1, 0.02), (2, 0.04), (3, 0.04)]
    assert elapsed >= sum(d for _, d in delays) * 0.9
    assert not ready
    assert "gave up" in problems["primary"]
    assert status.state is PluginState.FAILED
    assert status.error is not None and "gave up" in status.error
    assert snapshot["platforms"]["primary"]["gave_up"] == record.gave_up
    assert snapshot["platforms"]["primary"]["state"] == "failed"
    assert snapshot["status"] == "unhealthy"
    assert traffic.served > served_at_give_up > 0


async def test_giving_up_is_logged_loudly(caplog: pytest.LogCaptureFixture) -> None:
    """The supervisor logs a CRITICAL record naming the platform when it gives up."""
    hopeless = patient(healthy_checks=0, sick_instances=1000)
    conductor = make_conductor(
        {"hopeless": hopeless},
        primary=spec("hopeless", failure_threshold=1, max_restarts=1),
    )
    async with supervised(conductor) as supervisor:
        await until(
            supervisor, lambda: supervisor.record("primary").gave_up is not None
        )
    loud = [r for r in caplog.records if r.levelname == "CRITICAL"]
    assert len(loud) == 1
    assert "primary" in loud[0].getMessage()
    assert "gave up" in loud[0].getMessage()


async def test_a_platform_that_never_stays_healthy_is_given_up_on_however_slowly(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Restarts count until the platform has been stably healthy, not within a sliding
    window: with the clock moved past restart_window before every round (restarts
    slower than the window, as with the default 30 s interval and 60 s window) a
    platform that never recovers is still given up on after max_restarts restarts.
    (This replaces the sliding-window test: that limit could never be reached.)"""
    clock = [1000.0]
    monkeypatch.setattr(
        supervision_module, "time", SimpleNamespace(monotonic=lambda: clock[0])
    )
    hopeless = patient(healthy_checks=0, sick_instances=1000)
    conductor = make_conductor(
        {"hopeless": hopeless},
        primary=spec(
            "hopeless", failure_threshold=1, max_restarts=2, restart_window=10
        ),
    )
    done = [anyio.Event()]

    async def restarted() -> None:
        with anyio.fail_after(5):
            await done[0].wait()
        done[0] = anyio.Event()

    # Rounds are driven by hand; run() only provides the group restarts run in.
    async with supervised(conductor, interval=60) as supervisor:
        supervisor.add_restart_observer(lambda *_: done[0].set())
        record = supervisor.record("primary")
        await restarted()  # run()'s first round found it unhealthy
        clock[0] += 11
        await supervisor.round()
        await restarted()
        gave_up_after_two = record.gave_up
        assert gave_up_after_two is None
        clock[0] += 11
        await supervisor.round()
    assert record.restarts == 2
    assert record.gave_up is not None
    assert "2 restart(s)" in record.gave_up


async def test_max_restarts_zero_gives_up_at_once() -> None:
    """With max_restarts = 0 an unhealthy platform is never restarted, only failed."""
    hopeless = patient(healthy_checks=0)
    conductor = make_conductor(
        {"hopeless": hopeless},
        primary=spec("hopeless", failure_threshold=1, max_restarts=0),
    )
    async with supervised(conductor) as supervisor:
        record = supervisor.record("primary")
        await until(
            supervisor,
            lambda: state_of(conductor, "primary") is PluginState.FAILED,
        )
    assert record.restarts == 0
    assert hopeless.inits == 1
    assert record.gave_up is not None


async def test_restart_never_leaves_an_unhealthy_platform_alone(
    delays: list[tuple[int, float]],
) -> None:
    """With restart = "never" an unhealthy platform is not restarted, however long."""
    hopeless = patient(healthy_checks=0)
    conductor = make_conductor(
        {"hopeless": hopeless},
        primary=spec("hopeless", required=True, restart="never", failure_threshold=1),
    )
    async with supervised(conductor) as supervisor:
        await rounds(supervisor, 15)
        ready, problems = supervisor.readiness()
        record = supervisor.record("primary")
    assert record.restarts == 0
    assert hopeless.inits == 1
    assert delays == []
    assert record.consecutive_failures >= 15
    assert record.gave_up is None
    assert not ready
    assert problems["primary"].startswith("unhealthy")


async def test_reset_brings_a_given_up_platform_back() -> None:
    """reset() forgets the give-up, so the next round restarts the platform again."""
    # Sick for its first start and its two restarts; the fourth instance is well.
    relapsing = patient(healthy_checks=0, sick_instances=3)
    conductor = make_conductor(
        {"relapsing": relapsing},
        primary=spec("relapsing", required=True, failure_threshold=1, max_restarts=2),
        steady=spec("echo"),
    )
    async with supervised(conductor) as supervisor:
        record = supervisor.record("primary")
        await until(
            supervisor,
            lambda: (
                record.gave_up is not None
                and state_of(conductor, "primary") is PluginState.FAILED
            ),
        )
        await rounds(supervisor, 5)
        assert relapsing.inits == 3
        supervisor.reset("primary")
        await until(supervisor, lambda: supervisor.readiness()[0])
        state = state_of(conductor, "primary")
        reply = await conductor.dispatch("primary", {})
        steady = await conductor.dispatch("steady", {"still": "here"})
    assert record.gave_up is None
    assert record.restarts == 3
    assert state is PluginState.ACTIVE
    assert reply == {"generation": 4}
    assert steady == {"still": "here"}


async def test_reset_without_a_name_forgets_every_give_up() -> None:
    """reset() with no argument clears the give-up of every instance."""
    hopeless = patient(healthy_checks=0, sick_instances=1000)
    conductor = make_conductor(
        {"hopeless": hopeless},
        a=spec("hopeless", failure_threshold=1, max_restarts=0),
        b=spec("hopeless", failure_threshold=1, max_restarts=0),
    )
    supervisor = Supervisor(conductor, interval=60)
    async with conductor:
        await supervisor.round()
    assert supervisor.record("a").gave_up and supervisor.record("b").gave_up
    supervisor.reset()
    assert supervisor.record("a").gave_up is None
    assert supervisor.record("b").gave_up is None


# -- start-up failures ----------------------------------------------------------


async def test_failing_initialize_at_start_up_is_retried_with_backoff(
    delays: list[tuple[int, float]],
) -> None:
    """A platform whose initialize fails at start-up is retried, backing off, until
    it starts."""
    late = patient(failing_inits=3)
    conductor = make_conductor(
        {"late": late}, primary=spec("late", max_restarts=10), steady=spec("echo")
    )
    supervisor = Supervisor(conductor, interval=0.01, rng=lambda: 1.0)
    async with conductor, anyio.create_task_group() as group:
        assert state_of(conductor, "primary") is PluginState.FAILED
        await group.start(supervisor.run)
        await until(
            supervisor, lambda: state_of(conductor, "primary") is PluginState.ACTIVE
        )
        reply = await conductor.dispatch("primary", {})
        group.cancel_scope.cancel()
    assert late.inits == 4
    assert supervisor.record("primary").restarts == 3
    assert delays == [(0, 0.01), (1, 0.02), (2, 0.04)]
    assert reply == {"generation": 1}


async def test_initialize_that_never_succeeds_is_given_up_on() -> None:
    """Start-up retries obey the intensity limit too; the platform stays failed."""
    broken = patient(failing_inits=1000)
    conductor = make_conductor(
        {"broken": broken}, primary=spec("broken", max_restarts=2), steady=spec("echo")
    )
    async with supervised(conductor) as supervisor:
        record = supervisor.record("primary")
        await until(supervisor, lambda: record.gave_up is not None)
        await rounds(supervisor, 5)
        state = state_of(conductor, "primary")
        steady = await conductor.dispatch("steady", {"x": 1})
    assert broken.inits == 3
    assert record.restarts == 2
    assert state is PluginState.FAILED
    assert steady == {"x": 1}


async def test_required_platform_failing_at_start_up_is_not_retried() -> None:
    """A required platform that fails while start-up is in progress fails start()."""
    broken = patient(failing_inits=1000)
    conductor = make_conductor(
        {"broken": broken}, primary=spec("broken", required=True)
    )
    with pytest.raises(PluginLoadError, match="primary"):
        await conductor.start()
    assert broken.inits == 1


# -- readiness and snapshot -----------------------------------------------------


async def test_readiness_ignores_platforms_that_are_not_required() -> None:
    """An unhealthy optional platform leaves readiness true but degrades the status."""
    sick = patient(healthy_checks=0)
    conductor = make_conductor(
        {"sick": sick},
        optional=spec("sick", restart="never"),
        primary=spec("echo", required=True),
    )
    supervisor = Supervisor(conductor, interval=60)
    async with conductor:
        await supervisor.round()
        ready, problems = supervisor.readiness()
        snapshot = supervisor.snapshot()
    assert ready and problems == {}
    assert snapshot["status"] == "degraded"
    assert snapshot["platforms"]["optional"]["health"] == "unhealthy"


async def test_readiness_is_false_once_the_conductor_stops_accepting() -> None:
    """A stopping conductor is not ready, whatever its platforms say."""
    conductor = make_conductor({}, primary=spec("echo", required=True))
    supervisor = Supervisor(conductor, interval=60)
    async with conductor:
        await supervisor.round()
        assert supervisor.readiness() == (True, {})
    ready, problems = supervisor.readiness()
    assert not ready
    assert "demi" in problems


async def test_snapshot_has_the_documented_shape() -> None:
    """snapshot() gives the overall status and, per instance, the documented fields."""
    conductor = make_conductor({}, primary=spec("echo", required=True))
    supervisor = Supervisor(conductor, interval=60)
    async with conductor:
        await supervisor.round()
        snapshot = supervisor.snapshot()
    assert snapshot["status"] == "healthy"
    assert snapshot["ready"] is True
    entry = snapshot["platforms"]["primary"]
    assert {"driver", "state", "health", "consecutive_failures", "restarts"} <= set(
        entry
    )
    assert entry["driver"] == "echo"
    assert entry["state"] == "active"
    assert entry["health"] == "healthy"
    assert entry["consecutive_failures"] == 0
    assert entry["restarts"] == 0
    assert entry["seconds_in_state"]["active"] >= 0


# -- promises: stuck checks, liveness, give-up under defaults, who restarted ----


def real_conductor(
    *,
    interval: float = 0.05,
    health_timeout: float = 1.0,
    **platforms: PlatformSettings,
) -> Conductor:
    """A conductor over the installed entry points (tests/fixture_dist)."""
    settings = DemiSettings(
        health_interval=interval,
        health_timeout=health_timeout,
        stop_timeout=10,
        platforms=platforms,
    )
    return Conductor(settings)


def health_of(conductor: Conductor, instance: str) -> PluginHealth | None:
    """The manager's latest health result of one instance (its one owner)."""
    return next(s.health for s in conductor.instances() if s.instance == instance)


def sample(text: str, name: str, **labels: str) -> float:
    """The value of one sample of a Prometheus exposition."""
    for family in text_string_to_metric_families(text):
        for item in family.samples:
            if item.name == name and item.labels == labels:
                return float(item.value)
    raise AssertionError(f"no sample {name}{labels}")


async def test_a_check_deaf_to_cancellation_does_not_hold_up_rounds() -> None:
    """A health check deaf to cancellation (until its platform shuts down) is given
    up on once its timeout and grace have passed: its instance is recorded unhealthy
    with the reason, no second check of it starts while the first still runs, and
    the rounds go on for the platforms beside it: a good one, and one that swallows
    the cancellation once (the manager's timeout bounds that one, round after round)."""
    stuck_class = IgnoresCancelPlatform  # what the entry point names
    stuck_class.begun = 0
    conductor = real_conductor(
        interval=0.05,
        health_timeout=0.1,
        deaf=PlatformSettings(
            driver="health_ignores_cancel",
            restart="never",
            required=True,
        ),
        fine=PlatformSettings(driver="good"),
        once=PlatformSettings(driver="health_swallows_cancel", restart="never"),
    )
    seen: list[dict[str, PluginHealth]] = []
    supervisor = Supervisor(conductor, interval=0.05, grace=0.1)
    supervisor.add_round_observer(seen.append)
    # The conductor stops first: the deaf check ends only when its platform shuts down.
    async with anyio.create_task_group() as group:
        async with conductor:
            await group.start(supervisor.run)
            with anyio.fail_after(10):
                await supervisor.wait_round()
                first = len(seen)
                await rounds(supervisor, 5)
            still_running = stuck_class.running
            begun = stuck_class.begun
            verdict = health_of(conductor, "deaf")
            ready, problems = supervisor.readiness()
        group.cancel_scope.cancel()
    assert stuck_class.running == 0
    later = seen[first - 1 :]
    assert len(later) >= 6
    assert all(r["fine"].status is HealthStatus.HEALTHY for r in later)
    assert all(
        "did not finish within" in (r["once"].error_message or "") for r in later
    )
    assert all(r["deaf"].status is HealthStatus.UNHEALTHY for r in later)
    assert "ignores cancellation" in (later[-1]["deaf"].error_message or "")
    assert still_running == 1 and begun == 1
    assert verdict is not None and verdict.status is HealthStatus.UNHEALTHY
    assert "within 0.1s of its 0.1s timeout" in (verdict.error_message or "")
    assert not ready and "ignores cancellation" in problems["deaf"]


async def test_liveness_reports_when_health_rounds_stop() -> None:
    """liveness() is None while rounds complete and names the silence once none has
    completed for 3 x interval + health_timeout + grace."""
    conductor = real_conductor(
        interval=0.02, health_timeout=0.05, steady=PlatformSettings(driver="good")
    )
    supervisor = Supervisor(conductor, interval=0.02, grace=0.05)
    async with conductor:
        async with anyio.create_task_group() as group:
            await group.start(supervisor.run)
            await rounds(supervisor, 3)
            alive = supervisor.liveness()
            group.cancel_scope.cancel()
        await anyio.sleep(0.5)  # the limit is 0.06 + 0.05 + 0.05 s
        stopped = supervisor.liveness()
    assert alive is None
    assert stopped is not None and "no health round completed" in stopped


def test_backoff_never_overflows_and_stays_capped() -> None:
    """A platform failing for months reaches huge attempt numbers: the delay is still
    a number, capped at backoff_max."""
    policy = PlatformSettings(driver="x", backoff_initial=1, backoff_max=60)
    for attempt in (1023, 1024, 10_000, 10**9):
        assert backoff_delay(attempt, policy, lambda: 1.0) == 60
        assert backoff_delay(attempt, policy, lambda: 0.0) == 30


@pytest.mark.parametrize(
    ("driver", "config", "reason"),
    [
        ("init_raises", {}, "failed"),
        (
            "turns_unhealthy",
            {"healthy_checks": 0, "sick_instances": 10**9},
            "unhealthy",
        ),
    ],
)
async def test_default_policy_gives_up_on_a_platform_that_never_comes_back(
    driver: str,
    config: dict[str, Any],
    reason: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The default policy scaled down a thousandfold (interval 30 s, threshold 3,
    max_restarts 5, window 60 s, backoff 1-60 s): a platform that fails or stays
    unhealthy is given up on after exactly 5 restarts, in bounded time, with a
    CRITICAL line, gave_up in the snapshot and the restarts in the metric."""
    scale = 1 / 1000
    conductor = real_conductor(
        interval=30 * scale,
        health_timeout=1.0,
        doomed=PlatformSettings(
            driver=driver,
            config=config,
            failure_threshold=3,
            max_restarts=5,
            restart_window=60 * scale,
            backoff_initial=1 * scale,
            backoff_max=60 * scale,
        ),
        steady=PlatformSettings(driver="good"),
    )
    supervisor = Supervisor(conductor, interval=30 * scale)
    metrics = Metrics(conductor, supervisor)
    async with supervised_real(supervisor) as record:
        with anyio.fail_after(20):
            while state_of(conductor, "doomed") is not PluginState.FAILED or (
                record.gave_up is None
            ):
                await supervisor.wait_round()
        await rounds(supervisor, 3)
        snapshot = supervisor.snapshot()
        text = metrics.render().decode()
    assert record.restarts == 5
    assert record.gave_up is not None and "5 restart(s)" in record.gave_up
    loud = [r.getMessage() for r in caplog.records if r.levelname == "CRITICAL"]
    assert len(loud) == 1 and "doomed" in loud[0] and "gave up" in loud[0]
    assert snapshot["platforms"]["doomed"]["gave_up"] == record.gave_up
    assert snapshot["platforms"]["doomed"]["last_restart_reason"] == reason
    labels = {"platform": "doomed", "reason": reason}
    assert sample(text, "demi_platform_restarts_total", **labels) == 5
    assert sample(text, "demi_platform_up", platform="doomed") == 0


@asynccontextmanager
async def supervised_real(supervisor: Supervisor) -> AsyncIterator[Any]:
    """Start the supervisor's conductor and run it; yield the record of "doomed"."""
    async with supervisor.conductor, anyio.create_task_group() as group:
        await group.start(supervisor.run)
        yield supervisor.record("doomed")
        group.cancel_scope.cancel()


async def test_stable_health_resets_the_restart_count() -> None:
    """A platform healthy for longer than restart_window between relapses starts
    counting afresh, so it keeps being restarted past max_restarts."""
    relapsing = patient(healthy_checks=5, sick_instances=1000)
    conductor = make_conductor(
        {"relapsing": relapsing},
        primary=spec(
            "relapsing", failure_threshold=1, max_restarts=1, restart_window=0.02
        ),
    )
    async with supervised(conductor) as supervisor:
        record = supervisor.record("primary")
        await until(supervisor, lambda: record.restarts >= 3 or bool(record.gave_up))
    assert record.gave_up is None
    assert record.restarts >= 3


async def test_a_brief_recovery_does_not_reset_the_restart_count() -> None:
    """One healthy check after each restart is not stable health: the count keeps
    growing and the platform is given up on after max_restarts restarts."""
    flapping = patient(healthy_checks=1, sick_instances=1000)
    conductor = make_conductor(
        {"flapping": flapping},
        primary=spec(
            "flapping", failure_threshold=1, max_restarts=3, restart_window=10
        ),
    )
    async with supervised(conductor) as supervisor:
        record = supervisor.record("primary")
        await until(supervisor, lambda: record.gave_up is not None)
    assert record.restarts == 3
    assert flapping.inits == 4


async def test_an_operator_restart_counts_with_its_reason() -> None:
    """Supervisor.restart(reason=...) counts in restarts, tells the observers why,
    shows as the last reason and lands in the metric under its reason, every known
    reason's series seeded at zero."""
    flaky = patient()
    conductor = make_conductor(
        {"flaky": flaky}, primary=spec("flaky"), steady=spec("echo")
    )
    supervisor = Supervisor(conductor, interval=60)
    metrics = Metrics(conductor, supervisor)
    told: list[tuple[str, str]] = []
    supervisor.add_restart_observer(lambda name, why: told.append((name, why)))
    async with conductor:
        before = metrics.render().decode()
        active = await supervisor.restart("primary", reason="operator")
        after = metrics.render().decode()
        entry = supervisor.snapshot()["platforms"]["primary"]
    assert active
    assert told == [("primary", "operator")]
    assert flaky.inits == 2
    assert (entry["restarts"], entry["last_restart_reason"]) == (1, "operator")
    for platform in ("primary", "steady"):
        # The documented label set (docs/operations.md), in process or not.
        for why in (
            "unhealthy",
            "failed",
            "crash",
            "hang",
            "memory",
            "operator",
            "upgrade",
        ):
            labels = {"platform": platform, "reason": why}
            assert sample(before, "demi_platform_restarts_total", **labels) == 0
    labels = {"platform": "primary", "reason": "operator"}
    assert sample(after, "demi_platform_restarts_total", **labels) == 1
    labels = {"platform": "primary", "reason": "unhealthy"}
    assert sample(after, "demi_platform_restarts_total", **labels) == 0


async def test_an_operator_restart_forgets_a_give_up() -> None:
    """Restarting a given-up platform by hand is a fresh start: the give-up is gone
    and readiness follows the platform again."""
    relapsing = patient(healthy_checks=0, sick_instances=1)
    conductor = make_conductor(
        {"relapsing": relapsing},
        primary=spec("relapsing", required=True, failure_threshold=1, max_restarts=0),
    )
    supervisor = Supervisor(conductor, interval=60)
    async with conductor:
        await supervisor.round()
        assert supervisor.record("primary").gave_up is not None
        active = await supervisor.restart("primary", reason="operator")
        await supervisor.round()
        ready = supervisor.readiness()
    assert active
    assert supervisor.record("primary").gave_up is None
    assert ready == (True, {})


async def test_a_restart_asked_for_while_stopping_starts_nothing() -> None:
    """Once the conductor no longer accepts requests, Supervisor.restart starts
    nothing and answers False."""
    counted = patient()
    conductor = make_conductor({"counted": counted}, primary=spec("counted"))
    supervisor = Supervisor(conductor, interval=60)
    told: list[tuple[str, str]] = []
    supervisor.add_restart_observer(lambda name, why: told.append((name, why)))
    async with conductor:
        pass
    assert not conductor.accepting
    assert await supervisor.restart("primary", reason="operator") is False
    assert counted.inits == 1
    assert supervisor.record("primary").restarts == 0
    assert told == []


async def test_the_supervisor_restarts_nothing_once_the_conductor_stops() -> None:
    """A restart decided before a stop, still in its backoff when the stop comes,
    starts nothing; nor does the policy restart the platforms the stop stopped."""
    sick = patient(healthy_checks=0)
    conductor = make_conductor(
        {"sick": sick},
        primary=spec("sick", failure_threshold=1, backoff_initial=0.2, backoff_max=0.2),
    )
    supervisor = Supervisor(conductor, interval=0.01, rng=lambda: 1.0)
    record = supervisor.record("primary")
    async with anyio.create_task_group() as group:
        await conductor.start()
        await group.start(supervisor.run)
        await until(supervisor, lambda: record.restarting)
        await conductor.stop()
        await until(supervisor, lambda: not record.restarting)
        await rounds(supervisor, 5)
        group.cancel_scope.cancel()
    assert sick.inits == 1
    assert record.restarts == 0
    assert state_of(conductor, "primary") is not PluginState.ACTIVE


async def test_after_a_restart_snapshot_readiness_and_metrics_agree() -> None:
    """The latest health has one owner: right after a restart, /health's snapshot,
    readiness and the metrics all describe the fresh platform, not the old one's
    unhealthy result that the supervisor's history still holds."""
    sick = patient(healthy_checks=0)
    conductor = make_conductor(
        {"sick": sick}, primary=spec("sick", required=True, restart="never")
    )
    supervisor = Supervisor(conductor, interval=60)
    metrics = Metrics(conductor, supervisor)
    async with conductor:
        await supervisor.round()
        assert supervisor.snapshot()["platforms"]["primary"]["health"] == "unhealthy"
        await supervisor.restart("primary", reason="operator")
        health = supervisor.snapshot()["platforms"]["primary"]["health"]
        ready, _ = supervisor.readiness()
        text = metrics.render().decode()
    assert supervisor.record("primary").history[-1].status is HealthStatus.UNHEALTHY
    shown = {
        status.value
        for status in HealthStatus
        if sample(
            text,
            "demi_platform_health_status",
            platform="primary",
            status=status.value,
        )
        == 1
    }
    assert shown == {health} == {"unknown"}
    assert ready


async def test_a_round_logs_at_info_only_when_something_changed(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Quiet rounds log at DEBUG; a round where a status changed or the supervisor
    gave up logs at INFO."""
    sick = patient()
    conductor = make_conductor(
        {"sick": sick}, primary=spec("sick", failure_threshold=2, max_restarts=0)
    )
    supervisor = Supervisor(conductor, interval=60)
    levels: list[str] = []
    with caplog.at_level(logging.DEBUG, logger="demi"):
        async with conductor:
            for make_sick in (False, False, True, True, True):
                sick.instances[0].sick = make_sick
                caplog.clear()
                await supervisor.round()
                levels += [
                    r.levelname
                    for r in caplog.records
                    if r.getMessage().startswith("health round")
                ]
    # first verdict, quiet, turned unhealthy, gave up, quiet
    assert levels == ["INFO", "DEBUG", "INFO", "INFO", "DEBUG"]
