"""The conductor: configured instances, routed dispatch, driver swaps, reload, stop.

In process, on asyncio and trio (the ``anyio_backend`` fixture). Drivers come from the
installed demi-testplugins distribution (real entry points) or, where a test needs to
watch a platform from the inside, from classes defined here.
"""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, ClassVar

import anyio
import anyio.lowlevel
import pytest
from helpers import install_distribution

import demi
from demi import (
    BasePlatform,
    ConfigError,
    DemiError,
    DemiSettings,
    HealthStatus,
    PlatformRequestError,
    PlatformSettings,
    PlatformTimeoutError,
    PlatformUnavailableError,
    PluginHealth,
    PluginLoadError,
    PluginManager,
    PluginNotFoundError,
    PluginState,
)
from demi.conductor import Conductor, InstanceStatus
from demi.plugins.base import Transition
from demi.plugins.discovery import refresh_entry_points

#: Generous bound on anything a test waits for; a healthy run takes milliseconds.
PATIENCE = 20.0


def make_settings(
    platforms: Mapping[str, PlatformSettings | str], **overrides: Any
) -> DemiSettings:
    """Settings with the given instances (a bare string is a driver name) and short,
    test-friendly timeouts unless overridden."""
    values: dict[str, Any] = {
        "init_timeout": 5.0,
        "request_timeout": 5.0,
        "shutdown_timeout": 5.0,
        "stop_timeout": 10.0,
    }
    values.update(overrides)
    specs = {
        name: PlatformSettings(driver=spec) if isinstance(spec, str) else spec
        for name, spec in platforms.items()
    }
    return DemiSettings(platforms=specs, **values)


def with_classes(
    settings: DemiSettings, classes: Mapping[str, type[BasePlatform]]
) -> Conductor:
    """A conductor whose drivers are the given classes, not entry points."""
    return Conductor(
        settings, manager=PluginManager.from_classes(classes, settings=settings)
    )


async def wait_until(predicate: Callable[[], bool], timeout: float = PATIENCE) -> None:
    """Poll ``predicate`` at every turn of the event loop until it holds."""
    with anyio.fail_after(timeout):
        # A predicate over plain state has no event to wait on: polling is the point.
        while not predicate():  # noqa: ASYNC110
            await anyio.sleep(0.001)


def platform_of(conductor: Conductor, instance: str) -> BasePlatform:
    """The live platform object currently behind ``instance``."""
    route = conductor._routes[instance]
    return conductor.manager.get_plugin(route.key)


def status_of(conductor: Conductor, instance: str) -> InstanceStatus:
    """The conductor's snapshot of one instance."""
    (status,) = [s for s in conductor.instances() if s.instance == instance]
    return status


# -- platforms defined here ---------------------------------------------------------


class Labelled(BasePlatform):
    """Answers with its class label, the request and its config; always healthy."""

    label: ClassVar[str] = "labelled"

    async def initialize(self, config: Mapping[str, Any]) -> bool:
        self.config = dict(config)
        return True

    async def health_check(self) -> PluginHealth:
        return PluginHealth(status=HealthStatus.HEALTHY)

    async def handle_request(self, request: Mapping[str, Any]) -> dict[str, Any]:
        return {"driver": self.label, "request": dict(request), "config": self.config}

    async def shutdown(self) -> None:
        pass


class Moody(Labelled):
    """Does what each request asks: answer, raise, hang or answer with a non-dict."""

    label = "moody"

    async def handle_request(self, request: Mapping[str, Any]) -> dict[str, Any]:
        action = request.get("do")
        if action == "raise":
            raise ValueError("asked to fail")
        if action == "hang":
            await anyio.sleep_forever()
        if action == "garbage":
            return "not a dict"  # type: ignore[return-value]
        return {"ok": True}


class ConcurrencyProbe(Labelled):
    """Counts the requests it serves at once and remembers the most it saw."""

    current: ClassVar[int] = 0
    peak: ClassVar[int] = 0

    async def handle_request(self, request: Mapping[str, Any]) -> dict[str, Any]:
        cls = type(self)
        cls.current += 1
        cls.peak = max(cls.peak, cls.current)
        try:
            await anyio.sleep(0.01)  # the "work"
        finally:
            cls.current -= 1
        return {}


class Chained(Labelled):
    """Becomes active only after the instance named in ``config["after"]`` has."""

    ready: ClassVar[dict[str, anyio.Event]] = {}

    async def initialize(self, config: Mapping[str, Any]) -> bool:
        after = config.get("after")
        if after is not None:
            await type(self).ready.setdefault(after, anyio.Event()).wait()
        type(self).ready.setdefault(self.name, anyio.Event()).set()
        return True


class HangsOnShutdown(Labelled):
    """Shuts down never (until cancelled)."""

    async def shutdown(self) -> None:
        await anyio.sleep_forever()


class SlowRequests(Labelled):
    """Answers only once ``release`` is set, counting requests that started."""

    started: ClassVar[int] = 0
    release: ClassVar[anyio.Event]
    shut_down_with_pending: ClassVar[int | None] = None
    pending: ClassVar[int] = 0

    async def handle_request(self, request: Mapping[str, Any]) -> dict[str, Any]:
        cls = type(self)
        cls.started += 1
        cls.pending += 1
        try:
            await cls.release.wait()
        finally:
            cls.pending -= 1
        return {"finished": True}

    async def shutdown(self) -> None:
        type(self).shut_down_with_pending = type(self).pending


class FailsToStart(Labelled):
    """initialize raises."""

    async def initialize(self, config: Mapping[str, Any]) -> bool:
        raise ConnectionError("no route to upstream")


@pytest.fixture
def fresh_classes() -> Iterator[None]:
    """Reset the class-level counters of the platforms above."""
    ConcurrencyProbe.current = ConcurrencyProbe.peak = 0
    Chained.ready = {}
    SlowRequests.started = SlowRequests.pending = 0
    SlowRequests.shut_down_with_pending = None
    SlowRequests.release = anyio.Event()
    yield


