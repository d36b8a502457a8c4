"""The hostile-plugin fault matrix: what demi must do when a real installed plugin
misbehaves, whatever it does, through the public API only.

Each hostile kind is an entry point of tests/fixture_dist (demi-testplugins), loaded
beside the good plugin "good" under the instance name "hostile". The contract:

- every other platform carries on: "good" keeps answering and stays healthy;
- a constructor or ``initialize`` that raises anything (SystemExit, KeyboardInterrupt
  and GeneratorExit included) leaves the instance ``failed``, its reason naming the
  exception type;
- ``handle_request`` that raises anything, or answers what JSON cannot encode, is a
  :class:`PlatformRequestError` naming the instance;
- ``health_check`` that raises anything, or returns a tampered health, gives an
  ``unhealthy`` result with a readable, bounded reason;
- ``shutdown`` that raises anything is recorded as the instance's failure;
- a plugin's ``initialize`` cannot change the configuration demi holds;
- a coroutine that blocks the event loop is named in a warning;
- no secret of the configuration appears in a failure reason.

The tests are plain functions that run their body with :func:`anyio.run` on the
backend the ``anyio_backend`` fixture gives, rather than async tests: a
KeyboardInterrupt that escaped demi would escape the event loop and end the whole
pytest session, hiding every other result. :func:`survive` turns an escape into this
test's failure, so each test asserts that it survives as well as what it checks.
"""

from __future__ import annotations

import copy
import gc
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager, suppress
from typing import Any, TypeVar

import anyio
import pytest

from demi import (
    Conductor,
    DemiError,
    DemiSettings,
    HealthStatus,
    PlatformRequestError,
    PlatformSettings,
    PluginManager,
    PluginState,
)

T = TypeVar("T")

GOOD, HOSTILE = "good", "hostile"
#: What a BaseException may never do: escape demi into its caller.
ESCAPES = (SystemExit, KeyboardInterrupt, GeneratorExit)
#: The BaseException kinds, by the slug of their fixture modules (bex_<call>_<slug>).
KINDS = {
    "systemexit": "SystemExit",
    "keyboardinterrupt": "KeyboardInterrupt",
    "generatorexit": "GeneratorExit",
}
#: Bound on a tampered health's reason: a few kilobytes, not the plugin's 5 MB.
REASON_BOUND = 8 * 1024
#: A secret in a hostile plugin's configuration; no output may show it.
SECRET = "tok-9f8e7d6c"
#: The configuration config_mutator is given: nested, so a shallow copy is not enough.
MUTABLE_CONFIG = {
    "level": "original",
    "nested": {"inner": "original"},
    "items": ["original"],
}

# Every hostile kind, for the test that the good platform carries on beside it.
HOSTILE_DRIVERS = sorted(
    [
        *(
            f"bex_{call}_{kind}"
            for call in ("construct", "init", "health", "request", "shutdown")
            for kind in KINDS
        ),
        "unprintable_init",
        "unprintable_request",
        "health_bogus_status",
        "health_int_message",
        "health_object_message",
        "health_huge_message",
        "reply_set",
        "reply_bytes",
        "reply_nan",
        "reply_object",
        "config_mutator",
        "loop_blocks_request",
        "loop_blocks_health",
        "init_leaks_secret",
    ]
)


# -- harness -------------------------------------------------------------------------


def _escaped(err: BaseException) -> BaseException | None:
    """The SystemExit, KeyboardInterrupt or GeneratorExit in ``err``, if any (a task
    group delivers one wrapped in a BaseExceptionGroup)."""
    if isinstance(err, ESCAPES):
        return err
    if isinstance(err, BaseExceptionGroup):
        for inner in err.exceptions:
            found = _escaped(inner)
            if found is not None:
                return found
    return None


def survive(backend: str, body: Callable[[], Awaitable[T]]) -> T:
    """Run ``body`` on ``backend``; fail this test if a BaseException escapes demi."""
    try:
        return anyio.run(body, backend=backend)
    except BaseException as err:
        escaped = _escaped(err)
        if escaped is None:
            raise
        # Failed outside the except block, so the report is this line, not a chain.
        message = f"{type(escaped).__name__} escaped demi into the caller: {escaped!r}"
    # What the escape left half-run (a coroutine never awaited) is reported now, in
    # this test, rather than in whichever test the garbage collector next runs in.
    gc.collect()
    pytest.fail(message, pytrace=False)


