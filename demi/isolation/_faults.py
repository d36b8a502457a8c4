"""Why a child process went away: the one place that words it, and so the one place
that reads the words back.

Each reason a person reads in the instance's error and the log is made here, and
:func:`fault_of` classifies such a text as the restart reason the supervisor counts
(``demi_platform_restarts_total{reason=...}``): ``crash`` for a child that died
without demi asking (a segfault, ``os._exit``, the kernel's OOM killer), ``hang``
for one demi killed because it did not answer a cancellation in time, ``memory``
for one demi killed over its ``memory_limit_mb``.
"""

from __future__ import annotations

import signal
from typing import Literal

from ..exceptions import PlatformUnavailableError

__all__ = [
    "CRASH",
    "HANG",
    "MEMORY",
    "Fault",
    "exited",
    "fault_of",
    "over_memory",
    "unanswered_cancel",
]

#: The restart reasons of a process-isolated instance whose child went away.
Fault = Literal["crash", "hang", "memory"]
CRASH: Fault = "crash"
HANG: Fault = "hang"
MEMORY: Fault = "memory"

# How each text opens.
_EXITED = "process exited"
_HUNG = "process killed: it did not answer a cancellation"
_MEMORY_MARK = "MiB, over its memory_limit_mb of "
_MEMORY_OPENING = "process used "
# How demi describes the error the proxy raises with a child's reason
# (plugins._calls.describe: the type's name, then its message).
_CARRIER = f"{PlatformUnavailableError.__name__}: "


def exited(code: int | None, when: str = "") -> str:
    """A child that exited by itself (``code`` as ``Popen.returncode`` has it,
    ``None`` if it would not end), ``when`` (" before it said hello", say)."""
    return f"{_EXITED}{when}: {_describe_exit(code)}"


def unanswered_cancel(grace: float) -> str:
    """A child demi killed because it did not answer a cancellation within
    ``grace`` seconds."""
    return f"{_HUNG} within {grace:g}s (its loop is blocked or it ignores cancellation)"


def over_memory(used_mb: float, limit_mb: int) -> str:
    """A child demi killed because its resident memory (``used_mb``) went over
    ``limit_mb``."""
    return f"{_MEMORY_OPENING}{used_mb:.0f} {_MEMORY_MARK}{limit_mb}: killed"


def fault_of(error: str | None) -> Fault | None:
    """The restart reason for an isolated instance that failed with ``error``, or
    ``None`` when no child went away (an ``initialize`` that raised or returned
    false, a stop demi asked for).

    ``error`` is the instance's error as the manager recorded it, which wraps the
    child's reason in the error that carried it ("connection lost: run raised
    PlatformUnavailableError: process exited: ..."); the reason is looked for there,
    or at the start.
    """
    if not error:
        return None
    _, carried, reason = error.rpartition(_CARRIER)
    text = reason if carried else error
    if text.startswith(_HUNG):
        return HANG
    if text.startswith(_MEMORY_OPENING) and _MEMORY_MARK in text:
        return MEMORY
    if text.startswith(_EXITED):
        return CRASH
    return None


def _describe_exit(code: int | None) -> str:
    if code is None:
        return "it did not end"
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = "unknown"
        return f"killed by signal {-code} ({name})"
    return f"exit code {code}"
