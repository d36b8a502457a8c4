"""Starting one instance: import (bounded), construct, prepare its configuration,
initialize (bounded). Every step that runs plugin code is that plugin's failure
when it goes wrong, whatever it raises."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

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

Resolver = Callable[[str], Awaitable[type[BasePlatform]]]


async def start(
    slot: Slot,
    known: type[BasePlatform] | None,
    resolve: Resolver,
    settings: DemiSettings,
    tasks: TaskGroup | None = None,
) -> BasePlatform:
    """Bring ``slot`` from its current state to ``active``, or to ``failed`` with
    the reason; return the platform.

    :param known: the driver's class when it is already imported.
    :param resolve: imports the driver's class (it runs under the init timeout).
    :param tasks: where a listening platform's ``run`` goes (the manager's tasks).
    :raises PluginNotFoundError: no plugin of that name exists.
    :raises PluginLoadError: any step failed; the slot is ``failed`` with the reason.
    """
    slot.lifecycle.move_to(PluginState.LOADING)
    began = anyio.current_time()
    plugin_cls = known or await _import(slot, resolve, settings)
    backends = plugin_cls.supported_backends
    if (
        backends is not None
        and (here := sniffio.current_async_library()) not in backends
    ):
        needs = " or ".join(backends)
        raise _fail(slot, f"it runs only on {needs}, and demi runs on {here}")
    platform = _construct(slot, plugin_cls)
    try:
        options = prepare_config(
            plugin_cls.config_model, slot.config, instance=slot.label, settings=settings
        )
    except PluginLoadError as err:  # its config_model broke: the plugin's failure
        slot.platform = None
        slot.lifecycle.move_to(PluginState.FAILED, str(err))
        raise
    except DemiError as err:  # the configuration given is wrong
        raise _fail(slot, str(err)) from None
    remaining = max(settings.init_timeout - (anyio.current_time() - began), 0.001)
    shutdown_bounds = {
        "timeout": settings.shutdown_timeout,
        "block_threshold": settings.loop_block_threshold,
    }
    try:
        ready = await call(
            platform, "initialize", options, timeout=remaining, owner=slot.label,
            threads=slot.threads, block_threshold=settings.loop_block_threshold,
        )  # fmt: skip
    except TimeoutError:
        reason = f"initialize did not finish within {settings.init_timeout:g}s"
    except Exception as err:
        slot.fatal = isinstance(err, PlatformFatalError)
        reason = f"initialize raised {describe(err)}"
    except BaseException:
        # Cancelled from outside: leave no half-started plugin behind.
        with anyio.CancelScope(shield=True):
            await abandon(slot, "cancelled during initialize", **shutdown_bounds)
        raise
    else:
        if ready is not True:
            reason = f"initialize returned {safe_repr(ready)}, not True"
        else:
            try:
                failed = await _connect(slot, platform, tasks, settings, began)
            except BaseException:
                with anyio.CancelScope(shield=True):
                    await abandon(slot, "cancelled while connecting", **shutdown_bounds)
                raise
            if failed is None:
                slot.lifecycle.move_to(PluginState.ACTIVE)
                return platform
            reason = failed
    with anyio.CancelScope(shield=True):
        await abandon(slot, reason, **shutdown_bounds)
    raise PluginLoadError(
        slot.label, f"plugin {slot.label!r} failed to start: {reason}"
    )


async def _connect(
    slot: Slot,
    platform: BasePlatform,
    tasks: TaskGroup | None,
    settings: DemiSettings,
    began: float,
) -> str | None:
    """Start a listening platform's ``run`` and wait for its readiness within what
    is left of the init timeout; return why it did not get ready, if it did not."""
    if not listens(platform):
        return None
    if tasks is None or slot.inbox is None:
        return (
            "it listens (it defines run), so it needs an inbox and a running manager "
            "(async with PluginManager(), or a Conductor)"
        )
    remaining = max(settings.init_timeout - (anyio.current_time() - began), 0.001)
    try:
        with anyio.fail_after(remaining):
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


async def _import(
    slot: Slot, resolve: Resolver, settings: DemiSettings
) -> type[BasePlatform]:
    try:
        with anyio.fail_after(settings.init_timeout) as scope:
            with deadline_guard(slot.label, scope):
                return await resolve(slot.driver)
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
    lifecycle = slot.lifecycle
    try:
        platform._demi_name = slot.label
        platform._demi_state = lambda: lifecycle.state.value
    except BaseException as err:
        raise _fail(slot, f"cannot be managed: {describe(err)}") from None
    slot.platform = platform
    slot.health = None
    return platform


def _fail(slot: Slot, reason: str) -> PluginLoadError:
    """Record the failure and return the error to raise."""
    slot.platform = None
    slot.lifecycle.move_to(PluginState.FAILED, reason)
    return PluginLoadError(
        slot.label, f"plugin {slot.label!r} failed to start: {reason}"
    )
