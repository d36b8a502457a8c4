"""The dispatcher: drains every instance's inbox into the handler.

Scheduling without a reader task: :meth:`InstanceInbox.send` hands each accepted event
straight to :meth:`Dispatcher._schedule`, which either starts a worker for it or
queues it. A conversation is *claimed* from the moment one of its events is queued
or being handled until none is left, and the events behind the claimed one wait in
the claim's queue: that is the per-conversation order. A worker that finishes an
event takes the next one of its conversation (or, if other conversations are
waiting, queues it behind them and takes theirs). At most ``handler_concurrency``
workers ever exist; one out of work parks until it is handed an event, since waking
a task costs less than starting one.
"""

from __future__ import annotations

from collections import deque
from collections.abc import AsyncGenerator, Mapping
from contextlib import asynccontextmanager
from typing import Self

import anyio
from anyio import AsyncContextManagerMixin
from anyio.abc import TaskGroup, TaskStatus

from ..core.logger import get_logger
from ..platforms.inbound import InboundEvent
from ._buffer import EventObserver, InstanceInbox
from ._call import HandledObserver, Handler, HandlerCall, Reply

__all__ = ["Dispatcher"]

LOG = get_logger(__name__)

_Key = tuple[str, str]


class _Parked:
    """A worker waiting for its next event."""

    __slots__ = ("event", "wake")

    def __init__(self) -> None:
        self.event: InboundEvent | None = None
        self.wake = anyio.Event()


