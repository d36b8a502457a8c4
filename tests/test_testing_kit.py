"""demi.testing: the conformance kit passes good platforms, and its helpers work."""

from __future__ import annotations

import copy
import hashlib
import hmac
import subprocess
import sys
from collections.abc import Mapping
from typing import Any, ClassVar

import anyio
import pytest
from demi_testplugins.good import GoodPlatform
from demi_testplugins.reply_unencodable import ReplyObject
from demi_testplugins.webhook_hmac import WebhookHmacPlatform
from helpers import SyncEcho
from pydantic import BaseModel, SecretStr

from demi import DemiSettings, PluginManager, PluginValidationError
from demi.platforms import (
    BasePlatform,
    HealthStatus,
    InboundEvent,
    Inbox,
    PluginHealth,
    WebhookRequest,
    WebhookResponse,
)
from demi.platforms.echo import EchoPlatform
from demi.plugins.discovery import load_driver
from demi.testing import PlatformConformance, make_manager, new_tasks, running_tasks

pytest_plugins = ["pytester"]


class GreeterConfig(BaseModel):
    """Configuration of the greeter."""

    greeting: str
    token: SecretStr
    ready: bool = True


class Greeter(BasePlatform):
    """A configured platform whose initialize fails when told it is not ready."""

    config_model = GreeterConfig

    def __init__(self) -> None:
        self.greeting: str | None = None

    async def initialize(self, config: Mapping[str, Any]) -> bool:
        await anyio.lowlevel.checkpoint()
        self.greeting = config["greeting"]
        return bool(config["ready"])

    async def health_check(self) -> PluginHealth:
        return PluginHealth(HealthStatus.HEALTHY)

    async def handle_request(self, request: Mapping[str, Any]) -> dict[str, Any]:
        await anyio.lowlevel.checkpoint()
        return {"text": f"{self.greeting}, {request.get('name', 'world')}"}

    async def shutdown(self) -> None:
        self.greeting = None


_HOOK_BODY = b'{"id": "w1", "text": "hi", "conversation": "c"}'


class TestEchoConformance(PlatformConformance):
    """The built-in echo platform keeps the contract."""

    platform_class = EchoPlatform
    sample_requests: ClassVar[list[Mapping[str, Any]]] = [{"text": "hello"}, {}]


class TestSyncEchoConformance(PlatformConformance):
    """A SyncPlatform keeps the contract through worker threads."""

    platform_class = SyncEcho
    sample_requests: ClassVar[list[Mapping[str, Any]]] = [{"text": "hello"}]


class TestGreeterConformance(PlatformConformance):
    """A platform with a config model and a failing configuration keeps the contract."""

    platform_class = Greeter
    sample_config: ClassVar[Mapping[str, Any]] = {"greeting": "hi", "token": "s3cr3t"}
    failing_config: ClassVar[Mapping[str, Any]] = {**sample_config, "ready": False}
    sample_requests: ClassVar[list[Mapping[str, Any]]] = [{"name": "Ada"}]


class Relay(Greeter):
    """Listens to a queue standing in for its service and takes webhooks; both
    turn what arrives into message events."""

    async def initialize(self, config: Mapping[str, Any]) -> bool:
        self.service, self.incoming = anyio.create_memory_object_stream[str](10)
        return await super().initialize(config)

    async def run(
        self, inbox: Inbox, *, task_status: Any = anyio.TASK_STATUS_IGNORED
    ) -> None:
        task_status.started()
        async for text in self.incoming:
            await inbox.send(InboundEvent("message", {"text": text}, text, "room"))

    async def handle_webhook(
        self, request: WebhookRequest, inbox: Inbox
    ) -> WebhookResponse:
        text = request.body.decode()
        accepted = await inbox.send(InboundEvent("message", {"text": text}, text))
        return WebhookResponse(200, {"accepted": accepted})

    async def shutdown(self) -> None:
        for stream in (getattr(self, "service", None), getattr(self, "incoming", None)):
            if stream is not None:
                stream.close()
        await super().shutdown()


