"""How ``demi run``'s start-up went, in one line, and how it is going, every few
seconds while it lasts: what an operator reads in a log to know whether demi came up.

Counted from the manager's transitions (an instance is up once it turns active and
failed once it turns failed), so a thousand platforms cost nothing extra.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence

import anyio

from ..conductor import Conductor
from ..plugins.base import PluginState, Transition

#: Seconds between progress lines while start-up lasts (none if it is quicker).
PROGRESS_EVERY = 5.0
#: How many names a line lists before "and N more".
MAX_NAMED = 10


def named(names: Sequence[str], limit: int = MAX_NAMED) -> str:
    """``names`` joined by commas, the first ``limit`` of them and then "and N
    more", so that no line lists hundreds of names."""
    shown = ", ".join(names[:limit]) or "none"
    rest = len(names) - limit
    return f"{shown} and {rest} more" if rest > 0 else shown


class _Tally:
    """Which instances have come up and which have failed, by their transitions."""

    def __init__(self, conductor: Conductor) -> None:
        # A replica of a coordination group starts its own share only.
        enabled = conductor.settings.enabled_platforms()
        self.total = sum(1 for name in enabled if conductor.runs_here(name))
        self.up: set[str] = set()
        # Insertion-ordered: the line names them in the order they failed.
        self.failed: dict[str, None] = {}
        self.began = time.monotonic()

    def count(self, change: Transition) -> None:
        if change.target is PluginState.ACTIVE:
            self.up.add(change.name)
            self.failed.pop(change.name, None)
        elif change.target is PluginState.FAILED:
            self.up.discard(change.name)
            self.failed[change.name] = None

    def elapsed(self) -> float:
        return time.monotonic() - self.began

    def progress(self) -> str:
        return (
            f"starting: {len(self.up)} of {self.total} platforms up, "
            f"{len(self.failed)} failed, after {self.elapsed():.0f} s"
        )

    def summary(self) -> str:
        line = (
            f"started {len(self.up)} of {self.total} platforms "
            f"in {self.elapsed():.1f} s"
        )
        if self.failed:
            line += f"; failed: {named(list(self.failed))}"
        # A listening platform is up once connected, which may come later.
        pending = self.total - len(self.up) - len(self.failed)
        if pending > 0:
            line += f"; {pending} still connecting"
        return line


async def start_and_report(conductor: Conductor, log: logging.Logger) -> None:
    """``conductor.start()``, logging progress every :data:`PROGRESS_EVERY` seconds
    while it lasts, then one summary line (not when it raises or is cancelled: the
    error, or the stop, is the news then)."""
    tally = _Tally(conductor)
    unsubscribe = conductor.manager.subscribe(tally.count)

    async def report_progress() -> None:
        while True:
            await anyio.sleep(PROGRESS_EVERY)
            log.info("%s", tally.progress())

    try:
        async with anyio.create_task_group() as group:
            group.start_soon(report_progress)
            await conductor.start()
            group.cancel_scope.cancel()
    finally:
        unsubscribe()
    log.info("%s", tally.summary())
