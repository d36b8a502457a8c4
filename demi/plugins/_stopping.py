"""Shutting a platform down: shielded, bounded, and never raising."""

from __future__ import annotations

from collections.abc import MutableMapping

import anyio

from ..core.config import DemiSettings
from ..core.logger import get_logger
from ..platforms.base import BasePlatform
from ._calls import ThreadBudget, call, describe
from ._slots import Slot
from ._turns import Turns
from .base import PluginState

__all__ = ["abandon", "finish", "shutdown", "take_out"]

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
    slot.lifecycle.move_to(PluginState.STOPPING)
    slot.stopping = anyio.CancelScope(shield=True)
    return slot.platform


async def finish(
    slot: Slot,
    platform: BasePlatform | None,
    timeout: float,
    settings: DemiSettings,
    turns: Turns,
) -> bool:
    """Shut down what :func:`take_out` took out, record how it ended, and give the
    slot's turn back to ``turns``; return whether there was anything to shut down.

    The turn is given back here rather than by a wrapper: with a thousand shutdowns
    in flight, every coroutine frame per shutdown counts.
    """
    try:
        if platform is None or slot.stopping is None:
            return False
        error = await shutdown(
            slot.label, platform, slot.threads, timeout=timeout,
            block_threshold=settings.loop_block_threshold, scope=slot.stopping,
        )  # fmt: skip
        if slot.stopping.cancel_called and slot.abandoned:
            error = "shutdown abandoned before it finished"
        slot.stopping, slot.abandoned = None, False
        slot.platform = None
        if error is None:
            slot.lifecycle.move_to(PluginState.STOPPED)
        else:
            slot.lifecycle.move_to(PluginState.FAILED, error)
        return True
    finally:
        turns.give_back(slot.name)
