"""PluginManager on classes given to it (from_classes): lifecycle, timeouts, health.

Each test builds its platforms from :class:`Scripted`, told by class attributes what
to do wrong, and reads back what happened from a shared journal.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar

import anyio
import anyio.lowlevel
import pytest
from pydantic import BaseModel, SecretStr

from demi import (
    BasePlatform,
    DemiError,
    DemiSettings,
    HealthStatus,
    PluginError,
    PluginHealth,
    PluginLoadError,
    PluginManager,
    PluginNotFoundError,
    PluginState,
    PluginStateError,
    PluginValidationError,
)
from demi.plugins.base import Lifecycle, Transition

TIMEOUT = 0.5
FOREVER = None
#: Bound on a whole test that involves a hanging plugin: if the manager failed to
#: bound a call, the test fails here instead of hanging.
GUARD = 30


class Scripted(BasePlatform):
    """A platform that does what its class attributes say, and writes it down.

    ``delays`` maps a method to seconds of work (``FOREVER`` hangs), ``errors`` to an
    exception it raises, ``swallow`` names methods that catch their cancellation and
    return anyway. The journal gets ``"<name>.<method>"`` when a call starts,
    ``"... done"`` when it finishes and ``"... cancelled"`` when it is cancelled.
    """

    journal: ClassVar[list[str]] = []
    init_result: ClassVar[object] = True
    health_result: ClassVar[object] = PluginHealth(status=HealthStatus.HEALTHY)
    delays: ClassVar[dict[str, float | None]] = {}
    errors: ClassVar[dict[str, Exception]] = {}
    swallow: ClassVar[frozenset[str]] = frozenset()

    async def _act(self, method: str) -> None:
        self.journal.append(f"{self.name}.{method}")
        if method in self.swallow:
            try:
                await anyio.sleep_forever()
            except anyio.get_cancelled_exc_class():
                self.journal.append(f"{self.name}.{method} swallowed")
        elif method in self.delays:
            delay = self.delays[method]
            try:
                if delay is FOREVER:
                    await anyio.sleep_forever()
                else:
                    await anyio.sleep(delay)
            except anyio.get_cancelled_exc_class():
                self.journal.append(f"{self.name}.{method} cancelled")
                raise
        if method in self.errors:
            raise self.errors[method]
        self.journal.append(f"{self.name}.{method} done")

    async def initialize(self, config: Mapping[str, Any]) -> bool:
        self.config = config
        await self._act("initialize")
        return self.init_result  # type: ignore[return-value]

    async def health_check(self) -> PluginHealth:
        await self._act("health_check")
        return self.health_result  # type: ignore[return-value]

    async def handle_request(self, request: Mapping[str, Any]) -> dict[str, Any]:
        await self._act("handle_request")
        return {"from": self.name, **request}

    async def shutdown(self) -> None:
        await self._act("shutdown")


def scripted(journal: list[str], **behaviour: Any) -> type[Scripted]:
    """A fresh Scripted subclass writing to ``journal`` and behaving as told."""
    return type("Scripted", (Scripted,), {"journal": journal, **behaviour})


@pytest.fixture
def journal() -> list[str]:
    """What the test's platforms did, in order."""
    return []


@pytest.fixture
def settings() -> DemiSettings:
    """Short timeouts for everything the manager bounds."""
    return DemiSettings(
        init_timeout=TIMEOUT,
        health_timeout=TIMEOUT,
        shutdown_timeout=TIMEOUT,
        request_timeout=TIMEOUT,
    )


@pytest.fixture
def good(journal: list[str]) -> type[Scripted]:
    """A platform that does everything right."""
    return scripted(journal)


def manager_of(settings: DemiSettings, **classes: type[BasePlatform]) -> PluginManager:
    """A manager around the given classes, by name."""
    return PluginManager.from_classes(classes, settings=settings)


# -- from_classes --------------------------------------------------------------------


def test_from_classes_registers_the_classes(
    settings: DemiSettings, good: type[Scripted]
) -> None:
    """The registry of a from_classes manager is the mapping it was given."""
    manager = manager_of(settings, a=good, b=good)
    assert dict(manager.registry) == {"a": good, "b": good}


def test_from_classes_rejects_an_invalid_class(settings: DemiSettings) -> None:
    """An invalid class is refused up front, naming the plugin."""
    with pytest.raises(PluginValidationError) as caught:
        manager_of(settings, broken=dict)  # type: ignore[arg-type]
    assert caught.value.plugin_name == "broken"
    assert "'broken'" in str(caught.value)


async def test_from_classes_has_nothing_to_discover(
    settings: DemiSettings, good: type[Scripted]
) -> None:
    """discover_and_register on a from_classes manager returns its classes."""
    assert await manager_of(settings, a=good).discover_and_register() == {"a": good}


def test_from_classes_lists_its_classes_as_discovered(
    settings: DemiSettings, good: type[Scripted]
) -> None:
    """Before anything is loaded, list_plugins shows each given class as discovered,
    as a manager that scanned its entry points does."""
    listed = manager_of(settings, b=good, a=good).list_plugins()
    assert [(meta.name, meta.state, meta.error) for meta in listed] == [
        ("a", PluginState.DISCOVERED, None),
        ("b", PluginState.DISCOVERED, None),
    ]
    assert listed[0].target == f"{good.__module__}:{good.__qualname__}"


