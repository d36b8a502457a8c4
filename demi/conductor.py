"""The conductor: runs the configured platform instances and routes requests to them.

Each configured instance (``[platforms.chat]`` with ``driver = "echo"``) gets a
*route*: the manager key of the platform currently behind it, a concurrency limiter
and a count of requests in flight. Swapping a driver builds a new route beside the old
one and moves the pointer only once the new platform is active; the old route drains
before its platform is shut down. A request reads the route once, so it never sees a
half-swapped platform.
"""

from __future__ import annotations

import itertools
import os
import time
from collections.abc import AsyncGenerator, Callable, Iterable, Mapping
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, Self

import anyio
from anyio import AsyncContextManagerMixin

from ._calling import deliver_webhook, send
from ._inbound import Inbound
from ._routing import InstanceStatus, ReloadResult, Route
from ._startup import check_configs, check_drivers
from ._swapping import Swapping
from .core.config import DemiSettings, PlatformSettings, load_settings
from .core.logger import get_logger
from .exceptions import (
    DemiError,
    PlatformRequestError,
    PlatformUnavailableError,
    PluginLoadError,
    PluginNotFoundError,
)
from .inbox import Handler
from .platforms.base import PluginHealth
from .platforms.inbound import WebhookRequest, WebhookResponse
from .plugins.base import PluginState
from .plugins.manager import PluginManager

if TYPE_CHECKING:
    pass

__all__ = ["Conductor", "InstanceStatus", "ReloadResult", "RequestObserver"]

LOG = get_logger(__name__)

#: Told of every finished request: instance, seconds taken, and the error if it failed.
RequestObserver = Callable[[str, float, "BaseException | None"], None]


