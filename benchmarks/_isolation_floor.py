"""The floors' side of cases 9 to 11 in the benchmark's child: processes started
the way demi starts its child, and what /proc says about a process.

Loaded by ``_child.py`` from its file before ``_isolation_child.py``, which uses it;
like them it imports only the standard library at module level.
"""

from __future__ import annotations

import itertools
import os
import socket
import sys
from pathlib import Path
from typing import Any

__all__ = ["Floor", "ended", "memory_of", "on_cpu", "ready_floor", "resident"]

ECHO = Path(__file__).with_name("_wire_echo.py")
#: Seconds a floor's process has to say it is ready, or to end once its socket
#: closed: a broken floor fails the benchmark instead of hanging it.
LIMIT = 30.0
_PAGE = os.sysconf("SC_PAGE_SIZE")


async def _spawn(argv: list[str]) -> tuple[Any, Any]:
    """Start ``argv`` with one end of a socket pair as its last argument, the way
    demi starts its child; return the process and our end as a stream."""
    import anyio
    from anyio.abc import UNIXSocketStream

    ours, theirs = socket.socketpair()
    try:
        process = await anyio.open_process(
            [*argv, str(theirs.fileno())], pass_fds=(theirs.fileno(),),
            start_new_session=True, stdin=None, stdout=2, stderr=None,
        )  # fmt: skip
    finally:
        theirs.close()
    return process, await UNIXSocketStream.from_socket(ours)


class Floor:
    """Our end of the floor: a channel to ``_wire_echo.py``."""

    def __init__(self, process: Any, channel: Any) -> None:
        self.process, self.channel = process, channel
        self.ids = itertools.count(1)
        self.waiting: dict[int, Any] = {}
        self.replies: dict[int, Any] = {}

    @classmethod
    async def open(cls, *options: str) -> Floor:
        from demi.isolation._wire import Channel

        process, stream = await _spawn([sys.executable, str(ECHO), *options])
        import anyio

        floor = cls(process, Channel(stream))
        with anyio.fail_after(LIMIT):
            await floor.channel.receive()  # hello
        return floor

    def request(self, request: Any, timeout: float) -> Any:
        from demi.isolation._wire import Message

        # The same params as demi's proxy sends: the request and the time left.
        params = {"request": request, "timeout": timeout}
        return Message("req", next(self.ids), "handle_request", params)

    async def call(self, request: Any, timeout: float) -> Any:
        """One round trip, nobody else on the channel, under the timeout (as
        demi's dispatch, and case 4's floor)."""
        import anyio

        with anyio.fail_after(timeout):
            await self.channel.send(self.request(request, timeout))
            return (await self.channel.receive()).params

    async def read(self) -> None:
        """Wake each caller when its answer comes (callers share the channel)."""
        while True:
            reply = await self.channel.receive()
            self.replies[reply.id] = reply
            self.waiting.pop(reply.id).set()

    async def shared_call(self, request: Any, timeout: float) -> Any:
        """One round trip among other callers: :meth:`read` must be running."""
        import anyio

        message = self.request(request, timeout)
        wake = self.waiting[message.id] = anyio.Event()
        with anyio.fail_after(timeout):
            await self.channel.send(message)
            await wake.wait()
        return self.replies.pop(message.id).params

    async def close(self) -> None:
        """Close the channel; the echo ends at end-of-file."""
        await ended(self.process, self.channel)


async def ended(process: Any, stream: Any) -> None:
    """Close ``stream``, then wait for ``process`` to end (killed after
    :data:`LIMIT`)."""
    import anyio

    await stream.aclose()
    with anyio.move_on_after(LIMIT):
        await process.wait()
        return
    process.kill()
    raise RuntimeError(f"a floor's process did not end within {LIMIT:g}s")


async def ready_floor(module: str) -> tuple[Any, Any]:
    """``python -c "import MODULE"`` that writes one byte once imported, then waits
    for end-of-file on its socket (so it can be measured idle)."""
    code = (
        f"import os, sys, {module}\n"
        "fd = int(sys.argv[1]); os.write(fd, b'.'); os.read(fd, 1)"
    )
    import anyio

    process, stream = await _spawn([sys.executable, "-c", code])
    with anyio.fail_after(LIMIT):
        if await stream.receive(1) != b".":
            raise RuntimeError(f"the floor did not import {module}")
    return process, stream


def on_cpu(pid: int) -> float:
    """Seconds the process ``pid`` (its main thread) has run on a CPU, to the
    nanosecond (/proc/PID/schedstat; the children are single-threaded)."""
    with open(f"/proc/{pid}/schedstat", "rb") as schedstat:
        return int(schedstat.read().split()[0]) / 1e9


def resident(pid: int | str = "self") -> float:
    """Resident memory in bytes, from /proc/PID/statm."""
    with open(f"/proc/{pid}/statm", "rb") as statm:
        return int(statm.read().split()[1]) * _PAGE


def _rollup(pid: int) -> dict[str, float]:
    """Proportional (Pss) and private (Private_*) memory in bytes, from
    /proc/PID/smaps_rollup (empty where the kernel has none)."""
    out = {"pss": 0.0, "private": 0.0}
    try:
        lines = Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()
    except OSError:
        return {}
    for line in lines:
        key, _, rest = line.partition(":")
        if key == "Pss":
            out["pss"] = float(rest.split()[0]) * 1024
        elif key.startswith("Private_"):
            out["private"] += float(rest.split()[0]) * 1024
    return out


def memory_of(pid: int) -> dict[str, float]:
    """Resident, proportional and private memory of ``pid``, in bytes."""
    return {"rss": resident(pid), **_rollup(pid)}
