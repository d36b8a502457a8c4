"""What the probes read: readiness and the ``GET /health`` snapshot.

The latest health of an instance is read from its one owner, the plugin manager
(``InstanceStatus.health``), so ``/health``, ``/readyz`` and ``/metrics`` always agree;
the supervisor's records add only what the supervisor itself knows (restarts,
give-ups, consecutive failures).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ._restarts import InstanceRecord
from .conductor import Conductor
from .platforms.base import HealthStatus
from .plugins.base import PluginState

__all__ = ["readiness", "snapshot"]

#: The supervisor's record of an instance, by instance name.
Records = Callable[[str], InstanceRecord]


def readiness(conductor: Conductor, record: Records) -> tuple[bool, dict[str, str]]:
    """Whether every required instance is active and healthy, and if not, why."""
    problems: dict[str, str] = {}
    if not conductor.accepting:
        problems["demi"] = "not accepting requests"
    for status in conductor.instances():
        if not status.required:
            continue
        gave_up = record(status.instance).gave_up
        latest = status.health
        if gave_up:
            problems[status.instance] = gave_up
        elif status.state is not PluginState.ACTIVE:
            state = status.state.value if status.state else "not started"
            problems[status.instance] = (
                f"{state}: {status.error or 'no reason recorded'}"
            )
        elif latest is not None and latest.status is not HealthStatus.HEALTHY:
            problems[status.instance] = f"{latest.status.value}: {latest.error_message}"
    return not problems, problems


def snapshot(conductor: Conductor, record: Records) -> dict[str, Any]:
    """Everything ``GET /health`` shows."""
    platforms: dict[str, Any] = {}
    for status in conductor.instances():
        rec = record(status.instance)
        latest = status.health
        platforms[status.instance] = {
            "driver": status.driver,
            "state": status.state.value if status.state else None,
            "health": latest.status.value if latest else HealthStatus.UNKNOWN.value,
            "error": status.error or (latest.error_message if latest else None),
            "consecutive_failures": rec.consecutive_failures,
            "restarts": rec.restarts,
            "last_restart_reason": rec.last_restart_reason,
            "required": status.required,
            "gave_up": rec.gave_up,
            "response_time_ms": latest.response_time_ms if latest else None,
            "last_check": latest.last_check.isoformat() if latest else None,
            "in_flight": status.in_flight,
            # A listening platform's connection (None for one that does not listen).
            "connected": status.connected,
            "fatal": status.fatal,
            "inbox_depth": status.inbox_depth,
            "seconds_in_state": dict(status.time_in_states),
        }
        if status.pid is not None:  # a process-isolated instance's child
            platforms[status.instance].update(pid=status.pid, version=status.version)
    ready, _ = readiness(conductor, record)
    worst = {p["health"] for p in platforms.values()}
    if not ready or "unhealthy" in worst:
        overall = "unhealthy" if not ready else "degraded"
    elif "degraded" in worst or "unknown" in worst:
        overall = "degraded"
    else:
        overall = "healthy"
    return {"status": overall, "ready": ready, "platforms": platforms}