class Dispatcher(AsyncContextManagerMixin):
    """Hands the events of every instance's inbox to one handler.

    Events of one ``(instance, conversation)`` reach the handler one at a time, in
    the order they were accepted; other conversations, and events without one, are
    handled concurrently, at most ``handler_concurrency`` at once. A handler that
    raises or outlives ``handler_timeout`` is logged with the event id and reason and
    told to the observers; the event counts as handled (it is not retried, so it is
    never handled twice) and nothing else stops. ::

        async with Dispatcher(handler, reply=conductor.dispatch) as dispatcher:
            handle = dispatcher.inbox("chat").handle()   # for the platform's run
            ...
        # leaving: stop(), then the workers are gone

    A dispatcher runs once: after :meth:`stop` its inboxes refuse events for good.
    The conductor, which starts and stops in separate calls, can run it with
    ``await task_group.start(dispatcher.serve)`` and end it with :meth:`stop`.

    :param handler: ``async def handler(event) -> Mapping | None``.
    :param reply: where a returned mapping goes; ``None`` drops replies (logged).
    :param handler_concurrency: handler calls running at once, at most.
    :param handler_timeout: seconds one handler call may take.
    :param inbox_capacity: the bound of each instance's buffer.
    :param dedup_window: event ids each instance remembers for spotting redeliveries.
    :param drain_timeout: seconds :meth:`stop` waits for buffered events by default.
    """

    def __init__(
        self,
        handler: Handler,
        *,
        reply: Reply | None = None,
        handler_concurrency: int = 64,
        handler_timeout: float = 30.0,
        inbox_capacity: int = 1000,
        dedup_window: int = 10_000,
        drain_timeout: float = 10.0,
    ) -> None:
        if handler_concurrency < 1:
            raise ValueError(
                f"handler_concurrency must be at least 1, not {handler_concurrency}"
            )
        #: Calls the handler for one event (timeout, failures, observers, reply).
        self.call = HandlerCall(handler, reply=reply, timeout=handler_timeout)
        self.handler_concurrency = handler_concurrency
        self.inbox_capacity = inbox_capacity
        self.dedup_window = dedup_window
        self.drain_timeout = drain_timeout
        self._inboxes: dict[str, InstanceInbox] = {}
        self._claims: dict[_Key, deque[InboundEvent]] = {}
        # Events whose conversation is free (or who have none), waiting for a worker.
        self._ready: deque[InboundEvent] = deque()
        # Workers alive (at most handler_concurrency), and those of them waiting
        # for an event (parked: handing them one is cheaper than a new task).
        self._workers = 0
        self._parked: list[_Parked] = []
        self._idle: anyio.Event | None = None
        self._group: TaskGroup | None = None
        self._stopping = False
        self._stopped = False
        self._event_observers: list[EventObserver] = []

    # -- set-up ----------------------------------------------------------------

    def inbox(self, instance: str) -> InstanceInbox:
        """The buffer of ``instance``, made on first use and kept from then on."""
        inbox = self._inboxes.get(instance)
        if inbox is None:
            inbox = InstanceInbox(
                instance,
                capacity=self.inbox_capacity,
                dedup_window=self.dedup_window,
                schedule=self._schedule,
                observers=self._event_observers,
            )
            if self._stopping:
                inbox.close()
            self._inboxes[instance] = inbox
        return inbox

    @property
    def inboxes(self) -> Mapping[str, InstanceInbox]:
        """Every instance's buffer, by instance name."""
        return self._inboxes

    @property
    def busy(self) -> int:
        """Workers with an event in hand (in the handler, or sending its reply)."""
        return self._workers - len(self._parked)

    def add_event_observer(self, observer: EventObserver) -> None:
        """Call ``observer(instance, "received" | "duplicate")`` for each sent event."""
        self._event_observers.append(observer)

    def add_handled_observer(self, observer: HandledObserver) -> None:
        """Call ``observer(event, outcome, seconds, reason)`` after each handled event."""
        self.call.observers.append(observer)

    @asynccontextmanager
    async def __asynccontextmanager__(self) -> AsyncGenerator[Self]:
        self._check_fresh()
        async with anyio.create_task_group() as group:
            await group.start(self.serve)
            try:
                yield self
            finally:
                with anyio.CancelScope(shield=True):
                    await self.stop()

    async def serve(
        self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        """Run the workers until :meth:`stop`; for ``task_group.start(...)``.

        The workers live in a task group of their own, so that :meth:`stop` ends
        them without cancelling the code that called it.

        :raises RuntimeError: the dispatcher has already run.
        """
        self._check_fresh()
        async with anyio.create_task_group() as group:
            self._group = group
            # Events accepted before the dispatcher ran get their workers now.
            while self._ready and self._workers < self.handler_concurrency:
                self._start(self._ready.popleft())
            task_status.started()
            try:
                await anyio.sleep_forever()
            finally:
                self._group = None

    def _check_fresh(self) -> None:
        if self._stopping or self._group is not None:
            raise RuntimeError("a Dispatcher runs once, and it has run")

    # -- scheduling ------------------------------------------------------------

    def _schedule(self, event: InboundEvent) -> None:
        conversation = event.conversation
        if conversation is not None:
            key = (event.instance, conversation)
            waiting = self._claims.get(key)
            if waiting is not None:
                waiting.append(event)
                return
            self._claims[key] = deque()
        if self._parked:
            parked = self._parked.pop()
            parked.event = event
            parked.wake.set()
        elif self._group is not None and self._workers < self.handler_concurrency:
            self._start(event)
        else:
            self._ready.append(event)

    def _start(self, event: InboundEvent) -> None:
        assert self._group is not None
        self._workers += 1
        self._group.start_soon(self._work, event)

    def _next(self, done: InboundEvent) -> InboundEvent | None:
        """Release ``done``'s place; return the event this worker takes next."""
        conversation = done.conversation
        if conversation is not None:
            key = (done.instance, conversation)
            waiting = self._claims[key]
            if waiting:
                follower = waiting.popleft()
                if not self._ready:
                    return follower
                # Others are waiting for a worker: take turns.
                self._ready.append(follower)
            else:
                del self._claims[key]
        return self._ready.popleft() if self._ready else None

    async def _work(self, event: InboundEvent | None) -> None:
        parked: _Parked | None = None
        try:
            while True:
                while event is not None:
                    self._inboxes[event.instance].taken()
                    await self.call(event)
                    event = self._next(event)
                # Out of work: wait to be handed some, rather than exit, since
                # starting a task costs more than waking one.
                parked = _Parked()
                self._parked.append(parked)
                if self._idle is not None and len(self._parked) == self._workers:
                    self._idle.set()
                await parked.wake.wait()
                event, parked = parked.event, None
        finally:
            self._workers -= 1
            if parked is not None:
                if parked in self._parked:
                    self._parked.remove(parked)
                elif parked.event is not None:
                    # Handed an event, cancelled before it woke: back in line, so
                    # that stop() logs it rather than it vanishing. (anyio delivers
                    # a cancellation after the wake-up today, so this is a guard
                    # no test can reach; losing an event silently is worse.)
                    self._ready.appendleft(parked.event)
            if self._idle is not None and self.busy == 0:
                self._idle.set()

    # -- stopping --------------------------------------------------------------

    async def stop(self, timeout: float | None = None) -> list[str]:
        """Refuse new events, let the handler finish the buffered ones, then stop.

        Call it once the producers are stopped. Every inbox is closed (a ``send``
        fails from now on, so nothing more is accepted); the workers carry on until
        the buffers are empty or ``timeout`` seconds (default ``drain_timeout``) have
        passed. Then each event still buffered is logged at WARNING by id, as is each
        one still in the handler (whose call is cancelled).

        :returns: the ids of the events that were not handled, as
            ``"instance/event_id"``.
        """
        if self._stopped:
            return []
        self._stopping = True
        for inbox in self._inboxes.values():
            inbox.close()
        if self.busy and self._group is not None:
            # Shared by concurrent callers: each waits for the same idle moment.
            if self._idle is None:
                self._idle = anyio.Event()
            with anyio.move_on_after(
                self.drain_timeout if timeout is None else timeout
            ):
                await self._idle.wait()
        self._stopped = True
        left = self._abandon()
        if self._group is not None:
            self._group.cancel_scope.cancel()
        return left

    def _abandon(self) -> list[str]:
        buffered = list(self._ready)
        for waiting in self._claims.values():
            buffered.extend(waiting)
        self._ready.clear()
        for waiting in self._claims.values():
            waiting.clear()
        left = []
        for event in buffered:
            self._inboxes[event.instance].taken()
            LOG.warning(
                "event %s of %s was not handled: demi stopped before its turn",
                event.event_id,
                event.instance,
            )
            left.append(f"{event.instance}/{event.event_id}")
        return left
