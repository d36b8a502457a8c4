"""Calling into a plugin: one place that knows about timeouts, blocking platforms and
plugins that swallow cancellation."""

from __future__ import annotations

import functools
import inspect
from typing import Any

import anyio
import anyio.to_thread

from ..core.secrets import scrub
from ..platforms.base import BasePlatform


def describe(err: BaseException) -> str:
    """``"Type: message"`` for an exception, or just the type when it has no message;
    known secret values are scrubbed from it."""
    text = scrub(str(err))
    return f"{type(err).__name__}: {text}" if text else type(err).__name__


async def call(
    platform: BasePlatform,
    method: str,
    *args: Any,
    timeout: float,
    threads: anyio.CapacityLimiter | None = None,
    scope: anyio.CancelScope | None = None,
) -> Any:
    """Await ``platform.<method>(*args)`` for at most ``timeout`` seconds.

    Blocking platforms (``blocking = True``) run in a worker thread drawn from
    ``threads`` (anyio's default limiter when ``None``), abandoned if it outlives the
    timeout, so a stuck platform never holds up the event loop. Cancellation from
    outside propagates unchanged.

    :param scope: a cancel scope of the caller's to run the call in (shielded, or
        kept to cancel it from elsewhere); its deadline is set from ``timeout``.
        One scope per call: plugin calls are demi's hot path.

    :raises TimeoutError: the call did not finish in time, or finished only after
        swallowing the cancellation that the timeout delivered.
    :raises Exception: whatever the plugin raised.
    """
    bound = getattr(platform, method)
    if scope is None:
        scope = anyio.CancelScope()
    scope.deadline = anyio.current_time() + timeout
    with scope:
        if inspect.iscoroutinefunction(bound):
            result = await bound(*args)
        else:
            result = await anyio.to_thread.run_sync(
                functools.partial(bound, *args),
                abandon_on_cancel=True,
                limiter=threads,
            )
    if scope.cancel_called:
        raise TimeoutError(f"{method} did not finish within {timeout:g}s")
    return result
