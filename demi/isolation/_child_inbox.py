"""The inbound contract inside the child: the inbox a platform's ``run`` and
``handle_webhook`` are given, and the ``task_status`` its ``run`` reports readiness
on. Both speak through the child's one outgoing queue, so readiness and events reach
demi in the order the platform produced them."""

from __future__ import annotations

import itertools
from typing import Any

import anyio
from anyio.streams.memory import MemoryObjectSendStream

from ..exceptions import PluginValidationError
from ..platforms.inbound import InboundEvent, check_event
from ._shapes import event_to_wire
from ._wire import Message

__all__ = ["ChildInbox", "ChildReady"]


class _Waiter:
    __slots__ = ("accepted", "done", "refused")

    def __init__(self) -> None:
        self.done = anyio.Event()
        self.accepted = False
        self.refused: str | None = None


class ChildInbox:
    """An :class:`~demi.Inbox` whose ``send`` returns once demi, in the parent,
    accepted the event (or dropped it as a redelivery), so the backpressure of the
    instance's buffer reaches the platform across the boundary."""

    def __init__(self, instance: str, outbox: MemoryObjectSendStream[Message]) -> None:
        self._instance = instance
        self._outbox = outbox
        self._ids = itertools.count(1)
        self._waiting: dict[int, _Waiter] = {}

    @property
    def instance(self) -> str:
        """The configured instance whose buffer this is."""
        return self._instance

    async def send(self, event: InboundEvent) -> bool:
        """Hand ``event`` to demi; see :meth:`demi.Inbox.send`.

        :raises PluginValidationError: it is malformed, or its data cannot cross
            the process boundary.
        """
        check_event(event, self._instance)
        ident = next(self._ids)
        waiter = self._waiting[ident] = _Waiter()
        try:
            self._outbox.send_nowait(
                Message("event", ident, params=event_to_wire(event))
            )
            await waiter.done.wait()
        finally:
            self._waiting.pop(ident, None)
        if waiter.refused is not None:
            raise PluginValidationError(self._instance, waiter.refused)
        return waiter.accepted

    def answer(self, ident: int, params: Any) -> None:
        """demi's ``ack`` for event ``ident``: accepted, dropped, or refused why."""
        waiter = self._waiting.get(ident)
        if waiter is None:
            return
        fields = params if isinstance(params, dict) else {}
        refused = fields.get("refused")
        waiter.refused = str(refused) if refused is not None else None
        waiter.accepted = fields.get("accepted") is True
        waiter.done.set()

    def refuse(self, ident: int, why: str) -> None:
        """Event ``ident`` could not be sent at all (the codec refused it)."""
        self.answer(ident, {"refused": f"platform {self._instance!r}: its event {why}"})


class ChildReady:
    """The ``task_status`` of the child's ``run``: ``started()`` tells demi the
    connection is up, which makes the instance active there."""

    def __init__(self, outbox: MemoryObjectSendStream[Message], ident: int) -> None:
        self._outbox = outbox
        self._ident = ident

    def started(self, value: Any = None) -> None:
        """Report readiness (once; later calls are ignored, as anyio's would fail)."""
        if self._ident:
            self._outbox.send_nowait(Message("ready", self._ident))
            self._ident = 0
