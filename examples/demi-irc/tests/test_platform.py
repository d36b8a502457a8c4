"""The IRC platform against a real ngircd, driven directly through the run contract:
``task_group.start(platform.run, inbox)`` with a fake inbox, as demi will call it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from functools import partial
from typing import Any

import anyio
import pytest
from demi_irc import IrcConnectionError, IrcPlatform
from fake_inbox import FakeInbox
from ngircd import Ngircd
from person import Line, Person

from demi import PlatformFatalError, PlatformRequestError
from demi.platforms import HealthStatus

pytestmark = pytest.mark.anyio

BOT = "demibot"


def config(ircd: Ngircd, **overrides: Any) -> dict[str, Any]:
    """The bot's configuration for ``ircd``, joining #demi."""
    return {
        "host": "127.0.0.1",
        "port": ircd.port,
        "nick": BOT,
        "channels": ["#demi"],
    } | overrides


@asynccontextmanager
async def running(
    ircd: Ngircd, **overrides: Any
) -> AsyncIterator[tuple[IrcPlatform, FakeInbox]]:
    """The platform, initialized and listening (run started); cancelled and shut
    down afterwards, in the order demi uses."""
    platform = IrcPlatform()
    inbox = FakeInbox()
    assert await platform.initialize(config(ircd, **overrides))
    try:
        async with anyio.create_task_group() as group:
            with anyio.fail_after(20):
                await group.start(platform.run, inbox)
            yield platform, inbox
            group.cancel_scope.cancel()
    finally:
        with anyio.fail_after(10):
            await platform.shutdown()
        inbox.close()


def from_bot(command: str, *params: str) -> Callable[[Line], bool]:
    """A predicate: a line ``command`` from the bot whose first params are ``params``."""
    return lambda line: (
        line.nick == BOT
        and line.command == command
        and line.params[: len(params)] == list(params)
    )


async def wait(
    person: Person, match: Callable[[Line], bool], timeout: float = 20.0
) -> Line:
    """:meth:`Person.expect` without blocking the event loop."""
    return await anyio.to_thread.run_sync(lambda: person.expect(match, timeout))


async def test_joins_and_turns_a_channel_message_into_an_event(
    ircd: Ngircd, person: Person
) -> None:
    async with running(ircd) as (platform, inbox):
        await wait(person, from_bot("JOIN", "#demi"))
        assert (await platform.health_check()).status is HealthStatus.HEALTHY
        person.say("#demi", "hello demi")
        person.say("#demi", "hello again")
        first = await inbox.next()
        second = await inbox.next()
    assert first.kind == "message"
    assert dict(first.data) == {"text": "hello demi", "sender": "alice"}
    assert first.conversation == "#demi"
    assert second.data["text"] == "hello again"
    assert first.event_id and second.event_id and first.event_id != second.event_id


class JoinedAtStart:
    """A task status that, the moment started() is called, asks the server (from
    the person's connection, blocking on purpose) who is in each channel."""

    def __init__(self, person: Person, channels: list[str]) -> None:
        self.person = person
        self.channels = channels
        self.names: dict[str, list[str]] = {}
        self.done = anyio.Event()

    def started(self, value: object = None) -> None:
        self.names = {c: self.person.names(c) for c in self.channels}
        self.done.set()


async def test_started_means_registered_and_in_every_channel(
    ircd: Ngircd, person: Person, inbox: FakeInbox
) -> None:
    """task_status.started() comes only once the bot is in its channels, so demi
    counts it ready (and health-checks it) only then."""
    platform = IrcPlatform()
    channels = ["#demi", "#other"]
    assert await platform.initialize(config(ircd, channels=channels))
    status = JoinedAtStart(person, channels)
    async with anyio.create_task_group() as group:
        group.start_soon(partial(platform.run, inbox, task_status=status))
        with anyio.fail_after(20):
            await status.done.wait()
        health = await platform.health_check()
        group.cancel_scope.cancel()
    await platform.shutdown()
    assert BOT in status.names["#demi"] and BOT in status.names["#other"]
    assert health.is_healthy


