"""Failures between health rounds: the supervisor follows the plugin manager's
transitions, so an instance that fails (a lost connection, above all) gets the
restart policy at once instead of at the next round, up to an interval later."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import anyio

from .plugins.base import PluginState, Transition
from .plugins.manager import PluginManager

__all__ = ["RESTARTABLE", "FailureAlarm"]

#: States the restart policy restarts an instance from (unless it is fatal).
RESTARTABLE = (PluginState.FAILED, PluginState.STOPPED)


class FailureAlarm:
    """Rings when an instance moves to a state the restart policy acts on."""

    def __init__(self) -> None:
        self._rung = anyio.Event()

    def ring(self) -> None:
        """Ask for the policy to run now (a restart that failed again, say)."""
        self._rung.set()

    @contextmanager
    def following(self, manager: PluginManager) -> Iterator[None]:
        """Ring on every failure ``manager`` records, for the block."""

        def heard(change: Transition) -> None:
            if change.target in RESTARTABLE:
                self._rung.set()

        unsubscribe = manager.subscribe(heard)
        try:
            yield
        finally:
            unsubscribe()

    async def sleep(self, seconds: float, on_ring: Callable[[], object]) -> None:
        """Sleep ``seconds``, calling ``on_ring()`` each time the alarm rings."""
        deadline = anyio.current_time() + seconds
        while (left := deadline - anyio.current_time()) > 0:
            with anyio.move_on_after(left):
                await self._rung.wait()
            if self._rung.is_set():
                self._rung = anyio.Event()
                on_ring()
