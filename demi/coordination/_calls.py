"""Calls into tooz: each in a daemon thread of its own, so tooz never holds the
event loop and a call that never returns cannot keep the process alive once demi
has stopped (anyio's worker threads are not daemons on asyncio); at most
:data:`THREADS` at once per replica, so its threads stay bounded; each with a
timeout, after which the call is abandoned: its thread finishes by itself, still
holding its slot, so a backend that hangs cannot make demi start more threads.

The loop waits for a thread by polling (1 ms, doubling up to 20 ms): a call into
the backend takes milliseconds at least, and polling needs nothing from the loop's
own thread machinery, so it is the same on asyncio and trio.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TypeVar

import anyio

from ._tooz import BackendError

__all__ = ["THREADS", "Calls"]

#: Threads one replica may have in tooz at once.
THREADS = 4

T = TypeVar("T")

_FIRST_POLL, _LONGEST_POLL = 0.001, 0.02


class _Outcome:
    """What one call returned or raised, handed from its thread to the loop."""

    __slots__ = ("done", "error", "value")

    def __init__(self) -> None:
        self.done = threading.Event()
        self.value: object = None
        self.error: BaseException | None = None


class Calls:
    """The bounded daemon threads of one replica's calls into tooz."""

    def __init__(self) -> None:
        self._slots = threading.BoundedSemaphore(THREADS)

    async def run(self, func: Callable[[], T], timeout: float, what: str) -> T:
        """``func()`` in a daemon thread, within ``timeout`` seconds (waiting for a
        free thread included).

        :raises BackendError: it raised one, or did not return in time.
        """
        with anyio.move_on_after(timeout):
            await _poll(lambda: self._slots.acquire(blocking=False))
            outcome = _Outcome()

            def work() -> None:
                try:
                    outcome.value = func()
                except BaseException as err:  # handed to the loop, raised there
                    outcome.error = err
                finally:
                    self._slots.release()
                    outcome.done.set()

            threading.Thread(target=work, name=f"demi-tooz {what}", daemon=True).start()
            await _poll(outcome.done.is_set)
            if outcome.error is not None:
                raise outcome.error
            return outcome.value  # type: ignore[return-value]
        raise BackendError(f"{what}: no answer within {timeout:g}s")


async def _poll(ready: Callable[[], bool]) -> None:
    delay = _FIRST_POLL
    while not ready():
        await anyio.sleep(delay)
        delay = min(delay * 2, _LONGEST_POLL)
