"""Process isolation (issue 11): a platform with ``isolation = "process"`` runs in a
child process; one that segfaults, exits, blocks its loop or swallows cancellation
fails alone, with a reason a person can read, and is restarted, while an in-process
platform beside it keeps answering. The hostile platforms are real installed entry
points (tests/fixture_dist, iso_*)."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import anyio.lowlevel

# As in tests/test_run_http.py: one httpcore for the whole session.
import httpcore  # noqa: F401
import httpx
import pytest
from helpers import free_port, install_distribution, quick_spec, supervised
from pydantic import ValidationError
from test_run_http import metric

from demi import DemiSettings, InboundEvent, PluginState, WebhookRequest
from demi.conductor import Conductor
from demi.core.config import PlatformSettings
from demi.exceptions import (
    PlatformRequestError,
    PlatformTimeoutError,
    PlatformUnavailableError,
    PluginNotFoundError,
)
from demi.handlers import echo
from demi.isolation import fault_of
from demi.isolation._faults import exited, over_memory, unanswered_cancel
from demi.isolation._proxy import ProcessPlatform
from demi.isolation._wire import MAX_FRAME, Message, WireError, decode, encode

DEMI = Path(sys.executable).with_name("demi")


# -- configuration ----------------------------------------------------------


def test_isolation_is_inproc_unless_configured() -> None:
    spec = PlatformSettings(driver="echo")
    assert (spec.isolation, spec.memory_limit_mb) == ("inproc", None)


def test_isolation_and_memory_limit_come_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DEMI_PLATFORMS__CHAT__DRIVER", "echo")
    monkeypatch.setenv("DEMI_PLATFORMS__CHAT__ISOLATION", "process")
    monkeypatch.setenv("DEMI_PLATFORMS__CHAT__MEMORY_LIMIT_MB", "256")
    spec = DemiSettings().platforms["chat"]
    assert (spec.isolation, spec.memory_limit_mb) == ("process", 256)


@pytest.mark.parametrize(
    "values",
    [
        {"isolation": "thread"},
        {"isolation": "process", "memory_limit_mb": 0},
        {"memory_limit_mb": 100},  # a limit in process would bound nothing
    ],
)
def test_isolation_settings_are_checked(values: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        PlatformSettings(driver="echo", **values)


# -- the wire ---------------------------------------------------------------


def test_a_message_crosses_the_wire_unchanged() -> None:
    message = Message("req", 7, "handle_request", {"request": {"text": "hé", "n": 1.5}})
    frame = encode(message)
    assert int.from_bytes(frame[:4], "big") == len(frame) - 4
    assert decode(frame[4:]) == message


@pytest.mark.parametrize(
    ("params", "why"),
    [({"s": object()}, "cannot be encoded"), ("x" * MAX_FRAME, "over the")],
)
def test_what_the_codec_cannot_carry_is_a_wire_error(params: Any, why: str) -> None:
    with pytest.raises(WireError, match=why):
        encode(Message("ok", 1, params=params))


def test_a_garbled_frame_is_a_wire_error() -> None:
    with pytest.raises(WireError, match="garbled"):
        decode(b"\xc1not msgpack")


# -- why a child went away ----------------------------------------------------

_CARRIED = "connection lost: run raised PlatformUnavailableError: "


@pytest.mark.parametrize(
    ("error", "fault"),
    [
        (_CARRIED + exited(-11), "crash"),
        (_CARRIED + exited(3), "crash"),
        (_CARRIED + exited(-9), "crash"),  # the kernel's OOM killer, say
        ("initialize raised PlatformUnavailableError: " + exited(1, " before"), "crash"),
        (_CARRIED + unanswered_cancel(1.0), "hang"),
        (_CARRIED + over_memory(412.4, 200), "memory"),
        (None, None),
        ("connection lost: run returned: the connection ended", None),
        # A plugin's own words, however they read, are not demi's reason.
        ("initialize raised PlatformRequestError: initialize in the child: "
         "ValueError: process exited: exit code 3", None),
    ],
)  # fmt: skip
def test_fault_of_tells_the_kind_of_fault_from_the_reason_demi_wrote(
    error: str | None, fault: str | None
) -> None:
    assert fault_of(error) == fault


# -- a conductor with isolated platforms -------------------------------------


def conductor_of(**platforms: PlatformSettings) -> Conductor:
    """A conductor over the installed entry points, rounds a minute apart."""
    settings = DemiSettings(
        health_interval=60, health_timeout=2, stop_timeout=10, request_timeout=2,
        platforms=platforms,
    )  # fmt: skip
    return Conductor(settings)


async def eventually(condition: Callable[[], bool], timeout: float = 15.0) -> None:
    """Poll ``condition`` until it holds (bounded)."""
    with anyio.fail_after(timeout):
        while not condition():  # noqa: ASYNC110 (plain state: polling is the point)
            await anyio.sleep(0.02)


def child_of(conductor: Conductor, instance: str) -> ProcessPlatform:
    """The proxy behind ``instance``."""
    route = conductor._routes[instance]
    platform = conductor.manager.get_plugin(route.key)
    assert isinstance(platform, ProcessPlatform)
    return platform


def command_line(pid: int) -> str:
    """The command line of ``pid``, read from /proc."""
    return Path(f"/proc/{pid}/cmdline").read_text().replace("\0", " ")


def alive(pid: int) -> bool:
    """Whether ``pid`` is a live process (not gone, not a zombie)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