class TestRelayConformance(PlatformConformance):
    """A platform that listens and takes webhooks keeps the contract, the events
    its run sends made by trigger_events."""

    platform_class = Relay
    sample_config: ClassVar[Mapping[str, Any]] = {"greeting": "hi", "token": "t0ken"}
    sample_requests: ClassVar[list[Mapping[str, Any]]] = [{"name": "Ada"}]
    sample_webhooks: ClassVar[list[WebhookRequest]] = [
        WebhookRequest("POST", "/platforms/relay/webhook", body=b"first"),
        WebhookRequest("POST", "/platforms/relay/webhook", body=b"second"),
    ]
    expected_events = 2

    async def trigger_events(self, platform: BasePlatform) -> None:
        assert isinstance(platform, Relay)
        await platform.service.send("hello")
        await platform.service.send("again")


class TestGoodConformanceInAProcess(PlatformConformance):
    """An installed platform keeps the contract across the process boundary."""

    platform_class = GoodPlatform
    isolation = "process"
    sample_requests: ClassVar[list[Mapping[str, Any]]] = [{"text": "hello"}]


class TestWebhookConformanceInAProcess(PlatformConformance):
    """Webhooks and the events they send cross into and out of the child."""

    platform_class = WebhookHmacPlatform
    isolation = "process"
    sample_config: ClassVar[Mapping[str, Any]] = {"secret": "k"}
    sample_requests: ClassVar[list[Mapping[str, Any]]] = [{"text": "hello"}]
    sample_webhooks: ClassVar[list[WebhookRequest]] = [
        WebhookRequest(
            "POST",
            "/platforms/hook/webhook",
            {"x-signature": hmac.new(b"k", _HOOK_BODY, hashlib.sha256).hexdigest()},
            body=_HOOK_BODY,
        )  # fmt: skip
    ]


def test_make_manager_knows_exactly_the_given_classes() -> None:
    """make_manager registers each keyword's class under the keyword."""
    manager = make_manager(DemiSettings(), echo=EchoPlatform, sync=SyncEcho)
    assert isinstance(manager, PluginManager)
    assert dict(manager.registry) == {"echo": EchoPlatform, "sync": SyncEcho}


def test_make_manager_rejects_an_invalid_class() -> None:
    """make_manager refuses a class that breaks the contract, naming it."""
    with pytest.raises(PluginValidationError, match="'bad'"):
        make_manager(DemiSettings(), bad=dict)  # type: ignore[arg-type]


async def test_make_manager_loads_a_class_without_entry_points() -> None:
    """A class given to make_manager loads and answers under its keyword."""
    async with make_manager(DemiSettings(), greeter=Greeter) as manager:
        await manager.load_plugin("greeter", {"greeting": "hi", "token": "t0ken"})
        response = await manager.handle_request("greeter", {"name": "Ada"})
    assert response == {"text": "hi, Ada"}


async def _wait_forever() -> None:
    await anyio.sleep_forever()


async def test_new_tasks_names_a_task_started_after_the_snapshot() -> None:
    """new_tasks names a task started after the snapshot after its function."""
    before = running_tasks()
    async with anyio.create_task_group() as group:
        group.start_soon(_wait_forever)
        await anyio.wait_all_tasks_blocked()
        assert new_tasks(before) == [f"{__name__}._wait_forever"]
        group.cancel_scope.cancel()


async def test_new_tasks_is_empty_once_a_task_group_is_done() -> None:
    """Tasks that finished before the second look are not reported."""
    before = running_tasks()
    async with anyio.create_task_group() as group:
        group.start_soon(anyio.lowlevel.checkpoint)
    assert new_tasks(before) == []


def test_pytest_plugin_is_registered_by_entry_point(pytester: pytest.Pytester) -> None:
    """pytest loads demi's plugin from the pytest11 entry point under the name demi."""
    config = pytester.parseconfig()
    assert config.pluginmanager.get_plugin("demi") is not None


def test_pytest_plugin_declares_the_conformance_marker(
    pytester: pytest.Pytester,
) -> None:
    """pytest --markers lists demi_conformance."""
    result = pytester.runpytest("--markers")
    result.stdout.fnmatch_lines(["@pytest.mark.demi_conformance: *"])


