"""The plugin manager: what is loaded, in which state, and calls into it under timeouts.

:class:`PluginManager` owns one :class:`~demi.plugins.base.Lifecycle` per loaded
instance and is the only caller of a plugin's ``initialize``, ``health_check`` and
``shutdown``. The steps live beside it: starting in ``_loading``, checking in
``_health``, stopping in ``_stopping``, every call into plugin code in ``_calls``.
Scheduling (when to check, when to restart, where requests go) belongs to the
conductor and the supervisor above it.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import TracebackType
from typing import Any, Literal, Self

import anyio
import anyio.to_thread
from anyio.abc import TaskGroup

from ..core.config import DemiSettings, load_settings
from ..exceptions import PluginLoadError, PluginNotFoundError
from ..platforms.base import BasePlatform, PluginHealth, takes_webhooks
from ..platforms.inbound import Inbox, WebhookRequest
from . import _catalog, _health, _loading, discovery
from ._calls import ThreadBudget, call
from ._slots import Slot
from ._turns import Turns
from ._unloading import Unloading
from ._views import ManagerView
from .base import (
    Lifecycle,
    PluginState,
    TransitionListener,
)

__all__ = ["PluginManager"]

# Threads one blocking platform may use at once, so it cannot take them all.
_THREADS_PER_PLATFORM = 8


class PluginManager(ManagerView, Unloading):
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
        self._turns = Turns()
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

    # -- loading --------------------------------------------------------------

    async def load_plugin(
        self,
        name: str,
        config: Mapping[str, Any] | None = None,
        *,
        instance: str | None = None,
        label: str | None = None,
        inbox: Inbox | None = None,
        isolation: Literal["inproc", "process"] = "inproc",
        memory_limit_mb: int | None = None,
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
        :param isolation: ``"process"`` runs the driver in a child process
            behind a :class:`~demi.isolation._proxy.ProcessPlatform` (it reads the
            child in a ``run``, so it needs ``inbox`` and an entered manager).
        :param memory_limit_mb: for ``"process"``: the child is killed (and the
            instance fails, saying so) when its resident memory goes over it.
        :raises PluginNotFoundError: no plugin of that name exists; lists the known ones.
        :raises PluginLoadError: import, validation, configuration or ``initialize``
            failed, timed out or returned something other than ``True``; the instance
            is left ``failed`` with the reason.
        """
        key = instance or name
        await self._turns.take(key)
        try:
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
                lifecycle = Lifecycle(shown, listeners=self._listeners)
                slot = Slot(key, shown, name, lifecycle)
                self._slots[key] = slot
            slot.inbox, slot.connection, slot.fatal = inbox, None, False
            known = self._catalog.classes.get(name)
            if isolation == "process":
                # Never imported here: its child does, alone.
                known = _isolated(self._catalog.namespace, name, memory_limit_mb)
            if known is not None and getattr(known, "blocking", False):
                slot.threads = self._budget(slot.label)
            try:
                return await _loading.start(
                    slot, config or {}, known, self._resolve, self.settings,
                    self._tasks,
                )  # fmt: skip
            except PluginNotFoundError:
                self._slots.pop(key, None)
                raise
        finally:
            self._turns.give_back(key)

    async def _resolve(self, slot: Slot) -> type[BasePlatform]:
        """The class of ``slot``'s driver, imported; a blocking one gets its threads."""
        plugin = await self.resolve_driver(slot.driver)
        if getattr(plugin, "blocking", False):
            slot.threads = self._budget(slot.label)
        return plugin

    def installed_version(self, driver: str) -> str | None:
        """The version of the distribution that provides ``driver``, as installed
        on disk now, or ``None`` (a class registered by hand, or not installed)."""
        if self._catalog.namespace is None:
            return None
        return discovery.installed_version(driver, self._catalog.namespace)

    def _budget(self, label: str) -> ThreadBudget:
        budget = self._budgets.get(label)
        if budget is None:
            budget = self._budgets[label] = ThreadBudget(_THREADS_PER_PLATFORM)
        return budget

    def forget(self, name: str) -> None:
        """Drop everything kept about the instance ``name`` once it is stopped or
        failed (a retired generation), so a long-running conductor does not
        accumulate them. Does nothing while it is loading, active or stopping."""
        slot = self._slots.get(name)
        if slot is None or slot.lifecycle.state in _IN_USE:
            return
        if self._turns.held(name):
            return
        del self._slots[name]

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

        :raises PluginNotFoundError: nothing is active under that name, or it takes
            no webhooks.
        :raises TimeoutError: it outlived its timeout.
        """
        platform = self.get_plugin(name)
        slot = self._slots[name]
        if not takes_webhooks(platform) or slot.inbox is None:
            raise PluginNotFoundError(
                name, f"platform {slot.label!r} takes no webhooks"
            )
        limit = timeout if timeout is not None else self.settings.request_timeout
        return await call(
            platform, "handle_webhook", request, slot.inbox, timeout=limit,
            owner=slot.label, threads=slot.threads,
            block_threshold=self.settings.loop_block_threshold,
        )  # fmt: skip

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


def _isolated(
    namespace: str | None, driver: str, memory_limit_mb: int | None
) -> type[BasePlatform]:
    # Imported here: only a process-isolated instance needs it.
    from ..isolation._proxy import process_platform

    if namespace is None:
        raise PluginLoadError(
            driver, f"{driver!r} cannot run in a process: it has no entry point"
        )
    return process_platform(namespace, driver, memory_limit_mb)


_IN_USE = frozenset({PluginState.LOADING, PluginState.ACTIVE, PluginState.STOPPING})
