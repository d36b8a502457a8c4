"""A loopback TCP proxy that can cut one client off from a server, for the
coordination tests: one replica reaches the backend through it, the others directly,
so cutting it is a network partition of that replica alone.

``cut()`` blackholes, as a partition does: connections already open stay open but
nothing crosses them any more, and new ones are accepted and never forwarded, so the
client's calls hang until its own timeouts. ``restore()`` drops what was held and
forwards new connections again.
"""

from __future__ import annotations

import selectors
import socket
import threading

from helpers import PATIENCE, StartsAndStops


class TcpProxy(StartsAndStops):
    """Forwards 127.0.0.1:``port`` to 127.0.0.1:``target``, in a background thread."""

    def __init__(self, target: int) -> None:
        self.target = target
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.setblocking(False)
        self.port: int = self._listener.getsockname()[1]
        self._wake_reader, self._wake_writer = socket.socketpair()
        self._selector = selectors.DefaultSelector()
        # Each socket to the socket it forwards to.
        self._peers: dict[socket.socket, socket.socket] = {}
        self._held: list[socket.socket] = []
        self._cut = False
        self._frozen = threading.Event()
        self._stopping = False
        self._thread = threading.Thread(
            target=self._serve, name="tcp-proxy", daemon=True
        )

    def cut(self) -> None:
        """Blackhole: forward nothing, on open connections or new ones (from the
        moment this returns)."""
        self._frozen.clear()
        self._cut = True
        self._wake()
        assert self._frozen.wait(PATIENCE), "the TCP proxy did not cut"

    def restore(self) -> None:
        """Forward again; connections opened or frozen while cut are closed."""
        self._cut = False
        self._wake()

    def start(self) -> None:
        """Listen and forward in the background."""
        self._listener.listen(128)
        self._selector.register(self._listener, selectors.EVENT_READ)
        self._selector.register(self._wake_reader, selectors.EVENT_READ)
        self._thread.start()

    def stop(self) -> None:
        """Close everything and wait for the thread."""
        self._stopping = True
        self._wake()
        self._thread.join(timeout=PATIENCE)
        assert not self._thread.is_alive(), "the TCP proxy did not stop"

    def _wake(self) -> None:
        self._wake_writer.send(b"x")

    def _serve(self) -> None:
        was_cut = False
        try:
            while not self._stopping:
                for key, _ in self._selector.select():
                    sock: socket.socket = key.fileobj  # type: ignore[assignment]
                    if sock is self._wake_reader:
                        sock.recv(64)
                    elif sock is self._listener:
                        self._accept()
                    elif sock in self._peers and not self._cut:
                        self._forward(sock)
                if self._cut and not was_cut:
                    self._freeze()
                    self._frozen.set()
                if was_cut and not self._cut:
                    self._drop_all()  # what a partition held is gone after it
                was_cut = self._cut
        finally:
            self._drop_all()
            for sock in (self._listener, self._wake_reader, self._wake_writer):
                sock.close()
            self._selector.close()

    def _accept(self) -> None:
        try:
            client, _ = self._listener.accept()
        except BlockingIOError:
            return
        if self._cut:
            self._held.append(client)  # accepted, never answered
            return
        try:
            server = socket.create_connection(("127.0.0.1", self.target), timeout=2)
        except OSError:
            client.close()
            return
        for one, other in ((client, server), (server, client)):
            one.setblocking(False)
            self._peers[one] = other
            self._selector.register(one, selectors.EVENT_READ)

    def _forward(self, sock: socket.socket) -> None:
        try:
            data = sock.recv(65536)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        other = self._peers[sock]
        if not data:
            self._close_pair(sock)
            return
        try:
            other.setblocking(True)
            other.sendall(data)
            other.setblocking(False)
        except OSError:
            self._close_pair(sock)

    def _close_pair(self, sock: socket.socket) -> None:
        other = self._peers.pop(sock, None)
        for one in (sock, other):
            if one is None:
                continue
            self._peers.pop(one, None)
            try:
                self._selector.unregister(one)
            except (KeyError, ValueError):
                pass
            one.close()

    def _freeze(self) -> None:
        # Open connections stay open, unread: nothing crosses them.
        for sock in self._peers:
            try:
                self._selector.unregister(sock)
            except (KeyError, ValueError):
                pass

    def _drop_all(self) -> None:
        for sock in list(self._peers):
            self._close_pair(sock)
        for sock in self._held:
            sock.close()
        self._held.clear()
