"""Importing a namespace's entry points through stevedore so that no plugin stops it.

stevedore reports an ordinary exception from a plugin's import to a callback, but
lets AssertionError, KeyboardInterrupt and every BaseException (SystemExit,
GeneratorExit) escape and end the whole scan; and an import that never returns holds
it forever. Here each of those becomes that entry point's failure, and the rest are
still imported. Only stevedore's public API is used.
"""

from __future__ import annotations

import importlib.metadata
import queue
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import stevedore

from ._calls import describe

#: An entry point as compared here: stevedore builds new EntryPoint objects from its
#: cache, so identity says nothing; (name, "module:attr") says which one it is.
Key = tuple[str, str]


def key(ep: importlib.metadata.EntryPoint) -> Key:
    """The identity of an entry point within its namespace."""
    return (ep.name, str(ep.value))


def reason(err: BaseException) -> str:
    """``"Type: message"`` for anything a plugin raised, even when its ``__str__``
    raises too: a plugin's exception must not break the report about it."""
    try:
        return describe(err)
    except BaseException:  # a hostile __str__ may raise anything
        return f"{type(err).__name__} (its message could not be read)"


def raised(err: BaseException) -> str:
    """The recorded failure of an entry point whose import raised ``err``."""
    return f"import failed: {reason(err)}"


@dataclass
class Imported:
    """What importing some entry points gave: classes loaded, and why the others
    could not be, by key."""

    loaded: dict[Key, Any] = field(default_factory=dict)
    failed: dict[Key, str] = field(default_factory=dict)

    def merge(self, other: Imported) -> None:
        """Add another batch's results to this one."""
        self.loaded.update(other.loaded)
        self.failed.update(other.failed)


def listed(namespace: str) -> list[importlib.metadata.EntryPoint]:
    """The namespace's entry points as stevedore sees them, importing none."""
    # A manager for no names loads nothing; its list is stevedore's memo.
    lister: stevedore.NamedExtensionManager[Any] = stevedore.NamedExtensionManager(
        namespace, names=[], on_missing_entrypoints_callback=None
    )
    return list(lister.list_entry_points())


def import_all(
    namespace: str, *, timeout: float | None = None
) -> tuple[list[importlib.metadata.EntryPoint], Imported]:
    """Import every entry point of the namespace; return them and what became of each.

    Without a timeout, one stevedore scan in the caller's thread (the fast path),
    falling back to one entry point at a time only when something escapes stevedore.
    With one, every import runs in a worker thread and one that has not finished
    within ``timeout`` seconds is abandoned and recorded as a failure.
    """
    if timeout is not None:
        eps = listed(namespace)
        return eps, _bounded(namespace, eps, timeout)
    result = Imported()

    def on_failure(_mgr: object, ep: importlib.metadata.EntryPoint, err: Any) -> None:
        result.failed[key(ep)] = raised(err)

    try:
        manager: stevedore.ExtensionManager[Any] = stevedore.ExtensionManager(
            namespace, invoke_on_load=False, on_load_failure_callback=on_failure
        )
    except BaseException as escaped:  # re-raised below when not a plugin's
        eps = listed(namespace)
        result = Imported()
        for name in _names(eps):
            result.merge(_import_name(namespace, name, eps))
        # A KeyboardInterrupt that no plugin raises again was the user's Ctrl-C,
        # arriving during some import: it is theirs, not that plugin's.
        if isinstance(escaped, KeyboardInterrupt) and not any(
            text.startswith(raised(KeyboardInterrupt()))
            for text in result.failed.values()
        ):
            raise
        return eps, result
    for ext in manager.extensions:
        result.loaded[key(ext.entry_point)] = ext.plugin
    return list(manager.list_entry_points()), result


def _names(eps: Iterable[importlib.metadata.EntryPoint]) -> list[str]:
    return list(dict.fromkeys(ep.name for ep in eps))


def _import_name(
    namespace: str, name: str, eps: Sequence[importlib.metadata.EntryPoint]
) -> Imported:
    """Import the entry points called ``name`` (two when it is a conflict) through
    stevedore; whatever their import raises is their failure."""
    result = Imported()

    def on_failure(_mgr: object, ep: importlib.metadata.EntryPoint, err: Any) -> None:
        result.failed[key(ep)] = raised(err)

    try:
        manager: stevedore.NamedExtensionManager[Any] = stevedore.NamedExtensionManager(
            namespace,
            names=[name],
            on_load_failure_callback=on_failure,
            on_missing_entrypoints_callback=None,
        )
    except BaseException as err:  # this plugin's import, nothing else
        # stevedore does not say which of a name's entry points raised; a name with
        # two is a conflict, and reported as one, whatever its imports did.
        for ep in eps:
            if ep.name == name and key(ep) not in result.failed:
                result.failed[key(ep)] = raised(err)
        return result
    for ext in manager.extensions:
        result.loaded[key(ext.entry_point)] = ext.plugin
    return result


def _bounded(
    namespace: str, eps: Sequence[importlib.metadata.EntryPoint], timeout: float
) -> Imported:
    """Import names one after another in a worker thread, waiting at most
    ``timeout`` seconds for each; a hung import is abandoned with its thread and
    the names after it go on in a new one.

    One thread for the whole scan, not one per name, unless an import hangs.
    """
    result = Imported()
    pending = _names(eps)
    while pending:
        done: queue.SimpleQueue[tuple[str, Imported]] = queue.SimpleQueue()
        abandoned = threading.Event()
        worker = threading.Thread(
            target=_work,
            args=(namespace, list(pending), eps, done, abandoned),
            name=f"demi-import-{namespace}",
            # An import that never returns must not keep the process alive.
            daemon=True,
        )
        worker.start()
        while pending:
            try:
                name, batch = done.get(timeout=timeout)
            except queue.Empty:
                abandoned.set()
                hung = pending.pop(0)
                for ep in eps:
                    if ep.name == hung:
                        result.failed[key(ep)] = (
                            f"import did not finish within {timeout:g}s"
                        )
                break
            result.merge(batch)
            pending.remove(name)
    return result


def _work(
    namespace: str,
    names: list[str],
    eps: Sequence[importlib.metadata.EntryPoint],
    done: queue.SimpleQueue[tuple[str, Imported]],
    abandoned: threading.Event,
) -> None:
    for name in names:
        if abandoned.is_set():
            return
        done.put((name, _import_name(namespace, name, eps)))
