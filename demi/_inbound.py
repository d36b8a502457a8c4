"""The conductor's inbound side: the handler that events go to, the dispatcher of a
session, and a handle on each instance's inbox for the platform behind it."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable, Coroutine, Mapping
from contextlib import asynccontextmanager
from typing import Any

from .core.config import DemiSettings
from .handlers import load_handler
from .inbox import Dispatcher, EventObserver, HandledObserver, Handler, InboxHandle

__all__ = ["Inbound"]

Reply = Callable[[str, Mapping[str, Any]], Coroutine[Any, Any, Any]]


class Inbound:
    """Inbound events for one conductor.

    :param settings: returns the conductor's current settings (a reload changes them).
    :param reply: sends a handler's reply to an instance.
    :param handler: the handler; the one ``settings.handler`` names when ``None``.
    """

    def __init__(
        self,
        settings: Callable[[], DemiSettings],
        reply: Reply,
        handler: Handler | None = None,
    ) -> None:
        self._settings = settings
        self._reply = reply
        self._handler = handler
        self._dispatcher: Dispatcher | None = None
        self._event_observers: list[EventObserver] = []
        self._handled_observers: list[HandledObserver] = []

    def add_event_observer(self, observer: EventObserver) -> None:
        """Call ``observer(instance, "received" | "duplicate")`` for each event a
        platform sends."""
        self._event_observers.append(observer)

    def add_handled_observer(self, observer: HandledObserver) -> None:
        """Call ``observer(event, outcome, seconds, reason)`` after each handler call
        (outcome ``"ok"``, ``"error"`` or ``"timeout"``)."""
        self._handled_observers.append(observer)

    @asynccontextmanager
    async def dispatching(self) -> AsyncGenerator[None]:
        """Run a dispatcher for the block (a conductor's session).

        :raises ConfigError: the configured handler is not installed.
        """
        settings = self._settings()
        handler = self._handler or load_handler(settings.handler)
        dispatcher = Dispatcher(
            handler,
            reply=self._reply,
            handler_concurrency=settings.handler_concurrency,
            handler_timeout=settings.handler_timeout,
        )
        for observer in self._event_observers:
            dispatcher.add_event_observer(observer)
        for handled in self._handled_observers:
            dispatcher.add_handled_observer(handled)
        async with dispatcher:
            self._dispatcher = dispatcher
            try:
                yield
            finally:
                self._dispatcher = None

    def handle_for(self, instance: str) -> InboxHandle | None:
        """A fresh handle on ``instance``'s inbox for a new platform object, or
        ``None`` outside a session."""
        if self._dispatcher is None:
            return None
        return self._dispatcher.inbox(instance).handle()

    def depth(self, instance: str) -> int:
        """Events buffered for ``instance`` and not handled yet."""
        if self._dispatcher is None:
            return 0
        inbox = self._dispatcher.inboxes.get(instance)
        return inbox.depth if inbox is not None else 0

    async def drain(self, timeout: float) -> list[str]:
        """Let the handler finish the buffered events, at most ``timeout`` seconds;
        return the ``instance/event_id`` of those it did not get to (logged)."""
        if self._dispatcher is None:
            return []
        return await self._dispatcher.stop(timeout)
