"""The one module that touches tooz: a small, typed, synchronous face of one tooz
coordinator, for worker threads (demi.coordination._calls runs every method here in
one, bounded).

tooz's own heartbeat thread is never started: its ``Heart`` retries a failing
heartbeat forever and ``stop()`` joins it without a bound, so a backend that vanished
could hold demi's stop forever. demi heartbeats itself from its own task, which also
tells it when the backend last answered (see :mod:`demi.coordination._member`).
Nor does tooz get threads of its own: unless the URL chooses an ``executor``, the
driver runs each call in the calling thread (``executor=synchronous``).
"""

from __future__ import annotations

import base64
import functools
import urllib.parse
from collections.abc import Callable, Iterable
from typing import Any, ParamSpec, TypeVar

from ..exceptions import ConfigError, DemiError

__all__ = ["Backend", "BackendError", "HeldLock", "backend_schemes", "tooz_available"]

P = ParamSpec("P")
R = TypeVar("R")


class BackendError(DemiError):
    """A call to the coordination backend failed (it is down, slow or refused)."""


def tooz_available() -> bool:
    """Whether tooz (the ``coordination`` extra) is installed."""
    import importlib.util

    return importlib.util.find_spec("tooz") is not None


def backend_schemes() -> list[str]:
    """The URL schemes tooz has drivers for (its ``tooz.backends`` entry points)."""
    from importlib.metadata import entry_points

    return sorted(ep.name for ep in entry_points(group="tooz.backends"))


def _text(member: bytes | str) -> str:
    return member.decode("utf-8", "replace") if isinstance(member, bytes) else member


def _why(err: BaseException) -> str:
    text = str(err).strip() or type(err).__name__
    return text.splitlines()[0][:300]


def _lock_not_owned(err: BaseException | None) -> bool:
    # redis-py's LockNotOwnedError, as tooz wraps it (its cause): matched by name,
    # so that Redis's client need not be installed for the other backends.
    seen = 0
    while err is not None and seen < 10:
        if type(err).__name__ == "LockNotOwnedError":
            return True
        err, seen = err.__cause__ or err.__context__, seen + 1
    return False


