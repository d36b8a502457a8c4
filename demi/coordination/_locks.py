"""The tooz locks that guard a replica's exclusive instances: taken before an
instance's platform starts, let go only after it has stopped, tried again with
backoff while another member still holds one."""

from __future__ import annotations

import random
from collections.abc import Callable
from functools import partial

import anyio

from ..core.logger import get_logger
from ._calls import Calls
from ._timing import Timing
from ._tooz import Backend, BackendError, HeldLock

__all__ = ["LockKeeper", "lock_name"]

LOG = get_logger("demi.coordination")


def lock_name(group: str, instance: str) -> str:
    """The name of the lock that guards ``instance`` in ``group``."""
    return f"demi.{group}.{instance}"


class LockKeeper:
    """The locks one replica holds, by instance, and when to try again for those
    it could not take."""

    def __init__(
        self,
        backend: Callable[[], Backend],
        calls: Calls,
        timing: Callable[[], Timing],
        group: str,
    ) -> None:
        self._backend = backend
        self._calls = calls
        self._timing = timing
        self._group = group
        self.held: dict[str, HeldLock] = {}
        # Let go of while the backend was unreachable: released once it answers.
        self._stale: list[HeldLock] = []
        # Instance -> (attempts so far, loop time of the next try).
        self._retry: dict[str, tuple[int, float]] = {}
        self._lost: set[str] = set()

    def next_try(self) -> float | None:
        """The loop time of the earliest retry due, if any."""
        return min((due for _, due in self._retry.values()), default=None)

    async def take(self, instance: str) -> bool:
        """Whether this replica holds the lock of ``instance`` (taking it now if it
        can and a retry is due)."""
        if instance in self.held:
            return True
        attempts, due = self._retry.get(instance, (0, 0.0))
        if anyio.current_time() < due:
            return False
        timing = self._timing()
        name = lock_name(self._group, instance)
        try:
            lock = await self._calls.run(
                partial(self._backend().lock, name), timing.call_timeout, name
            )
            taken = await self._calls.run(lock.acquire, timing.call_timeout, name)
        except BackendError as err:
            taken, why = False, str(err)
        else:
            why = "another member still holds it"
        if taken:
            self.held[instance] = lock
            self._retry.pop(instance, None)
            return True
        delay = timing.backoff(attempts) * (0.5 + random.random() / 2)
        self._retry[instance] = (attempts + 1, anyio.current_time() + delay)
        LOG.info(
            "platform %s: not started here yet, its lock is not free (%s); "
            "trying again in %.1fs", instance, why, delay,
        )  # fmt: skip
        return False

    def forget(self, lost: HeldLock) -> str | None:
        """Drop a lock found lost: its instance (returned) must stop at once.
        Releasing it later is safe (etcd and Redis release only a lock that is
        still this holder's) and makes tooz stop refreshing it."""
        for instance, lock in self.held.items():
            if lock is lost:
                del self.held[instance]
                self._stale.append(lock)
                self._lost.add(instance)
                return instance
        return None

    def take_lost(self) -> set[str]:
        """The instances whose lock was lost since the last call: each must stop
        before its lock is taken again (another member may have held it meanwhile)."""
        lost, self._lost = self._lost, set()
        return lost

    async def release_all_but(self, keep: set[str]) -> None:
        """Let go of every lock but those of ``keep`` (their instances have stopped);
        one that cannot be released now is released once the backend answers."""
        self._retry = {name: due for name, due in self._retry.items() if name in keep}
        for instance in [name for name in self.held if name not in keep]:
            self._stale.append(self.held.pop(instance))
        await self.release_stale()

    async def release_stale(self) -> None:
        """Release the locks let go of earlier, as far as the backend answers."""
        timing = self._timing()
        while self._stale:
            # Taken off the list first: a heartbeat and a rebalance may both be
            # releasing at once, and each lock is released by one of them.
            lock = self._stale.pop(0)
            try:
                await self._calls.run(lock.release, timing.call_timeout, lock.name)
            except BackendError as err:
                self._stale.append(lock)
                LOG.warning("coordination: %s not released yet: %s", lock.name, err)
                return
