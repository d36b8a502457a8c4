"""The plugin manager: what is loaded, in which state, and calls into it under timeouts.

:class:`PluginManager` owns one :class:`~demi.plugins.base.Lifecycle` per loaded
instance and is the only caller of a plugin's ``initialize``, ``health_check`` and
``shutdown``. Scheduling (when to check, when to restart, where requests go) belongs
to the conductor and the supervisor above it.
"""

from __future__ import annotations

import dataclasses
import reprlib
import time
from collections.abc import Callable, Coroutine, Mapping
from datetime import UTC, datetime
from types import MappingProxyType, TracebackType
from typing import Any, Self

import anyio
import anyio.to_thread

from ..core.config import DemiSettings, load_settings
from ..core.logger import get_logger
from ..core.secrets import register_secrets
from ..exceptions import PluginLoadError, PluginNotFoundError, PluginValidationError
from ..platforms.base import BasePlatform, HealthStatus, PluginHealth
from . import discovery
from ._calls import call, describe
from .base import (
    ALLOWED_TRANSITIONS,
    Lifecycle,
    PluginMetadata,
    PluginState,
    Transition,
    TransitionListener,
)

__all__ = ["PluginManager"]

LOG = get_logger(__name__)

# Threads one blocking platform may hold at once, so it cannot take them all.
_THREADS_PER_PLATFORM = 8


@dataclasses.dataclass(eq=False, slots=True)
class _Slot:
    """One named instance: its driver, its lifecycle, and the live object if any."""

    name: str
    driver: str
    lifecycle: Lifecycle
    config: Mapping[str, Any]
    platform: BasePlatform | None = None
    health: PluginHealth | None = None
    threads: anyio.CapacityLimiter | None = None
    #: The shielded scope of a shutdown in progress, so abandon_shutdowns can cut it.
    stopping: anyio.CancelScope | None = None
    abandoned: bool = False


