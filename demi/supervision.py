"""Supervision: periodic health rounds, restart policies and readiness.

The supervisor keeps, per instance, a short history of health results and applies
its platform's restart policy (``restart``, ``failure_threshold``, ``backoff_initial``,
``backoff_max``, ``max_restarts`` in ``restart_window``) the way an OTP supervisor
does, with exponential backoff and jitter between attempts. Probes read its latest
results; they never run a health check themselves.
"""

from __future__ import annotations

import random
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import anyio
from anyio.abc import TaskGroup, TaskStatus

from .conductor import Conductor
from .core.config import PlatformSettings
from .core.logger import get_logger
from .platforms.base import HealthStatus, PluginHealth
from .plugins.base import PluginState

__all__ = ["InstanceRecord", "Supervisor", "backoff_delay"]

LOG = get_logger(__name__)

#: Health results kept per instance.
HISTORY = 10

#: Told when the supervisor restarts an instance (instance name).
RestartObserver = Callable[[str], None]
#: Told of each round's results, by instance name.
RoundObserver = Callable[[dict[str, PluginHealth]], None]


def backoff_delay(
    attempt: int, spec: PlatformSettings, rng: Callable[[], float] = random.random
) -> float:
    """Seconds to wait before restart attempt ``attempt`` (0-based).

    ``backoff_initial`` doubling per attempt up to ``backoff_max``, then "equal
    jitter": somewhere between half of that and all of it, so a fleet of replicas
    does not retry in lockstep.
    """
    ceiling = min(spec.backoff_max, spec.backoff_initial * 2.0**attempt)
    return ceiling / 2 + rng() * ceiling / 2


@dataclass(slots=True)
class InstanceRecord:
    """What the supervisor remembers about one instance."""

    history: deque[PluginHealth] = field(default_factory=lambda: deque(maxlen=HISTORY))
    consecutive_failures: int = 0
    #: Restarts done so far, in total.
    restarts: int = 0
    #: Monotonic times of recent restarts, for the intensity limit.
    recent: deque[float] = field(default_factory=deque)
    #: Attempts since the instance was last healthy (drives the backoff).
    attempts: int = 0
    #: A restart is scheduled or running.
    restarting: bool = False
    #: Why the supervisor gave up, once the intensity limit was exceeded.
    gave_up: str | None = None

    @property
    def latest(self) -> PluginHealth | None:
        """The newest health result, if any."""
        return self.history[-1] if self.history else None