async def test_a_process_isolated_echo_answers_from_its_own_process() -> None:
    async with conductor_of(chat=quick_spec("good", isolation="process")) as conductor:
        assert await conductor.dispatch("chat", {"text": "hi"}) == {"text": "hi"}
        proxy = child_of(conductor, "chat")
        assert proxy.pid is not None and proxy.pid != os.getpid()
        assert alive(proxy.pid)
        assert proxy.version == "1.0.0"  # demi-testplugins
        assert "demi.isolation.host" in command_line(proxy.pid)
        health = await conductor.manager.health_check(conductor._routes["chat"].key)
        assert health.is_healthy
        pid = proxy.pid
    await eventually(lambda: not alive(pid), timeout=10)


async def test_a_raising_platform_is_a_request_error_naming_it() -> None:
    async with conductor_of(
        chat=quick_spec("request_raises", isolation="process")
    ) as c:
        with pytest.raises(PlatformRequestError, match="'chat'") as caught:
            await c.dispatch("chat", {"text": "hi"})
        assert "ValueError: cannot handle that request" in str(caught.value)
        assert c.instances()[0].state is PluginState.ACTIVE


async def test_a_request_the_codec_cannot_carry_is_a_request_error() -> None:
    async with conductor_of(chat=quick_spec("good", isolation="process")) as conductor:
        with pytest.raises(PlatformRequestError, match="'chat'.*cannot be encoded"):
            await conductor.dispatch("chat", {"tag": object()})
        assert await conductor.dispatch("chat", {"text": "ok"}) == {"text": "ok"}


async def test_a_reply_the_codec_cannot_carry_is_a_request_error() -> None:
    async with conductor_of(chat=quick_spec("reply_object", isolation="process")) as c:
        with pytest.raises(PlatformRequestError, match="'chat'.*cannot be encoded"):
            await c.dispatch("chat", {"text": "hi"})
        assert c.instances()[0].state is PluginState.ACTIVE


async def test_the_childs_log_records_reach_demi_scrubbed(
    caplog: pytest.LogCaptureFixture,
) -> None:
    secret = "hunter2-very-secret"
    chat = quick_spec("iso_logs", isolation="process", config={"token": secret})
    caplog.set_level(logging.INFO, logger="demi")
    async with conductor_of(chat=chat) as conductor:
        assert await conductor.dispatch("chat", {"text": "hi"}) == {"text": "hi"}
        await eventually(lambda: "my token is" in caplog.text)
    mine = [r for r in caplog.records if r.name == "demi.platform.chat"]
    assert any(r.getMessage() == "asked hi" for r in mine)
    assert any(r.levelno == logging.WARNING for r in mine)
    assert secret not in caplog.text


async def test_health_and_check_show_the_childs_pid_and_version() -> None:
    conductor = conductor_of(
        chat=quick_spec("good", isolation="process"), calm=quick_spec("good")
    )
    async with supervised(conductor) as supervisor:
        platforms = supervisor.snapshot()["platforms"]
        assert platforms["chat"]["pid"] == child_of(conductor, "chat").pid
        assert platforms["chat"]["version"] == "1.0.0"
        assert platforms["chat"]["connected"] is None  # as in process: no listener
        assert "pid" not in platforms["calm"]