# -- public API ---------------------------------------------------------------------


def test_conductor_is_exported_from_demi() -> None:
    """``from demi import Conductor`` gives the conductor class."""
    assert demi.Conductor is Conductor
    assert "Conductor" in demi.__all__


# -- starting -----------------------------------------------------------------------


async def test_start_runs_every_enabled_instance() -> None:
    """Entering the conductor makes every enabled instance active and dispatchable."""
    settings = make_settings({"a": "good", "b": "good2", "c": "counter"})
    async with Conductor(settings) as conductor:
        assert {s.instance: s.state for s in conductor.instances()} == {
            "a": PluginState.ACTIVE,
            "b": PluginState.ACTIVE,
            "c": PluginState.ACTIVE,
        }
        assert await conductor.dispatch("a", {"x": 1}) == {"x": 1}
        assert (await conductor.dispatch("b", {"x": 1}))["from"] == "b"
        assert await conductor.dispatch("c", {}) == {"count": 1}


async def test_conductor_without_settings_reads_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``Conductor()`` reads its instances from DEMI_PLATFORMS__… variables."""
    monkeypatch.setenv("DEMI_PLATFORMS__CHAT__DRIVER", "good2")
    monkeypatch.setenv("DEMI_PLATFORMS__CHAT__MAX_CONCURRENCY", "7")
    async with Conductor() as conductor:
        assert [s.instance for s in conductor.instances()] == ["chat"]
        spec = conductor.spec_of("chat")
        assert spec is not None and spec.max_concurrency == 7
        assert (await conductor.dispatch("chat", {"n": 1}))["request"] == {"n": 1}


async def test_conductor_defaults_to_the_builtin_echo() -> None:
    """With no configuration at all, the conductor runs the built-in echo."""
    async with Conductor() as conductor:
        assert await conductor.dispatch("echo", {"hello": "world"}) == {
            "hello": "world"
        }


async def test_start_starts_instances_concurrently(fresh_classes: None) -> None:
    """Instances start at the same time: each initialize here waits for a sibling that
    is configured after it, which only works if they run concurrently."""
    settings = make_settings(
        {
            "a": PlatformSettings(driver="chained", config={"after": "b"}),
            "b": PlatformSettings(driver="chained", config={"after": "c"}),
            "c": PlatformSettings(driver="chained"),
        },
        init_timeout=PATIENCE,
    )
    with anyio.fail_after(PATIENCE):
        async with with_classes(settings, {"chained": Chained}) as conductor:
            states = {s.instance: s.state for s in conductor.instances()}
    assert states == dict.fromkeys("abc", PluginState.ACTIVE)


async def test_instances_are_listed_in_configuration_order() -> None:
    """instances() lists instances in configuration order, however the concurrent
    starts were scheduled (trio shuffles them)."""
    names = ["kilo", "alpha", "zulu", "echo", "mike", "bravo", "yankee", "delta"]
    settings = make_settings(dict.fromkeys(names, "good"))
    for _ in range(5):
        async with Conductor(settings) as conductor:
            assert [s.instance for s in conductor.instances()] == names


async def test_disabled_instance_is_not_started() -> None:
    """An instance with enabled = false is never loaded and cannot be dispatched to."""
    settings = make_settings(
        {"on": "good", "off": PlatformSettings(driver="counter", enabled=False)}
    )
    async with Conductor(settings) as conductor:
        assert [s.instance for s in conductor.instances()] == ["on"]
        assert conductor.manager.metadata("off") is None
        with pytest.raises(PluginNotFoundError):
            await conductor.dispatch("off", {})


async def test_failing_instance_is_reported_and_the_others_serve() -> None:
    """A non-required instance that fails to start is left failed with the reason,
    and every other instance still serves."""
    settings = make_settings({"a": "good", "broken": "init_raises", "c": "good2"})
    async with Conductor(settings) as conductor:
        broken = status_of(conductor, "broken")
        assert broken.state is PluginState.FAILED
        assert broken.error is not None and "upstream refused" in broken.error
        assert await conductor.dispatch("a", {"n": 1}) == {"n": 1}
        assert (await conductor.dispatch("c", {"n": 2}))["request"] == {"n": 2}
        with pytest.raises(PlatformUnavailableError) as raised:
            await conductor.dispatch("broken", {})
        assert raised.value.plugin_name == "broken"


async def test_hanging_instance_fails_within_the_init_timeout() -> None:
    """An instance whose initialize hangs is failed after init_timeout; the others
    serve."""
    settings = make_settings({"a": "good", "stuck": "init_hangs"}, init_timeout=0.2)
    with anyio.fail_after(PATIENCE):
        async with Conductor(settings) as conductor:
            assert status_of(conductor, "stuck").state is PluginState.FAILED
            assert await conductor.dispatch("a", {}) == {}


async def test_required_instance_failing_makes_start_raise_and_leaves_nothing_active() -> (
    None
):
    """When a required instance fails, start raises PluginLoadError naming it and every
    instance that did start is shut down again."""
    settings = make_settings(
        {
            "a": "good",
            "must": PlatformSettings(driver="init_raises", required=True),
            "c": "counter",
        }
    )
    conductor = Conductor(settings)
    with pytest.raises(PluginLoadError) as raised:
        await conductor.start()
    assert raised.value.plugin_name == "must"
    assert "must" in str(raised.value) and "upstream refused" in str(raised.value)
    assert conductor.manager.active_names() == []
    assert conductor.manager.state_of("a") is PluginState.STOPPED
    assert conductor.manager.state_of("c") is PluginState.STOPPED
    with pytest.raises(PlatformUnavailableError):
        await conductor.dispatch("a", {})


async def test_required_instance_failing_fails_the_async_with() -> None:
    """``async with Conductor(...)`` raises when a required instance does not start."""
    settings = make_settings(
        {"a": "good", "must": PlatformSettings(driver="init_false", required=True)}
    )
    conductor = Conductor(settings)
    with pytest.raises(PluginLoadError):
        async with conductor:
            pytest.fail("the block must not run")
    assert conductor.manager.active_names() == []


async def test_unknown_driver_is_a_config_error_before_anything_starts() -> None:
    """An enabled instance naming a driver that is not installed raises ConfigError
    naming the key, and no other instance is started."""
    settings = make_settings({"a": "good", "chat": "no_such_driver"})
    conductor = Conductor(settings)
    with pytest.raises(ConfigError) as raised:
        await conductor.start()
    assert "platforms.chat.driver" in str(raised.value)
    assert "no_such_driver" in str(raised.value)
    assert conductor.manager.metadata("a") is None
    assert conductor.manager.active_names() == []


async def test_two_instances_of_one_driver_run_side_by_side() -> None:
    """Two instances of the same driver keep their own configuration."""
    settings = make_settings(
        {
            "work": PlatformSettings(
                driver="configured",
                config={"endpoint": "https://work.example", "token": "w" * 8},
            ),
            "home": PlatformSettings(
                driver="configured",
                config={"endpoint": "https://home.example", "token": "h" * 5},
                max_concurrency=3,
            ),
        }
    )
    async with Conductor(settings) as conductor:
        work = await conductor.dispatch("work", {})
        home = await conductor.dispatch("home", {})
        assert work == {
            "endpoint": "https://work.example",
            "retries": 3,
            "token_length": 8,
        }
        assert home == {
            "endpoint": "https://home.example",
            "retries": 3,
            "token_length": 5,
        }
        assert platform_of(conductor, "work") is not platform_of(conductor, "home")
        assert {s.driver for s in conductor.instances()} == {"configured"}


# -- dispatch -----------------------------------------------------------------------


async def test_dispatch_returns_the_platforms_response() -> None:
    """dispatch returns exactly what the platform answered."""
    async with Conductor(make_settings({"chat": "good"})) as conductor:
        assert await conductor.dispatch("chat", {"text": "hi", "n": [1, 2]}) == {
            "text": "hi",
            "n": [1, 2],
        }


async def test_dispatch_timeout_names_the_instance_and_the_platform_stays_usable() -> (
    None
):
    """A request that outlives request_timeout raises PlatformTimeoutError naming the
    instance; the next request to the same platform is served."""
    settings = make_settings({"chat": "moody"}, request_timeout=0.2)
    async with with_classes(settings, {"moody": Moody}) as conductor:
        with anyio.fail_after(PATIENCE):
            with pytest.raises(PlatformTimeoutError) as raised:
                await conductor.dispatch("chat", {"do": "hang"})
        assert raised.value.plugin_name == "chat"
        assert "'chat'" in str(raised.value) and "0.2s" in str(raised.value)
        assert isinstance(raised.value, TimeoutError)
        assert await conductor.dispatch("chat", {}) == {"ok": True}
        assert status_of(conductor, "chat").state is PluginState.ACTIVE


async def test_dispatch_raising_platform_gives_request_error_and_stays_usable() -> None:
    """A platform that raises gives PlatformRequestError with the reason; the platform
    then serves the next request."""
    async with with_classes(make_settings({"chat": "moody"}), {"moody": Moody}) as c:
        with pytest.raises(PlatformRequestError) as raised:
            await c.dispatch("chat", {"do": "raise"})
        assert raised.value.plugin_name == "chat"
        assert "ValueError: asked to fail" in str(raised.value)
        assert await c.dispatch("chat", {}) == {"ok": True}


async def test_dispatch_non_dict_response_gives_request_error_and_stays_usable() -> (
    None
):
    """A platform answering with something other than a dict gives
    PlatformRequestError; the platform then serves the next request."""
    async with with_classes(make_settings({"chat": "moody"}), {"moody": Moody}) as c:
        with pytest.raises(PlatformRequestError) as raised:
            await c.dispatch("chat", {"do": "garbage"})
        assert "str, not a dict" in str(raised.value)
        assert await c.dispatch("chat", {}) == {"ok": True}


@pytest.mark.parametrize(
    ("driver", "error", "reason"),
    [
        ("request_raises", PlatformRequestError, "cannot handle that request"),
        ("request_garbage", PlatformRequestError, "list, not a dict"),
        ("request_hangs", PlatformTimeoutError, "did not answer within"),
    ],
)
async def test_dispatch_errors_from_installed_faulty_plugins(
    driver: str, error: type[PlatformRequestError], reason: str
) -> None:
    """The installed faulty plugins give the matching DemiError naming the instance,
    and stay active and usable afterwards."""
    settings = make_settings({"faulty": driver, "fine": "good"}, request_timeout=0.2)
    async with Conductor(settings) as conductor:
        for _ in range(2):  # usable again: the second request fails the same way
            with anyio.fail_after(PATIENCE), pytest.raises(error) as raised:
                await conductor.dispatch("faulty", {})
            assert type(raised.value) is error
            assert raised.value.plugin_name == "faulty"
            assert reason in str(raised.value)
        assert status_of(conductor, "faulty").state is PluginState.ACTIVE
        assert await conductor.dispatch("fine", {"still": "ok"}) == {"still": "ok"}


async def test_dispatch_to_unknown_instance_raises_not_found() -> None:
    """Dispatching to an instance that is not configured raises PluginNotFoundError
    that names it and lists the running ones."""
    async with Conductor(make_settings({"chat": "good"})) as conductor:
        with pytest.raises(PluginNotFoundError) as raised:
            await conductor.dispatch("nope", {})
        assert raised.value.plugin_name == "nope"
        assert "'nope'" in str(raised.value) and "chat" in str(raised.value)


async def test_dispatch_of_a_non_mapping_request_is_a_request_error() -> None:
    """A request that is not a mapping is refused with PlatformRequestError."""
    async with Conductor(make_settings({"chat": "good"})) as conductor:
        with pytest.raises(PlatformRequestError):
            await conductor.dispatch("chat", ["not", "a", "mapping"])  # type: ignore[arg-type]
        assert await conductor.dispatch("chat", {}) == {}


async def test_dispatch_enforces_max_concurrency(fresh_classes: None) -> None:
    """With max_concurrency = 2, many concurrent dispatches reach the platform at most
    two at a time (and do reach it two at a time)."""
    settings = make_settings(
        {"chat": PlatformSettings(driver="probe", max_concurrency=2)}
    )
    async with with_classes(settings, {"probe": ConcurrencyProbe}) as conductor:
        with anyio.fail_after(PATIENCE):
            async with anyio.create_task_group() as group:
                for _ in range(12):
                    group.start_soon(conductor.dispatch, "chat", {})
    assert ConcurrencyProbe.peak == 2


async def test_without_a_low_limit_dispatches_run_together(fresh_classes: None) -> None:
    """Control for the limit test: with the default max_concurrency, the same load
    reaches the platform all at once."""
    settings = make_settings({"chat": "probe"})
    async with with_classes(settings, {"probe": ConcurrencyProbe}) as conductor:
        with anyio.fail_after(PATIENCE):
            async with anyio.create_task_group() as group:
                for _ in range(12):
                    group.start_soon(conductor.dispatch, "chat", {})
    assert ConcurrencyProbe.peak == 12


async def test_request_observer_is_told_of_success_and_failure() -> None:
    """A request observer hears of each dispatch with its instance and its error."""
    seen: list[tuple[str, type[BaseException] | None]] = []
    async with with_classes(make_settings({"chat": "moody"}), {"moody": Moody}) as c:
        c.add_request_observer(
            lambda name, _secs, err: seen.append((name, type(err) if err else None))
        )
        await c.dispatch("chat", {})
        with pytest.raises(PlatformRequestError):
            await c.dispatch("chat", {"do": "raise"})
    assert seen == [("chat", None), ("chat", PlatformRequestError)]


# -- switch_driver ------------------------------------------------------------------


def make_swap_drivers() -> tuple[type[BasePlatform], type[BasePlatform], list[str]]:
    """Two fresh driver classes for a swap, and a shared list of contract breaches.

    Both answer slowly with their label and the request's sequence number, and record
    any request served before initialize finished or after shutdown began, and any
    shutdown that began with requests still in flight. The new driver's initialize
    returns only while the old one has requests in flight, so the swap always has
    in-flight requests to drain.
    """
    breaches: list[str] = []

    class SwapDriver(BasePlatform):
        label: ClassVar[str]
        live: ClassVar[list[SwapDriver]]

        def __init__(self) -> None:
            self.ready = False
            self.shut = False
            self.in_flight = 0
            self.served = 0
            self.in_flight_at_shutdown: int | None = None
            type(self).live.append(self)

        async def initialize(self, config: Mapping[str, Any]) -> bool:
            self.ready = True
            return True

        async def health_check(self) -> PluginHealth:
            return PluginHealth(status=HealthStatus.HEALTHY)

        async def handle_request(self, request: Mapping[str, Any]) -> dict[str, Any]:
            if not self.ready or self.shut:
                breaches.append(f"{self.label} served while not active")
            self.in_flight += 1
            try:
                await anyio.sleep(0.003)  # the "work", so requests overlap the swap
            finally:
                self.in_flight -= 1
            self.served += 1
            return {"driver": self.label, "seq": request["seq"]}

        async def shutdown(self) -> None:
            self.in_flight_at_shutdown = self.in_flight
            if self.in_flight:
                breaches.append(
                    f"{self.label} shut down with {self.in_flight} in flight"
                )
            self.shut = True

    class OldDriver(SwapDriver):
        label = "old"
        live = []

    class NewDriver(SwapDriver):
        label = "new"
        live = []

        async def initialize(self, config: Mapping[str, Any]) -> bool:
            await wait_until(lambda: any(old.in_flight for old in OldDriver.live))
            return await super().initialize(config)

    return OldDriver, NewDriver, breaches


async def test_swap_under_continuous_load_loses_no_request() -> None:
    """THE swap test: with several tasks dispatching non-stop, switch_driver moves the
    instance from the old driver to the new one with zero failed or lost requests;
    each task sees old answers, then new ones, never mixed; requests already in flight
    on the old driver finish before it is shut down."""
    old_cls, new_cls, breaches = make_swap_drivers()
    settings = make_settings({"chat": "old"})
    conductor = with_classes(settings, {"old": old_cls, "new": new_cls})
    workers = 6
    # Per worker: (seq, phase at dispatch, driver that answered).
    answers: dict[int, list[tuple[int, str, str]]] = {w: [] for w in range(workers)}
    sent = dict.fromkeys(range(workers), 0)
    failures: list[BaseException] = []
    phase = "before"
    stop = anyio.Event()
    old_in_flight_at_flip: list[int] = []

    def on_transition(change: Transition) -> None:
        # The new driver's platform becoming active (the old one was active before
        # this listener subscribed): the moment the route flips.
        if change.target is PluginState.ACTIVE:
            old_in_flight_at_flip.append(old_cls.live[0].in_flight)  # type: ignore[attr-defined]

    async def worker(number: int) -> None:
        while not stop.is_set():
            sent[number] += 1
            seq, dispatched_in = sent[number], phase
            try:
                reply = await conductor.dispatch("chat", {"seq": seq})
            except Exception as err:  # counted, so the test reports every failure
                failures.append(err)
                continue
            answers[number].append((reply["seq"], dispatched_in, reply["driver"]))

    def count(driver: str) -> Callable[[], bool]:
        return lambda: all(
            sum(d == driver for _, _, d in got) >= 5 for got in answers.values()
        )

    with anyio.fail_after(PATIENCE):
        async with conductor:
            conductor.manager.subscribe(on_transition)
            async with anyio.create_task_group() as group:
                for number in range(workers):
                    group.start_soon(worker, number)
                await wait_until(count("old"))
                phase = "during"
                await conductor.switch_driver("chat", "new")
                phase = "after"
                await wait_until(count("new"))
                stop.set()

    assert failures == []
    assert breaches == []
    for number in range(workers):
        got = answers[number]
        # Nothing lost: every request this worker sent was answered, in order.
        assert [seq for seq, _, _ in got] == list(range(1, sent[number] + 1))
        drivers = [driver for _, _, driver in got]
        # Old answers, then new ones: never new before old, never old again.
        assert drivers == sorted(drivers, key=["old", "new"].index)
        assert all(d == "old" for _, when, d in got if when == "before")
        assert all(d == "new" for _, when, d in got if when == "after")
    (old,) = old_cls.live  # type: ignore[attr-defined]
    (new,) = new_cls.live  # type: ignore[attr-defined]
    # The swap happened with requests in flight on the old driver, and they drained.
    assert old_in_flight_at_flip and old_in_flight_at_flip[0] > 0
    assert old.in_flight_at_shutdown == 0
    assert old.shut and new.shut  # the old at the swap, the new when the block ended
    total = sum(len(got) for got in answers.values())
    assert old.served + new.served == total


async def test_swap_between_installed_drivers_under_load() -> None:
    """Swapping an instance from the installed "good" driver to "good2" while tasks
    dispatch continuously fails no request and never goes back to the old driver."""
    conductor = Conductor(make_settings({"chat": "good"}))
    replies: list[list[dict[str, Any]]] = [[] for _ in range(4)]
    failures: list[BaseException] = []
    stop = anyio.Event()
    swapped = False
    after_swap: list[dict[str, Any]] = []

    async def worker(got: list[dict[str, Any]]) -> None:
        seq = 0
        while not stop.is_set():
            seq += 1
            was_swapped = swapped
            try:
                reply = await conductor.dispatch("chat", {"seq": seq})
            except Exception as err:
                failures.append(err)
                continue
            got.append(reply)
            if was_swapped:
                after_swap.append(reply)
            await anyio.lowlevel.checkpoint()

    with anyio.fail_after(PATIENCE):
        async with conductor:
            async with anyio.create_task_group() as group:
                for got in replies:
                    group.start_soon(worker, got)
                await wait_until(lambda: all(len(got) >= 5 for got in replies))
                await conductor.switch_driver("chat", "good2")
                swapped = True
                await wait_until(lambda: len(after_swap) >= 20)
                stop.set()
            assert status_of(conductor, "chat").driver == "good2"

    assert failures == []
    for got in replies:
        kinds = ["new" if "from" in reply else "old" for reply in got]
        assert kinds == sorted(kinds, key=["old", "new"].index)
        seqs = [r["request"]["seq"] if "from" in r else r["seq"] for r in got]
        assert seqs == list(range(1, len(got) + 1))
    assert all("from" in reply for reply in after_swap)  # good2's signature


async def test_switch_driver_with_new_config_only() -> None:
    """switch_driver to the same driver with a new config serves with the new config."""
    settings = make_settings(
        {
            "chat": PlatformSettings(
                driver="configured",
                config={"endpoint": "https://old.example", "token": "abcd"},
            )
        }
    )
    async with Conductor(settings) as conductor:
        before = platform_of(conductor, "chat")
        await conductor.switch_driver(
            "chat", "configured", {"endpoint": "https://new.example", "token": "abcdef"}
        )
        reply = await conductor.dispatch("chat", {})
        assert reply["endpoint"] == "https://new.example"
        assert reply["token_length"] == 6
        assert platform_of(conductor, "chat") is not before
        assert before.status == PluginState.STOPPED.value


async def test_switch_driver_keeps_config_when_none_is_given() -> None:
    """switch_driver without a config gives the new driver the instance's config."""
    settings = make_settings(
        {"chat": PlatformSettings(driver="good", config={"greeting": "hi"})}
    )
    conductor = with_classes(settings, {"good": Labelled, "moody": Moody})
    async with conductor:
        await conductor.switch_driver("chat", "moody")
        assert platform_of(conductor, "chat").config == {"greeting": "hi"}  # type: ignore[attr-defined]
        spec = conductor.spec_of("chat")
        assert spec is not None and spec.driver == "moody"