async def test_list_plugins_shows_loaded_instances_beside_the_classes(
    settings: DemiSettings, good: type[Scripted]
) -> None:
    """A loaded instance is listed in its state; the other classes stay discovered."""
    async with manager_of(settings, a=good, b=good) as manager:
        await manager.load_plugin("a")
        await manager.load_plugin("b", instance="b2")
        states = {meta.name: meta.state for meta in manager.list_plugins()}
    assert states == {
        "a": PluginState.ACTIVE,
        "b": PluginState.DISCOVERED,
        "b2": PluginState.ACTIVE,
    }


def test_manager_without_settings_uses_defaults() -> None:
    """from_classes without settings gets the documented default timeouts."""
    manager = PluginManager.from_classes({})
    timeouts = (
        manager.settings.init_timeout,
        manager.settings.health_timeout,
        manager.settings.shutdown_timeout,
    )
    assert timeouts == (30, 5, 10)


# -- loading -------------------------------------------------------------------------


async def test_load_plugin_returns_an_active_instance(
    settings: DemiSettings, good: type[Scripted], journal: list[str]
) -> None:
    """load_plugin constructs, initializes and returns an active instance."""
    async with manager_of(settings, a=good) as manager:
        platform = await manager.load_plugin("a")
        assert type(platform) is good
        assert manager.state_of("a") is PluginState.ACTIVE
        assert journal == ["a.initialize", "a.initialize done"]


async def test_get_plugin_returns_the_loaded_instance(
    settings: DemiSettings, good: type[Scripted]
) -> None:
    """get_plugin gives back the instance load_plugin returned."""
    async with manager_of(settings, a=good) as manager:
        platform = await manager.load_plugin("a")
        assert manager.get_plugin("a") is platform


async def test_loading_an_active_plugin_again_returns_the_same_instance(
    settings: DemiSettings, good: type[Scripted], journal: list[str]
) -> None:
    """A second load of an active plugin returns it without initializing again."""
    async with manager_of(settings, a=good) as manager:
        first = await manager.load_plugin("a")
        second = await manager.load_plugin("a")
        assert second is first
        assert journal.count("a.initialize") == 1


async def test_concurrent_loads_of_one_name_make_one_instance(
    settings: DemiSettings, journal: list[str]
) -> None:
    """Loads of one name racing each other share one instance and one initialize."""
    slow = scripted(journal, delays={"initialize": 0.05})
    loaded: list[BasePlatform] = []
    async with manager_of(settings, a=slow) as manager:

        async def load() -> None:
            loaded.append(await manager.load_plugin("a"))

        async with anyio.create_task_group() as group:
            for _ in range(5):
                group.start_soon(load)
    assert len(loaded) == 5
    assert all(platform is loaded[0] for platform in loaded)
    assert journal.count("a.initialize") == 1


async def test_instances_of_one_driver_are_independent(
    settings: DemiSettings, good: type[Scripted]
) -> None:
    """One driver loaded under two instance names gives two separate platforms."""
    async with manager_of(settings, a=good) as manager:
        first = await manager.load_plugin("a", {"n": 1}, instance="first")
        second = await manager.load_plugin("a", {"n": 2}, instance="second")
        assert first is not second
        assert (first.name, second.name) == ("first", "second")
        assert manager.active_names() == ["first", "second"]


async def test_load_plugin_of_an_unknown_name_lists_the_known_names(
    settings: DemiSettings, good: type[Scripted]
) -> None:
    """An unknown name raises PluginNotFoundError listing the names there are."""
    manager = manager_of(settings, alpha=good, beta=good)
    with pytest.raises(PluginNotFoundError) as caught:
        await manager.load_plugin("gamma")
    assert caught.value.plugin_name == "gamma"
    assert "alpha, beta" in str(caught.value)
    assert manager.state_of("gamma") is None


def test_get_plugin_of_an_unloaded_name_lists_the_active_names(
    settings: DemiSettings, good: type[Scripted]
) -> None:
    """get_plugin of a name that is not loaded raises PluginNotFoundError."""
    manager = manager_of(settings, a=good)
    with pytest.raises(PluginNotFoundError, match="not loaded; active: none"):
        manager.get_plugin("a")


async def test_not_found_error_is_a_lookup_error(
    settings: DemiSettings, good: type[Scripted]
) -> None:
    """PluginNotFoundError is a PluginError, a DemiError and a LookupError."""
    with pytest.raises(LookupError) as caught:
        manager_of(settings, a=good).get_plugin("b")
    assert isinstance(caught.value, PluginError)
    assert isinstance(caught.value, DemiError)


async def test_plugin_without_config_model_gets_its_config_as_given(
    settings: DemiSettings, good: type[Scripted]
) -> None:
    """Without a config_model, initialize receives the mapping unchanged."""
    config = {"url": "https://example.invalid", "depth": {"n": [1, 2]}}
    async with manager_of(settings, a=good) as manager:
        platform = await manager.load_plugin("a", config)
        assert platform.config == config  # type: ignore[attr-defined]


async def test_plugin_without_config_gets_an_empty_mapping(
    settings: DemiSettings, good: type[Scripted]
) -> None:
    """load_plugin without config initializes with an empty mapping."""
    async with manager_of(settings, a=good) as manager:
        platform = await manager.load_plugin("a")
        assert dict(platform.config) == {}  # type: ignore[attr-defined]


# -- config_model ------------------------------------------------------------------

SECRET = "hunter2-is-not-a-good-password"


class ServiceConfig(BaseModel):
    """A required endpoint, a secret token and a defaulted number."""

    endpoint: str
    token: SecretStr
    retries: int = 3


@pytest.fixture
def configured(journal: list[str]) -> type[Scripted]:
    """A platform that declares ServiceConfig as its config_model."""
    return scripted(journal, config_model=ServiceConfig)


