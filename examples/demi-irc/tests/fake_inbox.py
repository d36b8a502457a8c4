"""A fake inbox: what a platform's run() is given, collecting the events it sends."""

from __future__ import annotations

import anyio
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from demi import InboundEvent
from demi.platforms.inbound import check_event

__all__ = ["FakeInbox"]


class FakeInbox:
    """Checks each event as demi would and hands it to :meth:`next`."""

    def __init__(self, instance: str = "chat") -> None:
        self._instance = instance
        self._send: MemoryObjectSendStream[InboundEvent]
        self._receive: MemoryObjectReceiveStream[InboundEvent]
        self._send, self._receive = anyio.create_memory_object_stream[InboundEvent](100)

    @property
    def instance(self) -> str:
        """The instance this inbox belongs to."""
        return self._instance

    async def send(self, event: InboundEvent) -> bool:
        """Accept ``event`` (a malformed one raises, as demi's inbox does)."""
        await self._send.send(check_event(event, self._instance))
        return True

    async def next(self, timeout: float = 20.0) -> InboundEvent:
        """The next event the platform sent; fail after ``timeout`` seconds."""
        with anyio.fail_after(timeout):
            return await self._receive.receive()

    def close(self) -> None:
        """Close both ends (no warning about unclosed streams)."""
        self._send.close()
        self._receive.close()
