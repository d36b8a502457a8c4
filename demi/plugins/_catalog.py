"""What is installed: the platform classes a manager knows, the last scan of its
namespace, and importing one driver on demand."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from types import MappingProxyType

import anyio
import anyio.to_thread

from ..exceptions import PluginLoadError, PluginNotFoundError, PluginValidationError
from ..platforms.base import BasePlatform
from . import discovery
from .base import PluginMetadata, PluginState

__all__ = ["Catalog", "target_of"]


class Catalog:
    """The classes behind a namespace's entry points, or a fixed set of classes.

    :param namespace: the entry-point group, or ``None`` for a fixed set given to
        :meth:`fixed`.
    """

    def __init__(self, namespace: str | None) -> None:
        self.namespace = namespace
        self._classes: dict[str, type[BasePlatform]] = {}
        self._scanned: dict[str, discovery.EntryPointInfo] = {}

    @classmethod
    def fixed(cls, classes: Mapping[str, type[BasePlatform]]) -> Catalog:
        """A catalog of the given classes, with no entry points behind it.

        :raises PluginValidationError: a class does not fulfil the contract.
        """
        catalog = cls(None)
        for name, plugin in classes.items():
            try:
                discovery.validate_plugin_class(plugin)
            except PluginValidationError as err:
                raise PluginValidationError(name, f"plugin {name!r}: {err}") from None
            catalog._classes[name] = plugin
        return catalog

    @property
    def classes(self) -> Mapping[str, type[BasePlatform]]:
        """The valid classes known so far, by entry-point name (read-only)."""
        return MappingProxyType(self._classes)

    async def scan(self) -> dict[str, type[BasePlatform]]:
        """Import and validate every entry point (in a worker thread); remember the
        failures. A fixed catalog has nothing to scan."""
        if self.namespace is not None:
            report = await anyio.to_thread.run_sync(
                discovery.scan_entry_points, self.namespace
            )
            self._scanned = {info.name: info for info in report}
            self._classes = {
                info.name: info.plugin for info in report if info.plugin is not None
            }
        return dict(self._classes)

    def refresh(self, keep: Iterable[str]) -> None:
        """Forget cached entry points and the last scan, keeping the classes of the
        drivers in ``keep`` (those in use)."""
        if self.namespace is not None:
            discovery.refresh_entry_points(self.namespace)
            self._scanned = {}
            self._classes = {d: self._classes[d] for d in keep if d in self._classes}

    def names(self) -> list[str]:
        """Every name that could be loaded, without importing anything."""
        if self.namespace is None:
            return sorted(self._classes)
        return discovery.entry_point_names(self.namespace)

    async def resolve(self, driver: str) -> type[BasePlatform]:
        """The class behind ``driver``, imported in a worker thread (only that
        plugin's module) if it is not known yet.

        :raises PluginNotFoundError: no plugin of that name exists.
        :raises PluginLoadError: it is known to be broken, or its import failed.
        """
        known = self._classes.get(driver)
        if known is not None:
            return known
        broken = self._scanned.get(driver)
        if broken is not None and broken.error is not None:
            raise PluginLoadError(
                driver, f"plugin {driver!r} is unusable: {broken.error}"
            )
        if self.namespace is None:
            names = ", ".join(sorted(self._classes)) or "none"
            raise PluginNotFoundError(
                driver, f"no plugin named {driver!r}; known: {names}"
            )
        plugin = await anyio.to_thread.run_sync(
            discovery.load_driver, driver, self.namespace, abandon_on_cancel=True
        )
        self._classes[driver] = plugin
        return plugin

    def provenance(self, driver: str) -> tuple[str | None, str | None, str | None]:
        """``(target, distribution, version)`` of the driver, as far as known."""
        info = self._scanned.get(driver)
        if info is not None:
            return info.target, info.distribution, info.version
        return target_of(self._classes.get(driver)), None, None

    def entries(self) -> dict[str, PluginMetadata]:
        """A ``discovered`` (or ``failed``) entry for every scanned or given class."""
        found: dict[str, PluginMetadata] = {}
        for info in self._scanned.values():
            state = PluginState.DISCOVERED if info.valid else PluginState.FAILED
            found[info.name] = PluginMetadata(
                name=info.name, state=state, error=info.error, target=info.target,
                distribution=info.distribution, version=info.version,
                driver=info.name, valid=info.valid,
            )  # fmt: skip
        if self.namespace is None:
            for name, plugin in self._classes.items():
                found[name] = PluginMetadata(
                    name=name, state=PluginState.DISCOVERED, target=target_of(plugin),
                    driver=name,
                )  # fmt: skip
        return found


def target_of(plugin: type[BasePlatform] | None) -> str | None:
    """``"module:qualname"`` of a class, as an entry point names it."""
    return f"{plugin.__module__}:{plugin.__qualname__}" if plugin else None
