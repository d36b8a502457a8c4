"""Serving the app with hypercorn, on whichever anyio backend is running.

demi binds the listening socket itself, before any platform starts, so that a port in
use fails ``demi run`` at once with nothing started; hypercorn is then handed that
very socket (an ``fd://`` bind) and never binds one of its own.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import socket
from typing import Any

import anyio
from anyio.abc import TaskStatus

from ..core.logger import get_logger

__all__ = ["address_of", "bind_socket", "is_loopback", "serve_http"]

LOG = get_logger(__name__)

#: hypercorn's own log; its "Running on ..." line repeats demi's "serving ...".
_HYPERCORN_LOG = get_logger("demi.http.server")


class _DropRunningOn(logging.Filter):
    """Keep hypercorn's start-up line out: demi logs that event once, itself."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("Running on ")


_HYPERCORN_LOG.addFilter(_DropRunningOn())


def address_of(host: str, port: int) -> str:
    """``host:port`` as people write it (``[::1]:8080`` for IPv6)."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def is_loopback(host: str) -> bool:
    """Whether ``host`` is reachable from this machine only."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # a host name: it may resolve to anything
        return False


def bind_socket(host: str, port: int) -> socket.socket:
    """A TCP socket bound to ``host:port`` (not yet listening: connections are
    refused, not queued, until :func:`serve_http` starts).

    :raises OSError: the address cannot be bound (in use, not local, unknown name).
    """
    family, kind, proto, _, address = socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM
    )[0]
    sock = socket.socket(family, kind, proto)
    try:
        # Lets a restarted demi rebind while old connections sit in TIME_WAIT; it
        # never allows binding a port something is listening on.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
    except BaseException:
        sock.close()
        raise
    return sock


async def serve_http(
    app: Any,
    sock: socket.socket,
    *,
    backend: str,
    stop: anyio.Event,
    task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED,
) -> None:
    """Serve ``app`` on the bound ``sock`` (see :func:`bind_socket`) until ``stop``
    is set; report started once the socket listens.

    hypercorn has one entry point per event loop, both driven from here, so the HTTP
    face runs on asyncio and on trio alike. hypercorn takes over (and closes) a
    duplicate of the socket; ``sock`` itself is closed when serving ends.
    """
    from hypercorn.config import Config

    host, port = sock.getsockname()[:2]
    # Listen now, so the "serving" line below is true the moment it is logged; hypercorn
    # listening again on its duplicate only sets the backlog.
    config = Config()
    sock.listen(config.backlog)
    config.bind = [f"fd://{os.dup(sock.fileno())}"]
    config.accesslog = None
    config.errorlog = _HYPERCORN_LOG
    config.graceful_timeout = 1.0
    if backend == "trio":
        from hypercorn.trio import serve as trio_serve

        serving = trio_serve
    else:
        from hypercorn.asyncio import serve as asyncio_serve

        serving = asyncio_serve  # type: ignore[assignment]
    with sock:
        async with anyio.create_task_group() as group:
            group.start_soon(lambda: serving(app, config, shutdown_trigger=stop.wait))
            LOG.info("serving http://%s", address_of(host, port))
            task_status.started()
