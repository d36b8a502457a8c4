"""The plugin manager: what is loaded, in which state, and calls into it under timeouts.

:class:`PluginManager` owns one :class:`~demi.plugins.base.Lifecycle` per loaded
instance and is the only caller of a plugin's ``initialize``, ``health_check`` and
``shutdown``. The steps live beside it: starting in ``_loading``, checking in
``_health``, stopping in ``_stopping``, every call into plugin code in ``_calls``.
Scheduling (when to check, when to restart, where requests go) belongs to the
conductor and the supervisor above it.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Coroutine, Mapping
from types import TracebackType
from typing import Any, Self

import anyio
import anyio.to_thread
from anyio.abc import TaskGroup

from ..core.config import DemiSettings, load_settings
from ..exceptions import PluginLoadError, PluginNotFoundError
from ..platforms.base import BasePlatform, PluginHealth, takes_webhooks
from ..platforms.inbound import Inbox, WebhookRequest
from . import _catalog, _health, _loading, _stopping
from ._calls import ThreadBudget, call
from ._slots import Slot, describe
from .base import (
    ALLOWED_TRANSITIONS,
    Lifecycle,
    PluginMetadata,
    PluginState,
    Transition,
    TransitionListener,
)

__all__ = ["PluginManager"]

# Threads one blocking platform may use at once, so it cannot take them all.
_THREADS_PER_PLATFORM = 8


class PluginManager:
    """Discovers, loads, checks and unloads platform plugins.

    Use it as an async context manager; leaving the block unloads every loaded
    plugin in reverse load order::

        async with PluginManager() as pm:
            echo = await pm.load_plugin("echo")
            print(await echo.handle_request({"text": "hi"}))

    :param namespace: the entry-point group to discover platforms in
        (``settings.namespace`` when ``None``).
    :param settings: timeouts and the rest; read from the environment when ``None``.

    For a name that is not loaded, :meth:`get_plugin` raises
    :class:`~demi.PluginNotFoundError` and :meth:`unload_plugin` does nothing and
    returns ``False``, so shutdown code never has to check first.
    """

    def __init__(
        self, namespace: str | None = None, settings: DemiSettings | None = None
    ) -> None:
        self.settings = settings if settings is not None else load_settings()
        self._catalog = _catalog.Catalog(namespace or self.settings.namespace)
        self._slots: dict[str, Slot] = {}
        self._locks: dict[str, anyio.Semaphore] = {}
        self._budgets: dict[str, ThreadBudget] = {}
        self._listeners: list[TransitionListener] = []
        # Where listening platforms' run tasks live, while the manager is entered.
        self._tasks: TaskGroup | None = None

    @classmethod
    def from_classes(
        cls,
        classes: Mapping[str, type[BasePlatform]],
        *,
        settings: DemiSettings | None = None,
    ) -> Self:
        """Build a manager around the given classes, without entry points.

        The test hook, as stevedore's ``make_test_instance`` is for stevedore.

        :raises PluginValidationError: a class does not fulfil the contract.
        """
        manager = cls(namespace="<classes>", settings=settings)
        manager._catalog = _catalog.Catalog.fixed(classes)
        return manager

    # -- what is known --------------------------------------------------------

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

    def _notify(self, change: Transition) -> None:
        for listener in list(self._listeners):
            listener(change)

    # -- loading --------------------------------------------------------------

    async def load_plugin(
        self,
        name: str,
        config: Mapping[str, Any] | None = None,
        *,
        instance: str | None = None,
        label: str | None = None,
        inbox: Inbox | None = None,
    ) -> BasePlatform:
        """Load, configure and initialize the plugin ``name``; return the instance.

        Loading an active instance again returns the same object. A failed or stopped
        instance is loaded afresh.

        :param name: the entry-point name of the plugin (its driver).
        :param config: given to ``initialize`` (a fresh copy each time), after
            validation by the plugin's ``config_model`` if it declares one.
        :param instance: load it under this name instead (to run two instances of
            one driver side by side).
        :param label: the name shown in logs and given to the platform, when it
            differs from ``instance`` (a conductor's configured instance behind one
            of its generations); generations of one label share a thread budget.
        :param inbox: where a listening platform (one that defines ``run``) sends
            its events; its ``run`` starts in the manager's task group, so the
            manager must be entered (``async with``).
        :raises PluginNotFoundError: no plugin of that name exists; lists the known ones.
        :raises PluginLoadError: import, validation, configuration or ``initialize``
            failed, timed out or returned something other than ``True``; the instance
            is left ``failed`` with the reason.
        """
        key = instance or name
        async with self._lock(key):
            slot = self._slots.get(key)
            if slot is not None and slot.driver == name:
                if slot.lifecycle.state is PluginState.ACTIVE:
                    assert slot.platform is not None
                    return slot.platform
            if slot is not None and slot.lifecycle.state is PluginState.ACTIVE:
                raise PluginLoadError(
                    key, f"{key!r} is already active with driver {slot.driver!r}"
                )
            if slot is None or slot.driver != name:
                shown = label or key
                lifecycle = Lifecycle(shown, listeners=(self._notify,))
                slot = Slot(key, shown, name, lifecycle, {})
                self._slots[key] = slot
            slot.config = copy.deepcopy(dict(config or {}))
            slot.inbox, slot.connection, slot.fatal = inbox, None, False
            known = self._catalog.classes.get(name)
            if known is not None and getattr(known, "blocking", False):
                slot.threads = self._budget(slot.label)
            try:
                platform = await _loading.start(
                    slot, known, self._resolve_for(slot), self.settings, self._tasks
                )
            except PluginNotFoundError:
                self._slots.pop(key, None)
                raise
            return platform

    def _resolve_for(
        self, slot: Slot
    ) -> Callable[[str], Coroutine[Any, Any, type[BasePlatform]]]:
        async def resolve(driver: str) -> type[BasePlatform]:
            plugin = await self.resolve_driver(driver)
            if getattr(plugin, "blocking", False):
                slot.threads = self._budget(slot.label)
            return plugin

        return resolve

    def _budget(self, label: str) -> ThreadBudget:
        budget = self._budgets.get(label)
        if budget is None:
            budget = self._budgets[label] = ThreadBudget(_THREADS_PER_PLATFORM)
        return budget

    def _lock(self, key: str) -> anyio.Semaphore:
        """The lock serializing loads and unloads of one instance name.

        A semaphore of one rather than a Lock: :meth:`begin_unload` takes it in the
        caller's task and the shutdown task gives it back. ``fast_acquire``: taking a
        free one does not yield, which would cost a loop turn per load and unload.
        """
        lock = self._locks.get(key)
        if lock is None:
            lock = self._locks[key] = anyio.Semaphore(1, fast_acquire=True)
        return lock

    def forget(self, name: str) -> None:
        """Drop everything kept about the instance ``name`` once it is stopped or
        failed (a retired generation), so a long-running conductor does not
        accumulate them. Does nothing while it is loading, active or stopping."""
        slot = self._slots.get(name)
        if slot is None or slot.lifecycle.state in _IN_USE:
            return
        lock = self._locks.get(name)
        if lock is not None and lock.value == 0:
            return
        del self._slots[name]
        self._locks.pop(name, None)

    # -- health ---------------------------------------------------------------

    async def health_check(self, name: str) -> PluginHealth:
        """Check one active instance; never raises for what the plugin does.

        :raises PluginNotFoundError: nothing is active under that name.
        """
        self.get_plugin(name)
        return await self._check(self._slots[name])

    async def health_check_all(self) -> dict[str, PluginHealth]:
        """Check every active instance at once, each bounded by the health timeout.

        A check that raises, hangs or returns something that is not a
        :class:`PluginHealth` gives an ``unhealthy`` result for that instance alone.
        """
        results: dict[str, PluginHealth] = {}

        async def check_into(slot: Slot) -> None:
            # Stopped or failed since the round began (a restart, a give-up): skip it.
            if slot.lifecycle.state is PluginState.ACTIVE and slot.platform is not None:
                results[slot.name] = await self._check(slot)

        async with anyio.create_task_group() as group:
            for slot in list(self._slots.values()):
                if slot.lifecycle.state is PluginState.ACTIVE:
                    group.start_soon(check_into, slot)
        return {name: results[name] for name in self._slots if name in results}

    async def _check(self, slot: Slot) -> PluginHealth:
        return await _health.check(
            slot,
            timeout=self.settings.health_timeout,
            block_threshold=self.settings.loop_block_threshold,
        )

    def record_health(self, name: str, health: PluginHealth) -> None:
        """Record ``health`` as the latest result of instance ``name`` (a verdict
        reached without a finished check, such as a check that never ended)."""
        slot = self._slots.get(name)
        if slot is not None and slot.platform is not None:
            slot.health = health

    # -- requests -------------------------------------------------------------

    async def handle_request(
        self, name: str, request: Mapping[str, Any], *, timeout: float | None = None
    ) -> Any:
        """Send one request to an active instance under a timeout; return what it
        returned (unchecked: the conductor decides what a good answer is).

        :raises PluginNotFoundError: nothing is active under that name.
        :raises TimeoutError: the request outlived its timeout.
        :raises Exception: what the plugin raised (a ``BaseException`` that is not
            an ``Exception`` arrives as :class:`~demi.plugins._calls.PluginRaised`).
        """
        platform = self.get_plugin(name)
        slot = self._slots[name]
        limit = timeout if timeout is not None else self.settings.request_timeout
        return await call(
            platform, "handle_request", request, timeout=limit, owner=slot.label,
            threads=slot.threads, block_threshold=self.settings.loop_block_threshold,
        )  # fmt: skip

    async def handle_webhook(
        self, name: str, request: WebhookRequest, *, timeout: float | None = None
    ) -> Any:
        """Hand one HTTP callback to an active instance's ``handle_webhook``, with
        its inbox, under a timeout; return what it returned (unchecked).

        :raises PluginNotFoundError: nothing is active under that name.
        :raises LookupError: the platform takes no webhooks.
        :raises TimeoutError: it outlived its timeout.
        """
        platform = self.get_plugin(name)
        slot = self._slots[name]
        if not takes_webhooks(platform) or slot.inbox is None:
            raise LookupError(f"platform {slot.label!r} takes no webhooks")
        limit = timeout if timeout is not None else self.settings.request_timeout
        return await call(
            platform, "handle_webhook", request, slot.inbox, timeout=limit,
            owner=slot.label, threads=slot.threads,
            block_threshold=self.settings.loop_block_threshold,
        )  # fmt: skip

    # -- unloading ------------------------------------------------------------

    async def unload_plugin(self, name: str, *, timeout: float | None = None) -> bool:
        """Shut down the instance ``name`` (shielded, bounded by the shutdown timeout,
        or by ``timeout`` when given).

        A shutdown that raises or hangs is recorded (the instance ends ``failed``
        with the reason) and never raised.

        :returns: ``True`` if an active instance was shut down; ``False`` if nothing
            was active under that name (a failed instance is forgotten).
        """
        return await self.begin_unload(name, timeout=timeout)()

    def begin_unload(
        self, name: str, *, timeout: float | None = None
    ) -> Callable[[], Coroutine[Any, Any, bool]]:
        """Take the instance ``name`` out of service now, without yielding, and
        return the coroutine function that shuts it down: :meth:`unload_plugin` in
        two steps, so a caller can stop many instances in a chosen order and let
        their shutdowns overlap (one loop turn per instance would dominate).

        The returned function must be awaited: until it has run, the instance stays
        ``stopping`` and locked. When a load or unload of that instance is under way,
        nothing happens now and the returned function waits its turn.
        """
        slot = self._slots.get(name)
        if slot is None:
            return _returns_false
        lock = self._lock(name)
        try:
            lock.acquire_nowait()
        except anyio.WouldBlock:

            async def in_turn() -> bool:
                async with lock:
                    return await _stopping.finish(
                        slot, _stopping.take_out(slot, self._slots),
                        self._shutdown_timeout(timeout), self.settings,
                    )  # fmt: skip

            return in_turn
        platform = _stopping.take_out(slot, self._slots)

        async def finish() -> bool:
            try:
                return await _stopping.finish(
                    slot, platform, self._shutdown_timeout(timeout), self.settings
                )
            finally:
                lock.release()

        return finish

    def _shutdown_timeout(self, timeout: float | None) -> float:
        return self.settings.shutdown_timeout if timeout is None else timeout

    async def disconnect_all(self, timeout: float) -> None:
        """End every listening platform's connection (cancel its ``run``) at once,
        each bounded by ``timeout``; the platforms stay active for requests."""
        async with anyio.create_task_group() as group:
            for slot in list(self._slots.values()):
                if slot.connection is not None and not slot.connection.done.is_set():
                    group.start_soon(_stopping.disconnect, slot, timeout)

    def abandon_shutdowns(self) -> None:
        """Cut every :meth:`unload_plugin` in progress short, shield or not (a second
        signal): each of those instances ends ``failed``."""
        for slot in list(self._slots.values()):
            if slot.stopping is not None:
                slot.abandoned = True
                slot.stopping.cancel()

    async def fail_plugin(self, name: str, reason: str) -> None:
        """Give up on the instance ``name``: shut it down if it is active (bounded,
        shielded) and leave it ``failed`` with ``reason``. Does nothing for a name
        that is not loaded or already failed."""
        slot = self._slots.get(name)
        if slot is None or slot.lifecycle.state is PluginState.FAILED:
            return
        if slot.lifecycle.state is PluginState.ACTIVE and slot.platform is not None:
            platform, slot.platform = slot.platform, None
            slot.lifecycle.move_to(PluginState.STOPPING, reason)
            await _stopping.shutdown(
                slot.label, platform, slot.threads,
                timeout=self.settings.shutdown_timeout,
                block_threshold=self.settings.loop_block_threshold,
            )  # fmt: skip
        if PluginState.FAILED in ALLOWED_TRANSITIONS[slot.lifecycle.state]:
            slot.lifecycle.move_to(PluginState.FAILED, reason)

    async def unload_all(self) -> None:
        """Unload every active instance, in reverse load order."""
        for name in reversed(list(self._slots)):
            await self.unload_plugin(name)

    async def __aenter__(self) -> Self:
        tasks = anyio.create_task_group()
        await tasks.__aenter__()
        self._tasks = tasks
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        tasks, self._tasks = self._tasks, None
        try:
            with anyio.CancelScope(shield=True):
                await self.unload_all()
        finally:
            if tasks is not None:
                # Only a run that ignored its cancellation can be left here. The
                # block's own exception is not the tasks' business: it goes on as
                # it is, never wrapped in a group.
                tasks.cancel_scope.cancel()
                await tasks.__aexit__(None, None, None)


_IN_USE = frozenset({PluginState.LOADING, PluginState.ACTIVE, PluginState.STOPPING})


async def _returns_false() -> bool:
    return False
