"""The platform contract: BasePlatform, PluginHealth, HealthStatus and echo."""

from __future__ import annotations

import dataclasses
import inspect
from datetime import UTC, datetime, timedelta, timezone

import pytest
from helpers import MinimalPlatform

from demi import DemiSettings, PluginManager, PluginState
from demi.platforms import BasePlatform, HealthStatus, PluginHealth
from demi.platforms.echo import EchoPlatform

LIFECYCLE_METHODS = {"initialize", "health_check", "handle_request", "shutdown"}


class RenamedPlatform(MinimalPlatform):
    """Overrides the two properties a platform gets for free."""

    @property
    def name(self) -> str:
        return "custom-name"

    @property
    def status(self) -> str:
        return "custom-status"


@pytest.fixture
def manager() -> PluginManager:
    """A manager around MinimalPlatform, loadable as "minimal"."""
    return PluginManager.from_classes(
        {"minimal": MinimalPlatform, "echo": EchoPlatform}, settings=DemiSettings()
    )


# -- BasePlatform ---------------------------------------------------------------


def test_base_platform_is_abstract() -> None:
    """BasePlatform itself cannot be instantiated."""
    with pytest.raises(TypeError):
        BasePlatform()  # type: ignore[abstract]


def test_base_platform_abstract_methods_are_the_four_lifecycle_methods() -> None:
    """Exactly initialize, health_check, handle_request and shutdown are abstract."""
    assert BasePlatform.__abstractmethods__ == LIFECYCLE_METHODS


@pytest.mark.parametrize("method", sorted(LIFECYCLE_METHODS))
def test_base_platform_lifecycle_methods_are_coroutine_functions(method: str) -> None:
    """Each lifecycle method of the contract is declared as a coroutine function."""
    assert inspect.iscoroutinefunction(getattr(BasePlatform, method))


def test_base_platform_has_no_config_model_by_default() -> None:
    """A platform that declares nothing gets config_model None."""
    assert MinimalPlatform.config_model is None


def test_name_defaults_to_class_name_before_loading() -> None:
    """An unloaded platform is named after its class."""
    assert MinimalPlatform().name == "MinimalPlatform"


def test_status_is_discovered_before_loading() -> None:
    """An unloaded platform reports the "discovered" state."""
    assert MinimalPlatform().status == "discovered"


def test_name_and_status_can_be_overridden() -> None:
    """A subclass may override the name and status properties."""
    platform = RenamedPlatform()
    assert (platform.name, platform.status) == ("custom-name", "custom-status")


async def test_name_is_the_name_the_platform_was_loaded_under(
    manager: PluginManager,
) -> None:
    """A loaded platform's name is the instance name it was loaded under."""
    async with manager:
        platform = await manager.load_plugin("minimal", instance="first")
        assert platform.name == "first"


async def test_status_follows_the_lifecycle(manager: PluginManager) -> None:
    """status reports "active" while loaded and "stopped" after unloading."""
    async with manager:
        platform = await manager.load_plugin("minimal")
        assert platform.status == PluginState.ACTIVE.value == "active"
        await manager.unload_plugin("minimal")
        assert platform.status == "stopped"


# -- HealthStatus and PluginHealth ----------------------------------------------


def test_health_status_values() -> None:
    """HealthStatus has exactly the four documented values."""
    assert {status.value for status in HealthStatus} == {
        "healthy",
        "degraded",
        "unhealthy",
        "unknown",
    }


def test_health_status_is_a_str_enum() -> None:
    """HealthStatus members compare equal to their string values."""
    assert isinstance(HealthStatus.HEALTHY, str)
    member: str = HealthStatus.DEGRADED
    assert member == "degraded"


def test_plugin_health_is_frozen() -> None:
    """A PluginHealth cannot be changed after it is made."""
    health = PluginHealth(status=HealthStatus.HEALTHY)
    with pytest.raises(dataclasses.FrozenInstanceError):
        health.status = HealthStatus.UNHEALTHY  # type: ignore[misc]


