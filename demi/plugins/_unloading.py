"""The plugin manager's unloading side: taking instances out of service, shielded
and bounded, one at a time or all together. :class:`~demi.plugins.manager.PluginManager`
builds on it; the steps themselves are in ``_stopping``."""

from __future__ import annotations

import functools
from collections.abc import Callable, Coroutine
from typing import Any

import anyio

from ..core.config import DemiSettings
from . import _stopping
from ._slots import Slot
from ._turns import Turns
from .base import ALLOWED_TRANSITIONS, PluginState

__all__ = ["Unloading"]


class Unloading:
    """Unloading instances of a plugin manager."""

    settings: DemiSettings
    _slots: dict[str, Slot]
    _turns: Turns

    async def unload_plugin(self, name: str, *, timeout: float | None = None) -> bool:
        """Shut down the instance ``name`` (shielded, bounded by the shutdown timeout,
        or by ``timeout`` when given).

        A shutdown that raises or hangs is recorded (the instance ends ``failed``
        with the reason) and never raised.

        :returns: ``True`` if an active instance was shut down; ``False`` if nothing
            was active under that name (a failed instance is forgotten).
        """
        finish = self.begin_unload(name, timeout=timeout)
        # Nothing to do (every instance, in unload_all after a stop): no coroutine.
        if finish is _returns_false:
            return False
        return await finish()

    def begin_unload(
        self, name: str, *, timeout: float | None = None
    ) -> Callable[[], Coroutine[Any, Any, bool]]:
        """Take the instance ``name`` out of service now, without yielding, and
        return the coroutine function that shuts it down: :meth:`unload_plugin` in
        two steps, so a caller can stop many instances in a chosen order and let
        their shutdowns overlap (one loop turn per instance would dominate).

        The returned function must be awaited: until it has run, the instance stays
        ``stopping`` and locked. When a load or unload of that instance is under way,
        nothing happens now and the returned function waits its turn.
        """
        slot = self._slots.get(name)
        if slot is None:
            return _returns_false
        if not self._turns.take_nowait(name):
            return functools.partial(self._unload_in_turn, slot, timeout)
        platform = _stopping.take_out(slot, self._slots)
        if platform is None:  # nothing to shut down: done now
            self._turns.give_back(name)
            return _returns_false
        return functools.partial(
            _stopping.finish, slot, platform, self._shutdown_timeout(timeout),
            self.settings, self._turns,
        )  # fmt: skip

    async def _unload_in_turn(self, slot: Slot, timeout: float | None) -> bool:
        """:meth:`begin_unload` of an instance whose turn was taken: wait for it."""
        await self._turns.take(slot.name)
        return await _stopping.finish(
            slot, _stopping.take_out(slot, self._slots),
            self._shutdown_timeout(timeout), self.settings, self._turns,
        )  # fmt: skip

    def _shutdown_timeout(self, timeout: float | None) -> float:
        return self.settings.shutdown_timeout if timeout is None else timeout

    async def disconnect_all(self, timeout: float) -> None:
        """End every listening platform's connection (cancel its ``run``) at once,
        each bounded by ``timeout``; the platforms stay active for requests."""
        async with anyio.create_task_group() as group:
            for slot in list(self._slots.values()):
                if slot.connection is not None and not slot.connection.done.is_set():
                    group.start_soon(_stopping.disconnect, slot, timeout)

    def abandon_shutdowns(self) -> None:
        """Cut every :meth:`unload_plugin` in progress short, shield or not (a second
        signal): each of those instances ends ``failed``."""
        for slot in list(self._slots.values()):
            if slot.stopping is not None:
                slot.abandoned = True
                slot.stopping.cancel()

    async def fail_plugin(self, name: str, reason: str) -> None:
        """Give up on the instance ``name``: shut it down if it is active (bounded,
        shielded) and leave it ``failed`` with ``reason``. Does nothing for a name
        that is not loaded or already failed."""
        slot = self._slots.get(name)
        if slot is None or slot.lifecycle.state is PluginState.FAILED:
            return
        if slot.lifecycle.state is PluginState.ACTIVE and slot.platform is not None:
            platform, slot.platform = slot.platform, None
            slot.lifecycle.move_to(PluginState.STOPPING, reason)
            await _stopping.shutdown(
                slot.label, platform, slot.threads,
                timeout=self.settings.shutdown_timeout,
                block_threshold=self.settings.loop_block_threshold,
            )  # fmt: skip
        if PluginState.FAILED in ALLOWED_TRANSITIONS[slot.lifecycle.state]:
            slot.lifecycle.move_to(PluginState.FAILED, reason)

    async def unload_all(self) -> None:
        """Unload every active instance, in reverse load order."""
        for name in reversed(list(self._slots)):
            await self.unload_plugin(name)


async def _returns_false() -> bool:
    return False
