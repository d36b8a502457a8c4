"""The wire between demi and an isolated platform's child process.

A frame is a u32 big-endian length followed by that many bytes of one msgpack
message (msgspec's codec: no home-made serialization), at most :data:`MAX_FRAME`
bytes. A message is a :class:`Message`: its kind ``t``, the request ``id`` it belongs
to, and for requests the ``method`` and its ``params``.

Kinds: ``hello`` (the child, once: its pid and its driver's version), ``req`` and
``cancel`` (demi to the child), ``ok`` and ``err`` (the child's answer to a request),
``ready`` (the child's ``run`` request is connected), ``event`` (an inbound event the
child's platform sent; its ``id`` is the child's own count) and ``ack`` (demi's answer
to it), and ``log`` (a log record of the child's).
"""

from __future__ import annotations

import struct
from typing import Any, Literal

import anyio
import msgspec
from anyio.abc import ByteStream
from anyio.streams.buffered import BufferedByteReceiveStream

from ..exceptions import DemiError

__all__ = ["MAX_FRAME", "Channel", "Message", "WireError", "decode", "encode"]

#: The largest message either side sends or accepts, in bytes.
MAX_FRAME = 16 * 1024 * 1024

#: Seconds a send may wait for the other side to read before the channel is given
#: up as broken.
SEND_LIMIT = 10.0

_HEADER = struct.Struct(">I")

Kind = Literal["req", "ok", "err", "cancel", "event", "ack", "ready", "log", "hello"]


class Message(msgspec.Struct, omit_defaults=True):
    """One message on the wire."""

    #: What it is (see the module's docstring).
    t: Kind
    #: The request it belongs to (0 for hello and log).
    id: int = 0
    #: The platform method a ``req`` calls.
    method: str = ""
    #: The method's argument, the answer, or the error or record.
    params: Any = None


class WireError(DemiError):
    """A message could not be carried: unencodable, too large, or garbled."""


_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(Message)


def encode(message: Message) -> bytes:
    """``message`` as one frame, header included.

    :raises WireError: the codec cannot carry it, or it is over :data:`MAX_FRAME`.
    """
    try:
        body = _encoder.encode(message)
    except (TypeError, ValueError, OverflowError, msgspec.EncodeError) as err:
        raise WireError(f"cannot be encoded: {err}") from None
    if len(body) > MAX_FRAME:
        raise WireError(f"is {len(body)} bytes, over the {MAX_FRAME}-byte limit")
    return _HEADER.pack(len(body)) + body


def decode(body: bytes) -> Message:
    """The message in one frame's body.

    :raises WireError: it is not a valid message.
    """
    try:
        return _decoder.decode(body)
    except msgspec.DecodeError as err:
        raise WireError(f"garbled message: {err}") from None


class Channel:
    """Both directions of one socket: whole frames out (one writer at a time), whole
    messages in."""

    def __init__(self, stream: ByteStream) -> None:
        self._stream = stream
        self._reader = BufferedByteReceiveStream(stream)
        self._writing = anyio.Lock()
        self._length: int | None = None

    async def send(self, message: Message) -> None:
        """Send one message.

        :raises WireError: it cannot be encoded (nothing was sent).
        :raises anyio.BrokenResourceError: the other side is gone.
        """
        frame = encode(message)
        async with self._writing:
            # A frame half sent would garble every later one, so a send is never
            # cut short by its caller's cancellation; a peer that stops reading
            # for SEND_LIMIT seconds gets its socket closed instead.
            with anyio.CancelScope(shield=True):
                with anyio.move_on_after(SEND_LIMIT) as scope:
                    await self._stream.send(frame)
            if scope.cancelled_caught:
                await anyio.aclose_forcefully(self._stream)
                raise anyio.BrokenResourceError(
                    f"the other side read nothing for {SEND_LIMIT:g}s"
                )

    async def receive(self) -> Message:
        """The next message.

        :raises anyio.EndOfStream: the other side closed its end.
        :raises WireError: a frame over the limit, or a garbled one.
        """
        # Safe to cancel at any await: the buffered reader keeps a partial read, and
        # a header already read is kept here until its body has arrived.
        if self._length is None:
            header = await self._reader.receive_exactly(_HEADER.size)
            (self._length,) = _HEADER.unpack(header)
        length = self._length
        if length > MAX_FRAME:
            raise WireError(f"a {length}-byte frame is over the {MAX_FRAME}-byte limit")
        body = await self._reader.receive_exactly(length)
        self._length = None
        return decode(body)

    async def aclose(self) -> None:
        """Close the socket (the other side sees end-of-file)."""
        await self._stream.aclose()
