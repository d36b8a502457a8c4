"""Finding platform plugins: stevedore scans, demi validates and keeps the failures.

stevedore's :class:`~stevedore.ExtensionManager` imports every entry point of the
namespace; :class:`~stevedore.DriverManager` imports one by name. demi adds what they
leave out: a record of every entry point that failed (with its distribution, which
stevedore's cached entry points no longer carry), duplicate names that neither side
wins, contract validation, and a way to see plugins installed after the first scan.
"""

from __future__ import annotations

import functools
import importlib
import importlib.metadata
import inspect
import sys
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import stevedore
from stevedore import _cache as stevedore_cache  # only to refresh its memo
from stevedore.exception import MultipleMatches, NoMatches

from ..core.logger import get_logger
from ..exceptions import PluginLoadError, PluginNotFoundError, PluginValidationError
from ..platforms.base import BasePlatform
from ._calls import describe

__all__ = [
    "DEFAULT_NAMESPACE",
    "EntryPointInfo",
    "discover_plugins",
    "entry_point_names",
    "load_driver",
    "refresh_entry_points",
    "scan_entry_points",
    "validate_plugin_class",
]

LOG = get_logger(__name__)

#: The entry-point group platforms register under.
DEFAULT_NAMESPACE = "demi.platforms"

_LIFECYCLE_METHODS = ("initialize", "health_check", "handle_request", "shutdown")


@dataclass(frozen=True, slots=True)
class EntryPointInfo:
    """One entry point of the namespace and what became of it."""

    name: str
    #: ``"module:attr"``.
    target: str
    distribution: str | None
    version: str | None
    #: The platform class, when it imported and validated.
    plugin: type[BasePlatform] | None
    #: Why it is not usable, when it is not.
    error: str | None

    @property
    def valid(self) -> bool:
        """Whether the entry point gave a valid platform class."""
        return self.error is None


def validate_plugin_class(obj: object) -> None:
    """Check that ``obj`` is a usable platform class; return quietly if it is.

    :raises PluginValidationError: saying which part of the contract is broken.
    """
    label = getattr(obj, "__qualname__", None) or repr(obj)
    if not inspect.isclass(obj):
        raise PluginValidationError(
            None, f"{label} is a {type(obj).__name__}, not a class"
        )
    if not issubclass(obj, BasePlatform):
        raise PluginValidationError(
            None, f"{label} does not inherit from demi.platforms.BasePlatform"
        )
    missing = sorted(getattr(obj, "__abstractmethods__", ()))
    if missing:
        raise PluginValidationError(
            None, f"{label} leaves abstract methods unimplemented: {', '.join(missing)}"
        )
    blocking = bool(getattr(obj, "blocking", False))
    for method_name in _LIFECYCLE_METHODS:
        method = getattr(obj, method_name)
        if blocking and inspect.iscoroutinefunction(method):
            raise PluginValidationError(
                None,
                f"{label}.{method_name} must be a plain 'def' on a blocking platform",
            )
        if not blocking and not inspect.iscoroutinefunction(method):
            raise PluginValidationError(
                None,
                f"{label}.{method_name} must be a coroutine function ('async def')",
            )
    model = obj.config_model
    if model is not None and not _is_pydantic_model(model):
        raise PluginValidationError(
            None, f"{label}.config_model must be a pydantic BaseModel subclass"
        )


def _is_pydantic_model(model: object) -> bool:
    from pydantic import BaseModel

    return inspect.isclass(model) and issubclass(model, BaseModel)


def _target(ep: importlib.metadata.EntryPoint) -> str:
    return str(ep.value)


@functools.cache
def _provenance(namespace: str) -> dict[tuple[str, str], tuple[str, str]]:
    """Map (name, target) to (distribution, version) for the namespace.

    stevedore's cached entry points carry no distribution, so this asks
    importlib.metadata, but only when someone needs provenance.
    """
    found: dict[tuple[str, str], tuple[str, str]] = {}
    for ep in importlib.metadata.entry_points(group=namespace):
        dist = ep.dist
        if dist is not None:
            # dist.name and dist.version would each parse METADATA again.
            meta = dist.metadata
            found.setdefault((ep.name, ep.value), (meta["Name"], meta["Version"]))
    return found


def _dist_of(namespace: str, name: str, target: str) -> tuple[str | None, str | None]:
    return _provenance(namespace).get((name, target), (None, None))


def _conflict_message(namespace: str, name: str, targets: Iterable[str]) -> str:
    owners = []
    for target in targets:
        dist, version = _dist_of(namespace, name, target)
        owners.append(
            f"{target} ({dist or 'unknown distribution'} {version or ''})".strip()
        )
    return f"conflict: {name!r} is registered more than once: {'; '.join(owners)}"


def _checked(plugin: Any) -> type[BasePlatform]:
    validate_plugin_class(plugin)
    return plugin  # type: ignore[no-any-return]