async def test_config_model_validates_before_initialize(
    settings: DemiSettings, configured: type[Scripted]
) -> None:
    """initialize receives the validated config, defaults filled in."""
    async with manager_of(settings, svc=configured) as manager:
        platform = await manager.load_plugin(
            "svc", {"endpoint": "https://example.invalid", "token": SECRET}
        )
        config = platform.config  # type: ignore[attr-defined]
        assert config["endpoint"] == "https://example.invalid"
        assert config["retries"] == 3


async def test_config_model_keeps_secrets_secret(
    settings: DemiSettings, configured: type[Scripted]
) -> None:
    """A SecretStr field reaches initialize as a SecretStr, not as plain text."""
    async with manager_of(settings, svc=configured) as manager:
        platform = await manager.load_plugin(
            "svc", {"endpoint": "https://example.invalid", "token": SECRET}
        )
        token = platform.config["token"]  # type: ignore[attr-defined]
        assert isinstance(token, SecretStr)
        assert token.get_secret_value() == SECRET
        assert SECRET not in repr(platform.config)  # type: ignore[attr-defined]


async def test_rejected_config_fails_the_load_naming_the_field(
    settings: DemiSettings, configured: type[Scripted], journal: list[str]
) -> None:
    """A config missing a required field fails the load; the error names the field
    and initialize is never called."""
    async with manager_of(settings, svc=configured) as manager:
        with pytest.raises(PluginLoadError) as caught:
            await manager.load_plugin("svc", {"token": SECRET})
        assert "endpoint" in str(caught.value)
        assert manager.state_of("svc") is PluginState.FAILED
        assert "svc.initialize" not in journal


