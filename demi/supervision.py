"""Supervision: periodic health rounds, restart policies, readiness and liveness.

Health rounds. Every ``interval`` seconds each active instance is checked, each check
a task of its own; a round lasts at most ``health_timeout`` plus a short grace, so a
check that ignores cancellation is recorded ``unhealthy`` (and not checked again
until it ends) while every other instance keeps being checked on time. The latest
result of an instance has one owner, the plugin manager (``InstanceStatus.health``);
probes, ``snapshot()`` and the metrics read it there and never run a check themselves.
The supervisor keeps a short history of its own for the restart policy.

Restart policy, per platform (``restart``, ``failure_threshold``, ``backoff_initial``,
``backoff_max``, ``max_restarts``, ``restart_window``), the way an OTP supervisor does
it, with exponential backoff and jitter between attempts:

* An instance is restarted when it is ``failed`` (or ``stopped``), or after
  ``failure_threshold`` consecutive unhealthy checks. A failure is acted on when it
  happens (the supervisor follows the manager's transitions), not at the next
  round: a listening platform's lost connection is ``failed`` with the reason
  ``connection lost: ...``, and its backoff starts at once.
* An instance that failed with a :class:`~demi.PlatformFatalError` (``fatal`` in
  its status: a revoked token, a banned account) is given up on at once: CRITICAL
  log with the reason, ``gave_up`` in ``snapshot()``, no backoff, no restart.
* An instance that is still starting (``loading``: a listening platform whose
  ``run`` has not called ``task_status.started()`` yet) is neither checked nor
  restarted for being unhealthy; its init timeout bounds that.
* The supervisor counts its restarts of an instance since the instance was last
  *stably healthy*: no unhealthy check over a span of at least ``restart_window``
  seconds (first to last check of a healthy streak, so at least two checks whatever
  the interval). That count resets to zero then; it is also the backoff attempt.
* When a restart is due and that count has reached ``max_restarts``, the supervisor
  gives up: it logs CRITICAL and fails the instance (``gave_up`` in ``snapshot()``,
  readiness false if it is required) until :meth:`Supervisor.reset` (a reload) or an
  operator restart. So an instance that never comes back is given up on after
  exactly ``max_restarts`` restarts, for any ``interval``, each restart at most
  ``failure_threshold`` rounds (each ``interval + health_timeout + grace`` at most)
  plus ``backoff_max`` plus the restart itself after the previous one.
* Operator restarts (:meth:`Supervisor.restart`) count in ``restarts`` and the
  metrics, with their reason, but not towards ``max_restarts``; they forget a give-up.
* Each restart has a reason (:data:`RESTART_REASONS`); a process-isolated instance
  whose child went away is restarted for a ``crash``, ``hang`` or ``memory``.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import Any

import anyio
from anyio.abc import TaskGroup, TaskStatus

from ._failures import RESTARTABLE, FailureAlarm
from ._health_round import CheckRunner, log_result, log_round
from ._probes import readiness, snapshot
from ._restarts import HISTORY, RESTART_REASONS, InstanceRecord, backoff_delay
from .conductor import Conductor, InstanceStatus
from .core.config import PlatformSettings
from .core.logger import get_logger
from .exceptions import DemiError, PluginNotFoundError
from .isolation import fault_of
from .platforms.base import HealthStatus, PluginHealth

__all__ = [
    "GRACE",
    "HISTORY",
    "RESTART_REASONS",
    "InstanceRecord",
    "Supervisor",
    "backoff_delay",
]

LOG = get_logger(__name__)

#: Seconds a health check may run past ``health_timeout`` before it is given up on.
GRACE = 5.0

#: Told of each restart: the instance name and why (one of :data:`RESTART_REASONS`,
#: or the reason given to :meth:`Supervisor.restart`).
RestartObserver = Callable[[str, str], None]
#: Told of each round's results, by instance name.
RoundObserver = Callable[[dict[str, PluginHealth]], None]


class Supervisor:
    """Runs health rounds every ``interval`` seconds and heals what it can.

    :param conductor: the running conductor whose instances it watches.
    :param interval: seconds between rounds (``DEMI_HEALTH_INTERVAL`` by default).
    :param rng: jitter source, ``random.random`` by default.
    :param grace: seconds a health check may outlive ``health_timeout`` before it is
        given up on as ignoring cancellation.
    """

    def __init__(
        self,
        conductor: Conductor,
        *,
        interval: float | None = None,
        rng: Callable[[], float] = random.random,
        grace: float = GRACE,
    ) -> None:
        self.conductor = conductor
        self.interval = (
            interval if interval is not None else conductor.settings.health_interval
        )
        self.grace = grace
        self._rng = rng
        self._checks = CheckRunner(conductor, grace)
        self._records: dict[str, InstanceRecord] = {}
        self._observers: list[RestartObserver] = []
        self._round_observers: list[RoundObserver] = []
        self._group: TaskGroup | None = None
        #: Monotonic time of the last completed round (liveness).
        self.last_round: float | None = None
        #: Number of rounds completed.
        self.rounds = 0
        self._round_done = anyio.Event()
        self._alarm = FailureAlarm()
        # Liveness counts from here until the first round completes.
        self._since = time.monotonic()

    def add_restart_observer(self, observer: RestartObserver) -> None:
        """Call ``observer(instance, reason)`` after each restart attempt."""
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
        """Run rounds until cancelled. Health checks and restarts run as tasks of
        their own beside the rounds, so neither a stuck check nor a slow restart
        delays another instance's health check. A check that ignores cancellation
        still holds up the end of this call until it ends by itself."""
        with self._alarm.following(self.conductor.manager):
            async with anyio.create_task_group() as group:
                self._group = group
                self._since = time.monotonic()
                task_status.started()
                try:
                    while True:
                        await self.round()
                        # A failure meanwhile gets the policy at once.
                        await self._alarm.sleep(self.interval, self._apply_all)
                finally:
                    self._group = None
                    group.cancel_scope.cancel()

    def _apply_all(self) -> bool:
        """The restart policy over every instance, without a health round; return
        whether it restarted or gave up on any."""
        changed = False
        for status in self.conductor.instances():
            record = self.record(status.instance)
            changed |= self._apply_policy(status, record)
        return changed

    async def wait_round(self) -> None:
        """Wait until the next round completes."""
        await self._round_done.wait()

    async def round(self) -> dict[str, PluginHealth]:
        """One health round over every active instance, then the restart policy.

        Bounded by ``health_timeout`` plus the grace while :meth:`run` runs; called
        on its own, it waits for its checks to end before returning.
        """
        # A restart under way may finish while the checks run, so their results for
        # it may describe the old platform: they must not count against the new one.
        restarting = {name for name, r in self._records.items() if r.restarting}
        if self._group is not None:
            results = await self._checks.round(self._group)
        else:
            async with anyio.create_task_group() as group:
                results = await self._checks.round(group)
        changed = False
        for status in self.conductor.instances():
            name = status.instance
            record = self.record(name)
            health = results.get(name)
            if health is not None and name not in restarting:
                changed |= self._observe(name, health, record)
            changed |= self._apply_policy(status, record)
        log_round(self.rounds + 1, results, changed)
        for observer in self._round_observers:
            observer(results)
        self.last_round = time.monotonic()
        self.rounds += 1
        done, self._round_done = self._round_done, anyio.Event()
        done.set()
        return results

    def _observe(self, name: str, health: PluginHealth, record: InstanceRecord) -> bool:
        """Count one result; return whether the instance's status changed."""
        previous = record.history[-1].status if record.history else None
        record.history.append(health)
        now = time.monotonic()
        if health.status is HealthStatus.UNHEALTHY:
            record.consecutive_failures += 1
            record.healthy_since = None
        else:
            record.consecutive_failures = 0
            spec = self.conductor.spec_of(name)
            if record.healthy_since is None:
                record.healthy_since = now
            elif spec is not None and now - record.healthy_since >= spec.restart_window:
                record.unstable_restarts = 0  # stably healthy: a fresh start
        log_result(name, health)
        return previous is not health.status

    def _apply_policy(self, status: InstanceStatus, record: InstanceRecord) -> bool:
        """Schedule a restart or give up if due; return whether it did either."""
        name = status.instance
        spec = self.conductor.spec_of(name)
        if (
            spec is None
            or spec.restart == "never"
            or record.restarting
            or record.gave_up
            or not self.conductor.accepting
        ):
            return False
        failed = status.state in RESTARTABLE
        if failed and status.fatal:
            # The platform said retrying cannot help (a revoked token): no backoff.
            record.gave_up = status.error or "fatal: no reason recorded"
            LOG.critical(
                "platform %s: %s; not restarted, it stays failed", name, record.gave_up
            )
            return True
        unhealthy = record.consecutive_failures >= spec.failure_threshold
        if not (unhealthy or failed):
            return False
        if record.unstable_restarts >= spec.max_restarts:
            record.gave_up = (
                f"gave up after {record.unstable_restarts} restart(s) without "
                f"{spec.restart_window:g}s of health"
            )
            LOG.critical("platform %s: %s; it stays failed", name, record.gave_up)
            if self._group is not None:
                self._group.start_soon(self.conductor.fail, name, record.gave_up)
            return True
        if self._group is None:
            return False
        record.restarting = True
        delay = backoff_delay(record.unstable_restarts, spec, self._rng)
        reason = self._failure_reason(status, spec) if failed else "unhealthy"
        why = (
            f"failed ({status.error or 'no reason recorded'})"
            if failed
            else f"{record.consecutive_failures} unhealthy checks"
        )
        LOG.warning("platform %s: %s; restarting in %.2fs", name, why, delay)
        self._group.start_soon(self._restart, name, delay, reason)
        return True

    @staticmethod
    def _failure_reason(status: InstanceStatus, spec: PlatformSettings) -> str:
        """``failed``, or for a process-isolated instance whose child went away, the
        kind of fault its reason tells (``crash``, ``hang``, ``memory``)."""
        fault = fault_of(status.error) if spec.isolation == "process" else None
        return fault or "failed"

    async def _restart(self, name: str, delay: float, reason: str) -> None:
        record = self.record(name)
        attempted = False
        try:
            await anyio.sleep(delay)
            if not self.conductor.accepting:
                LOG.info("platform %s: restart skipped: demi is stopping", name)
                return
            record.unstable_restarts += 1
            record.healthy_since = None
            attempted = True
            ok = await self._restart_now(name, reason)
            LOG.info("platform %s: restart %s", name, "succeeded" if ok else "failed")
        except DemiError as err:  # an instance removed by reload, for instance
            LOG.warning("platform %s: restart skipped: %s", name, err)
        finally:
            record.restarting = False
            # A restart that failed again gets its next backoff at once.
            self._alarm.ring()
        if attempted:
            self._notify(name, reason)

    async def _restart_now(self, name: str, reason: str) -> bool:
        """Restart ``name`` and count it, whoever asked."""
        record = self.record(name)
        record.restarts += 1
        record.last_restart_reason = reason
        try:
            return await self.conductor.restart(name)
        finally:
            record.consecutive_failures = 0

    def restarted(self, instance: str, *, reason: str) -> None:
        """Count a restart someone else did (a reload's ``upgrade``) as
        :meth:`restart` counts its own."""
        self.reset(instance)
        record = self.record(instance)
        record.restarts += 1
        record.last_restart_reason = reason
        self._notify(instance, reason)

    def _notify(self, name: str, reason: str) -> None:
        for observer in self._observers:
            observer(name, reason)

    # -- operator commands ----------------------------------------------------

    async def restart(self, instance: str, *, reason: str) -> bool:
        """Restart ``instance`` now because someone asked (``reason``, for example
        ``"operator"``; ``"upgrade"`` instead when a new version of its
        process-isolated driver is installed). It counts in ``restarts`` and the metrics like the
        supervisor's own restarts, and forgets a give-up (see :meth:`reset`); it
        does not count towards ``max_restarts``.

        :returns: whether it is active again; ``False`` without doing anything while
            the conductor is not accepting requests (stopping).
        :raises PluginNotFoundError: no such instance is configured.
        """
        if self.conductor.spec_of(instance) is None:
            raise PluginNotFoundError(
                instance, f"no platform instance {instance!r} to restart"
            )
        if not self.conductor.accepting:
            LOG.warning(
                "platform %s: %s restart refused: demi is stopping", instance, reason
            )
            return False
        if self.conductor.upgrade_due(instance):
            reason = "upgrade"
        self.reset(instance)
        record = self.record(instance)
        # Results of checks that began before it must not count against the new one.
        mine = not record.restarting
        record.restarting = True
        try:
            ok = await self._restart_now(instance, reason)
        finally:
            if mine:
                record.restarting = False
        LOG.info(
            "platform %s: %s restart %s", instance, reason, "done" if ok else "failed"
        )
        self._notify(instance, reason)
        return ok

    def liveness(self) -> str | None:
        """Why this supervisor is not alive, or ``None``: health rounds have stopped
        when none completed for ``3 × interval + health_timeout + grace`` seconds
        (a round takes at most ``health_timeout + grace``, then waits ``interval``)."""
        limit = 3 * self.interval + self.conductor.settings.health_timeout + self.grace
        since = self.last_round if self.last_round is not None else self._since
        age = time.monotonic() - since
        if age <= limit:
            return None
        return f"no health round completed for {age:.1f}s (limit {limit:g}s)"

    def reset(self, instance: str | None = None) -> None:
        """Forget that the supervisor gave up on ``instance`` (all when ``None``) and
        its restart count, so the next round retries it: what an operator command or
        a reload does."""
        names = [instance] if instance is not None else list(self._records)
        for name in names:
            record = self.record(name)
            record.gave_up = None
            record.unstable_restarts = 0

    # -- what probes read -----------------------------------------------------

    def readiness(self) -> tuple[bool, dict[str, str]]:
        """Whether every required instance is active and healthy, and if not, why."""
        return readiness(self.conductor, self.record)

    def snapshot(self) -> dict[str, Any]:
        """Everything ``GET /health`` shows."""
        return snapshot(self.conductor, self.record)