@pytest.mark.parametrize("driver", ["init_raises", "init_false", "rejects_config"])
async def test_switch_to_a_failing_driver_raises_and_the_old_keeps_serving(
    driver: str,
) -> None:
    """If the new driver fails to start, switch_driver raises a DemiError saying why,
    and the old driver keeps serving as before."""
    async with Conductor(make_settings({"chat": "good"})) as conductor:
        old = platform_of(conductor, "chat")
        with pytest.raises(DemiError) as raised:
            await conductor.switch_driver("chat", driver)
        message = str(raised.value)
        assert "'chat'" in message and repr(driver) in message
        assert "keeps serving" in message
        assert platform_of(conductor, "chat") is old
        assert status_of(conductor, "chat").driver == "good"
        assert await conductor.dispatch("chat", {"still": 1}) == {"still": 1}


async def test_switch_to_a_hanging_driver_is_bounded_and_the_old_keeps_serving() -> (
    None
):
    """A new driver whose initialize hangs fails the switch within init_timeout; the
    old driver served throughout."""
    settings = make_settings({"chat": "good"}, init_timeout=0.3)
    async with Conductor(settings) as conductor:
        with anyio.fail_after(PATIENCE), pytest.raises(DemiError):
            await conductor.switch_driver("chat", "init_hangs")
        assert await conductor.dispatch("chat", {"n": 1}) == {"n": 1}