class Supervisor:
    """Runs health rounds every ``interval`` seconds and heals what it can.

    :param conductor: the running conductor whose instances it watches.
    :param interval: seconds between rounds (``DEMI_HEALTH_INTERVAL`` by default).
    :param rng: jitter source, ``random.random`` by default.
    """

    def __init__(
        self,
        conductor: Conductor,
        *,
        interval: float | None = None,
        rng: Callable[[], float] = random.random,
    ) -> None:
        self.conductor = conductor
        self.interval = (
            interval if interval is not None else conductor.settings.health_interval
        )
        self._rng = rng
        self._records: dict[str, InstanceRecord] = {}
        self._observers: list[RestartObserver] = []
        self._round_observers: list[RoundObserver] = []
        self._group: TaskGroup | None = None
        #: Monotonic time of the last completed round (liveness).
        self.last_round: float | None = None
        #: Number of rounds completed.
        self.rounds = 0
        self._round_done = anyio.Event()

    def add_restart_observer(self, observer: RestartObserver) -> None:
        """Call ``observer(instance)`` after each restart attempt."""
        self._observers.append(observer)

    def add_round_observer(self, observer: RoundObserver) -> None:
        """Call ``observer(results)`` after each health round."""
        self._round_observers.append(observer)

    def record(self, instance: str) -> InstanceRecord:
        """The record of ``instance`` (created empty on first use)."""
        return self._records.setdefault(instance, InstanceRecord())

    # -- the loop -------------------------------------------------------------

    async def run(
        self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        """Run rounds until cancelled. Restarts run beside the rounds, so a slow
        restart never delays another instance's health check."""
        async with anyio.create_task_group() as group:
            self._group = group
            task_status.started()
            try:
                while True:
                    await self.round()
                    await anyio.sleep(self.interval)
            finally:
                self._group = None
                group.cancel_scope.cancel()

    async def wait_round(self) -> None:
        """Wait until the next round completes."""
        await self._round_done.wait()

    async def round(self) -> dict[str, PluginHealth]:
        """One health round over every active instance, then the restart policy."""
        # A restart under way may finish while the checks run, so their results for
        # it may describe the old platform: they must not count against the new one.
        restarting = {name for name, r in self._records.items() if r.restarting}
        results = await self.conductor.check_health()
        for status in self.conductor.instances():
            name = status.instance
            record = self.record(name)
            health = results.get(name)
            if health is not None and name not in restarting:
                record.history.append(health)
                if health.status is HealthStatus.UNHEALTHY:
                    record.consecutive_failures += 1
                else:
                    record.consecutive_failures = 0
                    record.attempts = 0
                self._log_health(name, health)
            self._apply_policy(name, status.state, record)
        self._log_round(results)
        for observer in self._round_observers:
            observer(results)
        self.last_round = time.monotonic()
        self.rounds += 1
        done, self._round_done = self._round_done, anyio.Event()
        done.set()
        return results

    def _log_round(self, results: dict[str, PluginHealth]) -> None:
        counts: dict[str, int] = {}
        for health in results.values():
            counts[health.status.value] = counts.get(health.status.value, 0) + 1
        summary = ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))
        LOG.info(
            "health round %d: %s", self.rounds + 1, summary or "no active platform"
        )

    def _log_health(self, name: str, health: PluginHealth) -> None:
        if health.status is HealthStatus.HEALTHY:
            LOG.debug("platform %s: healthy (%.1f ms)", name, health.response_time_ms)
        else:
            LOG.warning(
                "platform %s: %s (%.1f ms): %s",
                name, health.status.value, health.response_time_ms, health.error_message,
            )  # fmt: skip

    def _apply_policy(
        self, name: str, state: PluginState | None, record: InstanceRecord
    ) -> None:
        spec = self.conductor.spec_of(name)
        if (
            spec is None
            or spec.restart == "never"
            or record.restarting
            or record.gave_up
        ):
            return
        unhealthy = record.consecutive_failures >= spec.failure_threshold
        failed = state in (PluginState.FAILED, PluginState.STOPPED)
        if not (unhealthy or failed):
            return
        now = time.monotonic()
        while record.recent and now - record.recent[0] > spec.restart_window:
            record.recent.popleft()
        if len(record.recent) >= spec.max_restarts:
            record.gave_up = f"gave up after {len(record.recent)} restarts in {spec.restart_window:g}s"
            LOG.critical("platform %s: %s; it stays failed", name, record.gave_up)
            if self._group is not None:
                self._group.start_soon(self.conductor.fail, name, record.gave_up)
            return
        if self._group is None:
            return
        record.restarting = True
        delay = backoff_delay(record.attempts, spec, self._rng)
        reason = (
            "failed" if failed else f"{record.consecutive_failures} unhealthy checks"
        )
        LOG.warning("platform %s: %s; restarting in %.2fs", name, reason, delay)
        self._group.start_soon(self._restart, name, delay)

    async def _restart(self, name: str, delay: float) -> None:
        record = self.record(name)
        try:
            await anyio.sleep(delay)
            record.attempts += 1
            record.restarts += 1
            record.recent.append(time.monotonic())
            ok = await self.conductor.restart(name)
            record.consecutive_failures = 0
            LOG.info("platform %s: restart %s", name, "succeeded" if ok else "failed")
        except Exception as err:  # an instance removed by reload, for instance
            LOG.warning("platform %s: restart skipped: %s", name, err)
        finally:
            record.restarting = False
        for observer in self._observers:
            observer(name)

    # -- operator commands ----------------------------------------------------

    async def restart(self, instance: str, *, reason: str) -> bool:
        """Restart ``instance`` now because someone asked (``reason``, for example
        ``"operator"``); it counts as a restart like the supervisor's own.

        :returns: whether it is active again.
        """
        record = self.record(instance)
        record.restarts += 1
        try:
            return await self.conductor.restart(instance)
        finally:
            for observer in self._observers:
                observer(instance)

    def liveness(self) -> str | None:
        """Why this supervisor is not alive (health rounds stopped), or ``None``."""
        return None

    def reset(self, instance: str | None = None) -> None:
        """Forget that the supervisor gave up on ``instance`` (all when ``None``), so
        the next round retries it: what an operator command or a reload does."""
        names = [instance] if instance is not None else list(self._records)
        for name in names:
            record = self.record(name)
            record.gave_up = None
            record.recent.clear()
            record.attempts = 0

    # -- what probes read -----------------------------------------------------

    def readiness(self) -> tuple[bool, dict[str, str]]:
        """Whether every required instance is active and healthy, and if not, why."""
        problems: dict[str, str] = {}
        if not self.conductor.accepting:
            problems["demi"] = "not accepting requests"
        for status in self.conductor.instances():
            if not status.required:
                continue
            record = self.record(status.instance)
            latest = record.latest
            if record.gave_up:
                problems[status.instance] = record.gave_up
            elif status.state is not PluginState.ACTIVE:
                state = status.state.value if status.state else "not started"
                problems[status.instance] = (
                    f"{state}: {status.error or 'no reason recorded'}"
                )
            elif latest is not None and latest.status is not HealthStatus.HEALTHY:
                problems[status.instance] = (
                    f"{latest.status.value}: {latest.error_message}"
                )
        return not problems, problems

    def snapshot(self) -> dict[str, Any]:
        """Everything ``GET /health`` shows."""
        platforms: dict[str, Any] = {}
        for status in self.conductor.instances():
            record = self.record(status.instance)
            latest = record.latest
            platforms[status.instance] = {
                "driver": status.driver,
                "state": status.state.value if status.state else None,
                "health": latest.status.value if latest else HealthStatus.UNKNOWN.value,
                "error": status.error or (latest.error_message if latest else None),
                "consecutive_failures": record.consecutive_failures,
                "restarts": record.restarts,
                "required": status.required,
                "gave_up": record.gave_up,
                "response_time_ms": latest.response_time_ms if latest else None,
                "last_check": latest.last_check.isoformat() if latest else None,
                "in_flight": status.in_flight,
                "seconds_in_state": dict(status.time_in_states),
            }
        ready, _ = self.readiness()
        worst = {p["health"] for p in platforms.values()}
        if not ready or "unhealthy" in worst:
            overall = "unhealthy" if not ready else "degraded"
        elif "degraded" in worst or "unknown" in worst:
            overall = "degraded"
        else:
            overall = "healthy"
        return {"status": overall, "ready": ready, "platforms": platforms}
