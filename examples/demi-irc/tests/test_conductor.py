"""The IRC bot inside demi: an embedded Conductor with the installed ``irc`` driver
(found through its entry point) and demi's ``echo`` handler, against a real ngircd.

This is the path ``demi run`` takes once it hands listening platforms their inbox
(test_demi_run.py); here the Conductor is driven in-process, so the contract's
wiring is proven now: run started after initialize, events through the inbox to the
handler, the reply back through handle_request, run cancelled before shutdown.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import anyio
import pytest
from ngircd import Ngircd
from person import Line, Person

from demi import DemiSettings, PlatformSettings
from demi.conductor import Conductor
from demi.handlers import echo
from demi.supervision import Supervisor

pytestmark = pytest.mark.anyio

BOT = "demibot"


def conductor_for(ircd: Ngircd, **overrides: object) -> Conductor:
    """One instance, ``chat``, of the installed ``irc`` driver; replies by echo."""
    spec = PlatformSettings(
        driver="irc",
        backoff_initial=0.5,
        backoff_max=2.0,
        config={
            "host": "127.0.0.1",
            "port": ircd.port,
            "nick": BOT,
            "channels": ["#demi"],
        }
        | overrides,
    )
    settings = DemiSettings(
        platforms={"chat": spec},
        init_timeout=15.0,
        shutdown_timeout=5.0,
        stop_timeout=10.0,
    )
    return Conductor(settings, handler=echo)


def bot(command: str, *params: str) -> Callable[[Line], bool]:
    """A predicate: a line ``command`` from the bot whose first params are ``params``."""
    return lambda line: (
        line.nick == BOT
        and line.command == command
        and line.params[: len(params)] == list(params)
    )


async def wait(person: Person, match: Callable[[Line], bool]) -> Line:
    """:meth:`Person.expect` without blocking the event loop."""
    return await anyio.to_thread.run_sync(lambda: person.expect(match, 20.0))


async def test_the_echo_bot_answers_and_quits_on_stop(
    ircd: Ngircd, person: Person
) -> None:
    async with conductor_for(ircd) as conductor:
        await wait(person, bot("JOIN", "#demi"))
        (status,) = conductor.instances()
        assert status.connected is True
        person.say("#demi", "hello demi")
        reply = await wait(person, bot("PRIVMSG", "#demi"))
        person.say(BOT, "psst")
        private = await wait(person, bot("PRIVMSG", "alice"))
    quit_line = await wait(person, bot("QUIT"))
    assert reply.params[-1] == "hello demi"
    assert private.params[-1] == "psst"
    assert "shutting down" in quit_line.params[-1]


async def test_a_restart_never_shows_two_bots_in_the_channel(
    ircd: Ngircd, person: Person
) -> None:
    """Exclusive: the old connection QUITs before the new one joins."""
    async with conductor_for(ircd) as conductor:
        await wait(person, bot("JOIN", "#demi"))
        assert await conductor.restart("chat")
        lines = await anyio.to_thread.run_sync(person.collect, 3.0)
        inside = 1  # demibot-like nicks in #demi, by what the person saw
        for line in lines:
            if line.nick.startswith(BOT) and line.command == "JOIN":
                inside += 1
                assert inside == 1, f"two bots in #demi: {line.nick} joined"
            elif line.nick.startswith(BOT) and line.command in ("PART", "QUIT"):
                inside -= 1
        moves = [line.command for line in lines if line.nick == BOT]
        names = await anyio.to_thread.run_sync(person.names, "#demi")
        person.say("#demi", "after")
        reply = await wait(person, bot("PRIVMSG", "#demi"))
    assert moves[:2] == ["QUIT", "JOIN"], moves
    assert names.count(BOT) == 1
    assert reply.params[-1] == "after"


async def test_a_lost_server_fails_the_instance_with_the_reason(
    ircd: Ngircd, person: Person
) -> None:
    """run ends when ngircd goes away: demi marks the instance lost, not fatal (its
    supervisor then reconnects through the restart policy; see test_demi_run.py)."""
    async with conductor_for(ircd) as conductor:
        await wait(person, bot("JOIN", "#demi"))
        await anyio.to_thread.run_sync(ircd.stop)
        with anyio.fail_after(20):
            while conductor.instances()[0].error is None:  # noqa: ASYNC110
                await anyio.sleep(0.05)
        (status,) = conductor.instances()
    assert status.connected is False
    assert status.fatal is False
    assert "connection lost" in str(status.error)
    assert "IrcConnectionError" in str(status.error)


async def test_a_wrong_password_is_fatal(tmp_path: Path) -> None:
    """A refused password ends run with PlatformFatalError: demi records the
    instance as failed for good (its supervisor does not retry)."""
    ircd = Ngircd(tmp_path / "locked", password="letmein")
    ircd.directory.mkdir()
    await anyio.to_thread.run_sync(ircd.start)
    try:
        async with conductor_for(ircd, password="wrong") as conductor:
            (status,) = conductor.instances()
    finally:
        ircd.stop()
    assert status.fatal is True, status
    assert "password" in str(status.error)
    assert "wrong" not in str(status.error)


async def test_the_supervisor_brings_the_bot_back_after_the_server_restarts(
    ircd: Ngircd, person: Person
) -> None:
    """ngircd stopped and started again: demi's supervisor reconnects the bot
    through the restart policy (backoff), it rejoins on its own and answers again."""
    async with conductor_for(ircd) as conductor, anyio.create_task_group() as group:
        await group.start(Supervisor(conductor, interval=0.1).run)
        await wait(person, bot("JOIN", "#demi"))
        person.close()
        await anyio.to_thread.run_sync(ircd.stop)
        await anyio.sleep(1)  # demi notices the loss and backs off
        await anyio.to_thread.run_sync(ircd.start)
        back = await anyio.to_thread.run_sync(Person, ircd.port, "alice")
        try:
            if BOT not in await anyio.to_thread.run_sync(back.join, "#demi"):
                await wait(back, bot("JOIN", "#demi"))
            names = await anyio.to_thread.run_sync(back.names, "#demi")
            back.say("#demi", "again")
            reply = await wait(back, bot("PRIVMSG", "#demi"))
        finally:
            back.close()
        group.cancel_scope.cancel()
    assert names.count(BOT) == 1
    assert reply.params[-1] == "again"
