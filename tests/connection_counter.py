"""A loopback service that counts connections per account, for the replica tests.

A client connects to 127.0.0.1, sends one line ``HELLO <account>\\n`` and gets
``OK\\n``; from then on the connection counts for that account until the client
closes it. The counter keeps, per account, the connections open now, the most ever
open at once (the replica tests require it never to exceed 1: one bot account, one
connection) and the connections ever made.

It runs in a background thread because the replica tests drive their ``demi run``
processes synchronously. One thread with one selector handles every socket: a new
connection is accepted in one turn and its HELLO read in a later one, while a close
that happened before that connection was made is read in the same turn or earlier.
So a connection closed before another was opened is always counted as closed first,
and the maximum never shows an overlap that did not happen.
"""

from __future__ import annotations

import selectors
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from helpers import PATIENCE, StartsAndStops

#: The longest first line a client may send before it is dropped.
MAX_LINE = 1024


@dataclass
class Account:
    """What the counter saw of one account."""

    #: Connections open now.
    current: int = 0
    #: The most connections ever open at once.
    most: int = 0
    #: Connections ever made (after HELLO).
    total: int = 0
    #: When the latest connection was counted (``time.monotonic()``).
    since: float = field(default=0.0, compare=False)


class ConnectionCounter(StartsAndStops):
    """The counting service; ``with ConnectionCounter() as counter: ...`` runs it."""

    def __init__(self) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.setblocking(False)
        self.port: int = self._listener.getsockname()[1]
        self._wake_reader, self._wake_writer = socket.socketpair()
        self._selector = selectors.DefaultSelector()
        self._lock = threading.Lock()
        self._accounts: dict[str, Account] = {}
        #: First lines that were not ``HELLO <account>``.
        self.rejected = 0
        self._stopping = False
        self._thread = threading.Thread(
            target=self._serve, name="connection-counter", daemon=True
        )

    @property
    def address(self) -> str:
        """``127.0.0.1:PORT``, as a platform's configuration names it."""
        return f"127.0.0.1:{self.port}"

    def accounts(self) -> dict[str, Account]:
        """A copy of what was seen so far, per account."""
        with self._lock:
            return {
                name: Account(a.current, a.most, a.total, a.since)
                for name, a in self._accounts.items()
            }

    def connected(self) -> set[str]:
        """The accounts with an open connection now."""
        return {name for name, a in self.accounts().items() if a.current}

    def wait_for(
        self, predicate: Callable[[dict[str, Account]], bool], timeout: float = PATIENCE
    ) -> dict[str, Account]:
        """Poll until ``predicate`` holds for ``accounts()``; return them. Raise
        TimeoutError with the last state after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while not predicate(seen := self.accounts()):
            if time.monotonic() > deadline:
                raise TimeoutError(f"not within {timeout} s; last seen: {seen}")
            time.sleep(0.02)
        return seen

    def start(self) -> None:
        """Listen and serve in the background."""
        self._listener.listen(128)
        self._selector.register(self._listener, selectors.EVENT_READ, None)
        self._selector.register(self._wake_reader, selectors.EVENT_READ, None)
        self._thread.start()

    def stop(self) -> None:
        """Close every connection and the listener; wait for the thread. Stopping
        again does nothing."""
        if self._stopping:
            return
        self._stopping = True
        self._wake_writer.send(b"x")
        self._thread.join(timeout=PATIENCE)
        assert not self._thread.is_alive(), "the connection counter did not stop"

    def _serve(self) -> None:
        try:
            while not self._stopping:
                for key, _ in self._selector.select():
                    if key.fileobj is self._listener:
                        self._accept()
                    elif key.fileobj is not self._wake_reader:
                        self._receive(key)
        finally:
            for key in list(self._selector.get_map().values()):
                self._selector.unregister(key.fileobj)
                key.fileobj.close()  # type: ignore[union-attr]
            self._selector.close()
            self._wake_writer.close()

    def _accept(self) -> None:
        try:
            client, _ = self._listener.accept()
        except BlockingIOError:
            return
        client.setblocking(False)
        # data: the bytes of the first line so far, then the account once greeted.
        self._selector.register(client, selectors.EVENT_READ, bytearray())

    def _receive(self, key: selectors.SelectorKey) -> None:
        client: socket.socket = key.fileobj  # type: ignore[assignment]
        try:
            data = client.recv(4096)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if isinstance(key.data, str):
            if not data:  # the client closed: its connection no longer counts
                with self._lock:
                    self._accounts[key.data].current -= 1
                self._drop(client)
            return  # whatever else a greeted client sends is ignored
        line: bytearray = key.data
        line += data
        if b"\n" not in line:
            if not data or len(line) > MAX_LINE:
                self._reject(client)
            return
        words = bytes(line.split(b"\n", 1)[0]).decode(errors="replace").split()
        if len(words) != 2 or words[0] != "HELLO":
            self._reject(client)
            return
        account = words[1]
        with self._lock:
            seen = self._accounts.setdefault(account, Account())
            seen.current += 1
            seen.total += 1
            seen.since = time.monotonic()
            seen.most = max(seen.most, seen.current)
        self._selector.modify(client, selectors.EVENT_READ, account)
        try:
            client.send(b"OK\n")
        except OSError:
            pass  # a client gone already: its close is read next turn

    def _reject(self, client: socket.socket) -> None:
        with self._lock:
            self.rejected += 1
        self._drop(client)

    def _drop(self, client: socket.socket) -> None:
        self._selector.unregister(client)
        client.close()
