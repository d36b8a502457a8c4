"""End to end: the real ``demi run`` process with the installed ``irc`` driver and the
``echo`` handler, a real ngircd, and a person in the channel."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from ngircd import Ngircd, free_port
from person import Line, Person

DEMI = Path(sys.executable).with_name("demi")
BOT = "demibot"
TOKEN = "irc-s3cret"
#: How long the bot may take to (re)join: start-up, or backoff after the server's restart.
JOIN_DEADLINE = 30.0


@pytest.fixture(params=["asyncio", "trio"])
def backend(request: pytest.FixtureRequest) -> str:
    """The event loop ``demi run`` uses: both, since the platform supports both."""
    return str(request.param)


@dataclass
class Running:
    """A ``demi run --http`` process and where to reach it."""

    process: subprocess.Popen[bytes]
    base_url: str
    log: Path

    def output(self) -> str:
        """What the process logged so far."""
        return self.log.read_text(errors="replace")

    def restart(self, name: str) -> httpx.Response:
        """``POST /platforms/NAME/restart``, as an operator."""
        headers = {"Authorization": f"Bearer {TOKEN}"}
        with httpx.Client(base_url=self.base_url, timeout=30) as client:
            return client.post(f"/platforms/{name}/restart", headers=headers)


@contextmanager
def demi_run(tmp_path: Path, backend: str, ircd: Ngircd) -> Iterator[Running]:
    """``demi run --http`` with one ``irc`` instance, ``chat``, and the echo handler;
    killed afterwards if the test left it running."""
    (tmp_path / "demi.toml").write_text(
        f"""
[platforms.chat]
driver = "irc"
backoff_initial = 0.5
backoff_max = 2.0

[platforms.chat.config]
host = "127.0.0.1"
port = {ircd.port}
nick = "{BOT}"
channels = ["#demi"]
""",
        encoding="utf-8",
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("DEMI_")}
    env.update(
        DEMI_HANDLER="echo",
        DEMI_HTTP_TOKEN=TOKEN,
        DEMI_HEALTH_INTERVAL="0.2",
        DEMI_STOP_TIMEOUT="10",
        PYTHONUNBUFFERED="1",
    )
    port = free_port()
    command = [str(DEMI), "run", "--http", f"127.0.0.1:{port}", "--backend", backend]
    log = tmp_path / "demi.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(
            command, cwd=tmp_path, env=env, stdout=sink, stderr=subprocess.STDOUT
        )
    try:
        yield Running(process, f"http://127.0.0.1:{port}", log)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)


def bot(command: str, *params: str) -> Callable[[Line], bool]:
    """A predicate: a line ``command`` from the bot whose first params are ``params``."""
    return lambda line: (
        line.nick == BOT
        and line.command == command
        and line.params[: len(params)] == list(params)
    )


def joined(person: Person, running: Running) -> Line:
    """Wait until the bot joins #demi; fail at once if demi exited or gave up."""
    deadline = time.monotonic() + JOIN_DEADLINE
    while time.monotonic() < deadline:
        try:
            return person.expect(bot("JOIN", "#demi"), 1.0)
        except AssertionError:
            output = running.output()
            if running.process.poll() is not None or "it stays failed" in output:
                break
    pytest.fail(f"the bot never joined #demi:\n{running.output()}")


def echoed(person: Person, target: str, text: str) -> Line:
    """Say ``text`` to ``target``; the echo handler's reply, as the person sees it."""
    person.say(target, text)
    reply_to = "#demi" if target.startswith("#") else person.nick
    return person.expect(bot("PRIVMSG", reply_to), 20)


def test_the_echo_bot_answers_in_the_channel_and_in_private(
    tmp_path: Path, backend: str, ircd: Ngircd, person: Person
) -> None:
    with demi_run(tmp_path, backend, ircd) as running:
        joined(person, running)
        assert echoed(person, "#demi", "hello demi").params[-1] == "hello demi"
        assert echoed(person, BOT, "psst").params[-1] == "psst"


def test_the_bot_comes_back_on_its_own_after_the_server_restarts(
    tmp_path: Path, backend: str, ircd: Ngircd, person: Person
) -> None:
    with demi_run(tmp_path, backend, ircd) as running:
        joined(person, running)
        assert echoed(person, "#demi", "hello demi").params[-1] == "hello demi"
        person.close()
        ircd.stop()
        time.sleep(1)  # demi notices the loss and backs off
        ircd.start()
        back = Person(ircd.port, "alice")
        try:
            if BOT not in back.join("#demi"):
                joined(back, running)
            assert back.names("#demi").count(BOT) == 1
            assert echoed(back, "#demi", "again").params[-1] == "again"
        finally:
            back.close()


def test_sigterm_makes_the_bot_quit(
    tmp_path: Path, backend: str, ircd: Ngircd, person: Person
) -> None:
    with demi_run(tmp_path, backend, ircd) as running:
        joined(person, running)
        running.process.send_signal(signal.SIGTERM)
        quit_line = person.expect(bot("QUIT"), 20)
        code = running.process.wait(timeout=30)
    assert code == 0, running.output()
    assert "shutting down" in quit_line.params[-1]


def test_a_restart_never_shows_two_bots_in_the_channel(
    tmp_path: Path, backend: str, ircd: Ngircd, person: Person
) -> None:
    """An IRC bot is exclusive: the old connection QUITs before the new one joins.
    The person watches every JOIN, PART and QUIT of a demibot-like nick."""
    with demi_run(tmp_path, backend, ircd) as running:
        joined(person, running)
        response = running.restart("chat")
        lines = person.collect(5.0)
        assert response.status_code == 200, response.text
        inside = 1  # demibot-like nicks in #demi, by what the person saw
        for line in lines:
            if line.nick.startswith(BOT) and line.command == "JOIN":
                inside += 1
                assert inside == 1, f"two bots in #demi: {line.nick} joined"
            elif line.nick.startswith(BOT) and line.command in ("PART", "QUIT"):
                inside -= 1
        moves = [line.command for line in lines if line.nick == BOT]
        assert moves[:2] == ["QUIT", "JOIN"], moves
        assert person.names("#demi").count(BOT) == 1
        assert echoed(person, "#demi", "after").params[-1] == "after"