async def test_switch_to_an_unknown_driver_raises_and_the_old_keeps_serving() -> None:
    """Switching to a driver that is not installed raises DemiError; nothing changes."""
    async with Conductor(make_settings({"chat": "good"})) as conductor:
        with pytest.raises(DemiError) as raised:
            await conductor.switch_driver("chat", "no_such_driver")
        assert "no_such_driver" in str(raised.value)
        assert await conductor.dispatch("chat", {}) == {}


async def test_failing_switch_under_load_fails_no_request() -> None:
    """While tasks dispatch continuously, a switch to a driver that fails to start
    neither fails nor reroutes any request."""
    settings = make_settings({"chat": "good"})
    conductor = with_classes(settings, {"good": Labelled, "broken": FailsToStart})
    replies: list[dict[str, Any]] = []
    failures: list[BaseException] = []
    stop = anyio.Event()

    async def worker() -> None:
        while not stop.is_set():
            try:
                replies.append(await conductor.dispatch("chat", {}))
            except Exception as err:
                failures.append(err)
            await anyio.lowlevel.checkpoint()

    with anyio.fail_after(PATIENCE):
        async with conductor, anyio.create_task_group() as group:
            for _ in range(4):
                group.start_soon(worker)
            await wait_until(lambda: len(replies) >= 10)
            with pytest.raises(PluginLoadError):
                await conductor.switch_driver("chat", "broken")
            served = len(replies)
            await wait_until(lambda: len(replies) >= served + 10)
            stop.set()
    assert failures == []
    assert {reply["driver"] for reply in replies} == {"labelled"}


