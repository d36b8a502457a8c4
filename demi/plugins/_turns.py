"""Turns: loads and unloads of one instance name never overlap."""

from __future__ import annotations

from collections import deque

import anyio

__all__ = ["Turns"]


class Turns:
    """One turn at a time per instance name, first come first served.

    Not a lock per name: an unload takes the turn in the caller's task and gives it
    back in the shutdown's task, which an ``anyio.Lock`` forbids; and every load and
    unload takes a turn, so an uncontended one costs a dictionary entry, not a
    semaphore per instance. Taking a free turn does not yield to the event loop.
    """

    __slots__ = ("_held",)

    def __init__(self) -> None:
        # name -> the events of the tasks waiting for it, once one waits.
        self._held: dict[str, deque[anyio.Event] | None] = {}

    def __len__(self) -> int:
        """How many names have their turn taken now (none kept once given back)."""
        return len(self._held)

    def held(self, name: str) -> bool:
        """Whether a load or unload of ``name`` has the turn now."""
        return name in self._held

    def take_nowait(self, name: str) -> bool:
        """Take the turn of ``name`` if it is free; return whether it was."""
        if name in self._held:
            return False
        self._held[name] = None
        return True

    async def take(self, name: str) -> None:
        """Take the turn of ``name``, waiting for those before."""
        if self.take_nowait(name):
            return
        waiters = self._held[name]
        if waiters is None:
            waiters = self._held[name] = deque()
        handed = anyio.Event()
        waiters.append(handed)
        try:
            await handed.wait()
        except BaseException:
            if handed.is_set():  # handed the turn as it was cancelled: pass it on
                self.give_back(name)
            else:
                waiters.remove(handed)
            raise

    def give_back(self, name: str) -> None:
        """End the turn of ``name``: the next waiter, if any, has it now."""
        waiters = self._held[name]
        if waiters:
            waiters.popleft().set()
        else:
            del self._held[name]
