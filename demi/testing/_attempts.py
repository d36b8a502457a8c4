"""Calling a platform under test, and saying in a few words what went wrong."""

from __future__ import annotations

from typing import Any

from ..platforms.base import BasePlatform
from ..plugins._calls import call, describe

__all__ = ["attempt", "detail", "kind", "label", "sentence_part", "still_running"]

_MAX_DETAIL = 300


async def attempt(
    platform: BasePlatform, method: str, *args: Any, timeout: float
) -> tuple[object, str | None]:
    """Call ``platform.<method>`` as the manager does (same timeout handling, blocking
    platforms in a worker thread); return its result, or ``None`` and what went
    wrong, as the end of a sentence ("did not finish in time")."""
    try:
        return await call(platform, method, *args, timeout=timeout), None
    except TimeoutError:
        return None, "did not finish in time"
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


def still_running(names: list[str]) -> str:
    """``"1 task (name) was still running"``, or the plural, for leaked task names."""
    shown = ", ".join(names[:5]) + (", …" if len(names) > 5 else "")
    if len(names) == 1:
        return f"1 task ({shown}) was still running"
    return f"{len(names)} tasks ({shown}) were still running"