async def test_switch_driver_of_unknown_instance_raises_not_found() -> None:
    """switch_driver on an instance that is not configured raises PluginNotFoundError."""
    async with Conductor(make_settings({"chat": "good"})) as conductor:
        with pytest.raises(PluginNotFoundError):
            await conductor.switch_driver("nope", "good2")


async def test_switch_waits_for_in_flight_requests_before_shutting_down(
    fresh_classes: None,
) -> None:
    """A request in flight on the old driver during a swap finishes with the old
    driver's answer, and the old driver is shut down only after it has."""
    settings = make_settings({"chat": "slow"})
    conductor = with_classes(settings, {"slow": SlowRequests, "good": Labelled})
    async with conductor:
        results: list[dict[str, Any]] = []

        async def slow_request() -> None:
            results.append(await conductor.dispatch("chat", {}))

        async with anyio.create_task_group() as group:
            group.start_soon(slow_request)
            await wait_until(lambda: SlowRequests.started == 1)
            switched = anyio.Event()

            async def switch() -> None:
                await conductor.switch_driver("chat", "good")
                switched.set()

            group.start_soon(switch)
            # New requests already go to the new driver while the old one drains.
            await wait_until(lambda: status_of(conductor, "chat").driver == "good")
            assert (await conductor.dispatch("chat", {}))["driver"] == "labelled"
            assert not switched.is_set()
            assert SlowRequests.shut_down_with_pending is None
            SlowRequests.release.set()
        assert results == [{"finished": True}]
        assert SlowRequests.shut_down_with_pending == 0


