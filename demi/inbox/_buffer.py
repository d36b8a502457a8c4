"""The per-instance buffer behind every inbox handle, and the handles themselves."""

from __future__ import annotations

import dataclasses
from collections import deque
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

import anyio
from anyio.lowlevel import checkpoint_if_cancelled

from ..core.logger import get_logger
from ..exceptions import PlatformUnavailableError, PluginStateError
from ..platforms.inbound import InboundEvent, Inbox, check_event

__all__ = ["EventObserver", "InboxHandle", "InstanceInbox", "RecentIds", "tell"]

LOG = get_logger(__name__)

#: Told of each event an inbox received: the instance, and ``"received"`` (accepted)
#: or ``"duplicate"`` (dropped as a redelivery).
EventObserver = Callable[[str, str], None]


def tell(observers: Sequence[Callable[..., None]], *args: object) -> None:
    """Call each observer with ``args``; one that raises is logged and skipped.

    Observers feed metrics: a broken one must not lose an accepted event or stop
    the workers.
    """
    for observer in observers:
        try:
            observer(*args)
        except Exception:
            LOG.exception("an inbox observer (%r) failed", observer)


class RecentIds:
    """The last ``size`` event ids an instance accepted, for spotting redeliveries.

    A window by count, not by time: memory stays bounded however fast events arrive,
    and a reconnect that replays the last few hundred messages is always covered.
    """

    def __init__(self, size: int) -> None:
        if size < 1:
            raise ValueError(f"the redelivery window must be at least 1, not {size}")
        self.size = size
        self._ids: set[str] = set()
        self._order: deque[str] = deque()

    def __contains__(self, event_id: str) -> bool:
        return event_id in self._ids

    def __len__(self) -> int:
        return len(self._ids)

    def add(self, event_id: str) -> None:
        """Remember ``event_id``, forgetting the oldest one beyond the window."""
        self._ids.add(event_id)
        self._order.append(event_id)
        if len(self._order) > self.size:
            self._ids.discard(self._order.popleft())


class InstanceInbox:
    """The buffer of one configured instance: what its platforms send, until handled.

    It belongs to the instance, not to a platform object: each platform object behind
    the instance (after a restart or a driver swap) gets a new :class:`InboxHandle` on
    the same buffer, so neither the events already accepted nor the memory of recent
    event ids are lost with the old object. Built by
    :meth:`demi.inbox.Dispatcher.inbox`, which ``schedule`` belongs to.

    :param instance: the instance's name.
    :param capacity: events accepted but not yet handed to the handler, at most;
        beyond that, :meth:`send` waits (backpressure).
    :param dedup_window: how many recent event ids are remembered (:class:`RecentIds`).
    :param schedule: called with every accepted event.
    :param observers: told of every received and duplicate event.
    """

    def __init__(
        self,
        instance: str,
        *,
        capacity: int,
        dedup_window: int,
        schedule: Callable[[InboundEvent], None],
        observers: list[EventObserver],
    ) -> None:
        if capacity < 1:
            raise ValueError(f"an inbox's capacity must be at least 1, not {capacity}")
        self.instance = instance
        self.capacity = capacity
        #: Events accepted, in total.
        self.received = 0
        #: Events dropped as redeliveries, in total.
        self.duplicates = 0
        self.recent = RecentIds(dedup_window)
        self._depth = 0
        self._closed = False
        self._space: anyio.Event | None = None
        self._schedule = schedule
        self._observers = observers

    @property
    def depth(self) -> int:
        """Events accepted and not yet handed to the handler."""
        return self._depth

    @property
    def closed(self) -> bool:
        """Whether the inbox refuses new events (demi is stopping)."""
        return self._closed

    def handle(self) -> InboxHandle:
        """A new handle on this buffer, for a new platform object."""
        return InboxHandle(self)

    async def send(
        self, event: InboundEvent, *, handle: InboxHandle | None = None
    ) -> bool:
        """Accept ``event``: see :meth:`InboxHandle.send`."""
        # A cancellation point, but no yield when there is room: a yield per event
        # would cost a loop iteration each, and a full buffer makes the producer wait.
        await checkpoint_if_cancelled()
        event = check_event(event, self.instance)
        event_id = event.event_id
        while True:
            if self._closed:
                raise PlatformUnavailableError(
                    self.instance,
                    f"instance {self.instance!r} is stopping: event {event_id!r} "
                    "was not accepted",
                )
            if handle is not None and handle.retired:
                raise PluginStateError(
                    self.instance,
                    f"this inbox handle of instance {self.instance!r} was retired "
                    "(its platform was restarted or replaced): event "
                    f"{event_id!r} was not accepted",
                )
            # Checked again after every wait: a redelivery may have been accepted
            # meanwhile. Nothing below awaits, so the check and the accept are atomic.
            if event_id in self.recent:
                self.duplicates += 1
                tell(self._observers, self.instance, "duplicate")
                return False
            if self._depth < self.capacity:
                break
            if self._space is None:
                self._space = anyio.Event()
            await self._space.wait()
        accepted = dataclasses.replace(
            event, instance=self.instance, received_at=datetime.now(UTC)
        )
        self.recent.add(event_id)
        self._depth += 1
        self.received += 1
        self._schedule(accepted)
        tell(self._observers, self.instance, "received")
        return True

    def close(self) -> None:
        """Refuse new events from now on; wake every sender waiting for room."""
        self._closed = True
        self._wake()

    def taken(self, count: int = 1) -> None:
        """``count`` events left the buffer (handed to the handler, or abandoned)."""
        self._depth -= count
        if self._space is not None and self._depth < self.capacity:
            self._wake()

    def _wake(self) -> None:
        space, self._space = self._space, None
        if space is not None:
            space.set()


class InboxHandle:
    """One platform object's view of its instance's :class:`InstanceInbox`.

    This is what a platform's ``run`` and ``handle_webhook`` are given (it fulfils
    :class:`demi.platforms.Inbox`). Retiring it when the platform object is retired
    makes a late ``send`` from that object fail instead of slipping in.
    """

    __slots__ = ("_inbox", "retired")

    def __init__(self, inbox: InstanceInbox) -> None:
        self._inbox = inbox
        #: Whether :meth:`retire` was called.
        self.retired = False

    @property
    def instance(self) -> str:
        """The configured instance whose buffer this is."""
        return self._inbox.instance

    async def send(self, event: InboundEvent) -> bool:
        """Hand one event to demi.

        Checks it, then drops it (``False``) if the instance accepted an event with
        the same ``event_id`` recently (a redelivery), else fills in ``instance`` and
        ``received_at`` and buffers it for the handler (``True``). Waits while the
        buffer is full. Once this returns ``True`` the event will reach the handler
        exactly once, or be logged by id if demi stops before its turn.

        :raises PluginValidationError: the event is malformed.
        :raises PlatformUnavailableError: demi is stopping; the event was not accepted.
        :raises PluginStateError: this handle was retired; the event was not accepted.
        """
        return await self._inbox.send(event, handle=self)

    def retire(self) -> None:
        """Refuse every later :meth:`send` through this handle (others carry on)."""
        self.retired = True
        # Senders waiting for room re-check, and fail, at once.
        self._inbox._wake()


def _as_inbox(handle: InboxHandle) -> Inbox:
    # Never called: mypy checks here that a handle is what platforms are promised.
    return handle