async def test_a_kicked_bot_joins_again(ircd: Ngircd, person: Person) -> None:
    """Alice joined #demi first, so she is its operator and may kick the bot."""
    async with running(ircd) as (_, inbox):
        await wait(person, from_bot("JOIN", "#demi"))
        person.send(f"KICK #demi {BOT} :out")
        await wait(person, from_bot("JOIN", "#demi"))
        person.say("#demi", "welcome back")
        event = await inbox.next()
    assert event.data["text"] == "welcome back"


async def test_a_private_message_is_the_senders_conversation(
    ircd: Ngircd, person: Person
) -> None:
    async with running(ircd) as (_, inbox):
        await wait(person, from_bot("JOIN", "#demi"))
        person.say(BOT, "just between us")
        event = await inbox.next()
    assert dict(event.data) == {"text": "just between us", "sender": "alice"}
    assert event.conversation == "alice"


async def test_answers_server_pings(ircd: Ngircd, person: Person) -> None:
    """ngircd PINGs an idle client after 5 s and drops it 5 s later without a PONG:
    after 13 s of silence the bot is still there and still listening."""
    async with running(ircd) as (platform, inbox):
        await anyio.sleep(13)
        assert (await platform.health_check()).is_healthy
        person.say("#demi", "still there?")
        event = await inbox.next()
    assert event.data["text"] == "still there?"


async def test_a_reply_is_a_privmsg_the_person_sees(
    ircd: Ngircd, person: Person
) -> None:
    async with running(ircd) as (platform, _):
        await wait(person, from_bot("JOIN", "#demi"))
        answer = await platform.handle_request(
            {"text": "hi alice", "conversation": "#demi"}
        )
        line = await wait(person, from_bot("PRIVMSG", "#demi"))
        await platform.handle_request({"text": "psst", "conversation": "alice"})
        private = await wait(person, from_bot("PRIVMSG", "alice"))
    assert answer == {"sent": 1}
    assert line.params[-1] == "hi alice"
    assert private.params[-1] == "psst"


@pytest.mark.parametrize("channels", [["#demi"], []], ids=["joined", "no-channel"])
async def test_long_text_is_split_within_the_line_limit(
    ircd: Ngircd, person: Person, channels: list[str]
) -> None:
    """Each line the person receives, prefix and CR LF included, fits 512 bytes;
    multi-byte characters are never cut; newlines start new messages. Without a
    channel the bot never saw its own prefix and assumes the longest one."""
    first = "é😀abc " * 150  # 900 characters, 1500 bytes
    text = f"{first}\nsecond line\n\n{'x' * 600}"
    async with running(ircd, channels=channels) as (platform, _):
        answer = await platform.handle_request({"text": text, "conversation": "alice"})
        lines = [
            await wait(person, from_bot("PRIVMSG", "alice"))
            for _ in range(answer["sent"])
        ]
    assert answer["sent"] >= 6
    assert all(len(line.raw) + 2 <= 512 for line in lines)
    texts = [line.params[-1] for line in lines]
    assert "second line" in texts
    at = texts.index("second line")
    # Cut at a space, which is dropped: the words come back in order, none cut.
    assert " ".join(texts[:at]).split() == first.split()
    assert all(piece.endswith("abc") for piece in texts[:at])
    assert "".join(texts[at + 1 :]) == "x" * 600
    assert max(len(line.raw) for line in lines) > 400  # not cut needlessly short


async def test_concurrent_replies_are_not_interleaved(
    ircd: Ngircd, person: Person
) -> None:
    """Two handlers answering at once: each reply's lines arrive together."""
    async with running(ircd) as (platform, _):
        async with anyio.create_task_group() as group:
            for letter in "ab":
                request = {"text": letter * 1500, "conversation": "alice"}
                group.start_soon(platform.handle_request, request)
        lines = [await wait(person, from_bot("PRIVMSG", "alice")) for _ in range(8)]
    letters = "".join(line.params[-1][0] for line in lines)
    assert letters in ("aaaabbbb", "bbbbaaaa"), letters


