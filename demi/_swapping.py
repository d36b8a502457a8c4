"""The conductor's swaps: switching an instance's driver, restarting it, reloading
the configuration, and upgrading a process-isolated platform onto a newly installed
version. A fresh platform starts beside the old one and takes over before the old one
retires (an ``exclusive`` one stops first instead). :class:`~demi.conductor.Conductor`
builds on it."""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import anyio

from ._routing import ReloadResult, Route
from ._startup import check_configs, check_drivers
from .core.config import DemiSettings, PlatformSettings, reload_settings
from .core.logger import get_logger
from .exceptions import DemiError, PluginLoadError, PluginNotFoundError
from .platforms.base import is_exclusive
from .plugins.base import PluginState
from .plugins.manager import PluginManager

if TYPE_CHECKING:
    from .isolation._proxy import ProcessPlatform

__all__ = ["GENERATION_MARK", "Swapping"]

LOG = get_logger("demi.conductor")

#: Joins an instance name and a generation in the manager's keys (``chat#2``);
#: instance names cannot contain it, so a key never equals a configured name.
GENERATION_MARK = "#"


class Swapping:
    """Swapping the platform behind an instance (a part of the conductor)."""

    settings: DemiSettings
    manager: PluginManager
    _routes: dict[str, Route]
    _started: dict[str, None]
    _swap_locks: dict[str, anyio.Lock]
    _generations: itertools.count[int]

    if TYPE_CHECKING:  # the conductor's own, which these build on

        def _route(self, instance: str) -> Route: ...
        def _route_for(self, name: str, spec: PlatformSettings) -> Route: ...
        def runs_here(self, instance: str) -> bool: ...
        def spec_of(self, instance: str) -> PlatformSettings | None: ...
        async def _load(self, route: Route) -> str | None: ...
        async def _start_all(
            self, specs: Mapping[str, PlatformSettings]
        ) -> dict[str, str]: ...

    async def switch_driver(
        self, instance: str, driver: str, config: Mapping[str, Any] | None = None
    ) -> None:
        """Replace the platform behind ``instance`` without dropping a request.

        The new driver is loaded and initialized first; only when it is active do new
        requests go to it. Requests in flight on the old one finish (bounded by the
        shutdown timeout) before it is shut down. When either driver is
        ``exclusive``, the old platform stops first instead, and requests in the gap
        get :class:`~demi.PlatformUnavailableError`.

        :param config: the new driver's configuration; the instance's own when ``None``.
        :raises PluginNotFoundError: no such instance.
        :raises PluginLoadError: the new driver did not start; the old one keeps
            serving (unless it had to stop first).
        """
        async with self._swap_lock(instance):
            old = self._route(instance)
            new_config = dict(config) if config is not None else dict(old.spec.config)
            spec = old.spec.model_copy(update={"driver": driver, "config": new_config})
            error = await self._replace(old, spec)
            if error is not None:
                raise PluginLoadError(
                    instance,
                    f"cannot switch {instance!r} to driver {driver!r}: {error}",
                )
            LOG.info(
                "platform %s: now served by %s (was %s)",
                instance, driver, old.spec.driver,
            )  # fmt: skip

    async def restart(self, instance: str) -> bool:
        """Start the instance's platform afresh with the same driver and
        configuration, and keep serving meanwhile: the fresh platform starts beside
        the old one and takes over before the old one retires, as in
        :meth:`switch_driver`. An ``exclusive`` platform is stopped first instead.

        :returns: whether a fresh platform is active behind the instance (when it
            did not start, an old platform that was still active keeps serving).
        :raises PluginNotFoundError: no such instance.
        """
        async with self._swap_lock(instance):
            route = self._route(instance)
            return await self._replace(route, route.spec) is None

    def _swap_lock(self, instance: str) -> anyio.Lock:
        lock = self._swap_locks.get(instance)
        if lock is None:
            lock = self._swap_locks[instance] = anyio.Lock()
        return lock

    async def _replace(self, old: Route, spec: PlatformSettings) -> str | None:
        """Put a fresh platform for ``spec`` behind ``old.instance``; return why it
        did not start, if it did not. Ends with nothing routed or running for the
        instance when a reload removed it meanwhile."""
        instance = old.instance
        if not self.runs_here(instance):
            # Another member of the coordination group runs it: nothing starts here.
            old.resize(spec)
            return "it is not run here (another member of the group runs it)"
        key = f"{instance}{GENERATION_MARK}{next(self._generations)}"
        new = Route.to(instance, spec, key)
        if await self._exclusive(old, spec):
            await self._retire(old)
            if not self._routed(old):
                return "the instance was removed meanwhile"
            self._routes[instance] = new
            error = await self._load(new)
        else:
            error = await self._load(new)
            if error is None and spec.isolation == "process" and self._active(old):
                # A fresh child (new code, perhaps) takes over only once healthy.
                error = await self._first_check(new)
                if error is not None:
                    await self._retire(new)
            if error is not None and self._active(old):
                self.manager.forget(key)
                return f"{error}; the running platform keeps serving"
            if not self._routed(old):
                await self._retire(new)
                return "the instance was removed meanwhile"
            self._routes[instance] = new
            await self._retire(old)
        if error is None:
            self._started.setdefault(instance, None)
        return error

    async def _first_check(self, route: Route) -> str | None:
        """Why the freshly started platform behind ``route`` is not healthy, or
        ``None`` when it is."""
        health = await self.manager.health_check(route.key)
        if health.is_healthy:
            return None
        LOG.error(
            "platform %s (driver %s) started but is not healthy: %s",
            route.instance, route.spec.driver, health.error_message,
        )  # fmt: skip
        return f"its first health check failed: {health.error_message}"

    async def _exclusive(self, old: Route, spec: PlatformSettings) -> bool:
        """Whether the platform behind ``old`` and one for ``spec`` may never serve
        side by side. An isolated driver is never imported here: a running child
        has said what its platform is (one that is not running needs no gap)."""
        for each in (old.spec, spec):
            if each.isolation == "process":
                proxy = self._proxy_of(old)
                if proxy is not None and proxy.driver == each.driver:
                    if proxy.shape.exclusive:
                        return True
                continue
            if await self._driver_exclusive(each.driver):
                return True
        return False

    async def _driver_exclusive(self, driver: str) -> bool:
        """Whether an in-process driver is exclusive (importing it if need be)."""
        try:
            plugin = await self.manager.resolve_driver(driver)
        except DemiError:
            return False  # its load will fail and say why
        return is_exclusive(plugin)

    async def exclusive(self, instance: str) -> bool:
        """Whether the driver behind ``instance`` is ``exclusive`` (it holds what
        only one instance may hold, such as a bot's connection); ``False`` for an
        instance that is not configured or a driver that is not installed."""
        spec = self.spec_of(instance) or self.settings.platforms.get(instance)
        if spec is None:
            return False
        if spec.isolation == "process":
            route = self._routes.get(instance)
            proxy = self._proxy_of(route) if route is not None else None
            # Never imported here: until its child has said, guard it as if it were.
            return proxy.shape.exclusive if proxy is not None else True
        return await self._driver_exclusive(spec.driver)

    def _active(self, route: Route) -> bool:
        return self.manager.state_of(route.key) is PluginState.ACTIVE

    def _routed(self, route: Route) -> bool:
        return self._routes.get(route.instance) is route

    async def _retire(self, route: Route, timeout: float | None = None) -> None:
        """Let a route's requests finish, then shut its platform down (shielded)
        and forget it."""
        limit = self.settings.shutdown_timeout if timeout is None else timeout
        with anyio.CancelScope(shield=True):
            if not await route.drain(limit):
                LOG.warning(
                    "platform %s: %d request(s) still in flight after %gs; shutting down",
                    route.instance, route.in_flight, limit,
                )  # fmt: skip
            await self.manager.unload_plugin(route.key, timeout=limit)
            self.manager.forget(route.key)
            if route.inbox is not None:
                route.inbox.retire()

    async def reload(self, settings: DemiSettings | None = None) -> ReloadResult:
        """Re-read the configuration and apply the difference.

        The same file is read again: one that has vanished or become unreadable is
        a ConfigError, never a fall-back to the defaults. Adds new instances, stops
        removed (or disabled) ones, swaps those whose driver or config changed,
        restarts process-isolated ones whose driver's installed version changed
        (:meth:`upgrade_due`), and leaves the rest alone. Plugins installed since
        start-up are seen. A bad configuration changes nothing. An instance removed while it
        is being restarted or switched stays removed.

        :raises ConfigError: the new configuration is invalid.
        """
        new_settings = (
            settings if settings is not None else reload_settings(self.settings)
        )
        self.manager.refresh()
        wanted = new_settings.enabled_platforms()
        check_drivers(self.manager, new_settings, wanted)
        await check_configs(self.manager, new_settings, wanted)
        result = ReloadResult()
        self.settings = new_settings
        self.manager.settings = new_settings
        # Removed instances stop in reverse start order; never-started ones last.
        order = list(self._started)
        removed = sorted(
            (name for name in self._routes if name not in wanted),
            key=lambda name: -order.index(name) if name in order else 1,
        )
        for name in removed:
            await self._retire(self._routes.pop(name))
            self._started.pop(name, None)
            self._swap_locks.pop(name, None)
            result.removed.append(name)
        to_add = {n: s for n, s in wanted.items() if n not in self._routes}
        for name, spec in wanted.items():
            if name in to_add:
                continue
            route = self._routes[name]
            if not self.runs_here(name) and self.manager.state_of(route.key) is None:
                route.resize(spec)  # run elsewhere: nothing to swap here
                result.unchanged.append(name)
                continue
            if _where(route.spec) != _where(spec):
                # Into or out of a process (or another memory limit): a fresh
                # platform with the whole new spec, beside the old one as ever.
                async with self._swap_lock(name):
                    error = await self._replace(self._routes[name], spec)
                if error is not None:
                    result.failed[name] = error
                    continue
                result.switched.append(name)
            elif (route.spec.driver, route.spec.config) != (spec.driver, spec.config):
                try:
                    await self.switch_driver(name, spec.driver, spec.config)
                except DemiError as err:
                    result.failed[name] = str(err)
                    continue
                result.switched.append(name)
            elif self.upgrade_due(name):
                if not await self.restart(name):
                    result.failed[name] = "its new version did not start"
                    continue
                result.upgraded.append(name)
            else:
                result.unchanged.append(name)
            self._routes[name].resize(spec)
        for name, spec in to_add.items():
            self._route_for(name, spec)
        result.failed.update(
            await self._start_all(
                {n: s for n, s in to_add.items() if self.runs_here(n)}
            )
        )
        result.added.extend(n for n in to_add if n not in result.failed)
        LOG.info(
            "reloaded: added %s, removed %s, switched %s, upgraded %s, failed %s",
            result.added, result.removed, result.switched, result.upgraded,
            list(result.failed),
        )  # fmt: skip
        return result

    def upgrade_due(self, instance: str) -> bool:
        """Whether ``instance`` runs in a process on another version of its
        driver's distribution than the one installed now: a restart upgrades it."""
        route = self._routes.get(instance)
        if route is None:
            return False
        proxy = self._proxy_of(route)
        running = proxy.version if proxy is not None else None
        if running is None:
            return False
        installed = self.manager.installed_version(route.spec.driver)
        return installed is not None and installed != running

    def _proxy_of(self, route: Route) -> ProcessPlatform | None:
        """demi's side of a process-isolated instance's platform, while active."""
        if route.spec.isolation != "process":
            return None
        from .isolation._proxy import ProcessPlatform  # only isolated instances

        try:
            platform = self.manager.get_plugin(route.key)
        except PluginNotFoundError:
            return None
        return platform if isinstance(platform, ProcessPlatform) else None


def _where(spec: PlatformSettings) -> tuple[str, int | None]:
    """Where an instance's platform runs: changing it needs a fresh platform."""
    return spec.isolation, spec.memory_limit_mb
