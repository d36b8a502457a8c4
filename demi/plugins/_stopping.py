"""Shutting a platform down: shielded, bounded, and never raising."""

from __future__ import annotations

from collections.abc import MutableMapping

import anyio

from ..core.config import DemiSettings
from ..core.logger import get_logger
from ..platforms.base import BasePlatform
from ._calls import ThreadBudget, call, describe
from ._slots import Slot
from .base import PluginState

__all__ = ["abandon", "disconnect", "finish", "shutdown", "take_out"]

LOG = get_logger("demi.plugins.manager")


async def shutdown(
    label: str,
    platform: BasePlatform,
    threads: ThreadBudget | None,
    *,
    timeout: float,
    block_threshold: float,
    scope: object = None,
) -> str | None:
    """Shut ``platform`` down, shielded from cancellation and bounded by
    ``timeout``; return why it failed, if it did.

    :param scope: the shielded cancel scope to run it in (kept by the caller so it
        can cut the shutdown short); a fresh one when ``None``.
    """
    if not isinstance(scope, anyio.CancelScope):
        scope = anyio.CancelScope(shield=True)
    try:
        await call(
            platform, "shutdown", timeout=timeout, owner=label, threads=threads,
            scope=scope, block_threshold=block_threshold,
        )  # fmt: skip
    except TimeoutError:
        reason = f"shutdown did not finish within {timeout:g}s"
    except Exception as err:
        reason = f"shutdown raised {describe(err)}"
    else:
        return None
    LOG.warning("plugin %s: %s", label, reason)
    return reason


async def abandon(
    slot: Slot, reason: str, *, timeout: float, block_threshold: float
) -> None:
    """Mark a platform failed and give its shutdown a bounded chance to release
    what a partial initialize acquired."""
    platform = slot.platform
    slot.lifecycle.move_to(PluginState.FAILED, reason)
    slot.platform = None
    await disconnect(slot, timeout)
    if platform is not None:
        await shutdown(
            slot.label, platform, slot.threads, timeout=timeout,
            block_threshold=block_threshold,
        )  # fmt: skip


def take_out(slot: Slot, slots: MutableMapping[str, Slot]) -> BasePlatform | None:
    """Move an active slot to ``stopping`` (forget a failed one); return the
    platform to shut down, if there is one."""
    if slot.lifecycle.state is not PluginState.ACTIVE or slot.platform is None:
        if slot.lifecycle.state is PluginState.FAILED:
            slots.pop(slot.name, None)
        return None
    if slot.connection is not None:
        slot.connection.stopping = True  # its end from now on is no loss
    slot.lifecycle.move_to(PluginState.STOPPING)
    slot.stopping = anyio.CancelScope(shield=True)
    return slot.platform


async def finish(
    slot: Slot,
    platform: BasePlatform | None,
    timeout: float,
    settings: DemiSettings,
) -> bool:
    """Shut down what :func:`take_out` took out and record how it ended; return
    whether there was anything to shut down."""
    if platform is None or slot.stopping is None:
        if slot.releasing is not None:  # a lost connection's platform, shutting down
            await slot.releasing.wait()
        return False
    with anyio.CancelScope(shield=True):  # disconnect bounds itself
        unheard = await disconnect(slot, timeout)
    error = await shutdown(
        slot.label, platform, slot.threads, timeout=timeout,
        block_threshold=settings.loop_block_threshold, scope=slot.stopping,
    )  # fmt: skip
    if slot.stopping.cancel_called and slot.abandoned:
        error = "shutdown abandoned before it finished"
    error = error or unheard
    slot.stopping, slot.abandoned = None, False
    slot.platform = None
    if error is None:
        slot.lifecycle.move_to(PluginState.STOPPED)
    else:
        slot.lifecycle.move_to(PluginState.FAILED, error)
    return True


async def disconnect(slot: Slot, timeout: float) -> str | None:
    """Cancel the slot's ``run`` and wait, at most ``timeout`` seconds, for it to
    end; return why it did not, if it did not."""
    connection = slot.connection
    if connection is None:
        return None
    connection.stopping = True
    connection.scope.cancel()
    with anyio.move_on_after(timeout):
        await connection.done.wait()
    if connection.done.is_set():
        return None
    reason = f"run did not end within {timeout:g}s of being cancelled"
    LOG.warning("plugin %s: %s", slot.label, reason)
    return reason
