"""Supervision of listening platforms: a lost connection is reconnected at once
through the restart policy, a fatal one is given up on at once, and a platform that
is still connecting is neither checked nor restarted (installed fixture plugins)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import anyio
import pytest
from demi_testplugins.run_fatal import RunFatalPlatform
from demi_testplugins.slow_connect import SlowConnectPlatform
from helpers import quick_spec, supervised

from demi import DemiSettings, PluginState
from demi.conductor import Conductor
from demi.core.config import PlatformSettings
from demi.supervision import Supervisor

#: Far longer than any of these tests may take: what they see happens between rounds.
LONG_INTERVAL = 60.0


def conductor_of(**platforms: PlatformSettings) -> Conductor:
    """A conductor over the installed entry points (tests/fixture_dist)."""
    settings = DemiSettings(
        health_interval=LONG_INTERVAL, health_timeout=1, stop_timeout=10,
        platforms=platforms,
    )  # fmt: skip
    return Conductor(settings)


def state_of(conductor: Conductor) -> PluginState | None:
    """The state of the conductor's only instance (``None`` before it has one)."""
    statuses = conductor.instances()
    return statuses[0].state if statuses else None


async def eventually(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    """Poll ``condition`` until it holds (bounded)."""
    with anyio.fail_after(timeout):
        while not condition():  # noqa: ASYNC110 (plain state: polling is the point)
            await anyio.sleep(0.02)


async def test_a_lost_connection_is_reconnected_without_waiting_for_a_round(
    tmp_path: Path,
) -> None:
    """Rounds are a minute apart, yet the connection that ended comes back within
    seconds, counted as a restart of a failed instance."""
    log = tmp_path / "connections.log"
    conductor = conductor_of(
        chat=quick_spec(
            "listens", config={"then": "return", "log": str(log), "count": 0}
        )
    )
    async with supervised(conductor) as supervisor:
        record = supervisor.record("chat")
        await eventually(lambda: record.restarts >= 2)
        assert record.last_restart_reason == "failed"
        assert supervisor.rounds == 1  # only the first round ran: no round did this
        assert log.read_text().count("connected") >= 3
        assert record.gave_up is None


async def test_a_fatal_connection_is_given_up_on_at_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A PlatformFatalError from run: CRITICAL with the reason, gave_up, no restart."""
    RunFatalPlatform.connections = 0
    conductor = conductor_of(bot=quick_spec("run_fatal"))
    with caplog.at_level(logging.CRITICAL, logger="demi.supervision"):
        async with supervised(conductor) as supervisor:
            record = supervisor.record("bot")
            await eventually(lambda: record.gave_up is not None)
            await anyio.sleep(0.3)  # time enough for several tiny backoffs
            snapshot = supervisor.snapshot()["platforms"]["bot"]
            status = conductor.instances()[0]
    assert RunFatalPlatform.connections == 1
    assert record.restarts == 0
    assert status.state is PluginState.FAILED and status.fatal
    assert "revoked the bot token" in (record.gave_up or "")
    assert snapshot["gave_up"] == record.gave_up and snapshot["fatal"] is True
    critical = [r.getMessage() for r in caplog.records if r.levelno == logging.CRITICAL]
    assert any("bot" in m and "revoked the bot token" in m for m in critical), critical


async def test_a_platform_still_connecting_is_not_checked_nor_restarted() -> None:
    """Until run calls started() the instance is loading: rounds skip it, however
    unhealthy it would say it is; once connected, it is checked."""
    SlowConnectPlatform.checks = 0
    conductor = conductor_of(
        slow=quick_spec(
            "slow_connect", failure_threshold=1, config={"connect_after": 1.0}
        )
    )
    supervisor = Supervisor(conductor, rng=lambda: 1.0)
    async with conductor.session(), anyio.create_task_group() as group:
        group.start_soon(conductor.start)
        await eventually(lambda: state_of(conductor) is PluginState.LOADING)
        for _ in range(3):
            await supervisor.round()
        assert state_of(conductor) is PluginState.LOADING
        assert SlowConnectPlatform.checks == 0
        assert supervisor.record("slow").consecutive_failures == 0
        assert supervisor.record("slow").restarts == 0
        await eventually(lambda: state_of(conductor) is PluginState.ACTIVE)
        await supervisor.round()
        assert SlowConnectPlatform.checks == 1
        assert supervisor.record("slow").consecutive_failures == 1
