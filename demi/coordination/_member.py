"""One replica as a member of a coordination group: it joins, heartbeats, watches
the members, runs its share of the instances and fences itself when cut off.

Three tasks, so that none waits for another: the heartbeat (every ``T/4``: it
refreshes the membership and the locks and reads the members), the fence watch (it
wakes when the last answer grows too old, see :mod:`._timing`) and the rebalancer
(after start-up: whenever the members change, and when a lock retry is due, it
starts what this replica gained and stops what it lost, through
:meth:`Conductor.run_only`).
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from contextlib import asynccontextmanager
from functools import partial

import anyio
from anyio.abc import TaskGroup

from ..conductor import Conductor
from ..core.config import DemiSettings
from ..core.logger import get_logger
from ..core.secrets import register_secrets
from ..exceptions import ConfigError
from ._calls import Calls
from ._locks import LockKeeper
from ._timing import Timing
from ._tooz import Backend, BackendError
from .ownership import share_of

__all__ = ["Coordinator", "group_of"]

LOG = get_logger("demi.coordination")


def backend_url(settings: DemiSettings, purpose: str) -> str:
    """The ``coordination_url`` of ``settings``, registered with the one scrubber
    first (it may carry a password).

    :raises ConfigError: it is not set ("``purpose`` needs coordination_url").
    """
    if settings.coordination_url is None:
        raise ConfigError(f"{purpose} needs coordination_url")
    register_secrets({"coordination_url": settings.coordination_url})
    return settings.coordination_url.get_secret_value()


def group_of(settings: DemiSettings) -> str:
    """The coordination group of ``settings``: ``coordination_group``, else the
    ``namespace`` (replicas of one namespace share one set of instances)."""
    return settings.coordination_group or settings.namespace


class Coordinator:
    """This replica's membership in its coordination group (``coordination_url``).

    ::

        coordinator = Coordinator(conductor)
        async with conductor.session(), coordinator.membership():
            await coordinator.join()        # before anything starts
            await conductor.start()         # this replica's share only
            ...                             # coordinator.rebalancing() in a task
            await conductor.stop()
        # leaving: locks released, membership left

    :raises ConfigError: ``coordination_url`` is not set.
    """

    def __init__(self, conductor: Conductor) -> None:
        settings = conductor.settings
        self._url = backend_url(settings, "coordination")
        self.conductor = conductor
        self.member_id = settings.member_id
        self.group = group_of(settings)
        self._calls = Calls()
        self._backend: Backend | None = None
        try:  # no connection yet: only the URL's scheme and tooz are checked
            self._the_backend()
        except ConfigError as err:
            where = settings.source_of("coordination_url")
            raise ConfigError(f"{err} (from {where})") from None
        self.timing = Timing(30.0)  # until the backend says
        self.locks = LockKeeper(
            lambda: self._the_backend(), self._calls, lambda: self.timing, self.group
        )
        #: The members of the group, as last read.
        self.members: frozenset[str] = frozenset()
        #: Whether the backend answered the last heartbeat.
        self.connected = False
        #: The instances the hash ring gives this replica (its share).
        self.share: frozenset[str] | None = None
        #: How many times the share changed since it was first computed.
        self.rebalances = 0
        self._contact = 0.0  # loop time: start of the last answered heartbeat
        self._fenced = False  # exclusive instances stopped: cut off T/2
        self._orphaned = False  # all but "all" instances stopped: cut off T
        self._changed = anyio.Event()
        self._applying = anyio.Lock()
        self._apply_scope: anyio.CancelScope | None = None
        self._group: TaskGroup | None = None

    def _the_backend(self) -> Backend:
        if self._backend is None:
            self._backend = Backend(self._url, self.member_id, self.group)
        return self._backend

    # -- membership -----------------------------------------------------------

    @asynccontextmanager
    async def membership(self) -> AsyncGenerator[Coordinator]:
        """Host the heartbeat and the fence watch (from :meth:`join` on); on exit,
        once the conductor has stopped, release the locks and leave the group."""
        try:
            async with anyio.create_task_group() as group:
                self._group = group
                try:
                    yield self
                finally:
                    self._group = None
                    group.cancel_scope.cancel()
        finally:
            await self.leave()

    async def join(self) -> None:
        """Connect, join the group (creating it if missing) and take this replica's
        share, before anything starts; the backend unreachable, retry with backoff
        until it answers (never run everything instead).

        :raises ConfigError: tooz is not installed or knows no such backend.
        """
        attempt = 0
        while True:
            try:
                backend = self._the_backend()
                expiry = await self._calls.run(backend.start, 30.0, "connecting")
                self.timing = Timing(expiry)
                # Contact counts from the join's heartbeat, not from connecting.
                began = anyio.current_time()
                # Joining may create the group and wait out a race to create it
                # (tooz backs off up to 1 s): more time than a heartbeat gets.
                failure = await self._beat(
                    began, timeout=max(self.timing.call_timeout, 10.0)
                )
                if failure is None:
                    break
                LOG.warning("coordination: cannot join the group: %s", failure)
            except BackendError as err:
                LOG.warning("coordination: cannot connect to the backend: %s", err)
            delay = self.timing.backoff(attempt)
            attempt += 1
            LOG.warning("coordination: trying again in %.1fs", delay)
            await anyio.sleep(delay)
        LOG.info(
            "coordination: joined group %s as %s (%d members; expiry %gs)",
            self.group, self.member_id, len(self.members), self.timing.expiry,
        )  # fmt: skip
        if self._group is not None:
            self._group.start_soon(self._heartbeats)
            self._group.start_soon(self._fence_watch)
        await self._apply()

    async def leave(self) -> None:
        """Release every lock and leave the group (shielded, bounded)."""
        backend, self._backend = self._backend, None
        if backend is None:
            return
        with anyio.CancelScope(shield=True):
            await self.locks.release_all_but(set())
            try:
                await self._calls.run(backend.leave, self.timing.call_timeout, "leave")
            except BackendError as err:
                LOG.warning("coordination: leaving the group failed: %s", err)
            else:
                LOG.info("coordination: left group %s", self.group)
        self.connected = False

    async def _heartbeats(self) -> None:
        # The first at once: joining may have taken a while (creating the group),
        # and the fence counts from the join's heartbeat.
        failures = 0
        while True:
            failed = await self._beat(anyio.current_time())
            failures = 0 if failed is None else failures + 1
            delay = (
                self.timing.beat_every
                if not failures
                else self.timing.backoff(failures - 1)
            )
            await anyio.sleep(delay)

    async def _beat(self, began: float, timeout: float | None = None) -> str | None:
        """One heartbeat; why it failed, if the backend did not answer."""
        backend = self._the_backend()
        locks = list(self.locks.held.values())
        limit = self.timing.call_timeout if timeout is None else timeout
        try:
            members, lost = await self._calls.run(
                partial(backend.beat, locks), limit, "heartbeat"
            )
        except BackendError as err:
            if self.connected:
                LOG.error("coordination: the backend did not answer: %s", err)
            self.connected = False
            return str(err)
        if not self.connected:
            LOG.info("coordination: the backend answers (group %s)", self.group)
        self.connected, self._contact = True, max(self._contact, began)
        changed = bool(lost)
        for lock in lost:
            instance = self.locks.forget(lock)
            LOG.error("platform %s: its lock was lost; stopping it here", instance)
        if self._fenced or self._orphaned:
            self._fenced = self._orphaned = False
            changed = True
            LOG.warning(
                "coordination: back in contact; taking this replica's share again"
            )
        if members != self.members:
            self.members = frozenset(members)
            changed = True
            LOG.info(
                "coordination: members of %s: %s",
                self.group,
                ", ".join(sorted(members)),
            )
        if changed:
            self._changed.set()
        await self.locks.release_stale()
        return None

    # -- self-fencing ---------------------------------------------------------

    async def _fence_watch(self) -> None:
        timing = self.timing
        while True:
            age = anyio.current_time() - self._contact
            if age >= timing.fence_after and not self._fenced:
                self._fenced, self.connected = True, False
                LOG.error(
                    "coordination: no answer from the backend for %.1fs: stopping "
                    "this replica's exclusive instances before their locks can "
                    "expire (%gs)", age, timing.expiry,
                )  # fmt: skip
                await self._apply(urgent=True)
            if age >= timing.expiry and not self._orphaned:
                self._orphaned = True
                LOG.error(
                    "coordination: no answer for %.1fs: this replica's membership may "
                    'have expired; stopping all but its replicas = "all" instances',
                    age,
                )
                await self._apply(urgent=True)
            age = anyio.current_time() - self._contact
            goal = timing.fence_after if age < timing.fence_after else timing.expiry
            await anyio.sleep(max(goal - age, timing.beat_every / 4))

    # -- the share ------------------------------------------------------------

    async def rebalancing(self) -> None:
        """Once the conductor has started: follow the members until cancelled,
        starting what this replica gains and stopping what it loses."""
        while True:
            due = self.locks.next_try()
            wait = self.timing.beat_every
            if due is not None:
                wait = min(wait, max(due - anyio.current_time(), 0.0))
            with anyio.move_on_after(wait):
                await self._changed.wait()
            self._changed = anyio.Event()
            await self._apply()

    async def _apply(self, *, urgent: bool = False) -> None:
        """Run exactly what this replica may run now. ``urgent`` (fencing) cuts a
        rebalance under way short."""
        if urgent and self._apply_scope is not None:
            self._apply_scope.cancel()
        async with self._applying:
            with anyio.CancelScope() as scope:
                self._apply_scope = scope
                try:
                    await self._run_share()
                finally:
                    self._apply_scope = None

    async def _run_share(self) -> None:
        conductor = self.conductor
        specs = conductor.settings.enabled_platforms()
        share = frozenset(share_of(self.member_id, specs, self.members))
        if self.share is not None and share != self.share:
            self.rebalances += 1
            gained, dropped = sorted(share - self.share), sorted(self.share - share)
            LOG.info(
                "coordination: rebalance: gained %s, lost %s",
                gained or "none",
                dropped or "none",
            )
        self.share = share
        runnable: set[str] = set()
        lost = self.locks.take_lost()
        for name in sorted(share):
            if self._orphaned and specs[name].replicas != "all":
                continue
            if not await conductor.exclusive(name):
                runnable.add(name)
            elif name in lost or self._fenced:
                continue  # stopped now; a lost lock is taken again afterwards
            elif await self.locks.take(name):
                runnable.add(name)
        stop_timeout = self.timing.fence_stop if self._fenced else None
        failures = await conductor.run_only(runnable, stop_timeout=stop_timeout)
        for name, why in failures.items():
            LOG.error("platform %s: did not start here: %s", name, why)
        # Not accepting (stopping): run_only stopped nothing, the stop is doing it,
        # and leave() releases every lock once it is done.
        if conductor.accepting:
            await self.locks.release_all_but(runnable)
        if lost:
            self._changed.set()  # they have stopped: take their locks again

    # -- what the probes read -------------------------------------------------

    def owned(self) -> int:
        """How many instances the hash ring gives this replica."""
        return len(self.share or ())
