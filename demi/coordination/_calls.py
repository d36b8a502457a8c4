"""Calls into tooz: each in a worker thread, so tooz never holds the event loop;
at most :data:`THREADS` at once per replica, so its threads stay bounded; each with
a timeout, after which the call is abandoned (its thread finishes by itself, still
holding its token, so a backend that hangs cannot make demi start more threads)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import anyio

from ._tooz import BackendError

__all__ = ["THREADS", "Calls"]

#: Worker threads one replica may have in tooz at once.
THREADS = 4

T = TypeVar("T")


class Calls:
    """The bounded worker threads of one replica's calls into tooz."""

    def __init__(self) -> None:
        self._limiter = anyio.CapacityLimiter(THREADS)

    async def run(self, func: Callable[[], T], timeout: float, what: str) -> T:
        """``func()`` in a worker thread, within ``timeout`` seconds.

        :raises BackendError: it raised one, or did not return in time.
        """
        with anyio.move_on_after(timeout):
            return await anyio.to_thread.run_sync(
                func, limiter=self._limiter, abandon_on_cancel=True
            )
        raise BackendError(f"{what}: no answer within {timeout:g}s")
