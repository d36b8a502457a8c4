"""The conductor's records: where requests for an instance go, what a snapshot of
an instance shows, what a reload changed, and what a good reply is."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import anyio

from .core.config import PlatformSettings
from .inbox import InboxHandle
from .platforms.base import PluginHealth
from .plugins.base import PluginState

__all__ = ["InstanceStatus", "ReloadResult", "Route", "json_problem"]


@dataclass(eq=False)
class Route:
    """Where requests for one instance go right now."""

    instance: str
    spec: PlatformSettings
    #: The manager's name for the platform behind this route.
    key: str
    #: Bounds the requests served at once; made at the first request (most of a
    #: large fleet's routes may never see one before they are replaced).
    _limiter: anyio.CapacityLimiter | None = None
    in_flight: int = 0
    #: The platform's handle on the instance's inbox (inside a session).
    inbox: InboxHandle | None = None
    _idle: anyio.Event | None = None

    @classmethod
    def to(cls, instance: str, spec: PlatformSettings, key: str) -> Route:
        """A fresh route for ``instance`` to the platform under ``key``."""
        return cls(instance, spec, key)

    @property
    def limiter(self) -> anyio.CapacityLimiter:
        """The limiter of the requests served at once (``spec.max_concurrency``)."""
        limiter = self._limiter
        if limiter is None:
            limiter = self._limiter = anyio.CapacityLimiter(self.spec.max_concurrency)
        return limiter

    def resize(self, spec: PlatformSettings) -> None:
        """Take ``spec`` (a reload that changed neither driver nor config)."""
        self.spec = spec
        if self._limiter is not None:
            self._limiter.total_tokens = spec.max_concurrency

    def enter(self) -> None:
        self.in_flight += 1

    def leave(self) -> None:
        self.in_flight -= 1
        if self.in_flight == 0 and self._idle is not None:
            self._idle.set()

    async def drain(self, timeout: float) -> bool:
        """Wait, at most ``timeout`` seconds, until no request is in flight."""
        if self.in_flight == 0:
            return True
        self._idle = anyio.Event()
        with anyio.move_on_after(timeout):
            await self._idle.wait()
        return self.in_flight == 0


@dataclass(frozen=True, slots=True)
class InstanceStatus:
    """A snapshot of one configured instance, for display and probes."""

    instance: str
    driver: str
    required: bool
    #: ``None`` before its first start attempt.
    state: PluginState | None
    error: str | None
    #: The latest health verdict on the platform now behind the instance (its one
    #: owner is the plugin manager), if one was reached.
    health: PluginHealth | None
    in_flight: int
    #: Seconds spent in each lifecycle state, by state value.
    time_in_states: Mapping[str, float] = field(default_factory=dict)
    #: For a platform that listens: whether its connection is up (else ``None``).
    connected: bool | None = None
    #: Whether it failed with an error that retrying cannot help.
    fatal: bool = False
    #: Inbound events buffered for the handler.
    inbox_depth: int = 0
    #: For a process-isolated instance with a live child: the child's pid, and the
    #: version of the distribution its driver came from (else ``None``).
    pid: int | None = None
    version: str | None = None


@dataclass(slots=True)
class ReloadResult:
    """What :meth:`Conductor.reload` changed."""

    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    switched: list[str] = field(default_factory=list)
    #: Process-isolated instances restarted on a new installed version of their
    #: driver's distribution.
    upgraded: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    #: Instances whose change failed, with the reason; they keep what they had.
    failed: dict[str, str] = field(default_factory=dict)


_SCALARS = (str, int, bool, type(None))
_MAX_DEPTH = 100


def json_problem(value: Any) -> str | None:
    """Why ``value`` cannot be sent on as JSON (a reply leaves demi as JSON), or
    ``None`` when it can. Cheap for the small replies platforms give."""
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, _SCALARS):
            continue
        if isinstance(item, float):
            if not math.isfinite(item):
                return f"a non-finite number ({float(item)!r})"
            continue
        if depth >= _MAX_DEPTH:
            return f"nesting deeper than {_MAX_DEPTH} levels"
        if isinstance(item, Mapping):
            for key, inner in item.items():
                if not isinstance(key, str):
                    return f"a key of type {type(key).__name__}"
                stack.append((inner, depth + 1))
        elif isinstance(item, list | tuple):
            stack.extend((inner, depth + 1) for inner in item)
        else:
            return f"a value of type {type(item).__name__}"
    return None