def test_library_imports_neither_demi_testing_nor_pytest() -> None:
    """Importing every library module of demi pulls in neither demi.testing nor pytest."""
    script = (
        "import importlib, pkgutil, sys, demi\n"
        "def walk(path, prefix):\n"
        "    for info in pkgutil.iter_modules(path, prefix):\n"
        "        if info.name != 'demi.testing':\n"
        "            module = importlib.import_module(info.name)\n"
        "            if info.ispkg:\n"
        "                walk(module.__path__, info.name + '.')\n"
        "walk(demi.__path__, 'demi.')\n"
        "bad = sorted(m for m in sys.modules\n"
        "             if m.startswith(('demi.testing', 'pytest', '_pytest')))\n"
        "print(sum(m.startswith('demi.') for m in sys.modules), *bad)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    )
    imported, *forbidden = result.stdout.split()
    assert int(imported) > 20
    assert forbidden == []


# -- the kit prepares configurations as the manager does (prepare_config) ---------


@pytest.mark.parametrize(
    ("driver", "raised"),
    [
        ("config_model_raises", "RuntimeError: the model's own bug"),
        ("config_model_interrupts", "KeyboardInterrupt"),
        ("config_model_exits", "SystemExit: 3"),
    ],
)
def test_kit_reports_a_config_model_that_raises_as_a_broken_promise(
    driver: str, raised: str
) -> None:
    """A config_model that raises anything fails the check with a sentence naming
    what it raised; nothing escapes (a KeyboardInterrupt would end the session)."""

    class Kit(PlatformConformance):
        platform_class = load_driver(driver)

    with pytest.raises(AssertionError) as caught:
        Kit().test_sample_config_passes_config_model({"level": 1})
    message = str(caught.value)
    assert message.startswith("sample_config must pass ")
    assert f"config_model raised {raised}" in message


def test_kit_names_each_rejected_key_as_before() -> None:
    """A config the model rejects is still reported key by key, without values."""

    class Kit(PlatformConformance):
        platform_class = load_driver("rejects_config")

    with pytest.raises(AssertionError) as caught:
        Kit().test_sample_config_passes_config_model({"level": 9, "api_key": "k3y"})
    assert str(caught.value) == (
        "sample_config must pass RejectsConfigPlatform.config_model, but it fails on "
        "level (Input should be less than or equal to 5)."
    )


async def test_kit_never_lets_a_platform_change_sample_config() -> None:
    """The kit hands initialize a deep copy, as the manager does: mutates_config
    scribbling over it leaves sample_config as written for the next check."""
    sample = {"upstream": {"host": "h", "keep": 1}, "items": ["a"]}
    written = copy.deepcopy(sample)

    class Kit(PlatformConformance):
        platform_class = load_driver("mutates_config")
        sample_requests: ClassVar[list[Mapping[str, Any]]] = [{"text": "hi"}]

    await Kit().test_initialize_returns_true(sample)
    await Kit().test_shutdown_leaves_no_task_running(sample)
    assert sample == written


class _ObjectReplyKit(PlatformConformance):
    platform_class = ReplyObject
    isolation = "process"


async def test_process_mode_fails_a_reply_that_cannot_cross_the_boundary() -> None:
    """In process the reply is a dict; across the boundary it cannot be carried,
    and the kit says so."""
    kit = _ObjectReplyKit()
    async with kit._initialized({}) as platform:
        with pytest.raises(AssertionError, match="cannot be encoded"):
            await kit._require_dict_answers(platform, [{}], "")


class _ObjectReplyInProcessKit(PlatformConformance):
    platform_class = ReplyObject


async def test_the_same_reply_passes_in_process() -> None:
    kit = _ObjectReplyInProcessKit()
    async with kit._initialized({}) as platform:
        await kit._require_dict_answers(platform, [{}], "")


class _UninstalledKit(PlatformConformance):
    platform_class = EchoPlatform
    isolation = "process"
    namespace = "demi.no-such-namespace"


def test_process_mode_needs_the_platform_installed_with_an_entry_point() -> None:
    with pytest.raises(AssertionError, match="must be installed with one in"):
        _UninstalledKit()._new_platform()
