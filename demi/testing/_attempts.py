"""Calling a platform under test, and saying in a few words what went wrong."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..platforms.base import BasePlatform
from ..plugins._calls import call, describe
from ._tasks import new_tasks, unowned_asyncio_tasks

__all__ = [
    "attempt",
    "detail",
    "kind",
    "label",
    "leaked",
    "left_open",
    "require_no_task_left",
    "scope_left_open",
    "sentence_part",
    "still_running",
]

_MAX_DETAIL = 300

# What anyio (asyncio) and trio say when a call returns inside a cancel scope or
# task group it entered and never left: the scope stack is then out of order.
_SCOPE_LEFT_OPEN = (
    "cancel scope stack corrupted",
    "isn't the current task",
    "in a different task",
)


def left_open(method: str) -> AssertionError:
    """The failure of a call that returned inside a task group (or cancel scope)
    it entered: anyio's own error ("cancel scope stack corrupted") says nothing of
    where the mistake is."""
    return AssertionError(
        f"{method} must exit every task group it enters before it returns, but it "
        f"returned with one still open (keep background tasks in run, or in a task "
        f"group entered and exited within one call)."
    )


def scope_left_open(err: BaseException) -> bool:
    """Whether ``err`` is anyio's or trio's complaint about a scope left open."""
    return isinstance(err, RuntimeError) and any(
        sign in str(err).lower() for sign in _SCOPE_LEFT_OPEN
    )


async def attempt(
    platform: BasePlatform, method: str, *args: Any, timeout: float
) -> tuple[object, str | None]:
    """Call ``platform.<method>`` as the manager does (same timeout handling, blocking
    platforms in a worker thread); return its result, or ``None`` and what went
    wrong, as the end of a sentence ("did not finish in time").

    :raises AssertionError: it returned with a task group it entered still open
        (:func:`left_open`): nothing after that can be trusted.
    """
    __tracebackhide__ = True
    try:
        return await call(platform, method, *args, timeout=timeout), None
    except TimeoutError:
        return None, "did not finish in time"
    except RuntimeError as err:
        if scope_left_open(err):
            raise left_open(method) from None
        return None, f"raised {detail(err)}"
    except Exception as err:
        return None, f"raised {detail(err)}"


def label(cls: type[object]) -> str:
    """How a class is named in a message."""
    return cls.__qualname__


def kind(value: object) -> str:
    """How a wrong return value is named: ``False``, ``None``, or its type."""
    if value is None or isinstance(value, bool):
        return repr(value)
    return f"a {type(value).__name__}"


def detail(err: BaseException) -> str:
    """An exception as ``Type: message``, fit for the middle of a sentence."""
    return sentence_part(describe(err))


def sentence_part(text: str) -> str:
    """``text`` on one line, short, without a closing full stop."""
    flat = " ".join(text.split()).rstrip(".")
    return flat if len(flat) <= _MAX_DETAIL else flat[: _MAX_DETAIL - 1] + "…"


def leaked(before: Mapping[int, str]) -> str | None:
    """The end of a sentence naming the tasks started since ``before`` that are
    still running (with what to use instead of ``asyncio.create_task`` when that
    made them), or ``None`` when there are none.

    :param before: what :func:`~demi.testing.running_tasks` returned earlier.
    """
    names = new_tasks(before)
    if not names:
        return None
    text = still_running(names)
    if unowned_asyncio_tasks(before):
        text += (
            " (started with asyncio.create_task, which nothing waits for: start "
            "background tasks in a task group the platform owns and closes in "
            "shutdown, or in run)"
        )
    return text


def require_no_task_left(before: Mapping[int, str], what: str) -> None:
    """Fail with one sentence when tasks started since ``before`` still run:
    "``what`` must leave no task running, but ...".

    :raises AssertionError: naming the tasks left behind.
    """
    __tracebackhide__ = True
    left = leaked(before)
    if left:
        raise AssertionError(f"{what} must leave no task running, but {left}.")


def still_running(names: list[str]) -> str:
    """``"1 task (name) was still running"``, or the plural, for leaked task names."""
    shown = ", ".join(names[:5]) + (", …" if len(names) > 5 else "")
    if len(names) == 1:
        return f"1 task ({shown}) was still running"
    return f"{len(names)} tasks ({shown}) were still running"
