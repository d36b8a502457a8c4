"""What the manager keeps per loaded instance."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import anyio

from ..platforms.base import BasePlatform, PluginHealth
from ._calls import ThreadBudget
from .base import Lifecycle, PluginMetadata

if TYPE_CHECKING:
    from ..platforms.inbound import Inbox
    from ._catalog import Catalog
    from ._connection import Connection

__all__ = ["Slot", "describe"]


@dataclasses.dataclass(eq=False, slots=True)
class Slot:
    """One named instance: its driver, its lifecycle, and the live object if any."""

    #: The manager's key for it.
    name: str
    #: The name people see in logs (the configured instance behind a generation).
    label: str
    driver: str
    lifecycle: Lifecycle
    #: The configuration as given, a private copy.
    config: Mapping[str, Any]
    platform: BasePlatform | None = None
    #: The latest health verdict on this platform object (reset when it is replaced).
    health: PluginHealth | None = None
    #: Worker threads of a blocking platform (shared by every generation of a label).
    threads: ThreadBudget | None = None
    #: The shielded scope of a shutdown in progress, so abandon_shutdowns can cut it.
    stopping: anyio.CancelScope | None = None
    abandoned: bool = False
    #: Where a listening platform sends its events (the instance's inbox).
    inbox: Inbox | None = None
    #: The ``run`` task of a listening platform.
    connection: Connection | None = None
    #: Set while a platform whose connection was lost is being shut down.
    releasing: anyio.Event | None = None
    #: The platform said retrying cannot help (a PlatformFatalError).
    fatal: bool = False


def describe(slot: Slot, catalog: Catalog) -> PluginMetadata:
    """The read-only snapshot of one slot: state, reason, provenance, latest health
    and time in each state."""
    target, distribution, version = catalog.provenance(slot.driver)
    health = slot.health
    return PluginMetadata(
        name=slot.name,
        state=slot.lifecycle.state,
        error=slot.lifecycle.error,
        target=target,
        distribution=distribution,
        version=version,
        driver=slot.driver,
        valid=slot.driver in catalog.classes,
        details=(
            {"health": health.status.value, "health_error": health.error_message}
            if health
            else {}
        ),
        health=health,
        connected=None if slot.connection is None else slot.connection.connected,
        fatal=slot.fatal,
        seconds_in_state={
            state.value: spent
            for state, spent in slot.lifecycle.time_in_states().items()
        },
    )