def test_plugin_health_fields() -> None:
    """PluginHealth has the four documented fields, in order."""
    names = [field.name for field in dataclasses.fields(PluginHealth)]
    assert names == ["status", "response_time_ms", "last_check", "error_message"]


def test_plugin_health_defaults() -> None:
    """Only the status is required; no error and no response time by default."""
    health = PluginHealth(status=HealthStatus.DEGRADED)
    assert health.response_time_ms == 0.0
    assert health.error_message is None


def test_plugin_health_last_check_defaults_to_now_in_utc() -> None:
    """The default last_check is the current time, timezone-aware, in UTC."""
    before = datetime.now(UTC)
    health = PluginHealth(status=HealthStatus.HEALTHY)
    after = datetime.now(UTC)
    assert health.last_check.utcoffset() == timedelta(0)
    assert before <= health.last_check <= after


def test_plugin_health_accepts_the_plain_string_of_a_status() -> None:
    """A status given as its string value becomes the HealthStatus member."""
    health = PluginHealth(status="unhealthy")  # type: ignore[arg-type]
    assert health.status is HealthStatus.UNHEALTHY


def test_plugin_health_rejects_an_unknown_status() -> None:
    """A status string that is not a HealthStatus value is refused."""
    with pytest.raises(ValueError):
        PluginHealth(status="sort-of-ok")  # type: ignore[arg-type]


def test_plugin_health_rejects_a_naive_last_check() -> None:
    """last_check must be timezone-aware."""
    with pytest.raises(ValueError, match="timezone-aware"):
        PluginHealth(status=HealthStatus.HEALTHY, last_check=datetime(2024, 1, 1))


def test_plugin_health_accepts_an_aware_last_check() -> None:
    """An aware last_check is kept as given."""
    moment = datetime(2024, 1, 1, 12, tzinfo=timezone(timedelta(hours=2)))
    assert PluginHealth(status="healthy", last_check=moment).last_check == moment  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("status", "healthy"),
    [
        (HealthStatus.HEALTHY, True),
        (HealthStatus.DEGRADED, False),
        (HealthStatus.UNHEALTHY, False),
        (HealthStatus.UNKNOWN, False),
    ],
)
def test_plugin_health_is_healthy_only_when_healthy(
    status: HealthStatus, healthy: bool
) -> None:
    """is_healthy is true for HEALTHY and for nothing else."""
    assert PluginHealth(status=status).is_healthy is healthy


# -- the built-in echo platform ---------------------------------------------------


async def test_echo_initializes_with_any_config() -> None:
    """echo is ready whatever configuration it is given."""
    assert await EchoPlatform().initialize({"anything": [1, 2, 3]}) is True


async def test_echo_answers_with_the_request() -> None:
    """echo returns a response equal to the request."""
    request = {"text": "hi", "nested": {"n": 1}}
    assert await EchoPlatform().handle_request(request) == request


async def test_echo_returns_a_copy_of_the_request() -> None:
    """echo's response is a new dict, so changing it leaves the request alone."""
    request = {"text": "hi"}
    response = await EchoPlatform().handle_request(request)
    response["text"] = "changed"
    assert request == {"text": "hi"}


async def test_echo_is_always_healthy() -> None:
    """echo's health check reports healthy with no error."""
    health = await EchoPlatform().health_check()
    assert health.status is HealthStatus.HEALTHY
    assert health.error_message is None


async def test_echo_shutdown_is_safe_to_repeat() -> None:
    """echo can be shut down twice, and before it was initialized."""
    platform = EchoPlatform()
    await platform.shutdown()
    await platform.shutdown()


async def test_echo_runs_a_whole_lifecycle_from_its_entry_point() -> None:
    """The installed echo entry point loads, answers, is healthy and shuts down."""
    async with PluginManager(settings=DemiSettings()) as manager:
        echo = await manager.load_plugin("echo")
        assert isinstance(echo, EchoPlatform)
        assert await manager.handle_request("echo", {"ping": 1}) == {"ping": 1}
        health = await manager.health_check_all()
        assert health["echo"].status is HealthStatus.HEALTHY
    assert manager.state_of("echo") is PluginState.STOPPED