async def test_rejected_config_never_shows_the_secret(
    settings: DemiSettings,
    configured: type[Scripted],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Neither the error, the failure record nor the log shows the values given."""
    bad = {"endpoint": ["not", "a", "string"], "token": SECRET, "retries": SECRET}
    with caplog.at_level(logging.DEBUG):
        async with manager_of(settings, svc=configured) as manager:
            with pytest.raises(PluginLoadError) as caught:
                await manager.load_plugin("svc", bad)
            (meta,) = manager.list_plugins()
    assert "endpoint" in str(caught.value)
    assert "retries" in str(caught.value)
    for text in (str(caught.value), meta.error or "", caplog.text):
        assert SECRET not in text


async def test_rejected_secret_field_is_named_without_its_value(
    settings: DemiSettings, configured: type[Scripted]
) -> None:
    """A secret field of the wrong type is named, and its value is not shown."""
    manager = manager_of(settings, svc=configured)
    with pytest.raises(PluginLoadError) as caught:
        await manager.load_plugin("svc", {"endpoint": "e", "token": 987654321})
    assert "token" in str(caught.value)
    assert "987654321" not in str(caught.value)


# -- load failures ---------------------------------------------------------------


async def test_initialize_returning_false_fails_the_load(
    settings: DemiSettings, journal: list[str]
) -> None:
    """initialize returning False leaves the plugin failed with the reason."""
    manager = manager_of(settings, a=scripted(journal, init_result=False))
    with pytest.raises(PluginLoadError, match="initialize returned False") as caught:
        await manager.load_plugin("a")
    assert caught.value.plugin_name == "a"
    assert manager.state_of("a") is PluginState.FAILED


@pytest.mark.parametrize("result", [None, 1, "yes", {"ready": True}])
async def test_initialize_must_return_exactly_true(
    settings: DemiSettings, journal: list[str], result: object
) -> None:
    """A truthy or None result from initialize that is not True fails the load."""
    manager = manager_of(settings, a=scripted(journal, init_result=result))
    with pytest.raises(PluginLoadError, match="not True"):
        await manager.load_plugin("a")
    assert manager.state_of("a") is PluginState.FAILED


async def test_initialize_raising_fails_the_load_with_the_exception(
    settings: DemiSettings, journal: list[str]
) -> None:
    """An exception from initialize is the reason the load failed."""
    broken = scripted(journal, errors={"initialize": ConnectionError("refused")})
    manager = manager_of(settings, a=broken)
    with pytest.raises(PluginLoadError, match="ConnectionError: refused"):
        await manager.load_plugin("a")
    assert manager.state_of("a") is PluginState.FAILED


async def test_initialize_hanging_times_out(
    settings: DemiSettings, journal: list[str]
) -> None:
    """A hanging initialize is cancelled at the init timeout and fails the load."""
    with anyio.fail_after(GUARD):
        manager = manager_of(
            settings, a=scripted(journal, delays={"initialize": FOREVER})
        )
        with pytest.raises(
            PluginLoadError, match=f"did not finish within {TIMEOUT:g}s"
        ):
            await manager.load_plugin("a")
        assert manager.state_of("a") is PluginState.FAILED
        assert "a.initialize cancelled" in journal


async def test_initialize_swallowing_its_cancellation_still_times_out(
    settings: DemiSettings, journal: list[str]
) -> None:
    """An initialize that swallows the timeout's cancellation and returns True late
    still fails the load as a timeout."""
    with anyio.fail_after(GUARD):
        manager = manager_of(settings, a=scripted(journal, swallow={"initialize"}))
        with pytest.raises(PluginLoadError, match="did not finish within"):
            await manager.load_plugin("a")
        assert "a.initialize swallowed" in journal
        assert manager.state_of("a") is PluginState.FAILED


async def test_constructor_raising_fails_the_load(
    settings: DemiSettings, journal: list[str]
) -> None:
    """A platform whose constructor raises ends failed with the reason."""

    def explode(self: object) -> None:
        raise RuntimeError("no constructor for you")

    broken = scripted(journal, __init__=explode)
    manager = manager_of(settings, a=broken)
    with pytest.raises(PluginLoadError, match="no constructor for you"):
        await manager.load_plugin("a")
    assert manager.state_of("a") is PluginState.FAILED


async def test_failed_initialize_gets_a_shutdown_to_clean_up(
    settings: DemiSettings, journal: list[str]
) -> None:
    """After initialize fails, shutdown is called to release what it acquired."""
    broken = scripted(journal, errors={"initialize": OSError("half-open")})
    manager = manager_of(settings, a=broken)
    with pytest.raises(PluginLoadError):
        await manager.load_plugin("a")
    assert journal[-2:] == ["a.shutdown", "a.shutdown done"]


@pytest.mark.parametrize(
    "behaviour",
    [
        {"init_result": False},
        {"errors": {"initialize": ValueError("bad")}},
        {"delays": {"initialize": FOREVER}},
        {"config_model": ServiceConfig},
    ],
    ids=["returns-false", "raises", "hangs", "rejects-config"],
)
async def test_a_failed_load_leaves_other_plugins_active(
    settings: DemiSettings,
    journal: list[str],
    good: type[Scripted],
    behaviour: dict[str, Any],
) -> None:
    """One plugin failing to load leaves the loaded ones active and usable, and the
    manager still loads more."""
    with anyio.fail_after(GUARD):
        async with manager_of(
            settings, a=good, bad=scripted(journal, **behaviour), c=good
        ) as manager:
            await manager.load_plugin("a")
            with pytest.raises(PluginLoadError):
                await manager.load_plugin("bad")
            await manager.load_plugin("c")
            assert manager.active_names() == ["a", "c"]
            assert await manager.handle_request("a", {"x": 1}) == {"from": "a", "x": 1}
            assert set(await manager.health_check_all()) == {"a", "c"}


async def test_get_plugin_of_a_failed_plugin_says_why(
    settings: DemiSettings, journal: list[str]
) -> None:
    """get_plugin of a failed plugin raises PluginNotFoundError with its reason."""
    manager = manager_of(settings, a=scripted(journal, init_result=False))
    with pytest.raises(PluginLoadError):
        await manager.load_plugin("a")
    with pytest.raises(PluginNotFoundError, match=r"not active \(failed: .*False"):
        manager.get_plugin("a")


async def test_list_plugins_shows_a_failed_load_with_its_reason(
    settings: DemiSettings, journal: list[str]
) -> None:
    """A failed plugin is listed as failed, with the reason."""
    manager = manager_of(settings, a=scripted(journal, init_result=False))
    with pytest.raises(PluginLoadError):
        await manager.load_plugin("a")
    (meta,) = manager.list_plugins()
    assert (meta.name, meta.state) == ("a", PluginState.FAILED)
    assert meta.error is not None and "returned False" in meta.error


async def test_a_failed_plugin_can_be_loaded_again(
    settings: DemiSettings, journal: list[str]
) -> None:
    """Once its cause is gone, a failed plugin loads afresh and becomes active."""
    flaky = scripted(journal, init_result=False)
    async with manager_of(settings, a=flaky) as manager:
        with pytest.raises(PluginLoadError):
            await manager.load_plugin("a")
        flaky.init_result = True
        platform = await manager.load_plugin("a")
        assert platform.status == "active"
        (meta,) = manager.list_plugins()
        assert meta.error is None


# -- health ------------------------------------------------------------------------


async def test_health_check_all_reports_every_active_plugin(
    settings: DemiSettings, good: type[Scripted]
) -> None:
    """Each active plugin gets its own result, keyed by instance name."""
    async with manager_of(settings, a=good, b=good) as manager:
        await manager.load_plugin("a")
        await manager.load_plugin("b")
        health = await manager.health_check_all()
    assert set(health) == {"a", "b"}
    assert all(h.status is HealthStatus.HEALTHY for h in health.values())


async def test_health_check_all_skips_plugins_that_are_not_active(
    settings: DemiSettings, good: type[Scripted], journal: list[str]
) -> None:
    """Failed and stopped plugins are not checked."""
    manager = manager_of(
        settings, a=good, failed=scripted(journal, init_result=False), stopped=good
    )
    async with manager:
        await manager.load_plugin("a")
        await manager.load_plugin("stopped")
        await manager.unload_plugin("stopped")
        with pytest.raises(PluginLoadError):
            await manager.load_plugin("failed")
        assert set(await manager.health_check_all()) == {"a"}


async def test_health_check_all_with_nothing_loaded_is_empty(
    settings: DemiSettings,
) -> None:
    """With no active plugin, there is nothing to report."""
    assert await manager_of(settings).health_check_all() == {}


@pytest.mark.parametrize(
    ("behaviour", "reason"),
    [
        ({"delays": {"health_check": FOREVER}}, f"did not finish within {TIMEOUT:g}s"),
        ({"errors": {"health_check": RuntimeError("probe")}}, "RuntimeError: probe"),
        ({"health_result": {"status": "healthy"}}, "returned dict, not PluginHealth"),
        ({"health_result": None}, "returned NoneType, not PluginHealth"),
        ({"health_result": "healthy"}, "returned str, not PluginHealth"),
        ({"swallow": {"health_check"}}, "did not finish within"),
    ],
    ids=["hangs", "raises", "dict", "none", "str", "swallows-cancel"],
)
async def test_a_bad_health_check_is_unhealthy_for_that_plugin_alone(
    settings: DemiSettings,
    journal: list[str],
    good: type[Scripted],
    behaviour: dict[str, Any],
    reason: str,
) -> None:
    """A check that hangs, raises or returns garbage gives that plugin an unhealthy
    result saying why; the others are healthy and everything stays active."""
    with anyio.fail_after(GUARD):
        async with manager_of(
            settings, a=good, bad=scripted(journal, **behaviour), c=good
        ) as manager:
            for name in ("a", "bad", "c"):
                await manager.load_plugin(name)
            health = await manager.health_check_all()
            assert health["bad"].status is HealthStatus.UNHEALTHY
            assert health["bad"].error_message is not None
            assert reason in health["bad"].error_message
            assert health["a"].status is health["c"].status is HealthStatus.HEALTHY
            assert manager.active_names() == ["a", "bad", "c"]


async def test_a_degraded_report_passes_through(
    settings: DemiSettings, journal: list[str]
) -> None:
    """The plugin's own verdict and message are kept."""
    report = PluginHealth(status=HealthStatus.DEGRADED, error_message="slow upstream")
    async with manager_of(settings, a=scripted(journal, health_result=report)) as pm:
        await pm.load_plugin("a")
        health = (await pm.health_check_all())["a"]
    assert (health.status, health.error_message) == (
        HealthStatus.DEGRADED,
        "slow upstream",
    )


async def test_response_time_is_measured_by_the_manager(
    settings: DemiSettings, journal: list[str]
) -> None:
    """response_time_ms is the manager's measurement, not what the plugin claims."""
    claims = PluginHealth(status=HealthStatus.HEALTHY, response_time_ms=99_999.0)
    slow = scripted(journal, health_result=claims, delays={"health_check": 0.05})
    async with manager_of(settings, a=slow) as manager:
        await manager.load_plugin("a")
        health = (await manager.health_check_all())["a"]
    assert 25 <= health.response_time_ms < 99_999


async def test_last_check_is_set_by_the_manager(
    settings: DemiSettings, journal: list[str]
) -> None:
    """last_check is when the manager finished the check, in UTC."""
    old = datetime(2000, 1, 1, tzinfo=UTC)
    stale = PluginHealth(status=HealthStatus.HEALTHY, last_check=old)
    async with manager_of(settings, a=scripted(journal, health_result=stale)) as pm:
        await pm.load_plugin("a")
        before = datetime.now(UTC)
        health = (await pm.health_check_all())["a"]
    assert health.last_check >= before
    assert health.last_check.utcoffset() == timedelta(0)


async def test_a_failed_check_has_a_response_time_and_last_check(
    settings: DemiSettings, journal: list[str]
) -> None:
    """An unhealthy result made by the manager is measured and stamped too."""
    broken = scripted(journal, errors={"health_check": RuntimeError("x")})
    async with manager_of(settings, a=broken) as manager:
        await manager.load_plugin("a")
        before = datetime.now(UTC)
        health = (await manager.health_check_all())["a"]
    assert health.response_time_ms >= 0
    assert health.last_check >= before


async def test_health_checks_run_concurrently(journal: list[str]) -> None:
    """200 checks of 0.1 s each take about 0.1 s, not the 20 s of running in turn."""
    slow = scripted(journal, delays={"health_check": 0.1})
    names = {f"p{i:03}": slow for i in range(200)}
    manager = PluginManager.from_classes(names, settings=DemiSettings())
    async with manager:
        for name in names:
            await manager.load_plugin(name)
        started = time.monotonic()
        health = await manager.health_check_all()
        elapsed = time.monotonic() - started
    assert len(health) == 200
    assert all(h.status is HealthStatus.HEALTHY for h in health.values())
    assert elapsed < 10


async def test_hanging_checks_cost_one_timeout_not_their_sum(
    settings: DemiSettings, journal: list[str]
) -> None:
    """Ten hanging checks together take about one health timeout, not ten."""
    with anyio.fail_after(GUARD):
        hangs = scripted(journal, delays={"health_check": FOREVER})
        names = {f"h{i}": hangs for i in range(10)}
        async with manager_of(settings, **names) as manager:
            for name in names:
                await manager.load_plugin(name)
            started = time.monotonic()
            health = await manager.health_check_all()
            elapsed = time.monotonic() - started
        assert all(h.status is HealthStatus.UNHEALTHY for h in health.values())
        assert elapsed < 10 * TIMEOUT * 0.8


async def test_health_check_all_leaves_no_check_running(
    settings: DemiSettings, journal: list[str]
) -> None:
    """By the time health_check_all returns, a hanging check has been cancelled."""
    with anyio.fail_after(GUARD):
        hangs = scripted(journal, delays={"health_check": FOREVER})
        async with manager_of(settings, a=hangs) as manager:
            await manager.load_plugin("a")
            await manager.health_check_all()
            assert "a.health_check cancelled" in journal


async def test_an_unhealthy_plugin_stays_active(
    settings: DemiSettings, journal: list[str]
) -> None:
    """A failed check is data, not a state change: the plugin stays active."""
    broken = scripted(journal, errors={"health_check": RuntimeError("x")})
    async with manager_of(settings, a=broken) as manager:
        await manager.load_plugin("a")
        await manager.health_check_all()
        assert manager.state_of("a") is PluginState.ACTIVE


async def test_health_check_of_one_plugin(
    settings: DemiSettings, journal: list[str], good: type[Scripted]
) -> None:
    """health_check(name) checks that plugin alone."""
    async with manager_of(settings, a=good, b=good) as manager:
        await manager.load_plugin("a")
        await manager.load_plugin("b")
        health = await manager.health_check("b")
    assert health.status is HealthStatus.HEALTHY
    assert journal.count("b.health_check") == 1
    assert "a.health_check" not in journal


async def test_health_check_of_an_inactive_plugin_raises_not_found(
    settings: DemiSettings, good: type[Scripted]
) -> None:
    """health_check(name) of a name that is not active raises PluginNotFoundError."""
    with pytest.raises(PluginNotFoundError):
        await manager_of(settings, a=good).health_check("a")


# -- requests -----------------------------------------------------------------------


async def test_handle_request_returns_the_platforms_answer(
    settings: DemiSettings, good: type[Scripted]
) -> None:
    """A request reaches the named platform and its answer comes back."""
    async with manager_of(settings, a=good) as manager:
        await manager.load_plugin("a")
        assert await manager.handle_request("a", {"q": 1}) == {"from": "a", "q": 1}


async def test_a_raising_request_raises_and_the_plugin_stays_active(
    settings: DemiSettings, journal: list[str]
) -> None:
    """The platform's exception reaches the caller; the platform stays active."""
    broken = scripted(journal, errors={"handle_request": ValueError("bad input")})
    async with manager_of(settings, a=broken) as manager:
        await manager.load_plugin("a")
        with pytest.raises(ValueError, match="bad input"):
            await manager.handle_request("a", {})
        assert manager.state_of("a") is PluginState.ACTIVE


async def test_a_hanging_request_times_out_and_is_cancelled(
    settings: DemiSettings, journal: list[str]
) -> None:
    """A request that hangs raises TimeoutError and is not left running."""
    with anyio.fail_after(GUARD):
        hangs = scripted(journal, delays={"handle_request": FOREVER})
        async with manager_of(settings, a=hangs) as manager:
            await manager.load_plugin("a")
            with pytest.raises(TimeoutError):
                await manager.handle_request("a", {}, timeout=0.05)
            assert "a.handle_request cancelled" in journal
            assert manager.state_of("a") is PluginState.ACTIVE


async def test_handle_request_of_an_inactive_plugin_raises_not_found(
    settings: DemiSettings, good: type[Scripted]
) -> None:
    """A request to a name that is not active raises PluginNotFoundError."""
    with pytest.raises(PluginNotFoundError):
        await manager_of(settings, a=good).handle_request("a", {})


# -- unloading ------------------------------------------------------------------------


async def test_unload_plugin_shuts_it_down(
    settings: DemiSettings, good: type[Scripted], journal: list[str]
) -> None:
    """unload_plugin calls shutdown, returns True and leaves the plugin stopped."""
    manager = manager_of(settings, a=good)
    await manager.load_plugin("a")
    assert await manager.unload_plugin("a") is True
    assert journal[-2:] == ["a.shutdown", "a.shutdown done"]
    assert manager.state_of("a") is PluginState.STOPPED
    with pytest.raises(PluginNotFoundError, match="stopped"):
        manager.get_plugin("a")


async def test_unload_plugin_of_an_unloaded_name_returns_false(
    settings: DemiSettings, good: type[Scripted]
) -> None:
    """Unloading a name that was never loaded does nothing and returns False."""
    assert await manager_of(settings, a=good).unload_plugin("a") is False


async def test_unloading_twice_shuts_down_once(
    settings: DemiSettings, good: type[Scripted], journal: list[str]
) -> None:
    """A second unload returns False and does not call shutdown again."""
    manager = manager_of(settings, a=good)
    await manager.load_plugin("a")
    await manager.unload_plugin("a")
    assert await manager.unload_plugin("a") is False
    assert journal.count("a.shutdown") == 1


async def test_unloading_a_failed_plugin_forgets_it(
    settings: DemiSettings, journal: list[str]
) -> None:
    """Unloading a failed plugin returns False and drops its failure record."""
    manager = manager_of(settings, a=scripted(journal, init_result=False))
    with pytest.raises(PluginLoadError):
        await manager.load_plugin("a")
    assert await manager.unload_plugin("a") is False
    assert manager.state_of("a") is None


async def test_a_stopped_plugin_loads_as_a_new_instance(
    settings: DemiSettings, good: type[Scripted], journal: list[str]
) -> None:
    """Loading after unloading makes and initializes a fresh instance."""
    async with manager_of(settings, a=good) as manager:
        first = await manager.load_plugin("a")
        await manager.unload_plugin("a")
        second = await manager.load_plugin("a")
        assert second is not first
        assert journal.count("a.initialize") == 2


async def test_leaving_the_context_unloads_in_reverse_load_order(
    settings: DemiSettings, good: type[Scripted], journal: list[str]
) -> None:
    """async with unloads every loaded plugin, last loaded first."""
    async with manager_of(settings, a=good, b=good, c=good) as manager:
        for name in ("b", "c", "a"):
            await manager.load_plugin(name)
    shutdowns = [entry for entry in journal if entry.endswith(".shutdown")]
    assert shutdowns == ["a.shutdown", "c.shutdown", "b.shutdown"]
    assert {manager.state_of(n) for n in "abc"} == {PluginState.STOPPED}


async def test_leaving_the_context_on_an_error_still_unloads(
    settings: DemiSettings, good: type[Scripted]
) -> None:
    """An exception in the block propagates, after every plugin is unloaded."""
    manager = manager_of(settings, a=good)
    with pytest.raises(KeyError):
        async with manager:
            await manager.load_plugin("a")
            raise KeyError("in the block")
    assert manager.state_of("a") is PluginState.STOPPED


async def test_a_raising_shutdown_is_recorded_not_raised(
    settings: DemiSettings, journal: list[str]
) -> None:
    """A shutdown that raises leaves the plugin failed with the reason."""
    broken = scripted(journal, errors={"shutdown": OSError("already closed")})
    manager = manager_of(settings, a=broken)
    await manager.load_plugin("a")
    assert await manager.unload_plugin("a") is True
    assert manager.state_of("a") is PluginState.FAILED
    (meta,) = manager.list_plugins()
    assert meta.error is not None and "OSError: already closed" in meta.error


async def test_a_hanging_shutdown_is_bounded_by_its_timeout(
    settings: DemiSettings, journal: list[str]
) -> None:
    """A shutdown that hangs is cancelled at the shutdown timeout."""
    hangs = scripted(journal, delays={"shutdown": FOREVER})
    manager = manager_of(settings, a=hangs)
    await manager.load_plugin("a")
    with anyio.fail_after(10 * TIMEOUT):
        await manager.unload_plugin("a")
    assert "a.shutdown cancelled" in journal
    (meta,) = manager.list_plugins()
    assert meta.state is PluginState.FAILED
    assert meta.error is not None and "shutdown did not finish within" in meta.error


async def test_bad_shutdowns_do_not_stop_the_others(
    settings: DemiSettings, journal: list[str], good: type[Scripted]
) -> None:
    """Plugins whose shutdown raises or hangs do not keep the others from stopping."""
    raises = scripted(journal, errors={"shutdown": RuntimeError("no")})
    hangs = scripted(journal, delays={"shutdown": FOREVER})
    manager = manager_of(settings, a=good, raises=raises, hangs=hangs, d=good)
    with anyio.fail_after(10 * TIMEOUT):
        async with manager:
            for name in ("a", "raises", "hangs", "d"):
                await manager.load_plugin(name)
    assert "a.shutdown done" in journal
    assert "d.shutdown done" in journal
    assert manager.state_of("a") is manager.state_of("d") is PluginState.STOPPED
    assert manager.state_of("raises") is PluginState.FAILED
    assert manager.state_of("hangs") is PluginState.FAILED


async def test_unload_is_shielded_from_cancellation(
    settings: DemiSettings, journal: list[str]
) -> None:
    """Cancelling the caller while a shutdown runs does not cut the shutdown short."""
    with anyio.fail_after(GUARD):
        started, release = anyio.Event(), anyio.Event()

        class Careful(Scripted):
            async def shutdown(self) -> None:
                started.set()
                await release.wait()
                self.journal.append("careful shutdown completed")

        manager = manager_of(settings, careful=Careful)
        Careful.journal = journal
        await manager.load_plugin("careful")
        caller = anyio.CancelScope()

        async def unload() -> None:
            with caller:
                await manager.unload_plugin("careful")

        async with anyio.create_task_group() as group:
            group.start_soon(unload)
            await started.wait()
            caller.cancel()
            await anyio.lowlevel.checkpoint()
            release.set()
        assert "careful shutdown completed" in journal
        assert manager.state_of("careful") is PluginState.STOPPED


async def test_cancelling_the_block_still_unloads_everything(
    settings: DemiSettings, journal: list[str]
) -> None:
    """A block cancelled from outside (Ctrl-C) still shuts every plugin down, even
    shutdowns that take a while."""
    with anyio.fail_after(GUARD):
        slow = scripted(journal, delays={"shutdown": 0.05})
        with anyio.CancelScope() as outer:
            async with manager_of(settings, a=slow, b=slow) as manager:
                await manager.load_plugin("a")
                await manager.load_plugin("b")
                outer.cancel()
                await anyio.sleep_forever()
        assert outer.cancelled_caught
        assert "a.shutdown done" in journal
        assert "b.shutdown done" in journal
        assert manager.active_names() == []


async def test_nothing_keeps_running_after_the_manager_exits(
    settings: DemiSettings, journal: list[str]
) -> None:
    """Every call the manager started into a hanging plugin has ended when it exits."""
    with anyio.fail_after(GUARD):
        hangs = scripted(
            journal,
            delays={
                "initialize": FOREVER,
                "health_check": FOREVER,
                "handle_request": FOREVER,
                "shutdown": FOREVER,
            },
        )
        ready = scripted(
            journal,
            delays={
                "health_check": FOREVER,
                "handle_request": FOREVER,
                "shutdown": FOREVER,
            },
        )
        async with manager_of(settings, hangs=hangs, ready=ready) as manager:
            with pytest.raises(PluginLoadError):
                await manager.load_plugin("hangs")
            await manager.load_plugin("ready")
            await manager.health_check_all()
            with pytest.raises(TimeoutError):
                await manager.handle_request("ready", {}, timeout=0.05)
        started = [e for e in journal if " " not in e]
        ended = [
            e.split(" ")[0] for e in journal if e.endswith((" done", " cancelled"))
        ]
        assert sorted(started) == sorted(ended)


# -- lifecycle --------------------------------------------------------------------------


def test_plugin_states_include_the_documented_ones() -> None:
    """PluginState has at least the six documented values."""
    assert {s.value for s in PluginState} >= {
        "discovered",
        "loading",
        "active",
        "failed",
        "stopping",
        "stopped",
    }


def test_an_illegal_transition_raises_state_error() -> None:
    """The lifecycle refuses a move its table does not allow."""
    lifecycle = Lifecycle("x")
    with pytest.raises(PluginStateError, match="'discovered' to 'active'"):
        lifecycle.move_to(PluginState.ACTIVE)
    assert lifecycle.state is PluginState.DISCOVERED


async def test_subscribers_see_every_transition(
    settings: DemiSettings, good: type[Scripted]
) -> None:
    """A subscriber hears each transition of a load and an unload, in order."""
    seen: list[Transition] = []
    manager = manager_of(settings, a=good)
    manager.subscribe(seen.append)
    await manager.load_plugin("a")
    await manager.unload_plugin("a")
    assert [(t.name, t.source.value, t.target.value) for t in seen] == [
        ("a", "discovered", "loading"),
        ("a", "loading", "active"),
        ("a", "active", "stopping"),
        ("a", "stopping", "stopped"),
    ]


async def test_unsubscribing_stops_the_notifications(
    settings: DemiSettings, good: type[Scripted]
) -> None:
    """After unsubscribing, a listener hears nothing more."""
    seen: list[Transition] = []
    manager = manager_of(settings, a=good)
    unsubscribe = manager.subscribe(seen.append)
    unsubscribe()
    await manager.load_plugin("a")
    assert seen == []


def run_script(code: str, *args: str, cache: Path) -> Any:
    """Run ``code`` in a fresh interpreter (an import can happen only once in a
    process) and return the JSON it prints last."""
    done = subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True,
        text=True,
        env={**os.environ, "XDG_CACHE_HOME": str(cache)},
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


_SLOW_IMPORT = """
import json, sys
import anyio
from demi import DemiSettings, PluginLoadError, PluginManager

async def main():
    manager = PluginManager("demi_testplugins.slow", DemiSettings(init_timeout=0.3))
    outcome = {}
    if sys.argv[1] == "timeout":
        try:
            await manager.load_plugin("slow_import")
        except PluginLoadError as err:
            outcome["error"] = str(err)
    else:
        with anyio.move_on_after(0.3):
            await manager.load_plugin("slow_import")
    meta = manager.metadata("slow_import")
    outcome["state"], outcome["reason"] = meta.state.value, meta.error
    # The import finishes in its abandoned thread; a later load then succeeds.
    await anyio.sleep(2.5)
    manager.settings = DemiSettings(init_timeout=5)
    platform = await manager.load_plugin("slow_import")
    outcome["after"] = platform.status
    await manager.unload_all()
    print(json.dumps(outcome))

anyio.run(main, backend=sys.argv[2])
"""


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_an_import_that_outlives_the_init_timeout_fails_the_load(
    backend: str, tmp_path: Path
) -> None:
    """A plugin whose import outlasts init_timeout fails with the reason, and loads
    once a later attempt finds it imported."""
    outcome = run_script(_SLOW_IMPORT, "timeout", backend, cache=tmp_path)
    assert "import did not finish within 0.3s" in outcome["error"]
    assert outcome["state"] == "failed"
    assert outcome["after"] == "active"


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_a_load_cancelled_during_import_is_left_failed_not_loading(
    backend: str, tmp_path: Path
) -> None:
    """Cancelling a load while the plugin imports leaves it failed, so a later load
    can start afresh instead of tripping over a plugin stuck in "loading"."""
    outcome = run_script(_SLOW_IMPORT, "cancel", backend, cache=tmp_path)
    assert outcome == {
        "state": "failed",
        "reason": "cancelled during import",
        "after": "active",
    }


# -- perf: the cheap paths keep their contracts --------------------------------


async def test_a_turn_handed_to_a_cancelled_waiter_passes_on_to_the_next() -> None:
    """Loads and unloads of one name take turns; a waiter cancelled just as the turn
    reaches it passes it on, so the next waiter is not locked out for good."""
    from demi.plugins._turns import Turns

    turns = Turns()
    assert turns.take_nowait("a")
    assert not turns.take_nowait("a")
    order: list[str] = []

    async def waiter(tag: str) -> None:
        await turns.take("a")
        try:
            order.append(tag)
            await anyio.lowlevel.checkpoint()
        finally:
            turns.give_back("a")

    with anyio.fail_after(GUARD):
        async with anyio.create_task_group() as group:
            first = anyio.CancelScope()

            async def first_waiter() -> None:
                with first:
                    await waiter("first")

            group.start_soon(first_waiter)
            await anyio.wait_all_tasks_blocked()
            group.start_soon(waiter, "second")
            await anyio.wait_all_tasks_blocked()
            # The first waiter is cancelled, and handed the turn before it can
            # run: it must pass the turn on.
            first.cancel()
            turns.give_back("a")
    assert order[-1:] == ["second"]
    assert len(turns) == 0


async def test_a_broken_listener_does_not_silence_the_others(
    settings: DemiSettings, good: type[Scripted]
) -> None:
    """Each subscriber is told on its own: one that raises is logged, and the ones
    after it still hear every transition."""
    seen: list[str] = []

    def broken(change: Transition) -> None:
        raise RuntimeError("listener bug")

    manager = manager_of(settings, a=good)
    manager.subscribe(broken)
    manager.subscribe(lambda change: seen.append(change.target.value))
    await manager.load_plugin("a")
    assert seen == ["loading", "active"]
    assert manager.state_of("a") is PluginState.ACTIVE


def test_time_in_states_is_kept_without_listeners() -> None:
    """A lifecycle nobody listens to still counts the time spent in each state."""
    lifecycle = Lifecycle("x")
    lifecycle.move_to(PluginState.LOADING)
    lifecycle.move_to(PluginState.ACTIVE)
    spent = lifecycle.time_in_states()
    assert set(spent) == {
        PluginState.DISCOVERED,
        PluginState.LOADING,
        PluginState.ACTIVE,
    }
    assert all(seconds >= 0 for seconds in spent.values())
    assert lifecycle.state_value() == "active"
