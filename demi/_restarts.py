"""What the supervisor remembers per instance, and the backoff between restarts
(the policy itself is documented in :mod:`demi.supervision`)."""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from .core.config import PlatformSettings
from .platforms.base import PluginHealth

__all__ = ["HISTORY", "RESTART_REASONS", "InstanceRecord", "backoff_delay"]

#: Health results kept per instance.
HISTORY = 10

#: Why restarts happen, the label values of ``demi_platform_restarts_total``:
#: the supervisor's (``unhealthy`` checks; ``failed``, or for a process-isolated
#: instance whose child went away ``crash``, ``hang`` or ``memory``, as
#: :func:`demi.isolation.fault_of` tells) and the operator's (``operator``, and
#: ``upgrade`` for one that changes the installed version).
RESTART_REASONS = (
    "unhealthy", "failed", "crash", "hang", "memory", "operator", "upgrade",
)  # fmt: skip

#: Beyond this many doublings every backoff is capped anyway; ``2.0 ** n`` overflows
#: past 1023.
_MAX_DOUBLINGS = 1023


def backoff_delay(
    attempt: int, spec: PlatformSettings, rng: Callable[[], float] = random.random
) -> float:
    """Seconds to wait before restart attempt ``attempt`` (0-based, any size).

    ``backoff_initial`` doubling per attempt up to ``backoff_max``, then "equal
    jitter": somewhere between half of that and all of it, so a fleet of replicas
    does not retry in lockstep.
    """
    doubled = spec.backoff_initial * 2.0 ** min(attempt, _MAX_DOUBLINGS)
    ceiling = min(spec.backoff_max, doubled)  # float inf at worst, never an error
    return ceiling / 2 + rng() * ceiling / 2


@dataclass(slots=True)
class InstanceRecord:
    """What the supervisor remembers about one instance (its latest health is the
    manager's: ``InstanceStatus.health``)."""

    history: deque[PluginHealth] = field(default_factory=lambda: deque(maxlen=HISTORY))
    consecutive_failures: int = 0
    #: Restarts done so far, in total, whoever asked.
    restarts: int = 0
    #: Why the last restart happened (see :data:`RESTART_REASONS`).
    last_restart_reason: str | None = None
    #: The supervisor's restarts since the instance was last stably healthy: the
    #: count ``max_restarts`` limits, and the backoff attempt.
    unstable_restarts: int = 0
    #: Monotonic time of the first check of the current healthy streak.
    healthy_since: float | None = None
    #: A restart is scheduled or running.
    restarting: bool = False
    #: Why the supervisor gave up, once the restart limit was reached.
    gave_up: str | None = None
