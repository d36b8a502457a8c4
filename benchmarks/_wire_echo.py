"""The floor of the isolation benchmarks (cases 9 and 11): the other end of a
socket pair that answers every request with its own argument, over demi's own
framing (``demi.isolation._wire``: msgpack by msgspec, u32 length prefix).

Run as ``python _wire_echo.py [--tasks] FD``, like demi's child (the same
interpreter, a session of its own, the socket passed as a file descriptor). It says
``hello``, then echoes each request inline, one after another, on an asyncio loop
(the loop demi's child runs for a platform that does not ask for another), and exits
at end-of-file.

With ``--tasks`` it answers each request in a task of its own inside a cancel scope
of its own, as any server must that answers requests side by side and can cancel
one (demi's child does): shown for information, to tell that cost from demi's.
"""

from __future__ import annotations

import os
import socket
import sys

import anyio
from anyio.abc import UNIXSocketStream

from demi.isolation._wire import Channel, Message


async def _answer(channel: Channel, request: Message) -> None:
    await channel.send(Message("ok", request.id, params=request.params["request"]))


async def _answer_in_scope(channel: Channel, request: Message) -> None:
    with anyio.CancelScope():
        await _answer(channel, request)


async def serve(fd: int, tasks: bool) -> None:
    """Echo requests on the socket ``fd`` until the other side closes it."""
    channel = Channel(await UNIXSocketStream.from_socket(socket.socket(fileno=fd)))
    await channel.send(Message("hello", params={"pid": os.getpid()}))
    async with anyio.create_task_group() as group:
        while True:
            try:
                request = await channel.receive()
            except (anyio.EndOfStream, anyio.IncompleteRead, OSError):
                break
            if tasks:
                group.start_soon(_answer_in_scope, channel, request)
            else:
                await _answer(channel, request)


if __name__ == "__main__":
    anyio.run(serve, int(sys.argv[-1]), "--tasks" in sys.argv, backend="asyncio")