async def test_switch_drain_is_bounded_by_the_shutdown_timeout(
    fresh_classes: None,
) -> None:
    """A request that never finishes on the old driver holds a swap up for no longer
    than shutdown_timeout."""
    settings = make_settings({"chat": "slow"}, shutdown_timeout=0.3)
    conductor = with_classes(settings, {"slow": SlowRequests, "good": Labelled})
    async with conductor, anyio.create_task_group() as group:
        group.start_soon(conductor.dispatch, "chat", {})
        await wait_until(lambda: SlowRequests.started == 1)
        with anyio.fail_after(PATIENCE):
            started = anyio.current_time()
            await conductor.switch_driver("chat", "good")
            elapsed = anyio.current_time() - started
        assert elapsed < 0.3 + 2.0
        assert SlowRequests.shut_down_with_pending == 1
        assert (await conductor.dispatch("chat", {}))["driver"] == "labelled"
        SlowRequests.release.set()


# -- reload -------------------------------------------------------------------------


async def test_reload_applies_added_removed_switched_and_unchanged() -> None:
    """reload with new settings starts added instances, stops removed and disabled
    ones, swaps changed ones and leaves unchanged ones untouched."""
    before = make_settings(
        {
            "keep": "good",
            "drop": "good",
            "off": "counter",
            "swap": "good",
            "recfg": "good",
        }
    )
    after = make_settings(
        {
            "keep": "good",
            "swap": "good2",
            "recfg": PlatformSettings(driver="good", config={"v": 2}),
            "off": PlatformSettings(driver="counter", enabled=False),
            "new": "counter",
        }
    )
    async with Conductor(before) as conductor:
        kept = platform_of(conductor, "keep")
        result = await conductor.reload(after)
        assert result.added == ["new"]
        assert sorted(result.removed) == ["drop", "off"]
        assert sorted(result.switched) == ["recfg", "swap"]
        assert result.unchanged == ["keep"]
        assert result.failed == {}
        assert platform_of(conductor, "keep") is kept
        assert await conductor.dispatch("swap", {"a": 1}) == {
            "from": "swap",
            "request": {"a": 1},
        }
        assert platform_of(conductor, "recfg").config == {"v": 2}  # type: ignore[attr-defined]
        assert await conductor.dispatch("new", {}) == {"count": 1}
        for gone in ("drop", "off"):
            with pytest.raises(PluginNotFoundError):
                await conductor.dispatch(gone, {})
        # Stopped and forgotten: a long-running conductor keeps nothing of them.
        assert conductor.manager.state_of("drop") is None
        assert conductor.settings is after


async def test_reload_updates_settings_of_unchanged_instances_in_place() -> None:
    """A change that is neither driver nor config (max_concurrency) keeps the running
    platform and takes effect."""
    before = make_settings({"chat": "good"})
    after = make_settings({"chat": PlatformSettings(driver="good", max_concurrency=3)})
    async with Conductor(before) as conductor:
        kept = platform_of(conductor, "chat")
        result = await conductor.reload(after)
        assert result.unchanged == ["chat"]
        assert platform_of(conductor, "chat") is kept
        spec = conductor.spec_of("chat")
        assert spec is not None and spec.max_concurrency == 3
        assert conductor._routes["chat"].limiter.total_tokens == 3


