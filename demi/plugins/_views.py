"""The plugin manager's read-only side: what is installed and what is loaded, in
which state. :class:`~demi.plugins.manager.PluginManager` builds on it."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from ..core.config import DemiSettings
from ..exceptions import PluginNotFoundError
from ..platforms.base import BasePlatform
from ._catalog import Catalog
from ._slots import Slot, describe
from .base import PluginMetadata, PluginState, TransitionListener

__all__ = ["ManagerView"]


class ManagerView:
    """What a plugin manager knows, read-only: its catalog, its slots, snapshots."""

    settings: DemiSettings
    _catalog: Catalog
    _slots: dict[str, Slot]
    _listeners: list[TransitionListener]

    @property
    def namespace(self) -> str:
        """The entry-point group this manager discovers platforms in."""
        return self._catalog.namespace or "<classes>"

    @property
    def registry(self) -> Mapping[str, type[BasePlatform]]:
        """The valid platform classes known so far, by entry-point name (read-only).

        Filled by :meth:`discover_and_register`, by :meth:`load_plugin` one name at a
        time, or by :meth:`from_classes`.
        """
        return self._catalog.classes

    async def discover_and_register(self) -> dict[str, type[BasePlatform]]:
        """Scan the namespace (in a worker thread: imports block) and register every
        valid plugin; failures are recorded for :meth:`list_plugins`.

        A manager built by :meth:`from_classes` has nothing to scan.
        """
        return await self._catalog.scan()

    def refresh(self) -> None:
        """Forget cached entry points and the last scan, so that plugins installed (or
        removed) since then are seen by the next load or scan. Loaded classes stay."""
        self._catalog.refresh(slot.driver for slot in self._slots.values())

    def known_names(self) -> list[str]:
        """Names of every plugin that could be loaded, without importing any of them."""
        return self._catalog.names()

    async def resolve_driver(self, driver: str) -> type[BasePlatform]:
        """The class behind the entry point ``driver``, imported (in a worker thread,
        only that plugin's module) if it is not known yet.

        :raises PluginNotFoundError: no plugin of that name exists.
        :raises PluginLoadError: it is known to be broken, or its import failed.
        """
        return await self._catalog.resolve(driver)

    def list_plugins(self) -> list[PluginMetadata]:
        """Every plugin known to this manager, failures included, sorted by name.

        Each entry point of the last scan shows the state of the instance loaded
        under its own name, else ``discovered`` (or ``failed`` with the reason when
        it is broken). Instances loaded under another name follow.
        """
        found = self._catalog.entries()
        for slot in self._slots.values():
            found[slot.name] = describe(slot, self._catalog)
        return [found[name] for name in sorted(found)]

    def metadata(self, name: str) -> PluginMetadata | None:
        """A snapshot of the instance loaded under ``name`` (its state, reason, latest
        health and time in each state), or ``None`` if there is none."""
        slot = self._slots.get(name)
        return describe(slot, self._catalog) if slot else None

    def state_of(self, name: str) -> PluginState | None:
        """The lifecycle state of the instance ``name``, or ``None`` if never loaded."""
        slot = self._slots.get(name)
        return slot.lifecycle.state if slot else None

    def get_plugin(self, name: str) -> BasePlatform:
        """The active instance loaded under ``name``.

        :raises PluginNotFoundError: nothing is active under that name; the message
            says what state it is in instead, or which names are active.
        """
        slot = self._slots.get(name)
        if slot is not None and slot.platform is not None:
            if slot.lifecycle.state is PluginState.ACTIVE:
                return slot.platform
        if slot is not None:
            why = f": {slot.lifecycle.error}" if slot.lifecycle.error else ""
            raise PluginNotFoundError(
                name,
                f"plugin {slot.label!r} is not active ({slot.lifecycle.state.value}{why})",
            )
        active = ", ".join(sorted(self.active_names())) or "none"
        raise PluginNotFoundError(
            name, f"plugin {name!r} is not loaded; active: {active}"
        )

    def active_names(self) -> list[str]:
        """Names of the active instances, in load order."""
        return [
            name
            for name, slot in self._slots.items()
            if slot.lifecycle.state is PluginState.ACTIVE
        ]

    def subscribe(self, listener: TransitionListener) -> Callable[[], None]:
        """Call ``listener`` with every state transition of every instance.

        :returns: a function that unsubscribes it.
        """
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)
