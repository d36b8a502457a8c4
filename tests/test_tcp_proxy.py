"""The loopback TCP proxy that partitions one replica (tests/tcp_proxy.py), in front
of the connection counter: it forwards, blackholes when cut, and forwards again."""

from __future__ import annotations

import socket

import pytest
from connection_counter import ConnectionCounter
from tcp_proxy import TcpProxy


def greet(port: int, account: str) -> socket.socket:
    """A connection through ``port`` that sent HELLO (the answer is not read)."""
    client = socket.create_connection(("127.0.0.1", port), timeout=0.5)
    client.sendall(f"HELLO {account}\n".encode())
    return client


def closed(sock: socket.socket) -> bool:
    """Whether the other end closed ``sock`` (a reset counts: unread data was
    dropped with it)."""
    try:
        return sock.recv(16) == b""
    except ConnectionResetError:
        return True


def test_it_forwards_both_ways_and_closes_with_the_client(
    connection_counter: ConnectionCounter,
) -> None:
    with (
        TcpProxy(connection_counter.port) as proxy,
        greet(proxy.port, "a") as client,
    ):
        assert client.recv(16) == b"OK\n"
        assert connection_counter.connected() == {"a"}
    connection_counter.wait_for(lambda seen: seen["a"].current == 0)


def test_cut_blackholes_open_and_new_connections_and_restore_drops_them(
    connection_counter: ConnectionCounter,
) -> None:
    """Cut: nothing crosses an open connection, a new one is accepted and never
    forwarded (calls hang, as in a partition). Restored: what was held is closed,
    and new connections are forwarded again."""
    with TcpProxy(connection_counter.port) as proxy:
        before = socket.create_connection(("127.0.0.1", proxy.port), timeout=0.5)
        proxy.cut()
        with before, greet(proxy.port, "during") as during:
            before.sendall(b"HELLO before\n")
            with pytest.raises(TimeoutError):
                before.recv(16)
            with pytest.raises(TimeoutError):
                during.recv(16)
            assert connection_counter.accounts() == {}
            proxy.restore()
            assert closed(before)
            assert closed(during)
        with greet(proxy.port, "after") as after:
            assert after.recv(16) == b"OK\n"
        assert set(connection_counter.accounts()) == {"after"}
