"""Calling into a plugin: the one fault boundary between demi and plugin code.

Everything a plugin does on demi's behalf runs through :func:`call`, which owns four
facts: the call's deadline (a result that arrives after it is a timeout), what a
plugin may raise (anything: a ``SystemExit`` or ``KeyboardInterrupt`` from plugin code
becomes :class:`PluginRaised`, an ordinary exception that is that plugin's failure),
which platform holds the event loop too long (named in a warning), and whose time
that was (never charged to another platform's deadline).
"""

from __future__ import annotations

import functools
import inspect
import threading
import time
import types
from collections.abc import Callable, Coroutine, Generator
from typing import Any

import anyio
import anyio.to_thread

from ..core.logger import get_logger
from ..core.secrets import scrub
from ..platforms.base import BasePlatform

__all__ = [
    "DEFAULT_BLOCK_THRESHOLD",
    "PluginRaised",
    "ThreadBudget",
    "call",
    "charge_elsewhere",
    "run_watched",
    "deadline_guard",
    "describe",
    "safe_repr",
    "safe_text",
]

LOG = get_logger("demi.plugins")

#: Seconds a plugin may hold the event loop in one step before it is named.
DEFAULT_BLOCK_THRESHOLD = 0.1
#: Characters of plugin-supplied text kept in a reason (an error message, a repr).
MAX_TEXT = 1000


class PluginRaised(Exception):
    """A plugin raised a ``BaseException`` that is not an ``Exception``
    (``SystemExit``, ``KeyboardInterrupt``, ``GeneratorExit``, or a group holding
    one), carried as an ordinary exception: it is that plugin's failure, and it
    must never end demi or be taken for the operator's Ctrl-C."""

    def __init__(self, original: BaseException) -> None:
        super().__init__(describe(original))
        #: What the plugin raised.
        self.original = original


def safe_text(obj: object, limit: int = MAX_TEXT) -> str:
    """``str(obj)``, scrubbed of secrets and cut to ``limit`` characters, whatever
    ``obj`` is: a ``__str__`` that raises gives a placeholder, never an error."""
    try:
        text = obj if isinstance(obj, str) else str(obj)
    except BaseException:
        text = f"<unprintable {type(obj).__name__}>"
    return _cut(scrub(text[: limit * 4]), limit)


def safe_repr(obj: object, limit: int = 200) -> str:
    """``repr(obj)`` with the same guarantees as :func:`safe_text`."""
    try:
        text = repr(obj)
    except BaseException:
        text = f"<unrepresentable {type(obj).__name__}>"
    return _cut(scrub(text[: limit * 4]), limit)


