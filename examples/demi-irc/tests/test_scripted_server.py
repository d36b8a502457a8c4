"""What ngircd cannot show: IRCv3 message ids and a server ban. A scripted server on
127.0.0.1 plays the few lines needed, and records what the bot sent."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import anyio
import pytest
from anyio.abc import SocketStream
from anyio.streams.buffered import BufferedByteReceiveStream
from demi_irc import IrcPlatform
from fake_inbox import FakeInbox

from demi import PlatformFatalError

pytestmark = pytest.mark.anyio

Script = Callable[["Peer"], Awaitable[None]]


class Peer:
    """The bot's connection, seen from the server: send lines, read the bot's."""

    def __init__(self, stream: SocketStream) -> None:
        self.stream = stream
        self.reader = BufferedByteReceiveStream(stream)
        self.received: list[str] = []

    async def say(self, *lines: str) -> None:
        await self.stream.send("".join(f"{line}\r\n" for line in lines).encode())

    async def until(self, prefix: str) -> str:
        """Read the bot's lines until one starts with ``prefix``."""
        while True:
            line = (await self.reader.receive_until(b"\r\n", 4096)).decode()
            self.received.append(line)
            if line.startswith(prefix):
                return line


@asynccontextmanager
async def scripted(script: Script) -> AsyncIterator[int]:
    """Serve one connection with ``script``; yield the port."""
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
    port = listener.extra(anyio.abc.SocketAttribute.local_port)

    async def serve(stream: SocketStream) -> None:
        async with stream:
            await script(Peer(stream))
            await anyio.sleep_forever()

    async with listener, anyio.create_task_group() as group:
        group.start_soon(listener.serve, serve)
        yield port
        group.cancel_scope.cancel()


async def test_the_servers_msgid_is_the_event_id(inbox: FakeInbox) -> None:
    sent: list[str] = []

    async def script(peer: Peer) -> None:
        await peer.until("CAP LS")
        await peer.say(":irc.test CAP * LS :multi-prefix message-tags")
        await peer.until("CAP REQ message-tags")
        await peer.say(":irc.test CAP * ACK :message-tags")
        await peer.until("CAP END")  # NICK and USER came before the REQ
        await peer.say(":irc.test 001 demibot :Welcome")
        await peer.until("JOIN #demi")
        await peer.say(
            ":demibot!bot@host JOIN #demi",
            "@msgid=abc123;time=2026-12-01T00:00:00Z :alice!a@h PRIVMSG #demi :tagged",
            ":alice!a@h PRIVMSG #demi :untagged",
        )
        sent.extend(peer.received)

    async with scripted(script) as port, anyio.create_task_group() as group:
        platform = IrcPlatform()
        await platform.initialize(
            {
                "host": "127.0.0.1",
                "port": port,
                "nick": "demibot",
                "channels": ["#demi"],
            }
        )
        with anyio.fail_after(10):
            await group.start(platform.run, inbox)
            tagged = await inbox.next()
            untagged = await inbox.next()
        group.cancel_scope.cancel()
    await platform.shutdown()
    assert tagged.event_id == "abc123"
    assert tagged.data["text"] == "tagged"
    assert untagged.event_id != "abc123" and untagged.event_id.startswith("irc-")
    assert "CAP REQ message-tags" in sent


async def test_a_server_ban_is_fatal(inbox: FakeInbox) -> None:
    async def script(peer: Peer) -> None:
        await peer.until("USER")
        await peer.say(":irc.test 465 demibot :You are banned from this server")

    async with scripted(script) as port:
        platform = IrcPlatform()
        await platform.initialize(
            {"host": "127.0.0.1", "port": port, "nick": "demibot"}
        )
        with anyio.fail_after(10), pytest.raises(PlatformFatalError, match="banned"):
            await platform.run(inbox)
        await platform.shutdown()
