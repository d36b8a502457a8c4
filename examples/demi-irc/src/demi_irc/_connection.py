"""One TCP (or TLS) connection to an IRC server, as lines, on anyio streams.

anyio rather than an asyncio IRC library, so that the platform runs on trio too.
"""

from __future__ import annotations

import anyio
from anyio.abc import ByteStream
from anyio.streams.buffered import BufferedByteReceiveStream

from ._message import Message, build, parse

__all__ = ["Closed", "Connection"]

# IRCv3 allows 8191 bytes of tags before the 512 of the message itself.
_MAX_LINE = 8191 + 512

# What anyio raises when the peer went away, the stream was closed, or the socket
# broke; all of them mean "this connection is over".
_GONE = (
    anyio.EndOfStream,
    anyio.IncompleteRead,
    anyio.BrokenResourceError,
    anyio.ClosedResourceError,
    OSError,
)


class Closed(Exception):
    """The connection is over (the server closed it, or the socket broke)."""


class Connection:
    """Send commands and receive parsed lines; sends are serialized by a lock."""

    def __init__(self, stream: ByteStream) -> None:
        self._stream = stream
        self._reader = BufferedByteReceiveStream(stream)
        self._send_lock = anyio.Lock()

    @classmethod
    async def open(cls, host: str, port: int, *, tls: bool) -> Connection:
        """Connect to ``host:port`` (over TLS when ``tls``).

        :raises OSError: the server cannot be reached.
        """
        if not tls:
            return cls(await anyio.connect_tcp(host, port))
        # IRC servers commonly close TLS without close_notify; that is not an error.
        return cls(
            await anyio.connect_tcp(host, port, tls=True, tls_standard_compatible=False)
        )

    async def send(self, command: str, *params: str) -> None:
        """Send one command.

        :raises Closed: the connection is over.
        """
        line = build(command, *params)
        async with self._send_lock:
            try:
                await self._stream.send(line)
            except _GONE as err:
                raise Closed(_why(err)) from err

    async def receive(self) -> Message:
        """Wait for the next line from the server.

        :raises Closed: the server closed the connection, or it broke.
        """
        try:
            raw = await self._reader.receive_until(b"\n", _MAX_LINE)
        except anyio.DelimiterNotFound as err:
            raise Closed(f"the server sent a line over {_MAX_LINE} bytes") from err
        except _GONE as err:
            raise Closed(_why(err)) from err
        # IRC has no declared encoding; UTF-8 is the norm, and a stray byte from
        # an old client must not end the connection.
        return parse(raw.rstrip(b"\r").decode("utf-8", errors="replace"))

    async def drain(self) -> None:
        """Read and discard until the server closes the connection."""
        try:
            while True:
                await self._reader.receive()
        except (*_GONE, anyio.BusyResourceError):
            return

    async def aclose(self) -> None:
        """Close the socket; safe to repeat."""
        await self._stream.aclose()


def _why(err: BaseException) -> str:
    if isinstance(err, anyio.EndOfStream | anyio.IncompleteRead):
        return "the server closed the connection"
    if isinstance(err, OSError) and err.strerror:
        return f"the connection broke: {err.strerror}"
    return f"the connection broke ({type(err).__name__})"
