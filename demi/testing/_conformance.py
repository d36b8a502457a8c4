"""The conformance kit: a test class that holds a platform class to demi's contract.

Each check drives the platform the way :class:`~demi.PluginManager` does (same
configuration handling, same timeouts, blocking platforms in worker threads) but
calls it directly, so that a failure can say exactly which promise was broken.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import anyio

from ..platforms.base import PluginHealth
from ._attempts import attempt, kind, require_no_task_left, scope_left_open
from ._inbound_checks import InboundChecks
from ._tasks import running_tasks

__all__ = ["CANCEL_AFTER", "PlatformConformance"]

#: Seconds after which the cancellation checks cancel a call: at its first
#: checkpoint, then a little later, so that cancellation lands at different points.
CANCEL_AFTER = (0.0, 0.001, 0.01)


class PlatformConformance(InboundChecks):
    """Subclass this in your tests to check a platform class against the contract.

    Set :attr:`platform_class`, :attr:`sample_config` and :attr:`sample_requests`;
    every ``test_*`` method then checks one promise of
    :class:`~demi.platforms.BasePlatform`, on asyncio and on trio::

        class TestChatConformance(PlatformConformance):
            platform_class = ChatPlatform
            sample_config = {"greeting": "hi"}
            sample_requests = [{"text": "hello"}]

    A platform that listens is checked on its ``run`` too: it gets ready within
    the init timeout, sends well-formed events, ends when cancelled, and keeps
    answering ``handle_request`` meanwhile. Override :meth:`trigger_events` to make
    its service send it something (and set :attr:`expected_events`); the events
    arrive in a :class:`~demi.testing.FakeInbox`. A platform that takes webhooks
    answers each of :attr:`sample_webhooks`. Neither check applies to a platform
    without those methods: it passes them. A ``run`` that never ends once
    cancelled hangs its check, as it would hang demi's stop; one that ends late
    fails it.

    When the configuration depends on another fixture (the address of a test
    server), override the :meth:`platform_config` fixture instead of setting
    :attr:`sample_config`; likewise :meth:`platform_failing_config`.

    Tasks are counted in the test's own event loop, so run test servers in a thread
    or another process: a task that serves the platform's connection there would
    count as the platform's.
    """

    # -- the checks -------------------------------------------------------------

    def test_class_is_a_valid_platform(self) -> None:
        """The class passes the validation that discovery and the manager apply."""
        __tracebackhide__ = True
        self._platform_class()

    def test_sample_config_passes_config_model(
        self, platform_config: Mapping[str, Any]
    ) -> None:
        """sample_config passes the class's config_model, as loading requires."""
        __tracebackhide__ = True
        self._prepared(platform_config, "sample_config")

    async def test_initialize_returns_true(
        self, platform_config: Mapping[str, Any]
    ) -> None:
        """initialize returns True within the init timeout."""
        __tracebackhide__ = True
        async with self._initialized(platform_config):
            pass

    async def test_health_check_returns_plugin_health(
        self, platform_config: Mapping[str, Any]
    ) -> None:
        """health_check returns a PluginHealth within the health timeout."""
        __tracebackhide__ = True
        async with self._initialized(platform_config) as platform:
            result, problem = await attempt(
                platform, "health_check", timeout=self.health_timeout
            )
            if problem is None and not isinstance(result, PluginHealth):
                problem = f"returned {kind(result)}"
            if problem is not None:
                raise AssertionError(
                    f"health_check must return a PluginHealth within the health "
                    f"timeout ({self.health_timeout:g}s), but it {problem}."
                )

    async def test_handle_request_returns_a_dict(
        self, platform_config: Mapping[str, Any]
    ) -> None:
        """handle_request returns a dict for every sample request, in time."""
        __tracebackhide__ = True
        requests = self._requests()
        async with self._initialized(platform_config) as platform:
            await self._require_dict_answers(platform, requests, "")

    async def test_shutdown_is_idempotent(
        self, platform_config: Mapping[str, Any]
    ) -> None:
        """shutdown can be called a second time after a clean first one."""
        __tracebackhide__ = True
        async with self._initialized(platform_config) as platform:
            pass
        _, problem = await attempt(platform, "shutdown", timeout=self.shutdown_timeout)
        if problem is not None:
            raise AssertionError(
                f"shutdown must be safe to call more than once, but the second call "
                f"{problem}."
            )

    async def test_shutdown_works_after_failed_initialize(
        self, platform_failing_config: Mapping[str, Any] | None
    ) -> None:
        """shutdown works after initialize failed (with failing_config, or never ran)."""
        __tracebackhide__ = True
        platform = self._new_platform()
        if platform_failing_config is not None:
            options = self._prepared(platform_failing_config, "failing_config")
            result, _ = await attempt(
                platform, "initialize", options, timeout=self.init_timeout
            )
            if result is True:
                await attempt(platform, "shutdown", timeout=self.shutdown_timeout)
                raise AssertionError(
                    "failing_config must make initialize fail, but initialize "
                    "returned True."
                )
        _, problem = await attempt(platform, "shutdown", timeout=self.shutdown_timeout)
        if problem is not None:
            raise AssertionError(
                f"shutdown must work after a failed initialize, but it {problem}."
            )

    async def test_cancelled_initialize_leaves_no_task_running(
        self, platform_config: Mapping[str, Any]
    ) -> None:
        """A cancelled initialize, then shutdown, leaves no task of the platform running."""
        __tracebackhide__ = True
        options = self._prepared(platform_config, "sample_config")
        for delay in CANCEL_AFTER:
            before = running_tasks()
            platform = self._new_platform()
            try:
                with anyio.move_on_after(delay):
                    await attempt(
                        platform, "initialize", options, timeout=self.init_timeout
                    )
            except RuntimeError as err:
                # Leaving our own scope fails too once initialize left one open.
                if scope_left_open(err) and isinstance(err.__context__, AssertionError):
                    raise err.__context__ from None
                raise
            with anyio.CancelScope(shield=True):
                await attempt(platform, "shutdown", timeout=self.shutdown_timeout)
            require_no_task_left(before, "A cancelled initialize followed by shutdown")

    async def test_cancelled_handle_request_leaves_no_task_running(
        self, platform_config: Mapping[str, Any]
    ) -> None:
        """A cancelled handle_request leaves no task of its own running."""
        __tracebackhide__ = True
        requests = self._requests()
        async with self._initialized(platform_config) as platform:
            before = running_tasks()
            for index, request in enumerate(requests):
                for delay in CANCEL_AFTER:
                    with anyio.move_on_after(delay):
                        await attempt(
                            platform,
                            "handle_request",
                            request,
                            timeout=self.request_timeout,
                        )
                    require_no_task_left(
                        before,
                        f"A cancelled handle_request (sample_requests[{index}])",
                    )

    async def test_shutdown_leaves_no_task_running(
        self, platform_config: Mapping[str, Any]
    ) -> None:
        """After initialize, a health check, the sample requests and shutdown, no task
        of the platform is left running."""
        __tracebackhide__ = True
        options = self._prepared(platform_config, "sample_config")
        requests = self._requests()
        before = running_tasks()
        platform = self._new_platform()
        # The outcomes are judged by the other checks; this one counts tasks.
        ready, _ = await attempt(
            platform, "initialize", options, timeout=self.init_timeout
        )
        if ready is True:
            await attempt(platform, "health_check", timeout=self.health_timeout)
            for request in requests:
                await attempt(
                    platform, "handle_request", request, timeout=self.request_timeout
                )
        await self._require_shutdown(platform)
        require_no_task_left(before, "shutdown")
