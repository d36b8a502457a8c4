"""A last resort for a bounded stop: a thread that ends the process when stopping
outlives its budget."""

from __future__ import annotations

import os
import sys
import threading

__all__ = ["EXIT_STOP_OVERRUN", "MARGIN", "Watchdog"]

#: Exit code when the watchdog had to end a stop that overran its budget.
EXIT_STOP_OVERRUN = 1
#: Seconds a watchdog allows past a stop's own budget (``stop_timeout`` and the
#: like) before it ends the process: room for the bounded stop to finish and report.
MARGIN = 2.0


class Watchdog:
    """Ends the process if stopping outlives its budget.

    Timeouts and cancellation bound every well-behaved plugin, but a plugin that
    swallows cancellation in a loop can hold any event loop forever; an
    orchestrator would then have to kill demi. This thread makes the bound hold.
    """

    def __init__(self, seconds: float) -> None:
        self._timer = threading.Timer(seconds, self._expire, args=(seconds,))
        self._timer.daemon = True
        self._timer.start()

    @staticmethod
    def _expire(seconds: float) -> None:
        message = (
            f"demi: error: stopping did not finish within {seconds:g}s; exiting now"
        )
        print(message, file=sys.stderr, flush=True)
        os._exit(EXIT_STOP_OVERRUN)

    def cancel(self) -> None:
        """Stand down: the stop finished in time."""
        self._timer.cancel()