def settings_for(driver: str, config: dict[str, Any] | None = None) -> DemiSettings:
    """ "good" and the hostile driver as "hostile", with short, generous timeouts."""
    return DemiSettings(
        platforms={
            GOOD: PlatformSettings(driver=GOOD),
            HOSTILE: PlatformSettings(driver=driver, config=config or {}),
        },
        init_timeout=10,
        health_timeout=5,
        shutdown_timeout=5,
        request_timeout=10,
        stop_timeout=20,
    )


@asynccontextmanager
async def running(
    driver: str, config: dict[str, Any] | None = None
) -> AsyncIterator[Conductor]:
    """A started Conductor with "good" and the hostile driver; stopped on exit."""
    conductor = Conductor(settings_for(driver, config))
    await conductor.start()
    try:
        yield conductor
    finally:
        await conductor.stop()


def state_and_error(conductor: Conductor, instance: str) -> tuple[Any, str | None]:
    """(state, error) of one instance, as Conductor.instances() reports it."""
    (status,) = [s for s in conductor.instances() if s.instance == instance]
    return status.state, status.error


async def good_carries_on(conductor: Conductor) -> None:
    """Assert that "good" still answers, is healthy and active."""
    assert await conductor.dispatch(GOOD, {"still": "here"}) == {"still": "here"}
    assert (await conductor.check_one(GOOD)).status is HealthStatus.HEALTHY
    assert state_and_error(conductor, GOOD) == (PluginState.ACTIVE, None)


