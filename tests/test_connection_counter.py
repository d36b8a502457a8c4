"""The loopback connection counter the replica tests count on
(tests/connection_counter.py)."""

from __future__ import annotations

import socket
import struct
import time

import pytest
from connection_counter import Account, ConnectionCounter


def hello(counter: ConnectionCounter, account: str) -> socket.socket:
    """A connection that greeted the counter as ``account`` and was answered."""
    client = socket.create_connection(("127.0.0.1", counter.port), timeout=5)
    client.sendall(f"HELLO {account}\n".encode())
    assert client.recv(16) == b"OK\n"
    return client


def test_a_connection_counts_until_the_client_closes_it(
    connection_counter: ConnectionCounter,
) -> None:
    """Open: current 1 (since the time it was counted); closed: current 0; most
    and total stay 1."""
    assert connection_counter.address == f"127.0.0.1:{connection_counter.port}"
    before = time.monotonic()
    with hello(connection_counter, "alice"):
        assert connection_counter.accounts() == {"alice": Account(1, 1, 1)}
        assert before < connection_counter.accounts()["alice"].since < time.monotonic()
        assert connection_counter.connected() == {"alice"}
    seen = connection_counter.wait_for(lambda a: a["alice"].current == 0)
    assert seen == {"alice": Account(0, 1, 1)}
    assert connection_counter.connected() == set()


def test_two_connections_of_one_account_at_once_show_in_the_maximum(
    connection_counter: ConnectionCounter,
) -> None:
    """The counter sees an overlap (it counts, it does not refuse); other accounts
    are counted apart."""
    with hello(connection_counter, "bob"), hello(connection_counter, "bob"):
        with hello(connection_counter, "carol"):
            assert connection_counter.accounts() == {
                "bob": Account(2, 2, 2),
                "carol": Account(1, 1, 1),
            }
    seen = connection_counter.wait_for(
        lambda a: not any(account.current for account in a.values())
    )
    assert seen == {"bob": Account(0, 2, 2), "carol": Account(0, 1, 1)}


def test_a_close_before_the_next_connection_is_never_an_overlap(
    connection_counter: ConnectionCounter,
) -> None:
    """Close, then connect again at once, many times: the maximum stays 1 (one
    thread reads the close before the next HELLO)."""
    for _ in range(100):
        hello(connection_counter, "dave").close()
    seen = connection_counter.wait_for(lambda a: a["dave"].current == 0)
    assert seen == {"dave": Account(0, 1, 100)}


def test_a_connection_reset_counts_as_closed(
    connection_counter: ConnectionCounter,
) -> None:
    """A client that vanishes with a reset (as a killed process's may) is no
    longer counted."""
    client = hello(connection_counter, "erin")
    client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    client.close()
    assert connection_counter.wait_for(lambda a: a["erin"].current == 0)


@pytest.mark.parametrize(
    "first",
    [b"HI alice\n", b"HELLO\n", b"HELLO a b\n", b"x" * 2000],
    ids=["other-verb", "no-account", "two-words", "no-newline-in-1k"],
)
def test_anything_but_hello_and_an_account_is_refused(
    connection_counter: ConnectionCounter, first: bytes
) -> None:
    """A wrong first line (or none within 1 KiB) closes the connection uncounted."""
    with socket.create_connection(("127.0.0.1", connection_counter.port), 5) as c:
        c.sendall(first)
        assert c.recv(16) == b""
    assert connection_counter.accounts() == {}
    assert connection_counter.rejected == 1


def test_stopping_closes_every_connection() -> None:
    """Stopped, the counter closes its clients' connections and its listener."""
    counter = ConnectionCounter()
    with counter:
        client = hello(counter, "frank")
    with client:
        assert client.recv(16) == b""
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", counter.port), timeout=5)


def test_waiting_gives_up_with_what_it_last_saw(
    connection_counter: ConnectionCounter,
) -> None:
    """``wait_for`` is bounded and says what it saw."""
    with (
        hello(connection_counter, "gina"),
        pytest.raises(TimeoutError, match="gina"),
    ):
        connection_counter.wait_for(lambda a: a["gina"].current == 0, timeout=0.2)
