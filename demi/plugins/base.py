"""Lifecycle states, the one table of allowed transitions, and plugin metadata.

Nothing else in demi decides a plugin's state: every change goes through
:meth:`Lifecycle.move_to`, which checks it against :data:`ALLOWED_TRANSITIONS`,
logs it once and tells whoever listens (metrics, supervision).
"""

from __future__ import annotations

import enum
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from ..core.logger import get_logger
from ..exceptions import PluginStateError
from ..platforms.base import PluginHealth

__all__ = [
    "ALLOWED_TRANSITIONS",
    "Lifecycle",
    "PluginMetadata",
    "PluginState",
    "Transition",
]

LOG = get_logger(__name__)


class PluginState(str, enum.Enum):
    """Where a plugin is in its life."""

    #: Found through its entry point (or given to the manager), not loaded.
    DISCOVERED = "discovered"
    #: Being imported, configured and initialized.
    LOADING = "loading"
    #: Initialized and serving.
    ACTIVE = "active"
    #: Could not be imported, validated, configured or initialized, or was given up on.
    FAILED = "failed"
    #: Shutting down; no new requests reach it.
    STOPPING = "stopping"
    #: Shut down cleanly (or as cleanly as its timeout allowed).
    STOPPED = "stopped"


_S = PluginState

#: Every transition the lifecycle allows; anything else is a bug and raises.
ALLOWED_TRANSITIONS: Mapping[PluginState, frozenset[PluginState]] = {
    _S.DISCOVERED: frozenset({_S.LOADING, _S.FAILED}),
    _S.LOADING: frozenset({_S.ACTIVE, _S.FAILED}),
    _S.ACTIVE: frozenset({_S.STOPPING, _S.FAILED}),
    # A failed plugin may be retried, or cleaned up before it is forgotten.
    _S.FAILED: frozenset({_S.LOADING, _S.STOPPING}),
    _S.STOPPING: frozenset({_S.STOPPED, _S.FAILED}),
    _S.STOPPED: frozenset({_S.LOADING}),
}


@dataclass(frozen=True, slots=True)
class Transition:
    """One recorded state change."""

    name: str
    source: PluginState
    target: PluginState
    reason: str | None
    #: ``time.time()`` when it happened.
    at: float


TransitionListener = Callable[[Transition], None]


class Lifecycle:
    """The lifecycle state of one plugin instance, and the only code that changes it.

    :param name: the instance name, used in logs and errors.
    :param listeners: called with every :class:`Transition`, after it happened.
    """

    __slots__ = ("_entered", "_listeners", "_state", "_totals", "error", "name")

    def __init__(
        self,
        name: str,
        *,
        state: PluginState = PluginState.DISCOVERED,
        listeners: tuple[TransitionListener, ...] = (),
    ) -> None:
        self.name = name
        self._state = state
        #: Why the plugin last failed (``None`` after it became active again).
        self.error: str | None = None
        self._listeners = listeners
        self._entered = time.monotonic()
        self._totals: dict[PluginState, float] = {}

    @property
    def state(self) -> PluginState:
        """The current state."""
        return self._state

    def move_to(self, target: PluginState, reason: str | None = None) -> None:
        """Change state, if the table allows it.

        :raises PluginStateError: when ``target`` is not reachable from the current state.
        """
        source = self._state
        if target not in ALLOWED_TRANSITIONS[source]:
            raise PluginStateError(
                self.name,
                f"plugin {self.name!r} cannot go from {source.value!r} "
                f"to {target.value!r}",
            )
        now = time.monotonic()
        self._totals[source] = self._totals.get(source, 0.0) + now - self._entered
        self._entered = now
        self._state = target
        if target is PluginState.FAILED:
            self.error = reason or "unknown reason"
        elif target is PluginState.ACTIVE:
            self.error = None
        log = LOG.warning if target is PluginState.FAILED else LOG.info
        log(
            "plugin %s: %s -> %s%s",
            self.name,
            source.value,
            target.value,
            f" ({reason})" if reason else "",
        )
        change = Transition(self.name, source, target, reason, time.time())
        for listener in self._listeners:
            try:
                listener(change)
            except Exception:  # a broken listener must not break the lifecycle
                LOG.exception("transition listener failed for %s", self.name)

    def time_in_states(self) -> dict[PluginState, float]:
        """Seconds spent in each state so far, the current one included."""
        totals = dict(self._totals)
        totals[self._state] = (
            totals.get(self._state, 0.0) + time.monotonic() - self._entered
        )
        return totals


@dataclass(frozen=True, slots=True)
class PluginMetadata:
    """A snapshot of what the manager knows about one plugin, built on demand."""

    #: The name it is known under: the entry-point name, or the instance name.
    name: str
    #: Its lifecycle state.
    state: PluginState
    #: Why it failed, if it did.
    error: str | None = None
    #: The entry point's target, ``"module:attr"``.
    target: str | None = None
    #: The distribution that registered it, and its version.
    distribution: str | None = None
    version: str | None = None
    #: The entry-point name of the class behind it (differs from ``name`` for instances).
    driver: str | None = None
    #: Whether the plugin could be imported and validated (a failed initialize
    #: leaves a plugin valid; a broken import or class does not).
    valid: bool = True
    #: Extra facts (for example the latest health status), for display only.
    details: Mapping[str, object] = field(default_factory=dict)
    #: The latest health verdict on the live platform, if one was reached.
    health: PluginHealth | None = None
    #: For a platform that listens: whether its ``run`` is connected (``None`` for
    #: a platform that does not listen, or has not started to).
    connected: bool | None = None
    #: Whether it failed with an error that retrying cannot help.
    fatal: bool = False
    #: Seconds spent in each lifecycle state so far, by state value.
    seconds_in_state: Mapping[str, float] = field(default_factory=dict)