def _import_namespace(
    namespace: str,
) -> tuple[list[importlib.metadata.EntryPoint], dict[int, Any], dict[int, str]]:
    """Import every entry point of the namespace through stevedore.

    Returns the entry points in discovery order, the loaded objects and the import
    errors, both keyed by the entry point's position.
    """
    errors: dict[int, str] = {}
    failed_eps: list[tuple[importlib.metadata.EntryPoint, str]] = []

    def on_failure(
        _mgr: object, ep: importlib.metadata.EntryPoint, err: BaseException
    ) -> None:
        failed_eps.append((ep, describe(err)))

    try:
        manager: stevedore.ExtensionManager[Any] = stevedore.ExtensionManager(
            namespace, invoke_on_load=False, on_load_failure_callback=on_failure
        )
        eps = manager.list_entry_points()
        loaded_by_ep = {id(ext.entry_point): ext.plugin for ext in manager.extensions}
    except (AssertionError, SystemExit) as err:
        # stevedore lets these escape a plugin's import; demi does not let one plugin
        # end discovery, so it imports each entry point on its own instead.
        LOG.debug("stevedore stopped on %s; importing one by one", describe(err))
        eps = list(stevedore.ExtensionManager.ENTRY_POINT_CACHE.get(namespace, []))
        failed_eps.clear()
        loaded_by_ep = {}
        for ep in eps:
            try:
                loaded_by_ep[id(ep)] = ep.load()
            except (Exception, SystemExit) as exc:
                failed_eps.append((ep, describe(exc)))
    failed_by_ep = {id(ep): reason for ep, reason in failed_eps}
    loaded: dict[int, Any] = {}
    for index, ep in enumerate(eps):
        if id(ep) in failed_by_ep:
            errors[index] = f"import failed: {failed_by_ep[id(ep)]}"
        elif id(ep) in loaded_by_ep:
            loaded[index] = loaded_by_ep[id(ep)]
    return eps, loaded, errors


def scan_entry_points(namespace: str = DEFAULT_NAMESPACE) -> list[EntryPointInfo]:
    """Import and validate every entry point of the namespace; report on each.

    Never raises because of a plugin. Each failure is logged once, with entry point,
    distribution and reason. Entry points sharing a name are all reported as a
    conflict, and none of them is usable under that name.
    """
    return _scan(namespace, provenance=True)


def _scan(namespace: str, *, provenance: bool) -> list[EntryPointInfo]:
    """:func:`scan_entry_points`; without ``provenance``, only failures are given
    their distribution, since finding it scans every installed distribution, the
    work stevedore's cache is there to save."""
    eps, loaded, errors = _import_namespace(namespace)
    counts = Counter(ep.name for ep in eps)
    report: list[EntryPointInfo] = []
    for index, ep in enumerate(eps):
        error = errors.get(index)
        plugin: type[BasePlatform] | None = None
        if error is None:
            try:
                plugin = _checked(loaded[index])
            except PluginValidationError as err:
                error = f"invalid platform: {err}"
        if counts[ep.name] > 1:
            twins = [_target(other) for other in eps if other.name == ep.name]
            error, plugin = _conflict_message(namespace, ep.name, twins), None
        dist: str | None = None
        version: str | None = None
        if provenance or error is not None:
            dist, version = _dist_of(namespace, ep.name, _target(ep))
        if error is not None:
            LOG.error(
                "plugin %r (%s, from %s %s) is unusable: %s",
                ep.name, _target(ep), dist or "unknown distribution", version or "", error,
            )  # fmt: skip
        report.append(
            EntryPointInfo(ep.name, _target(ep), dist, version, plugin, error)
        )
    return sorted(report, key=lambda info: (info.name, info.target))


def discover_plugins(
    namespace: str = DEFAULT_NAMESPACE,
) -> dict[str, type[BasePlatform]]:
    """Return ``{name: platform class}`` for every valid plugin in the namespace.

    Broken plugins are logged and left out; see :func:`scan_entry_points` for the
    full report, failures included.
    """
    return {
        info.name: info.plugin
        for info in _scan(namespace, provenance=False)
        if info.plugin is not None
    }


def load_driver(name: str, namespace: str = DEFAULT_NAMESPACE) -> type[BasePlatform]:
    """Import and validate one plugin by name through stevedore's DriverManager.

    Only that plugin's module is imported; a broken sibling never is.

    :raises PluginNotFoundError: no entry point has that name (the message lists
        the names there are).
    :raises PluginLoadError: the import failed, the name is registered twice, or the
        class is not a valid platform.
    """
    try:
        driver: object = stevedore.DriverManager(
            namespace, name, invoke_on_load=False, on_missing_entrypoints_callback=None
        ).driver
    except NoMatches:
        known = entry_point_names(namespace)
        raise PluginNotFoundError(
            name,
            f"no plugin named {name!r} in {namespace!r}; "
            f"known: {', '.join(known) or 'none'}",
        ) from None
    except MultipleMatches:
        targets = [
            ep.value
            for ep in importlib.metadata.entry_points(group=namespace)
            if ep.name == name
        ]
        raise PluginLoadError(
            name, _conflict_message(namespace, name, targets)
        ) from None
    except (Exception, SystemExit) as err:
        raise PluginLoadError(
            name, f"plugin {name!r} failed to import: {describe(err)}"
        ) from err
    try:
        return _checked(driver)
    except PluginValidationError as err:
        raise PluginLoadError(
            name, f"plugin {name!r} is not a valid platform: {err}"
        ) from err


def entry_point_names(namespace: str = DEFAULT_NAMESPACE) -> list[str]:
    """The names registered in the namespace, sorted, without importing anything."""
    return sorted({ep.name for ep in importlib.metadata.entry_points(group=namespace)})


def refresh_entry_points(namespace: str = DEFAULT_NAMESPACE) -> None:
    """Forget every cached view of installed entry points, so the next scan sees
    plugins installed (or removed) since the process started.

    stevedore memoizes per namespace in a class attribute and per ``sys.path`` in a
    module-level cache, and Python's import system caches directory listings.
    """
    stevedore.ExtensionManager.ENTRY_POINT_CACHE.pop(namespace, None)
    stevedore_cache._c._internal.clear()
    _provenance.cache_clear()
    importlib.invalidate_caches()
    # Its on-disk cache keys on mtimes rounded to 32-bit floats (about 128 s), so a
    # distribution rewritten in place would hide behind the stale file: fill the memo
    # for this sys.path from importlib.metadata instead of reading that file.
    stevedore_cache._c._internal[tuple(sys.path)] = (
        stevedore_cache._build_cacheable_data()
    )
