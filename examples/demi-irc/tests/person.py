"""The person in the channel: a small blocking IRC client, independent of demi_irc.

A reader thread answers PINGs at once (so the person is never dropped while a test
waits on something else) and queues every other line; :meth:`Person.expect` takes
lines off that queue until one matches.
"""

from __future__ import annotations

import queue
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["Line", "Person"]


@dataclass(frozen=True)
class Line:
    """One line the server sent the person, split just enough for the tests."""

    raw: bytes
    prefix: str
    command: str
    params: list[str]

    @property
    def nick(self) -> str:
        """The sender's nick."""
        return self.prefix.split("!", 1)[0]

    @classmethod
    def parse(cls, raw: bytes) -> Line:
        """Parse a line (no tags: ngircd sends none to a client that did not ask)."""
        text = raw.decode("utf-8", errors="replace")
        prefix = ""
        if text.startswith(":"):
            prefix, _, text = text[1:].partition(" ")
        head, colon, trailing = text.partition(" :")
        params = head.split()
        command = params.pop(0) if params else ""
        if colon:
            params.append(trailing)
        return cls(raw, prefix, command.upper(), params)


class Person:
    """A person connected to the test server as ``nick``."""

    def __init__(self, port: int, nick: str, password: str | None = None) -> None:
        self.nick = nick
        self._sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self._sock.settimeout(None)
        self._lines: queue.Queue[Line | None] = queue.Queue()
        self._send_lock = threading.Lock()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        if password:
            self.send(f"PASS {password}")
        self.send(f"NICK {nick}")
        self.send(f"USER {nick} 0 * :a person")
        self.expect(lambda line: line.command == "001")

    def send(self, line: str) -> None:
        """Send one raw line (CR LF added)."""
        with self._send_lock:
            self._sock.sendall(line.encode() + b"\r\n")

    def join(self, channel: str) -> list[str]:
        """Join ``channel``; return the nicks NAMES listed in it."""
        self.send(f"JOIN {channel}")
        names: list[str] = []
        while True:
            line = self.expect(lambda line: line.command in ("353", "366"))
            if line.command == "366":
                return names
            names += [name.lstrip("@+") for name in line.params[-1].split()]

    def say(self, target: str, text: str) -> None:
        """PRIVMSG ``target``."""
        self.send(f"PRIVMSG {target} :{text}")

    def names(self, channel: str) -> list[str]:
        """Ask the server who is in ``channel`` now."""
        self.send(f"NAMES {channel}")
        names: list[str] = []
        while True:
            line = self.expect(lambda line: line.command in ("353", "366"))
            if line.command == "366":
                return names
            names += [name.lstrip("@+") for name in line.params[-1].split()]

    def expect(self, match: Callable[[Line], bool], timeout: float = 20.0) -> Line:
        """Take lines until one matches; fail after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            try:
                line = self._lines.get(timeout=max(left, 0.001))
            except queue.Empty:
                message = f"{self.nick}: no matching line in {timeout}s"
                raise AssertionError(message) from None
            if line is None:
                raise AssertionError(f"{self.nick}: the server closed the connection")
            if match(line):
                return line

    def collect(self, seconds: float) -> list[Line]:
        """Every line that arrives within ``seconds``."""
        lines: list[Line] = []
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            try:
                line = self._lines.get(timeout=left)
            except queue.Empty:
                break
            if line is None:
                break
            lines.append(line)
        return lines

    def close(self) -> None:
        """QUIT and close."""
        try:
            self.send("QUIT :bye")
        except OSError:
            pass
        self._sock.close()

    def _read(self) -> None:
        buffer = b""
        try:
            while chunk := self._sock.recv(4096):
                buffer += chunk
                *lines, buffer = buffer.split(b"\r\n")
                for raw in lines:
                    line = Line.parse(raw)
                    if line.command == "PING":
                        self.send(f"PONG :{line.params[-1] if line.params else ''}")
                    else:
                        self._lines.put(line)
        except OSError:
            pass
        self._lines.put(None)