async def test_reload_rereads_the_toml_file(tmp_path: Path) -> None:
    """reload() without arguments re-reads the TOML file the conductor was built from
    and applies the difference."""
    config = tmp_path / "demi.toml"
    config.write_text(
        textwrap.dedent(
            """
            request_timeout = 5
            [platforms.keep]
            driver = "good"
            [platforms.drop]
            driver = "good"
            [platforms.swap]
            driver = "good"
            """
        )
    )
    async with Conductor(config_file=config) as conductor:
        assert [s.instance for s in conductor.instances()] == ["keep", "drop", "swap"]
        kept = platform_of(conductor, "keep")
        config.write_text(
            textwrap.dedent(
                """
                request_timeout = 5
                [platforms.keep]
                driver = "good"
                [platforms.swap]
                driver = "good2"
                [platforms.added]
                driver = "counter"
                """
            )
        )
        result = await conductor.reload()
        assert (result.added, result.removed, result.switched, result.unchanged) == (
            ["added"],
            ["drop"],
            ["swap"],
            ["keep"],
        )
        assert platform_of(conductor, "keep") is kept
        assert "from" in await conductor.dispatch("swap", {})  # good2 answers
        assert await conductor.dispatch("added", {}) == {"count": 1}


@pytest.mark.parametrize(
    "bad_toml",
    [
        '[platforms.chat]\ndriver = "good"\n[platforms.extra]\ndriver = "no_such"\n',
        '[platforms.chat]\ndriver = "good2"\nmax_concurrency = "many"\n',
        "[platforms.chat\n",
        'bogus_key = 1\n[platforms.chat]\ndriver = "good2"\n',
    ],
    ids=["unknown-driver", "wrong-type", "unreadable-toml", "unknown-key"],
)
async def test_reload_with_bad_config_changes_nothing(
    tmp_path: Path, bad_toml: str
) -> None:
    """A reload whose new configuration is bad raises ConfigError and changes nothing:
    same settings, same platforms, still serving."""
    config = tmp_path / "demi.toml"
    config.write_text('[platforms.chat]\ndriver = "good"\n')
    async with Conductor(config_file=config) as conductor:
        settings = conductor.settings
        platform = platform_of(conductor, "chat")
        config.write_text(bad_toml)
        with pytest.raises(ConfigError):
            await conductor.reload()
        assert conductor.settings is settings
        assert [s.instance for s in conductor.instances()] == ["chat"]
        assert platform_of(conductor, "chat") is platform
        assert await conductor.dispatch("chat", {"n": 1}) == {"n": 1}


async def test_reload_with_a_failing_new_driver_keeps_the_old_one() -> None:
    """When a changed instance's new driver fails to start, reload reports it as failed
    and the old driver keeps serving; the other changes still apply."""
    async with Conductor(make_settings({"chat": "good"})) as conductor:
        result = await conductor.reload(
            make_settings({"chat": "init_raises", "added": "good2"})
        )
        assert list(result.failed) == ["chat"]
        assert "upstream refused" in result.failed["chat"]
        assert result.added == ["added"]
        assert await conductor.dispatch("chat", {"n": 1}) == {"n": 1}
        assert status_of(conductor, "chat").driver == "good"


