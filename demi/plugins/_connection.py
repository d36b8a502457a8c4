"""A listening platform's connection: its ``run``, started after ``initialize`` in
the manager's task group, ready when it calls ``task_status.started()``, cancelled
before ``shutdown``. When ``run`` ends on its own, the connection is lost: the
platform is shut down and left ``failed`` with the reason, for the supervisor to
reconnect (or to give up on at once, after a :class:`~demi.PlatformFatalError`)."""

from __future__ import annotations

from typing import Any

import anyio
from anyio.abc import TaskGroup, TaskStatus

from ..core.logger import get_logger
from ..exceptions import PlatformFatalError
from ..platforms.base import BasePlatform
from ..platforms.inbound import Inbox
from ._calls import PluginRaised, describe, run_watched
from ._slots import Slot
from ._stopping import shutdown
from .base import ALLOWED_TRANSITIONS, PluginState

__all__ = ["Connection", "connect"]

LOG = get_logger("demi.plugins.manager")


class Connection:
    """The state of one platform's ``run`` task."""

    __slots__ = ("connected", "done", "scope", "stopping")

    def __init__(self) -> None:
        #: Cancels ``run`` (demi is taking the platform out of service).
        self.scope = anyio.CancelScope()
        #: Set once the task has ended, however it ended.
        self.done = anyio.Event()
        #: ``run`` called ``task_status.started()`` and has not ended.
        self.connected = False
        #: demi ended the connection on purpose: its end is no loss.
        self.stopping = False


class _Ready:
    """The ``task_status`` a platform's ``run`` gets: readiness marks it connected."""

    __slots__ = ("_connection", "_status")

    def __init__(self, status: TaskStatus[None], connection: Connection) -> None:
        self._status = status
        self._connection = connection

    def started(self, value: Any = None) -> None:
        self._status.started()
        self._connection.connected = True


async def connect(
    slot: Slot,
    platform: BasePlatform,
    inbox: Inbox,
    tasks: TaskGroup,
    *,
    shutdown_timeout: float,
    block_threshold: float,
) -> None:
    """Start ``platform.run(inbox)`` in ``tasks`` and return once it is connected.

    :raises Exception: what ``run`` raised (or anyio's RuntimeError when it
        returned) before it was ready; the caller bounds the wait.
    """
    connection = Connection()
    slot.connection = connection

    async def serve(*, task_status: TaskStatus[None]) -> None:
        try:
            lost: tuple[str, bool] | None = None
            with connection.scope:
                try:
                    await run_watched(
                        platform, inbox, _Ready(task_status, connection),
                        owner=slot.label, block_threshold=block_threshold,
                    )  # fmt: skip
                    lost = ("run returned: the connection ended", False)
                except Exception as err:
                    if not connection.connected:
                        raise  # not ready yet: the loader records it
                    lost = (f"run raised {describe(err)}", _is_fatal(err))
            connection.connected = False
            if lost is not None and not connection.stopping:
                bounds = (shutdown_timeout, block_threshold)
                await _lose(slot, platform, connection, *lost, *bounds)
        finally:
            connection.connected = False
            connection.done.set()

    await tasks.start(serve)


def _is_fatal(err: BaseException) -> bool:
    if isinstance(err, PluginRaised):
        return False
    return isinstance(err, PlatformFatalError)


async def _lose(
    slot: Slot,
    platform: BasePlatform,
    connection: Connection,
    reason: str,
    fatal: bool,
    timeout: float,
    block_threshold: float,
) -> None:
    """The connection ended on its own: take the platform out of service, shut it
    down (shielded, bounded) and leave it failed with the reason."""
    if slot.connection is not connection or not _is_active(slot):
        return
    why = f"connection lost: {reason}" if not fatal else f"fatal: {reason}"
    slot.fatal = fatal
    slot.lifecycle.move_to(PluginState.STOPPING, why)
    connection.stopping = True
    releasing = slot.releasing = anyio.Event()
    try:
        with anyio.CancelScope(shield=True):
            await shutdown(
                slot.label, platform, slot.threads, timeout=timeout,
                block_threshold=block_threshold,
            )  # fmt: skip
    finally:
        slot.releasing = None
        releasing.set()
        slot.platform = None
        # A give-up may have failed it meanwhile; the lifecycle decides.
        if PluginState.FAILED in ALLOWED_TRANSITIONS[slot.lifecycle.state]:
            slot.lifecycle.move_to(PluginState.FAILED, why)


def _is_active(slot: Slot) -> bool:
    return slot.lifecycle.state is PluginState.ACTIVE
