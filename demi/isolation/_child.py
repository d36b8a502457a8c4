"""One child process of an isolated platform, seen from demi: how it is started
(same interpreter, a session of its own, one end of a socket pair), how it is
stopped (SIGTERM, then SIGKILL, of its whole process group), its memory, and the one
reason a person reads when it went away."""

from __future__ import annotations

import os
import signal
import socket
import sys
from dataclasses import dataclass

import anyio
from anyio.abc import Process, UNIXSocketStream

from ..core.logger import get_logger
from ..exceptions import PlatformUnavailableError
from ._faults import exited, over_memory
from ._wire import Channel, WireError

__all__ = ["GONE", "MEMORY_POLL", "TERM_GRACE", "Child", "Shape", "resident_mb"]

LOG = get_logger("demi.isolation")

#: Seconds between SIGTERM and SIGKILL when a child is stopped, and the wait for a
#: child to exit once its socket closed.
TERM_GRACE = 2.0
#: Seconds between two readings of a child's memory, when it has a limit.
MEMORY_POLL = 0.25

#: What reading from or writing to a child that went away raises.
GONE = (
    anyio.EndOfStream,
    anyio.IncompleteRead,
    anyio.BrokenResourceError,
    anyio.ClosedResourceError,
    OSError,
)

_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


@dataclass(frozen=True, slots=True)
class Shape:
    """What a child's platform implements, from its hello: demi never imports an
    isolated driver itself, so this is how it knows."""

    #: It defines ``run``.
    listens: bool = False
    #: It defines ``handle_webhook``.
    webhooks: bool = False
    #: Two of it may never serve one instance at once (``is_exclusive``).
    exclusive: bool = False


class Child:
    """A running child process and its channel (start one with :meth:`spawn`)."""

    def __init__(self, process: Process, channel: Channel) -> None:
        self.process = process
        self.channel = channel
        #: The child's pid and its driver's version, from its hello.
        self.pid: int | None = None
        self.version: str | None = None
        #: What its platform does, as the child found its class.
        self.shape = Shape()
        #: Why it went away, once it did ("process exited: ...").
        self.gone: str | None = None

    @classmethod
    async def spawn(cls, namespace: str, driver: str, label: str) -> Child:
        """Start ``python -m demi.isolation.host`` for ``driver`` and wait for its
        hello (the caller bounds the wait; a child not returned is killed).

        :raises PlatformUnavailableError: it exited before its hello, and why.
        """
        ours, theirs = socket.socketpair()
        try:
            command = [
                sys.executable, "-m", "demi.isolation.host",
                namespace, driver, str(theirs.fileno()), label,
            ]  # fmt: skip
            # stdout goes to demi's stderr: what a plugin prints must never mix
            # with what demi prints (demi check --json).
            process = await anyio.open_process(
                command, pass_fds=(theirs.fileno(),), start_new_session=True,
                stdin=None, stdout=2, stderr=None,
            )  # fmt: skip
        except BaseException:
            ours.close()
            raise
        finally:
            theirs.close()
        child = cls(process, Channel(await UNIXSocketStream.from_socket(ours)))
        try:
            hello = await child.channel.receive()
        except (*GONE, WireError):
            reason = await child.reason(" before it said hello")
            await child.stop()
            raise PlatformUnavailableError(label, reason) from None
        except BaseException:
            with anyio.CancelScope(shield=True):
                await child.stop()
            raise
        params = hello.params if isinstance(hello.params, dict) else {}
        child.pid, child.version = params.get("pid"), params.get("version")
        shape = params.get("shape")
        child.shape = Shape(**shape) if isinstance(shape, dict) else Shape()
        return child

    @property
    def running(self) -> bool:
        """Whether the process has not exited (or not been reaped) yet."""
        return self.process.returncode is None

    async def reason(self, when: str = "") -> str:
        """Why the child went away, decided once (it is killed if it lingers)."""
        if self.gone is None:
            code = None
            with anyio.move_on_after(TERM_GRACE, shield=True):
                code = await self.process.wait()
            if code is None:
                await self.kill()
                code = self.process.returncode
            self.gone = exited(code, when)
        return self.gone

    async def kill(self) -> None:
        """SIGKILL its whole process group, and reap it."""
        if self.running:
            _signal_group(self.process.pid, signal.SIGKILL)
            with anyio.move_on_after(TERM_GRACE, shield=True):
                await self.process.wait()

    async def stop(self) -> None:
        """Close its socket, SIGTERM its process group, SIGKILL it after
        :data:`TERM_GRACE`."""
        await self.channel.aclose()
        if self.running:
            _signal_group(self.process.pid, signal.SIGTERM)
            with anyio.move_on_after(TERM_GRACE):
                await self.process.wait()
        await self.kill()
        self.gone = self.gone or "stopped"

    async def watch_memory(self, limit_mb: int, label: str) -> None:
        """Kill the child once its resident memory is over ``limit_mb`` MiB, with
        that as its reason."""
        pid = self.pid
        if pid is None:
            return
        while True:
            used = resident_mb(pid)
            if used is not None and used > limit_mb:
                self.gone = over_memory(used, limit_mb)
                LOG.warning("platform %s: %s", label, self.gone)
                await self.kill()
                return
            await anyio.sleep(MEMORY_POLL)


def resident_mb(pid: int) -> float | None:
    """The resident memory of ``pid`` in MiB, from /proc (``None`` where there is
    no /proc, or once the process is gone)."""
    try:
        with open(f"/proc/{pid}/statm", "rb") as statm:
            pages = int(statm.read().split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return pages * _PAGE / (1024 * 1024)


def _signal_group(pid: int, signum: int) -> None:
    try:
        os.killpg(pid, signum)
    except (ProcessLookupError, PermissionError):
        pass
