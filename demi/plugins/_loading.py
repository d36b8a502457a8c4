"""Starting one instance: import (bounded), construct, prepare its configuration,
initialize (bounded). Every step that runs plugin code is that plugin's failure
when it goes wrong, whatever it raises."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import anyio
import sniffio
from anyio.abc import TaskGroup

from ..core.config import DemiSettings
from ..core.prepare import prepare_config
from ..exceptions import (
    DemiError,
    PlatformFatalError,
    PluginLoadError,
    PluginNotFoundError,
)
from ..platforms.base import BasePlatform, listens
from ._calls import call, deadline_guard, describe, safe_repr
from ._connection import connect
from ._slots import Slot
from ._stopping import abandon
from .base import PluginState

__all__ = ["start"]

Resolver = Callable[[Slot], Awaitable[type[BasePlatform]]]


async def start(
    slot: Slot,
    config: Mapping[str, Any],
    known: type[BasePlatform] | None,
    resolve: Resolver,
    settings: DemiSettings,
    tasks: TaskGroup | None = None,
) -> BasePlatform:
    """Bring ``slot`` from its current state to ``active``, or to ``failed`` with
    the reason; return the platform.

    :param config: the instance's configuration as given (prepared afresh here).
    :param known: the driver's class when it is already imported.
    :param resolve: imports the class of the slot's driver (it runs under the init
        timeout).
    :param tasks: where a listening platform's ``run`` goes (the manager's tasks).
    :raises PluginNotFoundError: no plugin of that name exists.
    :raises PluginLoadError: any step failed; the slot is ``failed`` with the reason.
    """
    slot.lifecycle.move_to(PluginState.LOADING)
    # One bound for the whole start: import, configuration, initialize, readiness.
    # Measured on perf_counter: asking the event loop's clock costs a lookup of the
    # backend every time, and a start is demi's most repeated path after a request.
    bound = _Bound(settings.init_timeout)
    plugin_cls = known or await _import(slot, resolve, settings, bound.left())
    backends = plugin_cls.supported_backends
    if backends is not None:
        here = sniffio.current_async_library()
        if here not in backends:
            needs = " or ".join(backends)
            raise _fail(slot, f"it runs only on {needs}, and demi runs on {here}")
    platform = _construct(slot, plugin_cls)
    try:
        options = prepare_config(
            plugin_cls.config_model, config, instance=slot.label, settings=settings
        )
    except PluginLoadError as err:  # its config_model broke: the plugin's failure
        slot.platform = None
        slot.lifecycle.move_to(PluginState.FAILED, str(err))
        raise
    except DemiError as err:  # the configuration given is wrong
        raise _fail(slot, str(err)) from None
    try:
        ready = await call(
            platform, "initialize", options, timeout=bound.left(),
            owner=slot.label, threads=slot.threads,
            block_threshold=settings.loop_block_threshold,
        )  # fmt: skip
    except TimeoutError:
        reason = f"initialize did not finish within {settings.init_timeout:g}s"
    except Exception as err:
        slot.fatal = isinstance(err, PlatformFatalError)
        reason = f"initialize raised {describe(err)}"
    except BaseException:
        # Cancelled from outside: leave no half-started plugin behind.
        await _abandon(slot, "cancelled during initialize", settings)
        raise
    else:
        if ready is not True:
            reason = f"initialize returned {safe_repr(ready)}, not True"
        else:
            try:
                failed = await _connect(slot, platform, tasks, settings, bound.left())
            except BaseException:
                await _abandon(slot, "cancelled while connecting", settings)
                raise
            if failed is None:
                if slot.lifecycle.state is PluginState.LOADING:  # else run's readiness
                    slot.lifecycle.move_to(PluginState.ACTIVE)
                return platform
            reason = failed
    await _abandon(slot, reason, settings)
    raise PluginLoadError(
        slot.label, f"plugin {slot.label!r} failed to start: {reason}"
    )


async def _connect(
    slot: Slot,
    platform: BasePlatform,
    tasks: TaskGroup | None,
    settings: DemiSettings,
    left: float,
) -> str | None:
    """Start a listening platform's ``run`` and wait for its readiness in what is
    ``left`` of the start's bound; return why it did not get ready, if it did not."""
    if not listens(platform):
        return None
    if tasks is None or slot.inbox is None:
        return (
            "it listens (it defines run), so it needs an inbox and a running manager "
            "(async with PluginManager(), or a Conductor)"
        )
    try:
        with anyio.fail_after(left):
            await connect(
                slot, platform, slot.inbox, tasks,
                shutdown_timeout=settings.shutdown_timeout,
                block_threshold=settings.loop_block_threshold,
            )  # fmt: skip
    except TimeoutError:
        return (
            f"run did not call task_status.started() within {settings.init_timeout:g}s"
        )
    except Exception as err:
        slot.fatal = isinstance(err, PlatformFatalError)
        return f"run ended before it was ready: {describe(err)}"
    return None


async def _abandon(slot: Slot, reason: str, settings: DemiSettings) -> None:
    with anyio.CancelScope(shield=True):
        await abandon(
            slot, reason, timeout=settings.shutdown_timeout,
            block_threshold=settings.loop_block_threshold,
        )  # fmt: skip


async def _import(
    slot: Slot, resolve: Resolver, settings: DemiSettings, left: float
) -> type[BasePlatform]:
    try:
        with anyio.fail_after(left) as scope:
            with deadline_guard(slot.label, scope):
                return await resolve(slot)
    except PluginNotFoundError:
        raise
    except TimeoutError:
        reason = f"import did not finish within {settings.init_timeout:g}s"
        raise _fail(slot, reason) from None
    except PluginLoadError as err:
        slot.lifecycle.move_to(PluginState.FAILED, str(err))
        raise
    except BaseException:
        # Cancelled from outside while importing: never leave it "loading".
        slot.lifecycle.move_to(PluginState.FAILED, "cancelled during import")
        raise


def _construct(slot: Slot, plugin_cls: type[BasePlatform]) -> BasePlatform:
    try:
        platform = plugin_cls()
    except BaseException as err:
        raise _fail(
            slot, f"constructing {plugin_cls.__qualname__} raised {describe(err)}"
        ) from None
    try:
        platform._demi_name = slot.label
        platform._demi_state = slot.lifecycle.state_value
    except BaseException as err:
        raise _fail(slot, f"cannot be managed: {describe(err)}") from None
    slot.platform = platform
    slot.health = None
    return platform


class _Bound:
    """Seconds left of one bound, counted on a cheap clock."""

    __slots__ = ("_began", "_seconds")

    def __init__(self, seconds: float) -> None:
        self._seconds = seconds
        self._began = time.perf_counter()

    def left(self) -> float:
        """What is left now (never quite zero: a call still gets its checkpoint)."""
        return max(self._seconds - (time.perf_counter() - self._began), 0.001)


def _fail(slot: Slot, reason: str) -> PluginLoadError:
    """Record the failure and return the error to raise."""
    slot.platform = None
    slot.lifecycle.move_to(PluginState.FAILED, reason)
    return PluginLoadError(
        slot.label, f"plugin {slot.label!r} failed to start: {reason}"
    )