async def test_a_conversation_cannot_inject_a_command(
    ircd: Ngircd, person: Person
) -> None:
    async with running(ircd) as (platform, _):
        for conversation in ["#demi\r\nQUIT :gone", "#demi ,x", "", 42]:
            with pytest.raises(PlatformRequestError, match="channel or a nick"):
                await platform.handle_request(
                    {"text": "x", "conversation": conversation}
                )
        with pytest.raises(PlatformRequestError, match="'text'"):
            await platform.handle_request({"text": None, "conversation": "#demi"})
        await platform.handle_request(
            {"text": "one\r\nQUIT :two", "conversation": "#demi"}
        )
        lines = [await wait(person, from_bot("PRIVMSG", "#demi")) for _ in range(2)]
    assert [line.params[-1] for line in lines] == ["one", "QUIT :two"]


async def test_replies_still_go_out_after_run_is_cancelled_and_shutdown_quits(
    ircd: Ngircd, person: Person, inbox: FakeInbox
) -> None:
    """demi cancels run first, lets the handler answer what was buffered, then shuts
    down: the reply arrives, then the person sees the bot QUIT."""
    platform = IrcPlatform()
    assert await platform.initialize(config(ircd))
    async with anyio.create_task_group() as group:
        await group.start(platform.run, inbox)
        await wait(person, from_bot("JOIN", "#demi"))
        group.cancel_scope.cancel()
    await platform.handle_request({"text": "last words", "conversation": "#demi"})
    said = await wait(person, from_bot("PRIVMSG", "#demi"))
    with anyio.fail_after(10):
        await platform.shutdown()
        await platform.shutdown()  # safe to repeat
    quit_line = await wait(person, from_bot("QUIT"))
    assert said.params[-1] == "last words"
    assert "shutting down" in quit_line.params[-1]
    assert not (await platform.health_check()).is_healthy
    with pytest.raises(PlatformRequestError, match="not connected"):
        await platform.handle_request({"text": "too late", "conversation": "#demi"})


async def test_run_ends_when_the_server_goes_away(
    ircd: Ngircd, person: Person, inbox: FakeInbox
) -> None:
    """So that demi's supervisor can reconnect: run raises a transient error."""
    platform = IrcPlatform()
    assert await platform.initialize(config(ircd))
    caught: list[BaseException] = []
    try:
        async with anyio.create_task_group() as group:
            await group.start(platform.run, inbox)
            await anyio.to_thread.run_sync(ircd.stop)
            with anyio.fail_after(20):
                await anyio.sleep_forever()
    except* IrcConnectionError as group:
        caught += group.exceptions
    assert len(caught) == 1
    assert "closed" in str(caught[0]) or "broke" in str(caught[0])
    assert not isinstance(caught[0], PlatformFatalError)
    assert not (await platform.health_check()).is_healthy
    await platform.shutdown()


async def test_an_unreachable_server_is_a_transient_error(
    ircd: Ngircd, inbox: FakeInbox
) -> None:
    platform = IrcPlatform()
    assert await platform.initialize(config(ircd))
    ircd.stop()
    with (
        anyio.fail_after(20),
        pytest.raises(IrcConnectionError, match="cannot connect"),
    ):
        await platform.run(inbox)
    await platform.shutdown()


async def test_a_wrong_password_is_fatal_and_the_right_one_connects(
    tmp_path: Any, inbox: FakeInbox
) -> None:
    ircd = Ngircd(tmp_path / "locked", password="letmein")
    ircd.directory.mkdir()
    ircd.start()
    try:
        platform = IrcPlatform()
        assert await platform.initialize(config(ircd, password="wrong"))
        with (
            anyio.fail_after(20),
            pytest.raises(PlatformFatalError, match="password") as caught,
        ):
            await platform.run(inbox)
        assert "wrong" not in str(caught.value)
        await platform.shutdown()
        person = await anyio.to_thread.run_sync(
            lambda: Person(ircd.port, "alice", "letmein")
        )
        try:
            await anyio.to_thread.run_sync(person.join, "#demi")
            async with running(ircd, password="letmein"):
                await wait(person, from_bot("JOIN", "#demi"))
        finally:
            person.close()
    finally:
        ircd.stop()
