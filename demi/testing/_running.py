"""Running a listening platform's ``run`` in a test, as the manager does: in a task
group, ready at ``task_status.started()``, cancelled before ``shutdown``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
from anyio.abc import TaskStatus

from ..platforms.base import BasePlatform
from ..platforms.inbound import Inbox
from ..plugins._calls import DEFAULT_BLOCK_THRESHOLD, run_watched
from ._attempts import detail

__all__ = ["Run", "running"]


class Run:
    """What became of one ``run``: readiness, how it ended, whether it heard its
    cancellation in time."""

    __slots__ = ("done", "ended", "ready", "scope", "stuck_for")

    def __init__(self) -> None:
        #: Cancels ``run`` (the test is done with it).
        self.scope = anyio.CancelScope()
        #: Set once ``run`` has ended, however it ended.
        self.done = anyio.Event()
        #: ``run`` called ``task_status.started()``.
        self.ready = False
        #: How ``run`` ended on its own, as the end of a sentence ("returned",
        #: "raised ValueError: x"); ``None`` while it runs or once cancelled.
        self.ended: str | None = None
        #: The seconds ``run`` outlived its cancellation by more than allowed, if it did.
        self.stuck_for: float | None = None


class _Ready:
    """The ``task_status`` ``run`` gets: readiness is noted, then passed on."""

    __slots__ = ("_run", "_status")

    def __init__(self, status: TaskStatus[None], run: Run) -> None:
        self._status = status
        self._run = run

    def started(self, value: Any = None) -> None:
        self._status.started()
        self._run.ready = True


async def _serve(
    platform: BasePlatform, inbox: Inbox, run: Run, *, task_status: TaskStatus[None]
) -> None:
    try:
        with run.scope:
            try:
                await run_watched(
                    platform, inbox, _Ready(task_status, run),
                    owner=platform.name, block_threshold=DEFAULT_BLOCK_THRESHOLD,
                )  # fmt: skip
                run.ended = "returned"
            except Exception as err:
                run.ended = f"raised {detail(err)}"
    finally:
        run.done.set()


@asynccontextmanager
async def running(
    platform: BasePlatform,
    inbox: Inbox,
    *,
    init_timeout: float,
    shutdown_timeout: float,
    began: float | None = None,
) -> AsyncIterator[Run]:
    """Start ``platform.run(inbox)`` and wait for its readiness; yield; then cancel
    it and wait for it to end.

    As in demi, ``initialize`` and readiness share the init timeout: ``began`` is
    when ``initialize`` was called (now, when ``None``).

    Whether it ended within ``shutdown_timeout`` of its cancellation is in the
    :class:`Run` yielded. A failure inside the block is raised unchanged once
    ``run`` ended (not wrapped in the task group's exception group), so that the
    check's sentence is what pytest shows.

    :raises AssertionError: ``run`` did not get ready; the sentence says why.
    """
    __tracebackhide__ = True
    run = Run()
    failure: Exception | None = None
    if began is None:
        began = anyio.current_time()
    async with anyio.create_task_group() as group:
        with anyio.move_on_at(began + init_timeout):
            try:
                await group.start(_serve, platform, inbox, run)
            except RuntimeError:
                pass  # it ended before it was ready: run.ended says how
        if run.ready:
            try:
                yield run
            except Exception as err:
                failure = err
        run.scope.cancel()
        with anyio.move_on_after(shutdown_timeout):
            await run.done.wait()
        if not run.done.is_set():
            run.stuck_for = shutdown_timeout
    if failure is not None:
        raise failure
    if not run.ready:
        if run.ended is None:
            why = (
                f"did not call task_status.started() within the init timeout "
                f"({init_timeout:g}s)"
            )
        else:
            why = f"{run.ended} before calling it"
        raise AssertionError(
            f"run must call task_status.started() once connected, but it {why}."
        )