@pytest.mark.slow
def test_demi_check_json_shows_the_childs_pid_and_version(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DEMI_")}
    env["DEMI_PLATFORMS__CHAT__DRIVER"] = "good"
    env["DEMI_PLATFORMS__CHAT__ISOLATION"] = "process"
    done = subprocess.run(
        [str(DEMI), "check", "--json"], cwd=tmp_path, env=env, capture_output=True,
        text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    (row,) = json.loads(done.stdout)["platforms"]
    assert row["health"] == "healthy"
    assert isinstance(row["pid"], int) and row["version"] == "1.0.0"


def test_demi_never_imports_a_driver_only_isolated_instances_use(
    tmp_path: Path,
) -> None:
    """A driver whose import segfaults, used only in a process: demi check (which
    checks every configuration before it starts anything) survives, the instance
    fails with its child's reason, and the other instance is checked."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DEMI_")}
    env["DEMI_NAMESPACE"] = "demi_testplugins.crashy"
    env["DEMI_PLATFORMS__CRASHY__DRIVER"] = "iso_crashes_at_import"
    env["DEMI_PLATFORMS__CRASHY__ISOLATION"] = "process"
    env["DEMI_PLATFORMS__CALM__DRIVER"] = "good"
    done = subprocess.run(
        [str(DEMI), "check", "--json"], cwd=tmp_path, env=env, capture_output=True,
        text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 1, done.stderr
    rows = {row["instance"]: row for row in json.loads(done.stdout)["platforms"]}
    assert rows["calm"]["health"] == "healthy"
    assert "killed by signal 11 (SIGSEGV)" in rows["crashy"]["error"]


async def test_an_isolated_instances_configuration_is_checked_in_its_child() -> None:
    """Its driver is not imported by demi, so its child refuses the configuration,
    naming the field, and the instance fails with that; the secret never shows."""
    bad = quick_spec(
        "configured", isolation="process", config={"token": "hunter2-secret"}
    )
    async with conductor_of(chat=bad) as conductor:
        (status,) = conductor.instances()
        assert status.state is PluginState.FAILED
        assert "endpoint" in (status.error or "")
        assert "hunter2-secret" not in (status.error or "")


def listening_conductor(tmp_path: Path, **config: Any) -> Conductor:
    """A conductor with the ``listens`` driver in a process, replies to a file,
    and demi's echo handler answering every message."""
    listening = quick_spec(
        "listens", isolation="process",
        config={"replies": str(tmp_path / "replies.jsonl"), **config},
    )  # fmt: skip
    settings = DemiSettings(
        health_interval=60, health_timeout=2, stop_timeout=10, request_timeout=2,
        platforms={"chat": listening},
    )  # fmt: skip
    return Conductor(settings, handler=echo)


def replies(tmp_path: Path) -> list[dict[str, Any]]:
    """What the listening platform recorded of demi's replies."""
    path = tmp_path / "replies.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines()]


async def test_a_listening_platforms_run_runs_in_its_child_and_its_events_come_back(
    tmp_path: Path,
) -> None:
    """The driver's run connects in the child; its events reach demi's handler,
    whose replies go back through the child, in each conversation's order."""
    async with listening_conductor(tmp_path, count=3) as conductor:
        (status,) = conductor.instances()
        assert status.state is PluginState.ACTIVE and status.connected
        await eventually(lambda: len(replies(tmp_path)) == 3)
        assert child_of(conductor, "chat").pid != os.getpid()
    texts = sorted(reply["text"] for reply in replies(tmp_path))
    assert texts == ["hello 1", "hello 2", "hello 3"]


async def test_a_childs_events_of_one_conversation_arrive_in_order_and_once() -> None:
    """A hundred events in one conversation, a handler slower than the platform:
    each is handled once, in the order the child sent them (each send waited for
    demi to accept it, so nothing queued up unbounded on the way)."""
    handled: list[str] = []

    async def slow(event: InboundEvent) -> None:
        await anyio.sleep(0.001)
        handled.append(event.data["text"])

    listening = quick_spec(
        "listens", isolation="process", config={"count": 100, "conversation": "room"}
    )
    settings = DemiSettings(request_timeout=2, platforms={"chat": listening})
    async with Conductor(settings, handler=slow):
        await eventually(lambda: len(handled) >= 100)
    assert handled == [f"hello {number}" for number in range(1, 101)]


async def test_a_redelivery_from_the_child_is_dropped_as_in_process(
    tmp_path: Path,
) -> None:
    async with listening_conductor(tmp_path, count=2, redeliver=True) as conductor:
        await eventually(lambda: len(replies(tmp_path)) == 2)
        await anyio.sleep(0.3)
        assert conductor.instances()[0].state is PluginState.ACTIVE
    assert len(replies(tmp_path)) == 2


async def test_a_connection_that_ends_in_the_child_fails_the_instance(
    tmp_path: Path,
) -> None:
    async with listening_conductor(tmp_path, count=0, then="return") as conductor:
        await eventually(lambda: conductor.instances()[0].state is PluginState.FAILED)
        (status,) = conductor.instances()
        assert "connection lost" in (status.error or "")
        assert not status.fatal


async def test_a_fatal_run_in_the_child_stays_fatal() -> None:
    conductor = conductor_of(chat=quick_spec("run_fatal", isolation="process"))
    async with conductor:
        await eventually(lambda: conductor.instances()[0].state is PluginState.FAILED)
        (status,) = conductor.instances()
        assert status.fatal, status.error


async def test_stopping_ends_the_childs_run_before_its_shutdown(tmp_path: Path) -> None:
    """demi cancels the connection first: the child's run is cancelled (it does not
    need killing), then shutdown, and the child is gone."""
    async with listening_conductor(tmp_path, count=0) as conductor:
        proxy = child_of(conductor, "chat")
        pid = proxy.pid
        assert pid is not None
    assert proxy._child is not None and proxy._child.gone == "stopped"
    await eventually(lambda: not alive(pid), timeout=10)


async def test_a_webhook_crosses_into_the_child_and_its_event_comes_back(
    tmp_path: Path,
) -> None:
    """The raw body, headers and query reach the child's handle_webhook; its
    response and the event it sent come back."""
    secret = "s3cret"
    webhook = quick_spec(
        "webhook_hmac", isolation="process",
        config={"secret": secret, "replies": str(tmp_path / "replies.jsonl")},
    )  # fmt: skip
    settings = DemiSettings(request_timeout=2, platforms={"hook": webhook})

    def signed(body: bytes) -> WebhookRequest:
        signature = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
        headers = {"x-signature": signature}
        return WebhookRequest(
            "POST", "/platforms/hook/webhook", headers, {"q": "1"}, body
        )

    body = json.dumps({"id": "w1", "text": "hello", "conversation": "c"}).encode()
    async with Conductor(settings, handler=echo) as conductor:
        response = await conductor.webhook("hook", signed(body))
        assert response.status == 200
        assert response.body == {"ok": True, "accepted": True, "query": {"q": "1"}}
        assert response.headers == {"x-handled-by": "webhook_hmac"}
        await eventually(lambda: len(replies(tmp_path)) == 1)
        with pytest.raises(PlatformRequestError, match="broke on this callback"):
            await conductor.webhook("hook", signed(b"boom"))
    assert replies(tmp_path)[0]["text"] == "hello"


async def test_a_webhook_to_an_isolated_platform_that_takes_none_is_not_found() -> None:
    request = WebhookRequest("POST", "/platforms/chat/webhook")
    async with conductor_of(chat=quick_spec("good", isolation="process")) as conductor:
        with pytest.raises(PluginNotFoundError, match="takes no webhooks"):
            await conductor.webhook("chat", request)


async def test_a_call_past_its_deadline_is_cancelled_in_the_child() -> None:
    """A hang that honours cancellation is cut off by a cancel message: the child
    answers it, is not killed, and serves the next request."""
    async with conductor_of(chat=quick_spec("request_hangs", isolation="process")) as c:
        pid = child_of(c, "chat").pid
        with pytest.raises(PlatformTimeoutError):
            await c.dispatch("chat", {"text": "hi"})
        await anyio.sleep(1.5)  # past the cancel grace: a kill would have come
        assert c.instances()[0].state is PluginState.ACTIVE
        assert child_of(c, "chat").pid == pid
        assert pid is not None and alive(pid)


async def test_a_child_whose_shutdown_never_ends_is_killed_within_the_bounds() -> None:
    settings = DemiSettings(
        shutdown_timeout=1, stop_timeout=10,
        platforms={"chat": quick_spec("shutdown_swallows_forever", isolation="process")},
    )  # fmt: skip
    conductor = Conductor(settings)
    async with conductor:
        pid = child_of(conductor, "chat").pid
        began = time.monotonic()
    assert time.monotonic() - began < 8  # 1 s shutdown, 1 s cancel grace, a margin
    assert pid is not None and not alive(pid)


async def test_a_driver_that_fails_to_import_in_the_child_fails_to_start() -> None:
    async with conductor_of(chat=quick_spec("import_fails", isolation="process")) as c:
        (status,) = c.instances()
        assert status.state is PluginState.FAILED
        assert "process exited before it said hello: exit code 1" in (
            status.error or ""
        )


async def test_requests_are_answered_after_the_reader_stopped() -> None:
    """demi ends connections before requests in flight finish while it stops; the
    proxy's reader is one, so its callers then read in turns, and all get answers."""
    async with conductor_of(chat=quick_spec("good", isolation="process")) as conductor:
        key = conductor._routes["chat"].key
        connection = conductor.manager._slots[key].connection
        assert connection is not None
        answers: list[Any] = []

        async def ask(n: int) -> None:
            reply = await conductor.manager.handle_request(key, {"n": n}, timeout=5)
            answers.append(reply["n"])

        async with anyio.create_task_group() as group:
            for n in range(10):
                group.start_soon(ask, n)
            await anyio.lowlevel.checkpoint()
            connection.stopping = True  # as demi does: its end is no loss
            connection.scope.cancel()
        assert sorted(answers) == list(range(10))
        assert await conductor.manager.handle_request(key, {"n": 10}) == {"n": 10}


async def test_an_asyncio_only_platform_runs_in_a_process_on_either_backend() -> None:
    chat = quick_spec("iso_asyncio_only", isolation="process")
    async with conductor_of(chat=chat) as conductor:
        reply = await conductor.dispatch("chat", {})
    assert reply["loop"] == "asyncio"
    assert reply["pid"] != os.getpid()


async def test_a_child_that_keeps_dying_is_given_up_by_the_intensity_limit() -> None:
    conductor = conductor_of(
        bad=quick_spec("iso_exits", isolation="process", max_restarts=0)
    )
    async with supervised(conductor) as supervisor:
        with pytest.raises(PlatformRequestError, match="exit code 3"):
            await conductor.dispatch("bad", {"fault": True})
        record = supervisor.record("bad")
        await eventually(lambda: record.gave_up is not None)
        assert record.restarts == 0
        (status,) = conductor.instances()
        assert status.state is PluginState.FAILED
        assert "process exited: exit code 3" in (status.error or "")
        assert supervisor.snapshot()["platforms"]["bad"]["gave_up"]


async def test_every_request_in_flight_fails_at_once_when_the_child_dies() -> None:
    conductor = conductor_of(bad=quick_spec("iso_segfaults", isolation="process"))
    failures: list[str] = []

    async def waits() -> None:
        # Unavailable, as for any platform that is not there: the caller may retry.
        with pytest.raises(PlatformUnavailableError) as caught:
            await conductor.dispatch("bad", {"wait": 1.9})
        failures.append(str(caught.value))

    async with conductor:
        began = time.monotonic()
        async with anyio.create_task_group() as group:
            for _ in range(5):
                group.start_soon(waits)
            await anyio.sleep(0.2)
            with pytest.raises(PlatformRequestError):
                await conductor.dispatch("bad", {"fault": True})
        took = time.monotonic() - began
    assert took < 1.5  # not the 1.9 s they waited for, nor the 2 s timeout
    assert len(failures) == 5
    assert all("killed by signal 11 (SIGSEGV)" in text for text in failures)


async def test_a_reload_moves_an_instance_into_a_process_and_back() -> None:
    inproc = {"chat": quick_spec("good")}
    async with Conductor(DemiSettings(platforms=inproc)) as conductor:
        assert conductor.instances()[0].pid is None
        isolated = {"chat": quick_spec("good", isolation="process")}
        result = await conductor.reload(DemiSettings(platforms=isolated))
        assert result.switched == ["chat"]
        (status,) = conductor.instances()
        assert status.state is PluginState.ACTIVE and status.pid is not None
        pid = status.pid
        assert await conductor.dispatch("chat", {"n": 1}) == {"n": 1}
        result = await conductor.reload(DemiSettings(platforms=inproc))
        assert result.switched == ["chat"]
        assert conductor.instances()[0].pid is None
        assert await conductor.dispatch("chat", {"n": 2}) == {"n": 2}
    await eventually(lambda: not alive(pid), timeout=10)


_UPGRADABLE = """
from demi import WebhookResponse
from demi.platforms import BasePlatform, HealthStatus, PluginHealth


class Upgradable(BasePlatform):
    async def initialize(self, config):
        if BROKEN:
            raise RuntimeError("version VERSION is broken")
        return True

    async def handle_webhook(self, request, inbox):
        return WebhookResponse(200, {"code": "VERSION"})

    async def health_check(self):
        return PluginHealth(status=HealthStatus.HEALTHY)

    async def handle_request(self, request):
        return {"code": "VERSION"}

    async def shutdown(self):
        pass
"""


def _install_upgradable(site: Path, version: str, *, broken: bool = False) -> None:
    """Install version ``version`` of demi-iso-upgradable into ``site``, replacing
    whatever version was there (as pip would); a ``broken`` one fails to start."""
    for old in site.glob("demi_iso_upgradable*"):
        shutil.rmtree(old) if old.is_dir() else old.unlink()
    source = _UPGRADABLE.replace("VERSION", version).replace("BROKEN", str(broken))
    install_distribution(
        site, "demi-iso-upgradable", version, module="demi_iso_upgradable",
        source=source, platforms={"upgradable": "demi_iso_upgradable:Upgradable"},
    )  # fmt: skip


@pytest.fixture
def upgradable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A site folder with version 1.0 of demi-iso-upgradable, on this process's
    path and its children's."""
    site = tmp_path / "site"
    site.mkdir()
    _install_upgradable(site, "1.0")
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.setenv("PYTHONPATH", str(site))
    return site


async def test_a_restart_after_an_upgrade_serves_the_new_code_without_a_failure(
    upgradable: Path,
) -> None:
    """Version 1 is installed and serving under continuous load; version 2 is
    installed and the instance restarted: the new child runs the new code, its
    version shows, and no request failed meanwhile. A broken version 3 leaves
    version 2 serving."""
    site = upgradable
    conductor = conductor_of(chat=quick_spec("upgradable", isolation="process"))
    failures: list[BaseException] = []
    codes: list[str] = []
    async with conductor:
        assert conductor.instances()[0].version == "1.0"
        upgraded = anyio.Event()

        async def load() -> None:
            while not upgraded.is_set():
                try:
                    codes.append((await conductor.dispatch("chat", {}))["code"])
                except PlatformRequestError as err:
                    failures.append(err)
                await anyio.sleep(0.005)

        async with anyio.create_task_group() as group:
            group.start_soon(load)
            await anyio.sleep(0.2)
            _install_upgradable(site, "2.0")
            assert await conductor.restart("chat")
            await anyio.sleep(0.2)
            upgraded.set()
        assert conductor.instances()[0].version == "2.0"
        assert await conductor.dispatch("chat", {}) == {"code": "2.0"}
        _install_upgradable(site, "3.0", broken=True)
        assert not await conductor.restart("chat")
        (status,) = conductor.instances()
        assert status.version == "2.0" and status.state is PluginState.ACTIVE
        assert await conductor.dispatch("chat", {}) == {"code": "2.0"}
    assert failures == []
    assert codes[0] == "1.0" and codes[-1] == "2.0"


async def test_a_reload_restarts_an_isolated_instance_on_its_new_version(
    upgradable: Path,
) -> None:
    async with conductor_of(
        chat=quick_spec("upgradable", isolation="process")
    ) as conductor:
        unchanged = await conductor.reload(conductor.settings)
        assert unchanged.upgraded == [] and unchanged.unchanged == ["chat"]
        _install_upgradable(upgradable, "2.0")
        assert conductor.upgrade_due("chat")
        result = await conductor.reload(conductor.settings)
        assert result.upgraded == ["chat"]
        assert conductor.instances()[0].version == "2.0"
        assert not conductor.upgrade_due("chat")


async def test_an_operator_restart_onto_a_new_version_counts_as_an_upgrade(
    upgradable: Path,
) -> None:
    conductor = conductor_of(chat=quick_spec("upgradable", isolation="process"))
    reasons: list[str] = []
    async with supervised(conductor) as supervisor:
        supervisor.add_restart_observer(lambda name, reason: reasons.append(reason))
        assert await supervisor.restart("chat", reason="operator")
        _install_upgradable(upgradable, "2.0")
        assert await supervisor.restart("chat", reason="operator")
    assert reasons == ["operator", "upgrade"]


#: What the culprit's faulting request raises, the reason its instance fails with,
#: and the reason of its restart (demi_platform_restarts_total{reason}).
_HUNG = "process killed: it did not answer a cancellation within 1s"
HOSTILE = {
    "iso_grows": (PlatformUnavailableError, "over its memory_limit_mb of 200: killed", "memory"),
    "iso_segfaults": (PlatformUnavailableError, "exited: killed by signal 11 (SIGSEGV)", "crash"),
    "iso_exits": (PlatformUnavailableError, "process exited: exit code 3", "crash"),
    "iso_blocks_loop": (PlatformTimeoutError, _HUNG, "hang"),
    "iso_swallows_cancel": (PlatformTimeoutError, _HUNG, "hang"),
}  # fmt: skip


@pytest.mark.parametrize("driver", list(HOSTILE))
async def test_a_hostile_child_fails_alone_and_is_restarted(driver: str) -> None:
    """The fault fails the culprit's request fast (a crash or a memory kill at
    once, a hang at its timeout plus the cancel grace), the instance fails with the
    reason, the supervisor starts a new child and counts the restart as the kind
    of fault it was, and the in-process echo beside it never misses a beat."""
    error, reason, restart_reason = HOSTILE[driver]
    restarts: list[tuple[str, str]] = []
    bad = quick_spec(driver, isolation="process", memory_limit_mb=200)
    conductor = conductor_of(bad=bad, calm=quick_spec("good"))
    failures: list[str] = []
    conductor.manager.subscribe(
        lambda change: (
            failures.append(change.reason or "")
            if change.target is PluginState.FAILED and change.name == "bad"
            else None
        )
    )
    async with supervised(conductor) as supervisor:
        supervisor.add_restart_observer(lambda *told: restarts.append(told))
        first = child_of(conductor, "bad").pid
        slowest = 0.0
        fault_done = anyio.Event()

        async def keep_asking() -> None:
            nonlocal slowest
            while not fault_done.is_set():
                began = time.monotonic()
                assert await conductor.dispatch("calm", {"n": 1}) == {"n": 1}
                slowest = max(slowest, time.monotonic() - began)
                await anyio.sleep(0.01)

        async with anyio.create_task_group() as group:
            group.start_soon(keep_asking)
            began = time.monotonic()
            with pytest.raises(error):
                await conductor.dispatch("bad", {"fault": True})
            took = time.monotonic() - began
            fault_done.set()
        assert took < 8  # request_timeout 2 s, cancel grace 1 s, and a margin
        assert slowest < 0.5  # the conductor's loop was never held

        await eventually(lambda: supervisor.record("bad").restarts >= 1)
        assert any(reason in why for why in failures), failures
        await eventually(lambda: bool(restarts))
        assert restarts == [("bad", restart_reason)]
        assert supervisor.record("bad").last_restart_reason == restart_reason
        await eventually(lambda: conductor.instances()[0].state is PluginState.ACTIVE)
        assert await conductor.dispatch("bad", {"text": "back"}) == {"text": "back"}
        assert child_of(conductor, "bad").pid != first
        assert first is not None and not alive(first)


async def test_a_child_outlives_the_thread_that_started_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """trio starts a process from a worker thread of its cache, and that thread
    ends after ``IDLE_TIMEOUT`` seconds idle (10 s). Linux's parent-death signal
    follows the thread that forked, so a child relying on it died with the thread.
    Here every idle thread is given one more job once the child is up, after which
    it idles out in 50 ms (trio's private setting: a rename fails loudly)."""
    import trio._core._thread_cache

    async with conductor_of(chat=quick_spec("good", isolation="process")) as conductor:
        pid = child_of(conductor, "chat").pid
        monkeypatch.setattr(trio._core._thread_cache, "IDLE_TIMEOUT", 0.05)
        # Every idle thread of the cache gets a job at once (the one that started
        # the child among them), then idles out.
        async with anyio.create_task_group() as group:
            for _ in range(8):
                group.start_soon(anyio.to_thread.run_sync, time.sleep, 0.1)
        await anyio.sleep(0.5)  # the thread is gone by now
        assert pid is not None and alive(pid)
        assert await conductor.dispatch("chat", {"n": 1}) == {"n": 1}
        assert child_of(conductor, "chat").pid == pid


def _children(parent: int) -> list[int]:
    """The pids whose parent is ``parent``, read from /proc."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == parent:
            found.append(int(entry.name))
    return found


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_no_child_outlives_a_sigkilled_demi_run(tmp_path: Path, backend: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DEMI_")}
    env["DEMI_BACKEND"] = backend
    for name in ("one", "two", "three"):
        env[f"DEMI_PLATFORMS__{name.upper()}__DRIVER"] = "good"
        env[f"DEMI_PLATFORMS__{name.upper()}__ISOLATION"] = "process"
    log = tmp_path / "run.log"
    with log.open("wb") as sink:
        demi = subprocess.Popen(
            [str(DEMI), "run"], cwd=tmp_path, env=env, stdout=sink,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while len(children := _children(demi.pid)) < 3:
            assert demi.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.05)
        while log.read_text().count("-> active") < 3:
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.05)
    finally:
        demi.kill()
        demi.wait()
    deadline = time.monotonic() + 5
    while any(alive(pid) for pid in children):
        assert time.monotonic() < deadline, f"children left: {children}"
        time.sleep(0.05)


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_demi_run_over_http_sees_a_child_crash_and_its_restart(
    tmp_path: Path, backend: str
) -> None:
    """A real ``demi run --http``: the isolated child is killed with SIGSEGV from
    outside; the in-process platform stays healthy, /health shows the restarted
    child's new pid, the metrics count the restart, /readyz is ready again, and the
    log says why."""
    (tmp_path / "demi.toml").write_text(
        "[platforms.bad]\ndriver = 'good'\nisolation = 'process'\n"
        "backoff_initial = 0.01\nbackoff_max = 0.02\n"
        "[platforms.calm]\ndriver = 'good'\n",
        encoding="utf-8",
    )
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("DEMI_")}
    env.update(DEMI_HEALTH_INTERVAL="0.2", PYTHONUNBUFFERED="1")
    log = tmp_path / "demi.log"
    command = [str(DEMI), "run", "--http", f"127.0.0.1:{port}", "--backend", backend]
    with log.open("wb") as sink:
        demi = subprocess.Popen(
            command, cwd=tmp_path, env=env, stdout=sink, stderr=subprocess.STDOUT
        )
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=5) as client:

            def health_when(ok: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
                end = time.monotonic() + 30
                while True:
                    assert demi.poll() is None, log.read_text()
                    try:
                        body: dict[str, Any] = client.get("/health").json()
                        if ok(body):
                            return body
                    except httpx.TransportError:
                        pass
                    assert time.monotonic() < end, log.read_text()
                    time.sleep(0.05)

            first = health_when(lambda b: b["platforms"]["bad"].get("pid") is not None)
            pid = first["platforms"]["bad"]["pid"]
            assert first["platforms"]["bad"]["version"] == "1.0.0"
            os.kill(pid, signal.SIGSEGV)
            after = health_when(
                lambda b: (
                    b["platforms"]["bad"]["restarts"] >= 1
                    and b["platforms"]["bad"].get("pid") not in (None, pid)
                    and b["platforms"]["bad"]["state"] == "active"
                )
            )
            assert after["platforms"]["calm"]["restarts"] == 0
            assert after["platforms"]["calm"]["state"] == "active"
            assert client.get("/readyz").status_code == 200
            metrics = client.get("/metrics").text
            restarts = "demi_platform_restarts_total"
            assert metric(metrics, restarts, platform="bad") >= 1
            assert metric(metrics, restarts, platform="calm") == 0
    finally:
        demi.kill()
        demi.wait()
    assert "process exited: killed by signal 11 (SIGSEGV)" in log.read_text()


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_demi_run_upgrades_an_isolated_platform_on_sighup_under_load(
    tmp_path: Path, upgradable: Path, backend: str
) -> None:
    """A real ``demi run --http`` serves version 1.0 under continuous webhook
    traffic; version 2.0 is installed and SIGHUP sent: /health's version goes from
    1.0 to 2.0, the metrics count an ``upgrade``, and no call failed. A broken
    3.0 then leaves 2.0 serving, with the reason in the log."""
    (tmp_path / "demi.toml").write_text(
        "[platforms.chat]\ndriver = 'upgradable'\nisolation = 'process'\n",
        encoding="utf-8",
    )
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("DEMI_")}
    env.update(PYTHONUNBUFFERED="1")
    log = tmp_path / "demi.log"
    command = [str(DEMI), "run", "--http", f"127.0.0.1:{port}", "--backend", backend]
    with log.open("wb") as sink:
        demi = subprocess.Popen(
            command, cwd=tmp_path, env=env, stdout=sink, stderr=subprocess.STDOUT
        )
    base = f"http://127.0.0.1:{port}"
    codes: list[str] = []
    failures: list[str] = []
    done = threading.Event()

    def load() -> None:
        with httpx.Client(base_url=base, timeout=10) as client:
            for _ in range(100_000):  # bounded; ends long before, when told
                if done.is_set():
                    return
                try:
                    answer = client.post("/platforms/chat/webhook", content=b"{}")
                    if answer.status_code == 200:
                        codes.append(answer.json()["code"])
                    else:
                        failures.append(f"{answer.status_code} {answer.text}")
                except httpx.HTTPError as err:
                    failures.append(repr(err))
                time.sleep(0.005)

    try:
        with httpx.Client(base_url=base, timeout=5) as client:

            def chat_when(ok: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
                end = time.monotonic() + 30
                while True:
                    assert demi.poll() is None, log.read_text()
                    try:
                        entry: dict[str, Any] = client.get("/health").json()
                        entry = entry["platforms"]["chat"]
                        if ok(entry):
                            return entry
                    except httpx.TransportError:
                        pass
                    assert time.monotonic() < end, log.read_text()
                    time.sleep(0.05)

            def twenty_more() -> None:
                wanted, end = len(codes) + 20, time.monotonic() + 30
                while len(codes) < wanted:
                    assert loader.is_alive() and not failures, failures[:5]
                    assert time.monotonic() < end, log.read_text()
                    time.sleep(0.02)

            chat_when(lambda e: e["state"] == "active" and e["version"] == "1.0")
            loader = threading.Thread(target=load)
            loader.start()
            try:
                twenty_more()
                _install_upgradable(upgradable, "2.0")
                demi.send_signal(signal.SIGHUP)
                chat_when(lambda e: e["version"] == "2.0" and e["state"] == "active")
                twenty_more()
                _install_upgradable(upgradable, "3.0", broken=True)
                demi.send_signal(signal.SIGHUP)
                end = time.monotonic() + 30
                while "version 3.0 is broken" not in log.read_text():
                    assert time.monotonic() < end, log.read_text()
                    time.sleep(0.05)
                twenty_more()
            finally:
                done.set()
                loader.join(timeout=30)
            after = chat_when(lambda e: True)
            assert after["version"] == "2.0" and after["state"] == "active"
            metrics = client.get("/metrics").text
            restarts = "demi_platform_restarts_total"
            assert metric(metrics, restarts, platform="chat", reason="upgrade") == 1
    finally:
        demi.terminate()
        demi.wait(timeout=30)
    assert failures == [], failures[:5]
    assert codes[0] == "1.0" and codes[-1] == "2.0"
    assert set(codes) == {"1.0", "2.0"}