class PluginManager:
    """Discovers, loads, checks and unloads platform plugins.

    Use it as an async context manager; leaving the block unloads every loaded
    plugin in reverse load order::

        async with PluginManager() as pm:
            echo = await pm.load_plugin("echo")
            print(await echo.handle_request({"text": "hi"}))

    :param namespace: the entry-point group to discover platforms in.
    :param settings: timeouts and the rest; read from the environment when ``None``.

    For a name that is not loaded, :meth:`get_plugin` raises
    :class:`~demi.PluginNotFoundError` and :meth:`unload_plugin` does nothing and
    returns ``False``, so shutdown code never has to check first.
    """

    def __init__(
        self,
        namespace: str = discovery.DEFAULT_NAMESPACE,
        settings: DemiSettings | None = None,
    ) -> None:
        self.namespace = namespace
        self.settings = settings if settings is not None else load_settings()
        self._classes: dict[str, type[BasePlatform]] = {}
        self._scanned: dict[str, discovery.EntryPointInfo] = {}
        self._slots: dict[str, _Slot] = {}
        self._locks: dict[str, anyio.Semaphore] = {}
        self._listeners: list[TransitionListener] = []
        self._uses_entry_points = True

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
        for name, plugin in classes.items():
            try:
                discovery.validate_plugin_class(plugin)
            except PluginValidationError as err:
                raise PluginValidationError(name, f"plugin {name!r}: {err}") from None
            manager._classes[name] = plugin
        manager._uses_entry_points = False
        return manager

    # -- what is known --------------------------------------------------------

    @property
    def registry(self) -> Mapping[str, type[BasePlatform]]:
        """The valid platform classes known so far, by entry-point name (read-only).

        Filled by :meth:`discover_and_register`, by :meth:`load_plugin` one name at a
        time, or by :meth:`from_classes`.
        """
        return MappingProxyType(self._classes)

    async def discover_and_register(self) -> dict[str, type[BasePlatform]]:
        """Scan the namespace (in a worker thread: imports block) and register every
        valid plugin; failures are recorded for :meth:`list_plugins`.

        A manager built by :meth:`from_classes` has nothing to scan.
        """
        if self._uses_entry_points:
            report = await anyio.to_thread.run_sync(
                discovery.scan_entry_points, self.namespace
            )
            self._scanned = {info.name: info for info in report}
            self._classes = {
                info.name: info.plugin for info in report if info.plugin is not None
            }
        return dict(self._classes)

    def refresh(self) -> None:
        """Forget cached entry points and the last scan, so that plugins installed (or
        removed) since then are seen by the next load or scan. Loaded classes stay."""
        if self._uses_entry_points:
            discovery.refresh_entry_points(self.namespace)
            self._scanned = {}
            self._classes = {
                slot.driver: self._classes[slot.driver]
                for slot in self._slots.values()
                if slot.driver in self._classes
            }

    def known_names(self) -> list[str]:
        """Names of every plugin that could be loaded, without importing any of them."""
        if not self._uses_entry_points:
            return sorted(self._classes)
        return discovery.entry_point_names(self.namespace)

    def list_plugins(self) -> list[PluginMetadata]:
        """Every plugin known to this manager, failures included, sorted by name.

        Entry points from the last scan come first in spirit: each shows the state of
        the instance loaded under its own name, else ``discovered`` (or ``failed`` with
        the reason when it is broken). Instances loaded under another name follow.
        """
        found: dict[str, PluginMetadata] = {}
        for info in self._scanned.values():
            state = PluginState.DISCOVERED if info.valid else PluginState.FAILED
            found[info.name] = PluginMetadata(
                name=info.name, state=state, error=info.error, target=info.target,
                distribution=info.distribution, version=info.version,
                driver=info.name, valid=info.valid,
            )  # fmt: skip
        if not self._uses_entry_points:
            # A from_classes manager knows its classes without a scan.
            for name, plugin in self._classes.items():
                found[name] = PluginMetadata(
                    name=name, state=PluginState.DISCOVERED, target=_target_of(plugin),
                    driver=name,
                )  # fmt: skip
        for slot in self._slots.values():
            found[slot.name] = self._describe(slot)
        return [found[name] for name in sorted(found)]

    def metadata(self, name: str) -> PluginMetadata | None:
        """A snapshot of the instance loaded under ``name``, or ``None`` if there is none."""
        slot = self._slots.get(name)
        return self._describe(slot) if slot else None

    def _describe(self, slot: _Slot) -> PluginMetadata:
        info = self._scanned.get(slot.driver)
        return PluginMetadata(
            name=slot.name,
            state=slot.lifecycle.state,
            error=slot.lifecycle.error,
            target=info.target if info else _target_of(self._classes.get(slot.driver)),
            distribution=info.distribution if info else None,
            version=info.version if info else None,
            driver=slot.driver,
            valid=slot.driver in self._classes,
            details=_health_details(slot.health),
        )

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
                f"plugin {name!r} is not active ({slot.lifecycle.state.value}{why})",
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
    ) -> BasePlatform:
        """Load, configure and initialize the plugin ``name``; return the instance.

        Loading an active instance again returns the same object. A failed or stopped
        instance is loaded afresh.

        :param name: the entry-point name of the plugin (its driver).
        :param config: given to ``initialize``, after validation by the plugin's
            ``config_model`` if it declares one.
        :param instance: load it under this name instead (to run two instances of
            one driver side by side).
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
                slot = _Slot(key, name, Lifecycle(key, listeners=(self._notify,)), {})
                self._slots[key] = slot
            slot.config = dict(config or {})
            register_secrets(slot.config)
            return await self._start(slot)

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

    async def _start(self, slot: _Slot) -> BasePlatform:
        settings = self.settings
        slot.lifecycle.move_to(PluginState.LOADING)
        started = time.monotonic()
        try:
            # A class already known needs no import, so no timeout either.
            plugin_cls = self._classes.get(slot.driver)
            if plugin_cls is None:
                with anyio.fail_after(settings.init_timeout):
                    plugin_cls = await self._resolve(slot.driver)
        except PluginNotFoundError:
            self._slots.pop(slot.name, None)
            raise
        except TimeoutError:
            reason = f"import did not finish within {settings.init_timeout:g}s"
            raise self._fail(slot, reason) from None
        except PluginLoadError as err:
            slot.lifecycle.move_to(PluginState.FAILED, str(err))
            raise
        except BaseException:
            # Cancelled from outside while importing: never leave it "loading".
            slot.lifecycle.move_to(PluginState.FAILED, "cancelled during import")
            raise
        platform = self._construct(slot, plugin_cls)
        options = self._validated_config(slot, plugin_cls)
        remaining = max(settings.init_timeout - (time.monotonic() - started), 0.001)
        try:
            ready = await call(
                platform, "initialize", options, timeout=remaining, threads=slot.threads
            )
        except TimeoutError:
            reason = f"initialize did not finish within {settings.init_timeout:g}s"
        except Exception as err:
            reason = f"initialize raised {describe(err)}"
        except BaseException:
            # Cancelled from outside: leave no half-started plugin behind.
            await self._abandon(slot, "cancelled during initialize")
            raise
        else:
            if ready is True:
                slot.lifecycle.move_to(PluginState.ACTIVE)
                return platform
            reason = f"initialize returned {reprlib.repr(ready)}, not True"
        await self._abandon(slot, reason)
        raise PluginLoadError(
            slot.name, f"plugin {slot.name!r} failed to start: {reason}"
        )

    async def _resolve(self, driver: str) -> type[BasePlatform]:
        """Import a driver the manager does not know yet (``_start`` checks first)."""
        broken = self._scanned.get(driver)
        if broken is not None and broken.error is not None:
            raise PluginLoadError(
                driver, f"plugin {driver!r} is unusable: {broken.error}"
            )
        if not self._uses_entry_points:
            names = ", ".join(sorted(self._classes)) or "none"
            raise PluginNotFoundError(
                driver, f"no plugin named {driver!r}; known: {names}"
            )
        plugin = await anyio.to_thread.run_sync(
            discovery.load_driver, driver, self.namespace, abandon_on_cancel=True
        )
        self._classes[driver] = plugin
        return plugin

    def _construct(self, slot: _Slot, plugin_cls: type[BasePlatform]) -> BasePlatform:
        try:
            platform = plugin_cls()
        except Exception as err:
            raise self._fail(
                slot, f"constructing {plugin_cls.__qualname__} raised {describe(err)}"
            ) from err
        lifecycle = slot.lifecycle
        platform._demi_name = slot.name
        platform._demi_state = lambda: lifecycle.state.value
        slot.platform = platform
        slot.health = None
        if getattr(plugin_cls, "blocking", False):
            slot.threads = anyio.CapacityLimiter(_THREADS_PER_PLATFORM)
        return platform

    def _validated_config(
        self, slot: _Slot, plugin_cls: type[BasePlatform]
    ) -> Mapping[str, Any]:
        model = plugin_cls.config_model
        if model is None:
            return dict(slot.config)
        from pydantic import ValidationError

        try:
            options = model.model_validate(slot.config).model_dump()
            register_secrets(options)
            return options
        except ValidationError as err:
            fields = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or '(config)'}: {e['msg']}"
                for e in err.errors(include_input=False)
            )
            raise self._fail(slot, f"rejected its configuration: {fields}") from None

    def _fail(self, slot: _Slot, reason: str) -> PluginLoadError:
        """Record the failure and return the error to raise."""
        slot.platform = None
        slot.lifecycle.move_to(PluginState.FAILED, reason)
        return PluginLoadError(
            slot.name, f"plugin {slot.name!r} failed to start: {reason}"
        )

    async def _abandon(self, slot: _Slot, reason: str) -> None:
        """Mark a plugin failed and give its shutdown a bounded chance to release what
        a partial initialize acquired."""
        platform = slot.platform
        slot.lifecycle.move_to(PluginState.FAILED, reason)
        slot.platform = None
        if platform is not None:
            await self._call_shutdown(slot.name, platform, slot.threads)

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

        async def check_into(slot: _Slot) -> None:
            # Stopped or failed since the round began (a restart, a give-up): skip it.
            if slot.lifecycle.state is PluginState.ACTIVE and slot.platform is not None:
                results[slot.name] = await self._check(slot)

        async with anyio.create_task_group() as group:
            for slot in list(self._slots.values()):
                if slot.lifecycle.state is PluginState.ACTIVE:
                    group.start_soon(check_into, slot)
        return {name: results[name] for name in self._slots if name in results}

    async def _check(self, slot: _Slot) -> PluginHealth:
        platform = slot.platform
        assert platform is not None
        timeout = self.settings.health_timeout
        started = time.perf_counter()
        result: object = None
        # The manager's own reason; kept apart from the result, which may be any
        # object a broken plugin returns (a plain string included).
        error: str | None = None
        try:
            result = await call(
                platform, "health_check", timeout=timeout, threads=slot.threads
            )
        except TimeoutError:
            error = f"health_check did not finish within {timeout:g}s"
        except Exception as err:
            error = f"health_check raised {describe(err)}"
        elapsed_ms = (time.perf_counter() - started) * 1000
        now = datetime.now(UTC)
        if error is None and isinstance(result, PluginHealth):
            health = dataclasses.replace(
                result, response_time_ms=elapsed_ms, last_check=now
            )
        else:
            if error is None:
                error = (
                    f"health_check returned {type(result).__name__}, not PluginHealth"
                )
            health = PluginHealth(HealthStatus.UNHEALTHY, elapsed_ms, now, error)
        slot.health = health
        return health

    def record_health(self, name: str, health: PluginHealth) -> None:
        """Record ``health`` as the latest result of instance ``name`` (a verdict
        reached without a finished check, such as a check that never ended)."""
        slot = self._slots.get(name)
        if slot is not None and slot.platform is not None:
            slot.health = health

    def latest_health(self, name: str) -> PluginHealth | None:
        """The last health result of instance ``name``, without running a check."""
        slot = self._slots.get(name)
        return slot.health if slot else None

    # -- requests -------------------------------------------------------------

    async def handle_request(
        self, name: str, request: Mapping[str, Any], *, timeout: float | None = None
    ) -> Any:
        """Send one request to an active instance under a timeout; return what it
        returned (unchecked: the conductor decides what a good answer is).

        :raises PluginNotFoundError: nothing is active under that name.
        :raises TimeoutError: the request outlived its timeout.
        """
        platform = self.get_plugin(name)
        limit = timeout if timeout is not None else self.settings.request_timeout
        return await call(
            platform,
            "handle_request",
            request,
            timeout=limit,
            threads=self._slots[name].threads,
        )

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
                    return await self._finish_unload(
                        slot, self._take_out(slot), timeout
                    )

            return in_turn
        platform = self._take_out(slot)

        async def finish() -> bool:
            try:
                return await self._finish_unload(slot, platform, timeout)
            finally:
                lock.release()

        return finish

    def _take_out(self, slot: _Slot) -> BasePlatform | None:
        """Move an active slot to ``stopping`` (forget a failed one); return the
        platform to shut down, if there is one."""
        if slot.lifecycle.state is not PluginState.ACTIVE or slot.platform is None:
            if slot.lifecycle.state is PluginState.FAILED:
                self._slots.pop(slot.name, None)
            return None
        slot.lifecycle.move_to(PluginState.STOPPING)
        slot.stopping = anyio.CancelScope(shield=True)
        return slot.platform

    async def _finish_unload(
        self, slot: _Slot, platform: BasePlatform | None, timeout: float | None
    ) -> bool:
        if platform is None or slot.stopping is None:
            return False
        error = await self._call_shutdown(
            slot.name, platform, slot.threads, timeout, scope=slot.stopping
        )
        if slot.stopping.cancel_called and slot.abandoned:
            error = "shutdown abandoned before it finished"
        slot.stopping, slot.abandoned = None, False
        slot.platform = None
        if error is None:
            slot.lifecycle.move_to(PluginState.STOPPED)
        else:
            slot.lifecycle.move_to(PluginState.FAILED, error)
        return True

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
            await self._call_shutdown(name, platform, slot.threads)
        if PluginState.FAILED in ALLOWED_TRANSITIONS[slot.lifecycle.state]:
            slot.lifecycle.move_to(PluginState.FAILED, reason)

    def time_in_states(self, name: str) -> dict[str, float]:
        """Seconds the instance ``name`` has spent in each state (empty if unknown)."""
        slot = self._slots.get(name)
        if slot is None:
            return {}
        return {
            state.value: spent
            for state, spent in slot.lifecycle.time_in_states().items()
        }

    async def _call_shutdown(
        self,
        name: str,
        platform: BasePlatform,
        threads: anyio.CapacityLimiter | None,
        timeout: float | None = None,
        *,
        scope: anyio.CancelScope | None = None,
    ) -> str | None:
        """Shut a platform down, shielded from cancellation and bounded; return why
        it failed, if it did."""
        if timeout is None:
            timeout = self.settings.shutdown_timeout
        if scope is None:
            scope = anyio.CancelScope(shield=True)
        try:
            await call(
                platform, "shutdown", timeout=timeout, threads=threads, scope=scope
            )
        except TimeoutError:
            reason = f"shutdown did not finish within {timeout:g}s"
        except Exception as err:
            reason = f"shutdown raised {describe(err)}"
        else:
            return None
        LOG.warning("plugin %s: %s", name, reason)
        return reason

    async def unload_all(self) -> None:
        """Unload every active instance, in reverse load order."""
        for name in reversed(list(self._slots)):
            await self.unload_plugin(name)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        with anyio.CancelScope(shield=True):
            await self.unload_all()


async def _returns_false() -> bool:
    return False


def _target_of(plugin: type[BasePlatform] | None) -> str | None:
    return f"{plugin.__module__}:{plugin.__qualname__}" if plugin else None


def _health_details(health: PluginHealth | None) -> dict[str, object]:
    if health is None:
        return {}
    return {"health": health.status.value, "health_error": health.error_message}
