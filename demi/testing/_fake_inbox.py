"""An inbox for tests: collects what a platform sends, checked as demi checks it."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

import anyio
from anyio.lowlevel import checkpoint

from ..exceptions import PluginValidationError
from ..platforms.inbound import InboundEvent, check_event

__all__ = ["FakeInbox"]


class FakeInbox:
    """A :class:`demi.Inbox` that keeps every event a platform sends, for a test.

    Hand it to your platform's ``run`` or ``handle_webhook`` and look at
    :attr:`events` afterwards::

        inbox = FakeInbox("chat")
        async with anyio.create_task_group() as group:
            await group.start(platform.run, inbox)
            ...  # make the service send the platform a message
            await inbox.wait_for(1, timeout=5)
            group.cancel_scope.cancel()
        assert inbox.events[0].data["text"] == "hello"

    It behaves as demi's own inbox does where a platform can tell: each event is
    checked with :func:`demi.platforms.inbound.check_event` (a malformed one raises
    :class:`~demi.PluginValidationError`, and is kept in :attr:`rejected`), an event
    whose ``event_id`` was accepted before is dropped and counted (``send`` returns
    ``False``; every id is remembered, where demi keeps a window of recent ones), and an accepted one gets ``instance`` and ``received_at`` filled in.
    With a ``capacity``, ``send`` waits while that many events are held, until the
    test calls :meth:`take`: that is how a test shows backpressure.

    :param instance: the instance name events are stamped with.
    :param capacity: events held at most before ``send`` waits; ``None`` for no bound.
    """

    def __init__(self, instance: str = "test", *, capacity: int | None = None) -> None:
        if capacity is not None and capacity < 1:
            raise ValueError(
                f"a FakeInbox's capacity must be at least 1, not {capacity}"
            )
        self._instance = instance
        self.capacity = capacity
        #: Accepted events, in the order they were sent (instance and time filled in).
        self.events: list[InboundEvent] = []
        #: How many events were dropped as redeliveries of an accepted ``event_id``.
        self.duplicates = 0
        #: Why each malformed event was refused, in order (check_event's message).
        self.rejected: list[str] = []
        self._seen: set[str] = set()
        self._held = 0
        # Made on first wait: an anyio.Event needs a running event loop, and a test
        # may build its inbox before it has one.
        self._changed: anyio.Event | None = None

    @property
    def instance(self) -> str:
        """The instance name this inbox stamps on events."""
        return self._instance

    @property
    def held(self) -> int:
        """Accepted events not yet released with :meth:`take` (counts toward capacity)."""
        return self._held

    async def send(self, event: InboundEvent) -> bool:
        """Accept ``event`` as demi would; see the class docstring.

        :raises PluginValidationError: the event is malformed.
        """
        await checkpoint()
        try:
            event = check_event(event, self._instance)
        except PluginValidationError as err:
            self.rejected.append(str(err))
            self._notify()
            raise
        while True:
            # Checked again after every wait, as demi does: a redelivery may have
            # been accepted meanwhile.
            if event.event_id in self._seen:
                self.duplicates += 1
                return False
            if self.capacity is None or self._held < self.capacity:
                break
            await self._change().wait()
        accepted = dataclasses.replace(
            event, instance=self._instance, received_at=datetime.now(UTC)
        )
        self._seen.add(event.event_id)
        self.events.append(accepted)
        self._held += 1
        self._notify()
        return True

    def take(self, count: int | None = None) -> list[InboundEvent]:
        """Release ``count`` held events (all when ``None``), oldest first, making
        room for senders that wait; return them."""
        count = self._held if count is None else min(count, self._held)
        first = len(self.events) - self._held
        self._held -= count
        self._notify()
        return self.events[first : first + count]

    async def wait_for(self, count: int, timeout: float) -> list[InboundEvent]:
        """Wait until at least ``count`` events were accepted; return them all.

        :raises PluginValidationError: a malformed event was refused (meanwhile or
            before): waiting on would hide why the count falls short.
        :raises TimeoutError: fewer arrived within ``timeout`` seconds; the message
            says how many did.
        """
        with anyio.move_on_after(timeout):
            while len(self.events) < count and not self.rejected:
                await self._change().wait()
        if self.rejected:
            raise PluginValidationError(self._instance, self.rejected[0])
        if len(self.events) < count:
            raise TimeoutError(
                f"{len(self.events)} of {count} events arrived in inbox "
                f"{self._instance!r} within {timeout:g}s"
            )
        return list(self.events)

    def _change(self) -> anyio.Event:
        if self._changed is None:
            self._changed = anyio.Event()
        return self._changed

    def _notify(self) -> None:
        changed, self._changed = self._changed, None
        if changed is not None:
            changed.set()