def _translating(method: Callable[P, R]) -> Callable[P, R]:
    """Turn whatever tooz or its clients raise into :class:`BackendError`."""

    @functools.wraps(method)
    def translated(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return method(*args, **kwargs)
        except DemiError:
            raise
        except Exception as err:
            raise BackendError(_why(err)) from None

    return translated


class HeldLock:
    """One tooz lock, by name (taken with :meth:`Backend.lock`)."""

    def __init__(self, name: str, lock: Any) -> None:
        self.name = name
        self._lock = lock

    def acquire(self) -> bool:
        """Try once, without waiting: whether it is ours now."""
        try:
            return bool(self._lock.acquire(blocking=False))
        except Exception as err:
            raise BackendError(f"lock {self.name!r}: {_why(err)}") from None

    def refresh(self) -> bool:
        """Keep it from expiring: whether it is still ours (a lock without an
        expiry, such as the file driver's, is ours while we hold it).

        :raises BackendError: the backend did not answer (an outage, not a loss).
        """
        try:
            lease = getattr(self._lock, "_lease", None)
            if lease is not None:
                return self._etcd_still_ours(lease)
            beat = getattr(self._lock, "heartbeat", None)
            return True if beat is None else bool(beat())
        except Exception as err:
            if _lock_not_owned(err):  # Redis: it expired, or another took it
                return False
            raise BackendError(f"lock {self.name!r}: {_why(err)}") from None

    def _etcd_still_ours(self, lease: Any) -> bool:
        # tooz's etcd heartbeat says True whatever it found. The lease's own refresh
        # says -1 once it expired; a lock broken by hand keeps its lease alive, so
        # the key must also still hold this holder's value (someone else's, or
        # nothing, once it is not ours).
        if int(lease.refresh()) <= 0:
            return False
        lock = self._lock
        values = lock._coord.client.get(lock._key.decode())
        return bool(values) and values[0] == base64.b64decode(lock._uuid)

    def release(self) -> None:
        """Let it go (nothing happens if it was not ours)."""
        try:
            self._lock.release()
        except Exception as err:
            raise BackendError(f"lock {self.name!r}: {_why(err)}") from None


class Backend:
    """One tooz coordinator, started, for one member of one group.

    :param url: the tooz URL, as configured (its query options included).
    :raises ConfigError: tooz is not installed, or has no driver for the URL's scheme.
    :raises BackendError: the driver could not start (the backend is unreachable).
    """

    def __init__(self, url: str, member_id: str, group: str) -> None:
        if not tooz_available():
            raise ConfigError(
                "coordination_url needs tooz: pip install 'demi-conductor[coordination]'"
            )
        scheme = urllib.parse.urlsplit(url).scheme
        if scheme not in backend_schemes():
            known = ", ".join(backend_schemes())
            raise ConfigError(
                f"coordination_url: tooz has no driver for the scheme {scheme!r} "
                f"(installed: {known})"
            )
        from tooz import coordination

        options = urllib.parse.parse_qs(urllib.parse.urlsplit(url).query)
        extra: dict[str, Any] = (
            {} if "executor" in options else {"executor": "synchronous"}
        )
        self.group = group.encode()
        self.member_id = member_id
        try:
            self._coordinator = coordination.get_coordinator(
                url, member_id.encode(), **extra
            )
        except Exception as err:
            raise ConfigError(f"coordination_url: {_why(err)}") from None
        self._started = False

    @_translating
    def start(self) -> float:
        """Connect; return the backend's expiry in seconds: how long a member or a
        lock that is not refreshed lives on (what tooz's ``heartbeat`` returns:
        ``min(lock_timeout, membership_timeout)`` for etcd and Redis, ``timeout``
        for the file driver)."""
        if not self._started:
            self._coordinator.start(start_heart=False)
            self._started = True
        expiry = self._coordinator.heartbeat()
        return float(expiry) if expiry else 30.0

    @_translating
    def beat(self, locks: Iterable[HeldLock]) -> tuple[set[str], list[HeldLock]]:
        """One heartbeat: refresh the membership and every lock in ``locks``, join
        the group again if this member is not in it (it expired, or the group is
        new), and read the members.

        :returns: the members, and the locks of ``locks`` found lost.
        """
        self._coordinator.heartbeat()
        lost = [lock for lock in locks if not lock.refresh()]
        members = self._members()
        if self.member_id not in members:
            self._join()
            self._coordinator.heartbeat()  # Redis: a member is its heartbeat key
            members = self._members() | {self.member_id}
        return members, lost

    def _members(self) -> set[str]:
        from tooz import coordination

        try:
            found = self._coordinator.get_members(self.group).get()
        except coordination.GroupNotCreated:
            return set()
        return {_text(member) for member in found}

    def _join(self) -> None:
        from tooz import coordination

        try:
            self._coordinator.join_group_create(self.group)
        except coordination.MemberAlreadyExist:
            # Our own record, expired but not cleared (a replica killed and started
            # again under the same name, on the file driver): the driver does not
            # count it as joined, so it would never refresh it. Leave, join afresh.
            self._coordinator.leave_group(self.group).get()
            self._coordinator.join_group_create(self.group)

    @_translating
    def members(self) -> set[str]:
        """The members of the group, without joining it (for ``demi check``)."""
        return self._members()

    @_translating
    def lock(self, name: str) -> HeldLock:
        """The lock called ``name`` (not taken yet)."""
        return HeldLock(name, self._coordinator.get_lock(name.encode()))

    @_translating
    def leave(self) -> None:
        """Leave the group and disconnect (every lock this member holds goes)."""
        if not self._started:
            return
        self._started = False
        self._coordinator.stop()
