"""Real coordination backends for the tests: an etcd and a Redis server on loopback.

Each server runs as a child process on free 127.0.0.1 ports, with its data in a
folder the test owns, and is waited for (bounded) until it answers. ``stop`` and
``start`` may be called again and again: a restarted server keeps its ports and its
data folder, as a backend that went away and came back would (the cut-off test
stops etcd and starts it again under the replicas' feet).

Use them as context managers (``with EtcdServer(folder) as etcd: ...``) or through
the fixtures ``etcd_server`` and ``redis_server`` (tests/coordination_fixtures.py).
A server that is not installed, or does not answer, raises :class:`ServerError`
naming the Debian package to install, which fails the test: it never skips
(.ci/run installs both). No pytest here: the rebalance benchmark runs them too.
"""

from __future__ import annotations

import json
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

from helpers import PATIENCE, StartsAndStops, free_port

#: How long a server may take to answer after it was started.
START_PATIENCE = PATIENCE
#: How long a server may take to exit after SIGTERM before it gets SIGKILL.
STOP_PATIENCE = 10.0


class ServerError(RuntimeError):
    """A server could not be run: not installed, exited, or never answered."""


def require(binary: str, package: str) -> str:
    """The path of ``binary``; ServerError naming Debian's ``package`` when it is
    not installed."""
    found = shutil.which(binary) or shutil.which(binary, path="/usr/sbin:/usr/bin")
    if found is None:
        raise ServerError(
            f"{binary} is not installed: these tests run a real server "
            f"(apt-get install {package}; .ci/run installs it)"
        )
    return found


class Server(StartsAndStops):
    """A server process on loopback: started, waited for, stopped, started again.

    Subclasses say how to start it (``command``) and how to tell that it answers
    (``answers``).
    """

    #: The binary, and the Debian package that installs it.
    binary = ""
    package = ""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.folder.mkdir(parents=True, exist_ok=True)
        self.executable = require(self.binary, self.package)
        #: Everything the server wrote, across its starts.
        self.log = folder / f"{self.binary}.log"
        self.process: subprocess.Popen[bytes] | None = None

    def command(self) -> list[str]:
        """The command line that starts the server."""
        raise NotImplementedError

    def answers(self) -> bool:
        """Whether the server answers a client right now."""
        raise NotImplementedError

    def output(self) -> str:
        """The end of what the server logged, for a failure message."""
        if not self.log.exists():
            return ""
        return self.log.read_text(errors="replace")[-4000:]

    @property
    def running(self) -> bool:
        """Whether the server process is alive."""
        return self.process is not None and self.process.poll() is None

    def start(self) -> None:
        """Start the server and return once it answers (ServerError after
        ``START_PATIENCE`` seconds, or at once if it exits)."""
        assert not self.running, f"{self.binary} is already running"
        with self.log.open("ab") as sink:
            self.process = subprocess.Popen(
                self.command(), cwd=self.folder, stdin=subprocess.DEVNULL,
                stdout=sink, stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
        deadline = time.monotonic() + START_PATIENCE
        while not self.answers():
            if self.process.poll() is not None:
                raise ServerError(
                    f"{self.binary} exited with {self.process.returncode} before "
                    f"it answered:\n{self.output()}"
                )
            if time.monotonic() > deadline:
                self.stop()
                raise ServerError(
                    f"{self.binary} did not answer within {START_PATIENCE} s:\n"
                    f"{self.output()}"
                )
            time.sleep(0.05)

    def stop(self, *, kill: bool = False) -> None:
        """Stop the server: SIGTERM (or SIGKILL when ``kill``), then SIGKILL after
        ``STOP_PATIENCE`` seconds. Nothing happens if it is not running."""
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
        try:
            process.wait(timeout=STOP_PATIENCE)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


class EtcdServer(Server):
    """A one-member etcd cluster (Debian's etcd-server, 3.4) on two loopback ports."""

    binary = "etcd"
    package = "etcd-server"

    def __init__(self, folder: Path) -> None:
        super().__init__(folder)
        self.client_port = free_port()
        self.peer_port = free_port()

    @property
    def url(self) -> str:
        """The client URL, ``http://127.0.0.1:PORT``."""
        return f"http://127.0.0.1:{self.client_port}"

    def command(self) -> list[str]:
        """etcd with its own data folder (kept across restarts), loopback only."""
        peer = f"http://127.0.0.1:{self.peer_port}"
        return [
            self.executable,
            "--name", "t",
            "--data-dir", str(self.folder / "data"),
            "--listen-client-urls", self.url,
            "--advertise-client-urls", self.url,
            "--listen-peer-urls", peer,
            "--initial-advertise-peer-urls", peer,
            "--initial-cluster", f"t={peer}",
            "--log-level", "warn",
        ]  # fmt: skip

    def answers(self) -> bool:
        """``GET /health`` says ``{"health": "true"}`` (etcd serves clients and has
        a leader)."""
        try:
            with urllib.request.urlopen(f"{self.url}/health", timeout=1) as reply:
                body = json.loads(reply.read())
        except (OSError, ValueError):
            return False
        return isinstance(body, dict) and body.get("health") == "true"


class RedisServer(Server):
    """A Redis server (Debian's redis-server) on a loopback port, nothing on disk."""

    binary = "redis-server"
    package = "redis-server"

    def __init__(self, folder: Path) -> None:
        super().__init__(folder)
        self.port = free_port()

    @property
    def url(self) -> str:
        """``redis://127.0.0.1:PORT``."""
        return f"redis://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        """redis-server in the foreground, loopback only, without persistence."""
        return [
            self.executable,
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--save", "",
            "--appendonly", "no",
            "--dir", str(self.folder),
        ]  # fmt: skip

    def answers(self) -> bool:
        """``PING`` is answered ``+PONG``."""
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
                s.sendall(b"PING\r\n")
                return s.recv(64).startswith(b"+PONG")
        except OSError:
            return False
