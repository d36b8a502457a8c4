"""A health round that no single platform can hold up.

Each instance's check runs as a task of its own in a long-lived task group. The round
waits for a check at most ``health_timeout`` plus a grace: the manager cancels a check
at its timeout, so only a check that ignores that cancellation is still running after
the grace. Such a check is given up on: its instance gets an ``unhealthy`` verdict
(recorded with the manager, the owner of the latest result), and no new check of that
instance starts until the stuck task ends, so stuck tasks never pile up.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime

import anyio
from anyio.abc import TaskGroup

from .conductor import Conductor
from .core.logger import get_logger
from .exceptions import DemiError
from .platforms.base import HealthStatus, PluginHealth
from .plugins.base import PluginState

# Its records belong to supervision, whose private helper this is.
LOG = get_logger("demi.supervision")


@dataclass(eq=False, slots=True)
class _Check:
    """One health check under way."""

    #: ``anyio.current_time()`` when it began.
    started: float
    done: anyio.Event = field(default_factory=anyio.Event)
    #: ``None`` until it ends, and after it if the instance was no longer active.
    result: PluginHealth | None = None
    #: A round gave up waiting for it.
    stuck: bool = False


class CheckRunner:
    """Runs bounded health rounds over a conductor's active instances.

    :param grace: seconds a check may run past ``health_timeout`` before it is given
        up on as ignoring cancellation.
    """

    def __init__(self, conductor: Conductor, grace: float) -> None:
        self.conductor = conductor
        self.grace = grace
        self._running: dict[str, _Check] = {}

    def stuck(self, instance: str) -> bool:
        """Whether a check of ``instance`` was given up on and is still running."""
        check = self._running.get(instance)
        return check is not None and check.stuck

    async def round(self, group: TaskGroup) -> dict[str, PluginHealth]:
        """Check every active instance, each as a task in ``group``; return the
        results by instance name, a verdict standing in for each stuck check.

        Returns within ``health_timeout`` plus the grace, whatever the checks do.
        """
        timeout = self.conductor.settings.health_timeout
        limit = timeout + self.grace
        waiting: dict[str, _Check] = {}
        for status in self.conductor.instances():
            if status.state is not PluginState.ACTIVE:
                continue
            name = status.instance
            check = self._running.get(name)
            if check is None:  # else the previous one is still running: wait for it
                check = _Check(anyio.current_time())
                self._running[name] = check
                group.start_soon(self._run, name, check)
            waiting[name] = check
        for check in waiting.values():
            left = check.started + limit - anyio.current_time()
            if left > 0 and not check.done.is_set():
                with anyio.move_on_after(left):
                    await check.done.wait()
        results: dict[str, PluginHealth] = {}
        for name, check in waiting.items():
            if check.done.is_set():
                if check.result is not None:
                    results[name] = check.result
                continue
            if not check.stuck:
                check.stuck = True
                LOG.error(
                    "platform %s: health_check did not end within %gs of its %gs "
                    "timeout; it ignores cancellation (no new check until it ends)",
                    name, self.grace, timeout,
                )  # fmt: skip
            results[name] = self._verdict(name, check, timeout)
        return results

    def _verdict(self, name: str, check: _Check, timeout: float) -> PluginHealth:
        elapsed_ms = (anyio.current_time() - check.started) * 1000
        verdict = PluginHealth(
            HealthStatus.UNHEALTHY,
            elapsed_ms,
            datetime.now(UTC),
            f"health_check did not end within {self.grace:g}s of its {timeout:g}s "
            "timeout; it ignores cancellation",
        )
        self.conductor.record_health(name, verdict)
        return verdict

    async def _run(self, name: str, check: _Check) -> None:
        try:
            check.result = await self.conductor.check_one(name)
        except DemiError:
            pass  # no longer active (failed, restarted or removed): nothing to say
        finally:
            check.done.set()
            if self._running.get(name) is check:
                del self._running[name]
            if check.stuck:
                seconds = anyio.current_time() - check.started
                LOG.warning(
                    "platform %s: its stuck health check ended after %.1fs",
                    name,
                    seconds,
                )


def log_result(name: str, health: PluginHealth) -> None:
    """Log one instance's result: DEBUG when healthy, WARNING otherwise."""
    if health.status is HealthStatus.HEALTHY:
        LOG.debug("platform %s: healthy (%.1f ms)", name, health.response_time_ms)
    else:
        LOG.warning(
            "platform %s: %s (%.1f ms): %s",
            name, health.status.value, health.response_time_ms, health.error_message,
        )  # fmt: skip


def log_round(number: int, results: dict[str, PluginHealth], changed: bool) -> None:
    """Log a round's summary: INFO only if it ``changed`` something (a status, a
    restart, a give-up), else DEBUG, so quiet rounds do not flood the log."""
    counts: dict[str, int] = {}
    for health in results.values():
        counts[health.status.value] = counts.get(health.status.value, 0) + 1
    summary = ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))
    level = logging.INFO if changed else logging.DEBUG
    LOG.log(level, "health round %d: %s", number, summary or "no active platform")