class Conductor(Swapping, AsyncContextManagerMixin):
    """Starts the enabled platform instances, routes requests, swaps drivers.

    ::

        async with Conductor() as conductor:
            reply = await conductor.dispatch("echo", {"text": "hi"})

    :param settings: read from the environment and the TOML file when ``None``.
    :param manager: the plugin manager to use (one is built from ``settings``).
    :param config_file: the TOML file :meth:`reload` re-reads (default: as
        :func:`~demi.core.config.load_settings` resolves it).
    """

    def __init__(
        self,
        settings: DemiSettings | None = None,
        *,
        handler: Handler | None = None,
        manager: PluginManager | None = None,
        config_file: str | os.PathLike[str] | None = None,
    ) -> None:
        self._config_file = config_file
        self._handler = handler
        self.settings = settings if settings is not None else load_settings(config_file)
        self.manager = (
            manager if manager is not None else PluginManager(settings=self.settings)
        )
        self._routes: dict[str, Route] = {}
        # Instances in the order they became active (a dict as an ordered set):
        # stopped in reverse.
        self._started: dict[str, None] = {}
        self._generations = itertools.count(2)
        self._swap_locks: dict[str, anyio.Lock] = {}
        self._observers: list[RequestObserver] = []
        self._accepting = False
        self._stop_scope: anyio.CancelScope | None = None
        # The instances this conductor runs, when it runs a share of them (a
        # member of a coordination group); None: every enabled instance.
        self._assigned: frozenset[str] | None = None
        self._inbound = Inbound(lambda: self.settings, self.reply, handler)

    @asynccontextmanager
    async def __asynccontextmanager__(self) -> AsyncGenerator[Self]:
        async with self.session():
            await self.start()
            try:
                yield self
            finally:
                await self.stop()

    @asynccontextmanager
    async def session(self) -> AsyncGenerator[Self]:
        """Host the conductor's background work for the block: the connections of
        listening platforms (their ``run``) and the handler that inbound events go
        to. :meth:`start` and :meth:`stop` go inside it (``async with conductor``
        does all three); a platform that listens cannot start outside one.

        :raises ConfigError: the configured handler is not installed.
        """
        try:
            async with self.manager, self._inbound.dispatching():
                try:
                    yield self
                finally:
                    await self.stop()
        except BaseExceptionGroup as group:
            # The dispatcher's task group wraps what the block raised; callers
            # expect it as it was raised.
            sole = _sole(group)
            if sole is group:
                raise
            raise sole from sole.__cause__

    @property
    def inbound(self) -> Inbound:
        """Inbound events: the handler's observers and each instance's inbox."""
        return self._inbound

    # -- starting -------------------------------------------------------------

    async def start(self) -> None:
        """Start every enabled instance at once.

        Every instance's driver and configuration are checked before anything
        starts. An instance that then fails is reported and left ``failed``; the
        others carry on. Cancelled while starting, it stops what had started
        (shielded, bounded by ``stop_timeout``) before the cancellation goes on.

        :raises ConfigError: an enabled instance names a driver that is not
            installed, or gives its driver a configuration it rejects (naming the
            key and where it came from); nothing has started.
        :raises PluginLoadError: an instance marked ``required`` failed; everything
            started so far has been stopped again.
        """
        specs = self.settings.enabled_platforms()
        check_drivers(self.manager, self.settings, specs)
        await check_configs(self.manager, self.settings, specs)
        self._accepting = True
        # Every instance gets its route, in configuration order, so instances()
        # lists those run elsewhere too; only this conductor's share starts.
        for name, spec in specs.items():
            self._route_for(name, spec)
        mine = {name: spec for name, spec in specs.items() if self.runs_here(name)}
        try:
            failures = await self._start_all(mine)
        except BaseException:
            await self.stop()
            raise
        fatal = {name: why for name, why in failures.items() if specs[name].required}
        if fatal:
            await self.stop()
            name, why = next(iter(fatal.items()))
            raise PluginLoadError(
                name, f"required platform {name!r} did not start: {why}"
            )

    async def _start_all(self, specs: Mapping[str, PlatformSettings]) -> dict[str, str]:
        failures: dict[str, str] = {}

        async def start_one(route: Route) -> None:
            error = await self._load(route)
            if error is None:
                self._started.setdefault(route.instance, None)
            else:
                failures[route.instance] = error

        # Routes first, in configuration order: the tasks below start in any order
        # (trio shuffles them), and instances() lists routes in their order.
        routes = [self._route_for(name, spec) for name, spec in specs.items()]
        async with anyio.create_task_group() as group:
            for route in routes:
                group.start_soon(start_one, route)
        return failures

    # -- a share of the instances ----------------------------------------------

    def runs_here(self, instance: str) -> bool:
        """Whether ``instance`` is this conductor's to run: every instance is, unless
        :meth:`assign` or :meth:`run_only` gave it a share."""
        return self._assigned is None or instance in self._assigned

    def assign(self, names: Iterable[str] | None) -> None:
        """Before :meth:`start`: run only ``names`` among the enabled instances (the
        others are listed, never started); ``None``: all of them."""
        self._assigned = None if names is None else frozenset(names)

    async def run_only(
        self, names: Iterable[str], *, stop_timeout: float | None = None
    ) -> dict[str, str]:
        """Make the running share exactly ``names`` (among the enabled instances):
        stop those outside it (side by side, each as a removed instance is stopped:
        its requests drain, then its platform shuts down, bounded by
        ``stop_timeout``, else ``shutdown_timeout``) and then start those in it that
        are not running, through the same start path as :meth:`start`.

        Before :meth:`start` (or once stopping) it only records the share.

        :returns: the instances that did not start, with the reason.
        """
        self._assigned = frozenset(names)
        if not self._accepting:
            return {}
        leaving = [
            route
            for name, route in self._routes.items()
            if not self.runs_here(name) and self.manager.state_of(route.key) is not None
        ]
        if leaving:
            async with anyio.create_task_group() as group:
                for route in leaving:
                    group.start_soon(self._give_up_share, route, stop_timeout)
        wanted = self.settings.enabled_platforms()
        for name, spec in wanted.items():
            self._route_for(name, spec)
        joining = {
            name: spec
            for name, spec in wanted.items()
            if self.runs_here(name)
            and self.manager.state_of(self._routes[name].key) is None
        }
        return await self._start_all(joining) if joining else {}

    async def _give_up_share(self, route: Route, timeout: float | None) -> None:
        async with self._swap_lock(route.instance):
            current = self._routes.get(route.instance, route)
            await self._retire(current, timeout)
            self._started.pop(route.instance, None)
            LOG.info(
                "platform %s: stopped here (no longer this one's share)", route.instance
            )

    def _route_for(self, name: str, spec: PlatformSettings) -> Route:
        route = self._routes.get(name)
        if route is None:
            route = self._routes[name] = Route.to(name, spec, name)
        return route

    async def _load(self, route: Route) -> str | None:
        """Load the route's driver under its manager key, with a fresh handle on the
        instance's inbox; return why it failed, if it did."""
        spec, instance = route.spec, route.instance
        route.inbox = self._inbound.handle_for(instance)
        try:
            await self.manager.load_plugin(
                spec.driver, spec.config, instance=route.key, label=instance,
                inbox=route.inbox, isolation=spec.isolation,
                memory_limit_mb=spec.memory_limit_mb,
            )  # fmt: skip
        except DemiError as err:
            LOG.error(
                "platform %s (driver %s) did not start: %s", instance, spec.driver, err
            )
            return str(err)
        return None

    # -- requests -------------------------------------------------------------

    def add_request_observer(self, observer: RequestObserver) -> None:
        """Call ``observer(instance, seconds, error)`` after every dispatched request."""
        self._observers.append(observer)

    async def dispatch(
        self, instance: str, request: Mapping[str, Any]
    ) -> dict[str, Any]:
        """Send ``request`` to the platform behind ``instance``; return its response.

        Bounded by the request timeout and the instance's ``max_concurrency``. Errors
        are raised as :class:`~demi.PlatformRequestError` subclasses naming the
        instance; the platform stays usable.

        :raises PluginNotFoundError: no such instance is configured.
        :raises PlatformUnavailableError: the instance is not active, or the
            conductor is stopping.
        :raises PlatformTimeoutError: no answer within the request timeout.
        :raises PlatformRequestError: the platform raised or answered with a non-dict.
        """
        if not isinstance(request, Mapping):
            raise PlatformRequestError(
                instance, f"a request must be a mapping, not {type(request).__name__}"
            )
        route = self._route(instance)
        if not self._accepting:
            raise PlatformUnavailableError(
                instance,
                f"platform {instance!r} refused the request: demi is not running "
                "(not started yet, or stopping)",
            )
        return await self._dispatch_on(route, request)

    async def reply(self, instance: str, request: Mapping[str, Any]) -> dict[str, Any]:
        """:meth:`dispatch` for the handler's replies, which may still go out while
        demi is stopping (the handler finishes buffered events before platforms shut
        down)."""
        return await self._dispatch_on(self._route(instance), request)

    async def _dispatch_on(
        self, route: Route, request: Mapping[str, Any]
    ) -> dict[str, Any]:
        instance = route.instance
        started = time.perf_counter()
        route.enter()
        error: BaseException | None = None
        try:
            # A free token is taken without yielding to the loop: a checkpoint per
            # request doubled the cost of dispatch. The plugin call checkpoints anyway.
            try:
                route.limiter.acquire_nowait()
            except anyio.WouldBlock:
                await route.limiter.acquire()
            try:
                return await send(
                    self.manager, route, request, self.settings.request_timeout
                )
            finally:
                route.limiter.release()
        except BaseException as err:
            error = err
            raise
        finally:
            route.leave()
            elapsed = time.perf_counter() - started
            for observer in self._observers:
                observer(instance, elapsed, error)

    async def webhook(self, instance: str, request: WebhookRequest) -> WebhookResponse:
        """Hand an HTTP callback to the ``handle_webhook`` of the platform behind
        ``instance`` (with the instance's inbox); return its response.

        :raises PluginNotFoundError: no such instance, or its platform takes no
            webhooks.
        :raises PlatformUnavailableError: it is not active, or demi is stopping.
        :raises PlatformTimeoutError: no answer within the request timeout.
        :raises PlatformRequestError: the platform raised, or answered with something
            that is not a :class:`~demi.WebhookResponse`.
        """
        route = self._route(instance)
        if not self._accepting:
            raise PlatformUnavailableError(
                instance, f"platform {instance!r} refused the webhook: demi is stopping"
            )
        return await deliver_webhook(
            self.manager, route, request, self.settings.request_timeout
        )

    def _route(self, instance: str) -> Route:
        route = self._routes.get(instance)
        if route is None:
            configured = ", ".join(sorted(self._routes)) or "none"
            raise PluginNotFoundError(
                instance, f"no platform instance {instance!r}; running: {configured}"
            )
        return route

    # -- status and health ----------------------------------------------------

    def instances(self) -> list[InstanceStatus]:
        """A snapshot of every configured instance, in configuration order."""
        statuses = []
        for name, route in self._routes.items():
            meta = self.manager.metadata(route.key)
            proxy = self._proxy_of(route)
            # An isolated platform's proxy reads its child in a run of its own:
            # that is a connection of the platform's only if it listens.
            quiet = route.spec.isolation == "process" and not (
                proxy is not None and proxy.shape.listens
            )
            statuses.append(
                InstanceStatus(
                    instance=name,
                    driver=route.spec.driver,
                    required=route.spec.required,
                    state=meta.state if meta else None,
                    error=meta.error if meta else None,
                    health=meta.health if meta else None,
                    in_flight=route.in_flight,
                    time_in_states=meta.seconds_in_state if meta else {},
                    connected=meta.connected if meta and not quiet else None,
                    fatal=meta.fatal if meta else False,
                    inbox_depth=self._inbound.depth(name),
                    pid=proxy.pid if proxy is not None else None,
                    version=proxy.version if proxy is not None else None,
                )
            )
        return statuses

    def spec_of(self, instance: str) -> PlatformSettings | None:
        """The settings an instance runs with, or ``None`` if it is not configured."""
        route = self._routes.get(instance)
        return route.spec if route else None

    async def fail(self, instance: str, reason: str) -> None:
        """Take ``instance`` out of service for good (until a restart or reload):
        its platform is shut down and left ``failed`` with ``reason``."""
        route = self._routes.get(instance)
        if route is not None:
            await self.manager.fail_plugin(route.key, reason)

    async def check_health(self) -> dict[str, PluginHealth]:
        """One concurrent health round over the active instances, by instance name."""
        by_key = await self.manager.health_check_all()
        return {
            name: by_key[route.key]
            for name, route in self._routes.items()
            if route.key in by_key
        }

    async def check_one(self, instance: str) -> PluginHealth:
        """Check one active instance now; never raises for what the plugin does.

        :raises PluginNotFoundError: no such instance, or it is not active.
        """
        return await self.manager.health_check(self._route(instance).key)

    def record_health(self, instance: str, health: PluginHealth) -> None:
        """Record ``health`` as the latest result of ``instance`` (see
        :meth:`PluginManager.record_health`)."""
        route = self._routes.get(instance)
        if route is not None:
            self.manager.record_health(route.key, health)

    @property
    def accepting(self) -> bool:
        """Whether new requests are accepted (false before start and once stopping)."""
        return self._accepting

    # -- stopping -------------------------------------------------------------

    async def stop(self) -> None:
        """Stop accepting requests, drain, and shut down in reverse start order.

        Shutdowns begin in reverse start order and overlap. Shielded from
        cancellation and bounded as a whole by ``stop_timeout``; each platform's
        shutdown by ``shutdown_timeout``. :meth:`abort` cuts it short.
        """
        self._accepting = False
        settings = self.settings
        deadline = anyio.current_time() + settings.stop_timeout
        with anyio.CancelScope(deadline=deadline, shield=True) as scope:
            self._stop_scope = scope
            # No new events first: every connection ends. Then the handler finishes
            # what was buffered (its replies still go out), then platforms stop.
            quarter = settings.stop_timeout / 4
            await self.manager.disconnect_all(min(settings.shutdown_timeout, quarter))
            await self._inbound.drain(max(deadline - anyio.current_time(), 0) / 2)
            drain_for = min(settings.shutdown_timeout, settings.stop_timeout / 2)
            async with anyio.create_task_group() as group:
                for route in self._routes.values():
                    if route.in_flight:
                        group.start_soon(route.drain, drain_for)
            # Shutdowns begin in reverse start order and then run side by side, so
            # one slow shutdown cannot eat the rest's share of the stop budget.
            remaining = max(deadline - anyio.current_time(), 0.001)
            timeout = min(settings.shutdown_timeout, remaining)
            async with anyio.create_task_group() as group:
                for name in reversed(self._started):
                    key = self._routes[name].key
                    group.start_soon(self.manager.begin_unload(key, timeout=timeout))
            await self.manager.unload_all()
        self._stop_scope = None
        if scope.cancel_called:
            left = [
                n
                for n in self._started
                if self.manager.state_of(self._routes[n].key) is PluginState.ACTIVE
            ]
            LOG.error("stop cut short; not shut down: %s", ", ".join(left) or "none")
        self._started.clear()

    def abort(self) -> None:
        """Cut a running :meth:`stop` short (a second signal): the shutdown in progress
        and the remaining ones are abandoned."""
        if self._stop_scope is not None:
            self._stop_scope.cancel()
            self.manager.abandon_shutdowns()

    def only(self, names: Iterable[str]) -> Self:
        """Restrict this (not yet started) conductor to the named instances.

        :raises PluginNotFoundError: a name is not configured.
        """
        platforms = self.settings.platforms
        chosen = {}
        for name in names:
            if name not in platforms:
                configured = ", ".join(sorted(platforms)) or "none"
                raise PluginNotFoundError(
                    name,
                    f"no platform instance {name!r} is configured; configured: {configured}",
                )
            chosen[name] = platforms[name].model_copy(update={"enabled": True})
        self.settings = self.settings.model_copy(update={"platforms": chosen})
        return self


def _sole(error: BaseException) -> BaseException:
    """The one exception inside nested single-member groups (else the group)."""
    while isinstance(error, BaseExceptionGroup) and len(error.exceptions) == 1:
        error = error.exceptions[0]
    return error
