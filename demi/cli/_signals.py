"""SIGINT and SIGTERM are the ``demi`` command's own, in every command.

Anyone can raise ``KeyboardInterrupt`` (a plugin, a library it calls); the operator's
Ctrl-C must never be mistaken for that. So while a command runs, neither stop signal
raises ``KeyboardInterrupt``: synchronous work is interrupted by :class:`Interrupted`,
raised by demi's own handler, and asynchronous work (:func:`run_async`) runs under a
signal receiver that cancels it, lets it stop what it started (shielded and bounded
by the conductor) and arms a :class:`~demi.cli._watchdog.Watchdog` so even a plugin
that never lets go cannot hold the process. Only :class:`Interrupted` means
"interrupted"; its exit code is 128 plus the signal number (130 SIGINT, 143 SIGTERM).
"""

from __future__ import annotations

import signal
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any, TypeVar, cast

import anyio

from ..core.logger import get_logger
from ._watchdog import MARGIN, Watchdog

__all__ = [
    "STOP_SIGNALS",
    "Interrupted",
    "StopGuard",
    "handling_stop_signals",
    "reinstall",
    "run_async",
]

LOG = get_logger("demi.cli")

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)

T = TypeVar("T")


class Interrupted(BaseException):
    """A stop signal reached demi (raised by demi's handlers only, never a plugin).

    A BaseException, like the KeyboardInterrupt it replaces, so that a plugin's
    ``except Exception`` does not swallow it.
    """

    def __init__(self, signum: int) -> None:
        self.signum = signum
        self.name = signal.Signals(signum).name
        super().__init__(f"interrupted by {self.name}")

    @property
    def exit_code(self) -> int:
        """The shell's convention: 128 plus the signal number."""
        return 128 + self.signum


class _Received:
    """The first stop signal of this command, however it arrived: a plugin may catch
    and drop the :class:`Interrupted` raised in its code, the signal still counts."""

    signum: int | None = None

    @classmethod
    def note(cls, signum: int) -> None:
        if cls.signum is None:
            cls.signum = signum


def _raise_interrupted(signum: int, frame: FrameType | None) -> None:
    _Received.note(signum)
    raise Interrupted(signum)


def _install() -> None:
    for signum in STOP_SIGNALS:
        signal.signal(signum, _raise_interrupted)


def reinstall() -> None:
    """Put demi's handlers back after an event loop ran: the asyncio one leaves
    SIGINT and SIGTERM at their defaults when its signal handling ends."""
    try:
        _install()
    except ValueError:  # not the main thread
        pass


@contextmanager
def handling_stop_signals() -> Iterator[Callable[[], Interrupted | None]]:
    """Install demi's stop-signal handlers for the duration; yield a function that
    says whether a stop signal arrived (as the :class:`Interrupted` to report)."""
    _Received.signum = None
    try:
        previous = {signum: signal.getsignal(signum) for signum in STOP_SIGNALS}
        _install()
    except ValueError:  # not the main thread: nobody would deliver the signals here
        previous = {}

    def received() -> Interrupted | None:
        return None if _Received.signum is None else Interrupted(_Received.signum)

    try:
        yield received
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


class StopGuard:
    """What asynchronous work is told about stopping.

    :meth:`arm` starts the watchdog (once): at the first stop signal, or when the
    work begins to stop by itself, so a stop that a plugin holds forever still ends
    within ``budget`` plus :data:`~demi.cli._watchdog.MARGIN` seconds.
    """

    def __init__(self, budget: float) -> None:
        self._budget = budget
        self._watchdog: Watchdog | None = None
        self._abort: Callable[[], None] | None = None
        #: The first stop signal received, if any.
        self.signum: int | None = None

    def arm(self) -> None:
        """Stopping has begun: start the watchdog, unless it is running already."""
        if self._watchdog is None:
            self._watchdog = Watchdog(self._budget + MARGIN)

    def on_abort(self, abort: Callable[[], None]) -> None:
        """Call ``abort`` on a second stop signal (e.g. ``Conductor.abort``)."""
        self._abort = abort

    def _disarm(self) -> None:
        if self._watchdog is not None:
            self._watchdog.cancel()


def run_async(
    backend: str, work: Callable[[StopGuard], Awaitable[T]], stop_budget: float
) -> T:
    """Run ``work(guard)`` on ``backend`` until it returns or a stop signal ends it.

    The first SIGINT or SIGTERM arms the watchdog and cancels ``work``, which stops
    what it started (``Conductor.stop`` is shielded and bounded); then
    :class:`Interrupted` is raised, even if the work failed on its way out. A second
    signal calls what :meth:`StopGuard.on_abort` registered.
    """
    guard = StopGuard(stop_budget)
    try:
        result = anyio.run(_under_receiver, work, guard, backend=backend)
    finally:
        guard._disarm()
        reinstall()
        if guard.signum is not None:
            raise Interrupted(guard.signum)
    # Without a stop signal the work ran to its end and returned its result.
    return cast(T, result)


async def _under_receiver(
    work: Callable[[StopGuard], Awaitable[T]], guard: StopGuard
) -> Any:
    result: Any = None
    with anyio.open_signal_receiver(*STOP_SIGNALS) as signals:
        async with anyio.create_task_group() as group:
            working = anyio.CancelScope()

            async def watch() -> None:
                async for signum in signals:
                    name = signal.Signals(signum).name
                    if guard.signum is None:
                        guard.signum = signum
                        _Received.note(signum)
                        LOG.info("%s received: stopping", name)
                        guard.arm()
                        working.cancel()
                    elif guard._abort is not None:
                        LOG.warning("second %s: cutting the stop short", name)
                        guard._abort()

            group.start_soon(watch)
            try:
                with working:
                    result = await work(guard)
            except Exception:
                if guard.signum is None:
                    raise
                # The stop signal cut it short; that, not this, is the outcome.
                LOG.debug(
                    "work ended with an error after the stop signal", exc_info=True
                )
            group.cancel_scope.cancel()
    return result
