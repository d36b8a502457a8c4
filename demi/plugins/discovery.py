"""Finding platform plugins: stevedore scans, demi validates and keeps the failures.

stevedore's :class:`~stevedore.ExtensionManager` imports every entry point of the
namespace; :class:`~stevedore.DriverManager` imports one by name. demi adds what they
leave out: a record of every entry point that failed (with its distribution, which
stevedore's cached entry points no longer carry), duplicate names that neither side
wins, contract validation, and a way to see plugins installed after the first scan.

No plugin can break a scan: whatever one raises at import, SystemExit and
KeyboardInterrupt included, is its recorded failure, and with a timeout an import
that hangs is abandoned and reported (see :mod:`demi.plugins._imports`).
"""

from __future__ import annotations

import functools
import importlib
import importlib.metadata
import inspect
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import stevedore
from stevedore.exception import MultipleMatches, NoMatches

from ..core.logger import get_logger
from ..exceptions import PluginLoadError, PluginNotFoundError, PluginValidationError
from ..platforms.base import BasePlatform
from . import _imports

__all__ = [
    "DEFAULT_NAMESPACE",
    "EntryPointInfo",
    "discover_plugins",
    "entry_point_names",
    "installed_version",
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


def scan_entry_points(
    namespace: str = DEFAULT_NAMESPACE, *, timeout: float | None = None
) -> list[EntryPointInfo]:
    """Import and validate every entry point of the namespace; report on each.

    Never raises because of a plugin: whatever its import raises (SystemExit,
    KeyboardInterrupt and GeneratorExit included) is its failure. Each failure is
    logged once, with entry point, distribution and reason. Entry points sharing a
    name are all reported as a conflict, and none of them is usable under that name.

    :param timeout: seconds each import may take; one that takes longer is
        abandoned in its worker thread and reported as not finishing. ``None`` (the
        default) waits for every import, in the caller's thread.
    """
    return _scan(namespace, provenance=True, timeout=timeout)


def _scan(
    namespace: str, *, provenance: bool, timeout: float | None = None
) -> list[EntryPointInfo]:
    """:func:`scan_entry_points`; without ``provenance``, only failures are given
    their distribution, since finding it scans every installed distribution, the
    work stevedore's cache is there to save."""
    eps, imported = _imports.import_all(namespace, timeout=timeout)
    counts = Counter(ep.name for ep in eps)
    report: list[EntryPointInfo] = []
    for ep in eps:
        error, plugin = _judge(ep, imported)
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


def _judge(
    ep: importlib.metadata.EntryPoint, imported: _imports.Imported
) -> tuple[str | None, type[BasePlatform] | None]:
    """(why the entry point is unusable, or None; its class when it is usable)."""
    ep_key = _imports.key(ep)
    if ep_key in imported.failed:
        return imported.failed[ep_key], None
    if ep_key not in imported.loaded:
        # stevedore skipped it without a word; say so rather than drop it.
        return "import failed: stevedore did not load it", None
    try:
        return None, _checked(imported.loaded[ep_key])
    except PluginValidationError as err:
        return f"invalid platform: {err}", None
    except BaseException as err:  # a hostile class, while inspected
        return f"invalid platform: inspecting it raised {_imports.reason(err)}", None


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
    except BaseException as err:  # its import raised it: its failure
        raise PluginLoadError(
            name, f"plugin {name!r} failed to import: {_imports.reason(err)}"
        ) from err
    try:
        return _checked(driver)
    except PluginValidationError as err:
        raise PluginLoadError(
            name, f"plugin {name!r} is not a valid platform: {err}"
        ) from err
    except BaseException as err:  # a hostile class, while inspected
        raise PluginLoadError(
            name,
            f"plugin {name!r} is not a valid platform: "
            f"inspecting it raised {_imports.reason(err)}",
        ) from err


def entry_point_names(namespace: str = DEFAULT_NAMESPACE) -> list[str]:
    """The names registered in the namespace, sorted, without importing anything."""
    return sorted({ep.name for ep in importlib.metadata.entry_points(group=namespace)})


def installed_version(name: str, namespace: str = DEFAULT_NAMESPACE) -> str | None:
    """The version of the distribution that registers the entry point ``name``, as
    installed on disk now (a ``pip install`` since start-up shows), or ``None``."""
    importlib.invalidate_caches()
    _provenance.cache_clear()
    for (entry, _target), (_dist, version) in _provenance(namespace).items():
        if entry == name:
            return version
    return None


def refresh_entry_points(namespace: str = DEFAULT_NAMESPACE) -> None:
    """Forget every cached view of installed entry points, so the next scan sees
    plugins installed (or removed) since the process started.

    stevedore memoizes the namespace's entry points in
    :attr:`stevedore.ExtensionManager.ENTRY_POINT_CACHE`, first read from an on-disk
    cache keyed on mtimes rounded to 32-bit floats (about 128 s), so a distribution
    rewritten in place would hide behind it. This fills that memo from
    importlib.metadata instead, which stevedore then uses as it is.
    """
    _provenance.cache_clear()
    # Python's import system caches directory listings; importlib.metadata finds
    # distributions through them.
    importlib.invalidate_caches()
    fresh: dict[tuple[str, str], importlib.metadata.EntryPoint] = {}
    for ep in importlib.metadata.entry_points(group=namespace):
        # The same entry point twice (a project both installed and on sys.path as
        # ".") is one entry point, as stevedore's own scan counts it, not a conflict.
        fresh.setdefault(_imports.key(ep), ep)
    stevedore.ExtensionManager.ENTRY_POINT_CACHE[namespace] = list(fresh.values())