def _cut(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    return f"{text[:limit]}… ({len(text) - limit} more characters)"


def describe(err: BaseException) -> str:
    """``"Type: message"`` for an exception, or just the type when it has no
    message; scrubbed, bounded, and safe against a ``__str__`` that raises."""
    if isinstance(err, PluginRaised):
        err = err.original
    kind = type(err).__name__
    try:
        text = str(err)
    except BaseException:  # plugin code: anything may come out
        return f"{kind} (its message could not be read)"
    text = safe_text(text)
    return f"{kind}: {text}" if text else kind


# -- whose time is it ---------------------------------------------------------


#: The deadlines in force, each with the platform it belongs to.
_DEADLINES: dict[anyio.CancelScope, str] = {}


def charge_elsewhere(owner: str, seconds: float) -> None:
    """``owner`` held the event loop for ``seconds``: move every other platform's
    deadline on by as much, so that nobody else is timed out for it."""
    for scope, whose in _DEADLINES.items():
        if whose != owner:
            scope.deadline += seconds


class deadline_guard:
    """Register ``scope`` as ``owner``'s deadline while the block runs (for a bound
    set outside :func:`call`, such as the import of a plugin)."""

    __slots__ = ("_owner", "_scope")

    def __init__(self, owner: str, scope: anyio.CancelScope) -> None:
        self._owner = owner
        self._scope = scope

    def __enter__(self) -> None:
        _DEADLINES[self._scope] = self._owner

    def __exit__(self, *exc_info: object) -> None:
        _DEADLINES.pop(self._scope, None)


@types.coroutine
def _watched(
    coro: Coroutine[Any, Any, Any], owner: str, method: str, threshold: float
) -> Generator[Any, Any, Any]:
    """Await a plugin's coroutine one step at a time and time each step: a step is
    plugin code holding the event loop, so a long one is named and its time given
    back to every other platform's deadline."""
    value: Any = None
    error: BaseException | None = None
    perf = time.perf_counter
    while True:
        began = perf()
        try:
            step = coro.send(value) if error is None else coro.throw(error)
        except StopIteration as done:
            return done.value
        finally:  # however the step ended, it held the loop this long
            if (held := perf() - began) > threshold:
                _blocked(held, owner, method)
        try:
            value, error = (yield step), None
        except GeneratorExit:
            coro.close()
            raise
        except BaseException as thrown:  # cancellation, delivered to the plugin
            value, error = None, thrown


def _blocked(seconds: float, owner: str, method: str) -> None:
    LOG.warning(
        "platform %s blocked the event loop for %.2fs in %s "
        "(use SyncPlatform or a worker thread for blocking calls)",
        owner, seconds, method,
    )  # fmt: skip
    charge_elsewhere(owner, seconds)


# -- threads ------------------------------------------------------------------


class ThreadBudget:
    """The worker threads one blocking platform may use: ``limit`` calls at once
    (the rest wait), and at most ``limit`` more threads left behind by calls
    abandoned at their timeout, counted until each thread really ends. So
    restarting a platform that hangs cannot grow the process's threads without
    limit: once its budget is spent, its calls fail at once instead."""

    __slots__ = ("_cap", "_lock", "_running", "limiter")

    def __init__(self, limit: int) -> None:
        #: Calls running at once; the others wait for a token.
        self.limiter = anyio.CapacityLimiter(limit)
        self._cap = 2 * limit
        self._running = 0
        self._lock = threading.Lock()

    @property
    def running(self) -> int:
        """Threads of this platform still running, abandoned ones included."""
        return self._running

    async def run(self, func: Callable[[], Any]) -> Any:
        """Run ``func`` in a worker thread of this budget, waiting for one of its
        ``limit`` tokens; a cancelled call abandons its thread and gives the token
        back at once.

        The thread itself gets a limiter of its own: trio keeps a thread's token
        until the thread returns, even once its call was abandoned, so threads
        that never return would hold a shared limiter (anyio's default one
        included) for good and starve every later call.
        """
        async with self.limiter:
            return await anyio.to_thread.run_sync(
                self.wrap(func),
                abandon_on_cancel=True,
                limiter=anyio.CapacityLimiter(1),
            )

    def wrap(self, func: Callable[[], Any]) -> Callable[[], Any]:
        """``func``, counted against the budget while it runs in its thread.

        The returned function raises ``RuntimeError`` at once, in its thread, when
        the budget is spent on threads that never returned.
        """

        def counted() -> Any:
            with self._lock:
                if self._running >= self._cap:
                    raise RuntimeError(
                        f"{self._running} worker threads of this platform are "
                        "still busy with calls abandoned at their timeout"
                    )
                self._running += 1
            try:
                return func()
            finally:
                with self._lock:
                    self._running -= 1

        return counted


# -- the call -----------------------------------------------------------------


async def call(
    platform: BasePlatform,
    method: str,
    *args: Any,
    timeout: float,
    owner: str | None = None,
    threads: ThreadBudget | None = None,
    scope: anyio.CancelScope | None = None,
    block_threshold: float = DEFAULT_BLOCK_THRESHOLD,
) -> Any:
    """Await ``platform.<method>(*args)`` for at most ``timeout`` seconds.

    Blocking platforms (``blocking = True``) run in a worker thread, counted against
    ``threads`` and abandoned if it outlives the timeout, so a stuck platform never
    holds up the event loop. Cancellation from outside propagates unchanged.

    :param owner: the platform's name in logs and in the loop's time accounting.
    :param scope: a cancel scope of the caller's to run the call in (shielded, or
        kept to cancel it from elsewhere); its deadline is set here.
        One scope per call: plugin calls are demi's hot path.
    :raises TimeoutError: the call did not finish in time, or finished only after
        its deadline (having held the loop, or swallowed the cancellation).
    :raises PluginRaised: the plugin raised a BaseException that is not an Exception.
    :raises Exception: whatever else the plugin raised.
    """
    name = owner or platform.name
    now = anyio.current_time()
    deadline = now + timeout
    began = time.perf_counter()
    if scope is None:
        scope = anyio.CancelScope(deadline=deadline)
    else:
        scope.deadline = deadline
    _DEADLINES[scope] = name
    try:
        with scope:
            try:
                bound = getattr(platform, method)
                if inspect.iscoroutinefunction(bound):
                    coro = bound(*args)
                    # Not held across the await: with a thousand calls in flight,
                    # every object per call makes the garbage collector run sooner.
                    del bound
                    if getattr(platform, "_demi_elsewhere", False):
                        # A stand-in whose platform runs in another process: no
                        # step of it is plugin code holding this loop.
                        result = await coro
                    else:
                        result = await _watched(coro, name, method, block_threshold)
                else:
                    work: Callable[[], Any] = functools.partial(bound, *args)
                    if threads is not None:
                        result = await threads.run(work)
                    else:
                        result = await anyio.to_thread.run_sync(
                            work, abandon_on_cancel=True
                        )
            except BaseException as err:
                _reraise(err)
                raise
    finally:
        _DEADLINES.pop(scope, None)
    # A result that comes after the deadline is a timeout. The deadline may have
    # moved on (time another platform stole); the elapsed time is on a cheap clock.
    if scope.cancel_called or now + time.perf_counter() - began > scope.deadline:
        raise TimeoutError(f"{method} did not finish within {timeout:g}s")
    return result


async def run_watched(
    platform: BasePlatform,
    *args: Any,
    owner: str,
    block_threshold: float,
) -> None:
    """Await ``platform.run(inbox, task_status=...)``, which has no deadline (it
    lasts as long as the connection), with the rest of :func:`call`'s boundary: a
    step that holds the loop is named, and a ``BaseException`` that is not an
    ``Exception`` becomes :class:`PluginRaised`.

    :param args: the inbox and the task status, in that order.
    """
    inbox, task_status = args
    try:
        await _watched(
            platform.run(inbox, task_status=task_status), owner, "run", block_threshold
        )
    except BaseException as err:
        _reraise(err)
        raise


def _reraise(err: BaseException) -> None:
    """What comes out of plugin code: an Exception or a cancellation goes on as it
    is (the caller re-raises it); any other BaseException becomes PluginRaised."""
    if isinstance(err, Exception | anyio.get_cancelled_exc_class()):
        return
    raise PluginRaised(err) from err
