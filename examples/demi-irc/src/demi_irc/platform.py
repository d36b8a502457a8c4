"""The IRC platform: a bot that joins channels, listens, and answers with PRIVMSG."""

from __future__ import annotations

import itertools
import logging
import re
import uuid
from collections.abc import Mapping
from typing import Any

import anyio
from anyio.abc import TaskStatus

from demi import (
    DemiError,
    InboundEvent,
    Inbox,
    PlatformFatalError,
    PlatformRequestError,
)
from demi.platforms import BasePlatform, HealthStatus, PluginHealth

from ._connection import Closed, Connection
from ._message import Message
from ._split import privmsg_budget, split_text
from .config import IrcConfig

__all__ = ["IrcConnectionError", "IrcPlatform"]

LOG = logging.getLogger(__name__)

#: Numerics after which reconnecting cannot help: fix the configuration instead.
FATAL_REPLIES = {
    "432": "the server refused the nickname as invalid",
    "464": "the server rejected the password",
    "465": "the server has banned this client",
    "473": "a channel is invite-only",
    "474": "the bot is banned from a channel",
    "475": "a channel needs a key",
}
#: Numerics that end the attempt, but a later one may succeed.
TRANSIENT_REPLIES = {
    "433": "the nickname is in use",
    "436": "the nickname collided",
    "437": "the nickname or channel is temporarily unavailable",
    "471": "a channel is full",
}
# A reply target: a nick or a channel, one IRC parameter (no space, comma, control).
_TARGET = re.compile(r"[^\s,:\x00-\x1f][^\s,\x00-\x1f]*")
# How long a QUIT may take before the socket is closed anyway.
_QUIT_TIMEOUT = 2.0


class IrcConnectionError(DemiError, ConnectionError):
    """The connection to the IRC server failed or was lost; reconnecting may help."""


