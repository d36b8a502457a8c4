"""Health checks: one call into the plugin, and a verdict that is always readable."""

from __future__ import annotations

import time
from datetime import UTC, datetime

from ..platforms.base import HealthStatus, PluginHealth
from ._calls import call, describe, safe_text
from ._slots import Slot

__all__ = ["check"]


async def check(slot: Slot, *, timeout: float, block_threshold: float) -> PluginHealth:
    """Check the platform in ``slot`` once and record the verdict there.

    A check that raises (anything), times out or returns garbage gives an
    ``unhealthy`` verdict whose ``error_message`` says why.
    """
    platform = slot.platform
    assert platform is not None
    started = time.perf_counter()
    result: object = None
    error: str | None = None
    try:
        result = await call(
            platform, "health_check", timeout=timeout, owner=slot.label,
            threads=slot.threads, block_threshold=block_threshold,
        )  # fmt: skip
    except TimeoutError:
        error = f"health_check did not finish within {timeout:g}s"
    except Exception as err:
        error = f"health_check raised {describe(err)}"
    elapsed_ms = (time.perf_counter() - started) * 1000
    health = verdict(result, error, elapsed_ms)
    # The platform may have been replaced while it was being checked.
    if slot.platform is platform:
        slot.health = health
    return health


def verdict(result: object, error: str | None, elapsed_ms: float) -> PluginHealth:
    """The health demi records for what a check returned (or why it failed): the
    plugin's own status and message when they are well formed, ``unhealthy`` with a
    reason when they are not. Plugin text is scrubbed and bounded."""
    now = datetime.now(UTC)
    if error is None:
        if not isinstance(result, PluginHealth):
            error = f"health_check returned {type(result).__name__}, not PluginHealth"
        else:
            # A frozen dataclass can still be tampered with (object.__setattr__).
            status: object = result.status
            if not isinstance(status, HealthStatus):
                error = (
                    "health_check returned a PluginHealth whose status is "
                    f"{safe_text(status, 80)!r}, not a HealthStatus"
                )
    if error is not None:
        return PluginHealth(HealthStatus.UNHEALTHY, elapsed_ms, now, error)
    assert isinstance(result, PluginHealth)
    message = result.error_message
    text = None if message is None else safe_text(message)
    return PluginHealth(result.status, elapsed_ms, now, text)
