"""Calling the handler for one event: its timeout, its failures, the reply."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import anyio

from ..core.logger import get_logger
from ..platforms.inbound import InboundEvent
from ._buffer import tell

__all__ = ["HandledObserver", "Handler", "HandlerCall", "Reply"]

LOG = get_logger(__name__)

#: The handler: called once per accepted event; a mapping it returns is a reply.
Handler = Callable[[InboundEvent], Awaitable[Mapping[str, Any] | None]]
#: Sends a reply: ``reply(instance, request)`` (the conductor passes its dispatch).
Reply = Callable[[str, Mapping[str, Any]], Awaitable[object]]
#: Told of every handled event: the event, the outcome (``"ok"``, ``"error"`` or
#: ``"timeout"``), the seconds the handler took, and the reason when not ok.
HandledObserver = Callable[[InboundEvent, str, float, "str | None"], None]


def _describe(err: BaseException) -> str:
    text = str(err)
    return f"{type(err).__name__}: {text}" if text else type(err).__name__


class HandlerCall:
    """Calls the handler for one event at a time, and never lets it fail the caller.

    A handler that raises, returns something other than a mapping or ``None``, or
    outlives ``timeout`` seconds is logged at ERROR with the event id and the reason;
    the observers hear the outcome either way. The event is not retried: retrying
    could answer a person twice. A returned mapping goes to ``reply(event.instance,
    mapping)``; a reply that fails is logged with the event id. Replies are bounded by
    the reply path (the conductor's request timeout), not by ``timeout``.

    :param handler: ``async def handler(event) -> Mapping | None``.
    :param reply: where replies go; ``None`` drops them, with a warning.
    :param timeout: seconds one handler call may take.
    """

    def __init__(
        self, handler: Handler, *, reply: Reply | None, timeout: float
    ) -> None:
        self.handler = handler
        self.reply = reply
        self.timeout = timeout
        #: Told of every handled event (:data:`HandledObserver`).
        self.observers: list[HandledObserver] = []

    async def __call__(self, event: InboundEvent) -> None:
        """Handle ``event``: see the class docstring."""
        started = time.perf_counter()
        outcome, reason = "ok", None
        # Typed as object: the handler's annotation is a promise, not proof.
        result: object = None
        try:
            with anyio.move_on_after(self.timeout) as scope:
                result = await self.handler(event)
            if scope.cancelled_caught:
                outcome = "timeout"
                reason = f"did not finish within {self.timeout:g} s"
        except anyio.get_cancelled_exc_class():
            LOG.warning(
                "event %s of %s was not handled: demi stopped while it was in the "
                "handler",
                event.event_id,
                event.instance,
            )
            raise
        except (Exception, SystemExit, GeneratorExit) as err:
            # The handler is someone else's code: its failure is this event's alone.
            outcome, reason = "error", _describe(err)
        elapsed = time.perf_counter() - started
        if result is not None and not isinstance(result, Mapping):
            outcome = "error"
            reason = f"returned a {type(result).__name__}, not a mapping or None"
        if reason is not None:
            LOG.error(
                "handler %s on event %s of %s: %s",
                outcome,
                event.event_id,
                event.instance,
                reason,
            )
        tell(self.observers, event, outcome, elapsed, reason)
        if outcome == "ok" and isinstance(result, Mapping):
            await self._send_reply(event, result)

    async def _send_reply(self, event: InboundEvent, reply: Mapping[str, Any]) -> None:
        if self.reply is None:
            LOG.warning(
                "the reply to event %s of %s was dropped: no reply path is set",
                event.event_id,
                event.instance,
            )
            return
        try:
            await self.reply(event.instance, reply)
        except anyio.get_cancelled_exc_class():
            LOG.warning(
                "the reply to event %s of %s was not sent: demi stopped while it "
                "was on its way",
                event.event_id,
                event.instance,
            )
            raise
        except (Exception, SystemExit, GeneratorExit) as err:
            LOG.error(
                "the reply to event %s of %s failed: %s",
                event.event_id,
                event.instance,
                _describe(err),
            )