class IrcPlatform(BasePlatform):
    """Connects to an IRC server in :meth:`run`, joins ``channels``, and turns
    channel and private messages into ``message`` events.

    A request ``{"text": ..., "conversation": ...}`` is sent as PRIVMSG to the
    conversation (a channel or a nick), one line per line of text, long lines cut
    to the protocol's limit; the answer is ``{"sent": <number of lines>}``.

    The connection outlives a cancelled :meth:`run`, so that replies to events
    already accepted can still go out while demi stops; :meth:`shutdown` sends
    QUIT and closes it.
    """

    config_model = IrcConfig
    #: One nick, one connection: a restart stops the old bot before the new one joins.
    exclusive = True
    #: Built on anyio streams, not an asyncio-only IRC library: every backend.
    supported_backends = None

    def __init__(self) -> None:
        self._config: IrcConfig | None = None
        self._conn: Connection | None = None
        self._registered = False
        self._nick = ""
        #: Our ``nick!user@host`` as the server relays it (from our JOIN echo).
        self._mask: str | None = None
        self._ids = itertools.count(1)
        # One reply's lines go out together, not interleaved with another's.
        self._reply_lock = anyio.Lock()
        self._session = uuid.uuid4().hex[:12]

    async def initialize(self, config: Mapping[str, Any]) -> bool:
        """Validate the configuration; the connection is made by :meth:`run`."""
        self._config = IrcConfig.model_validate(config)
        self._nick = self._config.nick
        return True

    async def run(
        self,
        inbox: Inbox,
        *,
        task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED,
    ) -> None:
        """Connect, register, join; report started; then deliver messages forever.

        :raises IrcConnectionError: the server could not be reached or went away
            (transient: demi reconnects through the restart policy).
        :raises PlatformFatalError: the server refused us for good (a wrong
            password, a ban); retrying cannot help.
        """
        config = self._require_config()
        await self._close("reconnecting")  # never two connections of one bot
        try:
            conn = await Connection.open(config.host, config.port, tls=config.tls)
        except OSError as err:
            reason = err.strerror or type(err).__name__
            raise IrcConnectionError(
                f"cannot connect to {config.host}:{config.port}: {reason}"
            ) from err
        self._conn = conn
        self._session = uuid.uuid4().hex[:12]
        try:
            await self._register(conn, config)
            early = await self._join(conn, config.channels)
            self._registered = True
            LOG.info("%s: connected as %s", self.name, self._nick)
            task_status.started()
            for message in early:
                await self._deliver(message, inbox)
            while True:
                await self._deliver(await self._receive(conn), inbox)
        except anyio.get_cancelled_exc_class():
            # demi stops listening first; the socket stays open so replies can
            # still go out until shutdown() sends QUIT.
            raise
        except Closed as err:
            await self._forget(conn)
            raise IrcConnectionError(str(err)) from err
        except BaseException:
            await self._forget(conn)
            raise

    async def health_check(self) -> PluginHealth:
        """Healthy while registered with the server."""
        if self._registered and self._conn is not None:
            return PluginHealth(HealthStatus.HEALTHY)
        return PluginHealth(HealthStatus.UNHEALTHY, error_message="not connected")

    async def handle_request(self, request: Mapping[str, Any]) -> dict[str, Any]:
        """Send ``request["text"]`` as PRIVMSG to ``request["conversation"]``.

        :raises PlatformRequestError: the request is malformed, or the bot is not
            connected.
        """
        text = request.get("text")
        target = request.get("conversation")
        if not isinstance(text, str):
            raise PlatformRequestError(self.name, f"{self.name}: 'text' must be a str")
        if not isinstance(target, str) or not _TARGET.fullmatch(target):
            raise PlatformRequestError(
                self.name, f"{self.name}: 'conversation' must be a channel or a nick"
            )
        conn = self._conn
        if conn is None:
            raise PlatformRequestError(self.name, f"{self.name}: not connected")
        pieces = split_text(text, privmsg_budget(self._mask, self._nick, target))
        try:
            async with self._reply_lock:
                for piece in pieces:
                    await conn.send("PRIVMSG", target, piece)
        except Closed as err:
            raise PlatformRequestError(self.name, f"{self.name}: {err}") from err
        return {"sent": len(pieces)}

    async def shutdown(self) -> None:
        """Send QUIT and close the connection; safe to repeat."""
        self._config = None
        await self._close("demi is shutting down")

    # -- the protocol ------------------------------------------------------------

    async def _register(self, conn: Connection, config: IrcConfig) -> None:
        if config.password is not None:
            await conn.send("PASS", config.password.get_secret_value())
        # Ask for IRCv3 message-tags, for the server's own message ids (msgid).
        await conn.send("CAP", "LS", "302")
        await conn.send("NICK", config.nick)
        await conn.send("USER", config.nick, "0", "*", config.nick)
        requested = False
        while True:
            try:
                message = await self._receive(conn)
            except Closed as err:
                # ngircd answers a bad PASS with ERROR alone, not with 464.
                if config.password is not None and "password" in str(err).lower():
                    raise PlatformFatalError(FATAL_REPLIES["464"]) from None
                raise
            if message.command == "001":
                self._nick = message.params[0] if message.params else config.nick
                return
            if message.command != "CAP" or len(message.params) < 3:
                continue
            sub = message.params[1].upper()
            if sub == "LS":
                offered = {cap.split("=")[0] for cap in message.params[-1].split()}
                if "message-tags" in offered and not requested:
                    requested = True
                    await conn.send("CAP", "REQ", "message-tags")
                elif not requested and message.params[2] != "*":
                    await conn.send("CAP", "END")
            elif sub in ("ACK", "NAK"):
                await conn.send("CAP", "END")

    async def _join(self, conn: Connection, channels: list[str]) -> list[Message]:
        """Join every channel; return the messages that arrived meanwhile."""
        waiting = {channel.casefold() for channel in channels}
        for channel in channels:
            await conn.send("JOIN", channel)
        early: list[Message] = []
        while waiting:
            message = await self._receive(conn)
            if message.command == "JOIN" and message.nick == self._nick:
                waiting.discard(message.params[0].casefold())
            elif message.command == "PRIVMSG":
                early.append(message)
        return early

    async def _receive(self, conn: Connection) -> Message:
        """The next line that is not housekeeping (PING, our mask, fatal replies)."""
        while True:
            message = await conn.receive()
            command = message.command
            if command == "PING":
                await conn.send("PONG", *message.params[:1])
            elif command == "ERROR":
                reason = message.params[0] if message.params else "no reason"
                raise Closed(f"the server closed the link: {reason}")
            elif command in FATAL_REPLIES:
                raise PlatformFatalError(FATAL_REPLIES[command])
            elif command in TRANSIENT_REPLIES:
                raise Closed(TRANSIENT_REPLIES[command])
            else:
                if command == "JOIN" and message.nick == self._nick:
                    self._mask = message.prefix
                elif command == "NICK" and message.nick == self._nick:
                    self._nick = message.params[0]
                return message

    async def _deliver(self, message: Message, inbox: Inbox) -> None:
        if message.command == "KICK" and message.params[1:2] == (self._nick,):
            await self._conn_send("JOIN", message.params[0])  # come back
            return
        if message.command != "PRIVMSG" or len(message.params) < 2:
            return
        target, text = message.params[0], message.params[1]
        sender = message.nick
        if not sender or text.startswith("\x01"):  # CTCP (VERSION, ACTION ...)
            return
        private = target.casefold() == self._nick.casefold()
        event_id = message.tags.get("msgid") or (
            f"irc-{self._session}-{next(self._ids)}"
        )
        event = InboundEvent(
            kind="message",
            data={"text": text, "sender": sender},
            event_id=event_id,
            conversation=sender if private else target,
        )
        await inbox.send(event)

    async def _conn_send(self, command: str, *params: str) -> None:
        if self._conn is not None:
            await self._conn.send(command, *params)

    async def _close(self, reason: str) -> None:
        """QUIT (bounded), wait for the server to hang up, close the socket."""
        conn, self._conn = self._conn, None
        self._registered = False
        if conn is None:
            return
        with anyio.move_on_after(_QUIT_TIMEOUT, shield=True):
            try:
                await conn.send("QUIT", reason)
            except Closed:
                pass
            else:
                # Closing at once could reset the socket under an unread QUIT.
                await conn.drain()
        with anyio.CancelScope(shield=True):
            await conn.aclose()

    async def _forget(self, conn: Connection) -> None:
        """The connection is over: close it without a QUIT."""
        if self._conn is conn:
            self._conn = None
            self._registered = False
        with anyio.CancelScope(shield=True):
            await conn.aclose()

    def _require_config(self) -> IrcConfig:
        if self._config is None:
            raise PlatformFatalError("run() was called before initialize()")
        return self._config