async def test_reload_sees_a_plugin_installed_after_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A platform whose distribution appears on sys.path after the conductor started
    (stevedore's entry-point caches already filled) is started by reload."""
    site = tmp_path / "site"
    site.mkdir()
    monkeypatch.syspath_prepend(str(site))
    module = "demi_test_late_platform"
    monkeypatch.delitem(sys.modules, module, raising=False)
    try:
        async with Conductor(make_settings({"chat": "good"})) as conductor:
            assert "late" not in conductor.manager.known_names()
            # Installed now, while running: a module and its dist-info.
            install_distribution(
                site,
                "demi-test-late",
                "1.0",
                module=module,
                source=(
                    "from demi.platforms.echo import EchoPlatform\n"
                    "class LatePlatform(EchoPlatform):\n"
                    "    async def handle_request(self, request):\n"
                    "        return {'late': True}\n"
                ),
                platforms={"late": f"{module}:LatePlatform"},
            )
            result = await conductor.reload(
                make_settings({"chat": "good", "arrived": "late"})
            )
            assert result.added == ["arrived"], result.failed
            assert await conductor.dispatch("arrived", {}) == {"late": True}
    finally:
        sys.modules.pop(module, None)
        monkeypatch.undo()
        refresh_entry_points()


# -- stopping -----------------------------------------------------------------------


async def test_stop_shuts_down_in_reverse_start_order(fresh_classes: None) -> None:
    """stop shuts instances down in the reverse of the order they became active (here
    b, then c, then a: neither configuration order nor its reverse)."""
    settings = make_settings(
        {
            "a": PlatformSettings(driver="chained", config={"after": "c"}),
            "b": PlatformSettings(driver="chained"),
            "c": PlatformSettings(driver="chained", config={"after": "b"}),
        }
    )
    conductor = with_classes(settings, {"chained": Chained})
    activated: list[str] = []
    stopping: list[str] = []

    def record(change: Transition) -> None:
        if change.target is PluginState.ACTIVE:
            activated.append(change.name)
        elif change.target is PluginState.STOPPING:
            stopping.append(change.name)

    conductor.manager.subscribe(record)
    with anyio.fail_after(PATIENCE):
        async with conductor:
            assert activated == ["b", "c", "a"]
    assert stopping == ["a", "c", "b"]


async def test_stop_after_a_swap_stops_the_swapped_instance_in_its_place() -> None:
    """An instance swapped after start keeps its place in the start order."""
    settings = make_settings({"a": "good", "b": "good"})
    conductor = Conductor(settings)
    stopping: list[str] = []
    conductor.manager.subscribe(
        lambda change: (
            stopping.append(change.name)
            if change.target is PluginState.STOPPING
            else None
        )
    )
    async with conductor:
        first = list(conductor._started)
        await conductor.switch_driver(first[0], "good2")
        stopping.clear()
    assert [name.split("@")[0] for name in stopping] == list(reversed(first))


async def test_stop_with_a_hanging_shutdown_is_bounded_by_shutdown_timeout() -> None:
    """A shutdown that hangs is abandoned after shutdown_timeout, recorded as failed
    with the reason, and the other instances are still shut down."""
    settings = make_settings(
        {"a": "good", "stuck": "shutdown_hangs", "c": "good2"}, shutdown_timeout=0.2
    )
    conductor = Conductor(settings)
    failed: list[tuple[str, str | None]] = []
    conductor.manager.subscribe(
        lambda change: (
            failed.append((change.name, change.reason))
            if change.target is PluginState.FAILED
            else None
        )
    )
    await conductor.start()
    with anyio.fail_after(PATIENCE):
        started = anyio.current_time()
        await conductor.stop()
        elapsed = anyio.current_time() - started
    assert elapsed < 0.2 + 2.0
    assert failed == [("stuck", "shutdown did not finish within 0.2s")]
    assert conductor.manager.state_of("a") is PluginState.STOPPED
    assert conductor.manager.state_of("c") is PluginState.STOPPED


async def test_stop_as_a_whole_is_bounded_by_stop_timeout() -> None:
    """Several hanging shutdowns cannot make stop outlast stop_timeout, even when each
    one's own shutdown_timeout is much longer."""
    settings = make_settings(
        {"h1": "hangs", "h2": "hangs", "h3": "hangs"},
        shutdown_timeout=10.0,
        stop_timeout=0.5,
    )
    conductor = with_classes(settings, {"hangs": HangsOnShutdown})
    await conductor.start()
    with anyio.fail_after(PATIENCE):
        started = anyio.current_time()
        await conductor.stop()
        elapsed = anyio.current_time() - started
    assert elapsed < 0.5 + 2.0


async def test_abort_cuts_a_hanging_stop_short() -> None:
    """abort() (a second signal) ends a stop that waits on a hanging shutdown at once,
    even though shutdown_timeout would allow it much longer."""
    settings = make_settings(
        {"stuck": "hangs", "other": "hangs"}, shutdown_timeout=30.0, stop_timeout=60.0
    )
    conductor = with_classes(settings, {"hangs": HangsOnShutdown})
    failed: list[tuple[str, str | None]] = []
    conductor.manager.subscribe(
        lambda change: (
            failed.append((change.name, change.reason))
            if change.target is PluginState.FAILED
            else None
        )
    )
    await conductor.start()
    stopped = anyio.Event()

    async def stop() -> None:
        await conductor.stop()
        stopped.set()

    with anyio.fail_after(PATIENCE):
        async with anyio.create_task_group() as group:
            group.start_soon(stop)
            await wait_until(
                lambda: (
                    PluginState.STOPPING
                    in {conductor.manager.state_of(n) for n in ("stuck", "other")}
                )
            )
            started = anyio.current_time()
            conductor.abort()
            await stopped.wait()
            elapsed = anyio.current_time() - started
    assert elapsed < 5.0
    # Shutdowns overlap, so both were in progress, and both were abandoned.
    assert sorted(failed) == [
        ("other", "shutdown abandoned before it finished"),
        ("stuck", "shutdown abandoned before it finished"),
    ]
    assert not conductor.accepting


async def test_stop_drains_in_flight_requests(fresh_classes: None) -> None:
    """A request in flight when stop begins is answered before its platform is shut
    down; a request arriving during the stop is refused."""
    conductor = with_classes(make_settings({"chat": "slow"}), {"slow": SlowRequests})
    await conductor.start()
    results: list[dict[str, Any]] = []

    async def slow_request() -> None:
        results.append(await conductor.dispatch("chat", {}))

    with anyio.fail_after(PATIENCE):
        async with anyio.create_task_group() as group:
            group.start_soon(slow_request)
            await wait_until(lambda: SlowRequests.started == 1)
            group.start_soon(conductor.stop)
            await wait_until(lambda: not conductor.accepting)
            with pytest.raises(PlatformUnavailableError):
                await conductor.dispatch("chat", {})
            assert SlowRequests.shut_down_with_pending is None
            SlowRequests.release.set()
    assert results == [{"finished": True}]
    assert SlowRequests.shut_down_with_pending == 0


async def test_dispatch_after_stop_is_unavailable() -> None:
    """Once stopped, dispatch raises PlatformUnavailableError naming the instance."""
    conductor = Conductor(make_settings({"chat": "good"}))
    async with conductor:
        accepting_while_running = conductor.accepting
    assert accepting_while_running
    assert not conductor.accepting
    with pytest.raises(PlatformUnavailableError) as raised:
        await conductor.dispatch("chat", {})
    assert raised.value.plugin_name == "chat"
    assert "stopping" in str(raised.value)
    assert conductor.manager.active_names() == []


async def test_stop_is_shielded_from_cancellation() -> None:
    """Cancelling the task that leaves the conductor still shuts every platform down."""
    conductor = Conductor(make_settings({"a": "good", "b": "counter"}))
    with anyio.CancelScope() as scope:
        async with conductor:
            scope.cancel()
            await anyio.sleep_forever()
    assert conductor.manager.state_of("a") is PluginState.STOPPED
    assert conductor.manager.state_of("b") is PluginState.STOPPED


class SlowShutdown(Labelled):
    """Takes half a second to shut down."""

    async def shutdown(self) -> None:
        await anyio.sleep(0.5)


async def test_slow_shutdowns_overlap_so_one_cannot_starve_the_rest() -> None:
    """Twenty shutdowns of 0.5 s each finish in well under the 10 s they would take one
    after another: each slow shutdown leaves the others their share of the budget."""
    names = [f"p{i}" for i in range(20)]
    settings = make_settings(dict.fromkeys(names, "slow"), stop_timeout=30.0)
    conductor = with_classes(settings, {"slow": SlowShutdown})
    await conductor.start()
    started = anyio.current_time()
    with anyio.fail_after(PATIENCE):
        await conductor.stop()
    assert anyio.current_time() - started < 5.0
    assert {conductor.manager.state_of(name) for name in names} == {PluginState.STOPPED}
