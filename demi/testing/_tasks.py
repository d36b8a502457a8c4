"""Seeing the tasks of the running event loop, on asyncio and on trio alike."""

from __future__ import annotations

import re
from collections.abc import Mapping

import anyio
from anyio import TaskInfo

__all__ = ["new_tasks", "running_tasks", "unowned_asyncio_tasks"]

_ASYNCIO_DEFAULT_NAME = re.compile(r"Task-\d+")


def running_tasks() -> dict[int, str]:
    """Every unfinished task of the running event loop: its id and a readable name.

    The name is the task's own (anyio and trio name a task after its function, as
    ``"acme.Poller.loop"``), or, for a task asyncio named ``"Task-7"``, the qualified
    name of its coroutine function. Call it from inside the event loop; trio's system
    tasks are included.
    """
    return {task.id: _label(task) for task in anyio.get_running_tasks()}


def new_tasks(before: Mapping[int, str]) -> list[str]:
    """Names of the tasks running now that were not in ``before``, sorted.

    :param before: what :func:`running_tasks` returned earlier.
    """
    return sorted(name for id_, name in running_tasks().items() if id_ not in before)


def unowned_asyncio_tasks(before: Mapping[int, str]) -> int:
    """How many tasks running now, and not in ``before``, asyncio named itself
    (``"Task-7"``): made by ``asyncio.create_task`` or ``ensure_future``, which no
    task group waits for. Task groups (anyio's and trio's) name their tasks."""
    return sum(
        1
        for task in anyio.get_running_tasks()
        if task.id not in before and _ASYNCIO_DEFAULT_NAME.fullmatch(task.name or "")
    )


def _label(task: TaskInfo) -> str:
    if task.name and not _ASYNCIO_DEFAULT_NAME.fullmatch(task.name):
        return task.name
    qualname = getattr(task.coro, "__qualname__", None)
    return str(qualname or task.name or f"task {task.id}")
