"""Every time a coordinated replica keeps, derived from one number: the backend's
expiry ``T``, how long a member or a lock that is not refreshed lives on (what
tooz's ``heartbeat()`` returns: ``min(lock_timeout, membership_timeout)`` for etcd
and Redis, each defaulting to the URL's ``timeout``, 30 s; ``timeout``, 10 s, for
the file driver). Set them in the URL: ``etcd3+http://etcd:2379?timeout=10``.

* heartbeat every ``T/4``; each call to the backend is bounded by ``T/4``;
* a heartbeat that fails is retried after ``T/16``, doubling up to ``T/4``;
* **self-fencing**: once ``T/2`` has passed since the start of the last heartbeat
  the backend answered, the exclusive instances stop, each stop bounded by ``T/4``:
  they are down by ``3T/4``, before any lock this replica held can expire (at ``T``
  at the earliest, counted from that same moment), so no other replica can take one
  while it still runs here;
* once ``T`` has passed, this replica's membership may have expired and the others
  may run its share: it stops all but its ``replicas = "all"`` instances;
* a lock held elsewhere is tried again after ``T/16``, doubling up to ``T/4``.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Timing"]


@dataclass(frozen=True, slots=True)
class Timing:
    """The times of one replica, from the backend's expiry (see the module)."""

    #: Seconds a member or lock that is not refreshed lives on (``T``).
    expiry: float

    @property
    def beat_every(self) -> float:
        """Seconds between heartbeats."""
        return self.expiry / 4

    @property
    def call_timeout(self) -> float:
        """Bound on one call to the backend."""
        return self.expiry / 4

    @property
    def fence_after(self) -> float:
        """Seconds without an answer after which exclusive instances stop."""
        return self.expiry / 2

    @property
    def fence_stop(self) -> float:
        """Bound on stopping one exclusive instance when fencing."""
        return self.expiry / 4

    def backoff(self, attempt: int) -> float:
        """Seconds before retry ``attempt`` (from 0) of a heartbeat or a lock."""
        return min(self.expiry / 4, self.expiry / 16 * float(2 ** min(attempt, 8)))