@contextmanager
def warnings_of_demi(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """Capture demi's records at WARNING and above."""
    with caplog.at_level(logging.WARNING, logger="demi"):
        yield


@pytest.fixture
def mutator_calls() -> Iterator[list[dict[str, Any]]]:
    """The configs config_mutator's initialize received, in order (reset per test)."""
    from demi_testplugins.config_mutator import MutatesConfig

    MutatesConfig.received = []
    yield MutatesConfig.received
    MutatesConfig.received = []


# -- every other platform carries on -------------------------------------------------


@pytest.mark.parametrize("driver", HOSTILE_DRIVERS)
def test_the_good_platform_carries_on_beside_each_hostile_one(
    anyio_backend: str, driver: str
) -> None:
    """Whatever the hostile plugin does when started, asked, checked and stopped, the
    good one beside it keeps answering, stays healthy and stops cleanly."""

    # Each hostile kind gets a config it can misbehave with (the mutator needs nested
    # values to change; the leaky one a secret to leak).
    config = copy.deepcopy(MUTABLE_CONFIG) if driver == "config_mutator" else {}
    config["api_key"] = SECRET

    async def body() -> PluginState | None:
        async with running(driver, config) as conductor:
            with suppress(DemiError):
                await conductor.dispatch(HOSTILE, {"ping": 1})
            await conductor.check_health()
            await good_carries_on(conductor)
        return conductor.manager.state_of(GOOD)

    assert survive(anyio_backend, body) is PluginState.STOPPED


# -- BaseExceptions from each lifecycle call ------------------------------------------


@pytest.mark.parametrize("kind", sorted(KINDS))
@pytest.mark.parametrize("call", ["construct", "init"])
def test_a_base_exception_while_starting_leaves_the_instance_failed(
    anyio_backend: str, call: str, kind: str
) -> None:
    """SystemExit, KeyboardInterrupt or GeneratorExit from the constructor or
    initialize fails that instance alone, and its reason names the type."""

    async def body() -> tuple[Any, str | None]:
        async with running(f"bex_{call}_{kind}") as conductor:
            await good_carries_on(conductor)
            return state_and_error(conductor, HOSTILE)

    state, error = survive(anyio_backend, body)
    assert state is PluginState.FAILED
    assert error is not None and KINDS[kind] in error


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_a_base_exception_from_handle_request_is_a_request_error(
    anyio_backend: str, kind: str
) -> None:
    """A request whose handler raises SystemExit, KeyboardInterrupt or GeneratorExit
    is a PlatformRequestError naming the instance and the type."""

    async def body() -> PlatformRequestError:
        async with running(f"bex_request_{kind}") as conductor:
            with pytest.raises(PlatformRequestError) as caught:
                await conductor.dispatch(HOSTILE, {"ping": 1})
            await good_carries_on(conductor)
            return caught.value

    error = survive(anyio_backend, body)
    assert error.plugin_name == HOSTILE
    assert HOSTILE in str(error)
    assert KINDS[kind] in str(error)


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_a_base_exception_from_health_check_is_unhealthy(
    anyio_backend: str, kind: str
) -> None:
    """A health check that raises SystemExit, KeyboardInterrupt or GeneratorExit is
    an unhealthy result whose reason names the type."""

    async def body() -> Any:
        async with running(f"bex_health_{kind}") as conductor:
            health = await conductor.check_one(HOSTILE)
            await good_carries_on(conductor)
            return health

    health = survive(anyio_backend, body)
    assert health.status is HealthStatus.UNHEALTHY
    assert isinstance(health.error_message, str)
    assert KINDS[kind] in health.error_message


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_a_base_exception_from_shutdown_is_recorded_as_a_failure(
    anyio_backend: str, kind: str
) -> None:
    """A shutdown that raises SystemExit, KeyboardInterrupt or GeneratorExit leaves
    the instance failed with a reason naming the type; the unload returns."""

    async def body() -> tuple[bool, Any, Any, Any]:
        async with PluginManager(settings=settings_for("good")) as manager:
            await manager.load_plugin(GOOD)
            await manager.load_plugin(f"bex_shutdown_{kind}", instance=HOSTILE)
            unloaded = await manager.unload_plugin(HOSTILE)
            meta = manager.metadata(HOSTILE)
            answer = await manager.handle_request(GOOD, {"still": "here"})
            return unloaded, meta, answer, manager.state_of(GOOD)

    unloaded, meta, answer, good_state = survive(anyio_backend, body)
    assert unloaded is True
    assert meta is not None and meta.state is PluginState.FAILED
    assert meta.error is not None and KINDS[kind] in meta.error
    assert (answer, good_state) == ({"still": "here"}, PluginState.ACTIVE)


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_stopping_beside_a_base_exception_in_shutdown_stops_the_rest(
    anyio_backend: str, kind: str
) -> None:
    """Conductor.stop returns when one shutdown raises a BaseException, and every
    other instance is stopped."""

    async def body() -> PluginState | None:
        async with running(f"bex_shutdown_{kind}") as conductor:
            await good_carries_on(conductor)
        return conductor.manager.state_of(GOOD)

    assert survive(anyio_backend, body) is PluginState.STOPPED


# -- exceptions that cannot be printed ------------------------------------------------


def test_an_unprintable_exception_from_initialize_fails_the_instance(
    anyio_backend: str,
) -> None:
    """An exception whose str() and repr() raise still fails just its instance, with
    a reason that names its type."""

    async def body() -> tuple[Any, str | None]:
        async with running("unprintable_init") as conductor:
            await good_carries_on(conductor)
            return state_and_error(conductor, HOSTILE)

    state, error = survive(anyio_backend, body)
    assert state is PluginState.FAILED
    assert error is not None and "UnprintableError" in error


def test_an_unprintable_exception_from_handle_request_is_a_request_error(
    anyio_backend: str,
) -> None:
    """An unprintable exception from a request is a PlatformRequestError naming the
    instance and the exception's type."""

    async def body() -> str:
        async with running("unprintable_request") as conductor:
            with pytest.raises(PlatformRequestError) as caught:
                await conductor.dispatch(HOSTILE, {})
            await good_carries_on(conductor)
            return str(caught.value)

    message = survive(anyio_backend, body)
    assert HOSTILE in message
    assert "UnprintableError" in message


# -- health results that were tampered with -------------------------------------------


def check_hostile(backend: str, driver: str) -> Any:
    """One health check of the hostile instance, "good" checked to carry on."""

    async def body() -> Any:
        async with running(driver) as conductor:
            health = await conductor.check_one(HOSTILE)
            await good_carries_on(conductor)
            return health

    return survive(backend, body)


def test_a_health_with_a_bogus_status_is_unhealthy(anyio_backend: str) -> None:
    """A health whose status was forced to "bogus" is an unhealthy result with a
    readable reason, never the bogus status."""
    health = check_hostile(anyio_backend, "health_bogus_status")
    assert health.status is HealthStatus.UNHEALTHY
    assert isinstance(health.error_message, str) and health.error_message


@pytest.mark.parametrize(
    ("driver", "shown"),
    [("health_int_message", "42"), ("health_object_message", "<opaque>")],
)
def test_a_health_message_that_is_not_a_string_becomes_one(
    anyio_backend: str, driver: str, shown: str
) -> None:
    """A non-string error_message (an int, an object) reaches the caller as a
    readable string."""
    health = check_hostile(anyio_backend, driver)
    assert health.status is HealthStatus.UNHEALTHY
    assert isinstance(health.error_message, str)
    assert shown in health.error_message


def test_a_huge_health_message_is_bounded(anyio_backend: str) -> None:
    """A 5 MB error_message is cut to a few kilobytes, keeping its beginning."""
    health = check_hostile(anyio_backend, "health_huge_message")
    assert health.status is HealthStatus.UNHEALTHY
    assert isinstance(health.error_message, str)
    assert 0 < len(health.error_message) <= REASON_BOUND
    assert health.error_message.startswith("xxxx")


# -- replies JSON cannot encode -------------------------------------------------------


@pytest.mark.parametrize(
    "driver", ["reply_set", "reply_bytes", "reply_nan", "reply_object"]
)
def test_a_reply_json_cannot_encode_is_a_request_error(
    anyio_backend: str, driver: str
) -> None:
    """A reply holding a set, bytes, NaN or an arbitrary object is a
    PlatformRequestError naming the instance, not a crash further on."""

    async def body() -> PlatformRequestError:
        async with running(driver) as conductor:
            with pytest.raises(PlatformRequestError) as caught:
                await conductor.dispatch(HOSTILE, {})
            await good_carries_on(conductor)
            return caught.value

    error = survive(anyio_backend, body)
    assert error.plugin_name == HOSTILE
    assert HOSTILE in str(error)


# -- a plugin cannot change demi's configuration --------------------------------------


def test_a_mutating_initialize_leaves_the_settings_unchanged(
    anyio_backend: str, mutator_calls: list[dict[str, Any]]
) -> None:
    """After an initialize that adds and changes keys of its config, nested ones
    too, the conductor's settings hold the configuration as written."""

    async def body() -> dict[str, Any]:
        async with running("config_mutator", copy.deepcopy(MUTABLE_CONFIG)) as c:
            assert state_and_error(c, HOSTILE) == (PluginState.ACTIVE, None)
            return copy.deepcopy(c.settings.platforms[HOSTILE].config)

    assert survive(anyio_backend, body) == MUTABLE_CONFIG
    assert mutator_calls == [MUTABLE_CONFIG]


def test_a_restart_after_a_mutating_initialize_gets_the_written_config(
    anyio_backend: str, mutator_calls: list[dict[str, Any]]
) -> None:
    """A restart initializes the plugin with the configuration as written, not as
    the previous initialize left it."""

    async def body() -> bool:
        async with running("config_mutator", copy.deepcopy(MUTABLE_CONFIG)) as c:
            return await c.restart(HOSTILE)

    assert survive(anyio_backend, body) is True
    assert mutator_calls == [MUTABLE_CONFIG, MUTABLE_CONFIG]


# -- a coroutine that blocks the event loop is named ----------------------------------


@pytest.mark.parametrize(
    ("driver", "method"),
    [("loop_blocks_request", "handle_request"), ("loop_blocks_health", "health_check")],
)
def test_a_coroutine_that_blocks_the_loop_is_named_in_a_warning(
    anyio_backend: str,
    caplog: pytest.LogCaptureFixture,
    driver: str,
    method: str,
) -> None:
    """A call that holds the event loop for 0.3 s (threshold 0.1 s) is logged at
    WARNING, naming the platform and the method."""

    async def body() -> None:
        async with running(driver) as conductor:
            with warnings_of_demi(caplog):
                if method == "handle_request":
                    await conductor.dispatch(HOSTILE, {"ping": 1})
                else:
                    await conductor.check_one(HOSTILE)

    survive(anyio_backend, body)
    named = [
        record
        for record in caplog.records
        if record.levelno == logging.WARNING
        and HOSTILE in record.getMessage()
        and method in record.getMessage()
    ]
    assert named, [record.getMessage() for record in caplog.records]


# -- no secret in a failure reason ----------------------------------------------------


def test_the_repr_of_what_initialize_returned_is_scrubbed_of_secrets(
    anyio_backend: str,
) -> None:
    """initialize returned an object whose repr shows the config's secret: the
    failure reason shows that repr with the secret scrubbed."""

    async def body() -> tuple[Any, str | None]:
        async with running("init_leaks_secret", {"api_key": SECRET}) as conductor:
            await good_carries_on(conductor)
            return state_and_error(conductor, HOSTILE)

    state, error = survive(anyio_backend, body)
    assert state is PluginState.FAILED
    assert error is not None and "Leaky(" in error
    assert SECRET not in error


def test_no_log_record_shows_the_secret_initialize_returned(
    anyio_backend: str, caplog: pytest.LogCaptureFixture
) -> None:
    """The failure is logged without the secret its reason would have shown."""

    async def body() -> None:
        async with running("init_leaks_secret", {"api_key": SECRET}):
            pass

    with caplog.at_level(logging.DEBUG, logger="demi"):
        survive(anyio_backend, body)
    messages = [record.getMessage() for record in caplog.records]
    assert any("Leaky(" in message for message in messages), messages
    assert not [message for message in messages if SECRET in message]
