"""The conformance kit: a test class that holds a platform class to demi's contract.

Each check drives the platform the way :class:`~demi.PluginManager` does (same
configuration handling, same timeouts, blocking platforms in worker threads) but
calls it directly, so that a failure can say exactly which promise was broken.
"""

from __future__ import annotations

import importlib.util
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any, ClassVar, cast

import anyio
import pytest

from ..core.config import DemiSettings
from ..core.prepare import prepare_config
from ..exceptions import PlatformConfigError, PluginLoadError, PluginValidationError
from ..platforms.base import BasePlatform, PluginHealth
from ..platforms.sync import SyncPlatform
from ..plugins.discovery import validate_plugin_class
from ._attempts import attempt, detail, kind, label, sentence_part, still_running
from ._tasks import new_tasks, running_tasks

__all__ = ["BACKENDS", "CANCEL_AFTER", "PlatformConformance"]

#: The anyio backends every check runs on.
BACKENDS = ("asyncio", "trio")

#: Seconds after which the cancellation checks cancel a call: at its first
#: checkpoint, then a little later, so that cancellation lands at different points.
CANCEL_AFTER = (0.0, 0.001, 0.01)


# The instance name the checks configure the platform under, for messages.
_INSTANCE = "conformance"


def _default_timeout(name: str) -> float:
    return float(DemiSettings.model_fields[name].default)


class PlatformConformance:
    """Subclass this in your tests to check a platform class against the contract.

    Set :attr:`platform_class`, :attr:`sample_config` and :attr:`sample_requests`;
    every ``test_*`` method then checks one promise of
    :class:`~demi.platforms.BasePlatform`, on asyncio and on trio::

        class TestChatConformance(PlatformConformance):
            platform_class = ChatPlatform
            sample_config = {"greeting": "hi"}
            sample_requests = [{"text": "hello"}]

    When the configuration depends on another fixture (the address of a test
    server), override the :meth:`platform_config` fixture instead of setting
    :attr:`sample_config`; likewise :meth:`platform_failing_config`.

    Tasks are counted in the test's own event loop, so run test servers in a thread
    or another process: a task that serves the platform's connection there would
    count as the platform's.
    """

    pytestmark: ClassVar[list[pytest.MarkDecorator]] = [
        pytest.mark.anyio,
        pytest.mark.demi_conformance,
    ]

    #: The platform class under test (required).
    platform_class: ClassVar[type[BasePlatform] | type[SyncPlatform] | None] = None
    #: A configuration that ``initialize`` accepts (it must pass ``config_model``).
    sample_config: ClassVar[Mapping[str, Any]] = {}
    #: Requests that ``handle_request`` must answer with a dict (at least one).
    sample_requests: ClassVar[Sequence[Mapping[str, Any]]] = ()
    #: A configuration that passes ``config_model`` but makes ``initialize`` fail
    #: (return ``False`` or raise), if there is one; without it, shutdown after a
    #: failed initialize is checked on an instance whose initialize never ran.
    failing_config: ClassVar[Mapping[str, Any] | None] = None

    #: The bounds the checks hold the platform to; demi's defaults unless changed.
    init_timeout: ClassVar[float] = _default_timeout("init_timeout")
    health_timeout: ClassVar[float] = _default_timeout("health_timeout")
    request_timeout: ClassVar[float] = _default_timeout("request_timeout")
    shutdown_timeout: ClassVar[float] = _default_timeout("shutdown_timeout")

    # -- fixtures ---------------------------------------------------------------

    @pytest.fixture(params=BACKENDS)
    def anyio_backend(self, request: pytest.FixtureRequest) -> str:
        """Run every check on asyncio and on trio; a missing trio fails, never skips."""
        backend = str(request.param)
        if backend == "trio" and importlib.util.find_spec("trio") is None:
            pytest.fail(
                "The conformance kit checks every platform on trio as well, so trio "
                "must be installed (pip install 'demi-conductor[testing]').",
                pytrace=False,
            )
        return backend

    @pytest.fixture
    def platform_config(self) -> Mapping[str, Any]:
        """The configuration the checks initialize with: :attr:`sample_config`."""
        return self.sample_config

    @pytest.fixture
    def platform_failing_config(self) -> Mapping[str, Any] | None:
        """A configuration that makes initialize fail: :attr:`failing_config`."""
        return self.failing_config

    # -- the checks -------------------------------------------------------------

    def test_class_is_a_valid_platform(self) -> None:
        """The class passes the validation that discovery and the manager apply."""
        self._platform_class()

    def test_sample_config_passes_config_model(
        self, platform_config: Mapping[str, Any]
    ) -> None:
        """sample_config passes the class's config_model, as loading requires."""
        self._prepared(platform_config, "sample_config")

    async def test_initialize_returns_true(
        self, platform_config: Mapping[str, Any]
    ) -> None:
        """initialize returns True within the init timeout."""
        async with self._initialized(platform_config):
            pass

    async def test_health_check_returns_plugin_health(
        self, platform_config: Mapping[str, Any]
    ) -> None:
        """health_check returns a PluginHealth within the health timeout."""
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
        requests = self._requests()
        async with self._initialized(platform_config) as platform:
            for index, request in enumerate(requests):
                result, problem = await attempt(
                    platform, "handle_request", request, timeout=self.request_timeout
                )
                if problem is None and not isinstance(result, dict):
                    problem = f"returned {kind(result)}"
                if problem is not None:
                    raise AssertionError(
                        f"handle_request must return a dict within the request "
                        f"timeout ({self.request_timeout:g}s), but for "
                        f"sample_requests[{index}] it {problem}."
                    )

    async def test_shutdown_is_idempotent(
        self, platform_config: Mapping[str, Any]
    ) -> None:
        """shutdown can be called a second time after a clean first one."""
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
        options = self._prepared(platform_config, "sample_config")
        for delay in CANCEL_AFTER:
            before = running_tasks()
            platform = self._new_platform()
            with anyio.move_on_after(delay):
                await attempt(
                    platform, "initialize", options, timeout=self.init_timeout
                )
            with anyio.CancelScope(shield=True):
                await attempt(platform, "shutdown", timeout=self.shutdown_timeout)
            leaked = new_tasks(before)
            if leaked:
                raise AssertionError(
                    f"A cancelled initialize followed by shutdown must leave no task "
                    f"running, but {still_running(leaked)}."
                )

    async def test_cancelled_handle_request_leaves_no_task_running(
        self, platform_config: Mapping[str, Any]
    ) -> None:
        """A cancelled handle_request leaves no task of its own running."""
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
                    leaked = new_tasks(before)
                    if leaked:
                        raise AssertionError(
                            f"A cancelled handle_request must leave no task running, "
                            f"but for sample_requests[{index}] "
                            f"{still_running(leaked)}."
                        )

    async def test_shutdown_leaves_no_task_running(
        self, platform_config: Mapping[str, Any]
    ) -> None:
        """After initialize, a health check, the sample requests and shutdown, no task
        of the platform is left running."""
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
        leaked = new_tasks(before)
        if leaked:
            raise AssertionError(
                f"shutdown must leave no task running, but {still_running(leaked)}."
            )

    # -- helpers ----------------------------------------------------------------

    def _platform_class(self) -> type[BasePlatform]:
        """The validated class under test."""
        cls = self.platform_class
        if cls is None:
            raise AssertionError(
                f"Set platform_class on {type(self).__qualname__} to the platform "
                f"class under test."
            )
        try:
            validate_plugin_class(cls)
        except PluginValidationError as err:
            raise AssertionError(
                f"{label(cls)} must fulfil the BasePlatform contract, but "
                f"{sentence_part(str(err))}."
            ) from None
        # A SyncPlatform is a BasePlatform at run time (validation just said so).
        return cast(type[BasePlatform], cls)

    def _new_platform(self) -> BasePlatform:
        cls = self._platform_class()
        try:
            return cls()
        except Exception as err:
            raise AssertionError(
                f"{label(cls)} must be constructible with no arguments, but "
                f"{label(cls)}() raised {detail(err)}."
            ) from err

    def _prepared(self, config: Mapping[str, Any], attribute: str) -> dict[str, Any]:
        """``config`` as the manager passes it to initialize: through
        :func:`~demi.core.prepare.prepare_config`, the one preparation there is."""
        cls = self._platform_class()
        try:
            return prepare_config(cls.config_model, config, instance=_INSTANCE)
        except PlatformConfigError as err:
            problems = "; ".join(f"{key} ({what})" for key, what in err.problems)
            raise AssertionError(
                f"{attribute} must pass {label(cls)}.config_model, but it fails on "
                f"{sentence_part(problems)}."
            ) from None
        except PluginLoadError as err:
            # The message already shows what the model raised, safely.
            raise AssertionError(
                f"{attribute} must pass {label(cls)}.config_model, but "
                f"{sentence_part(str(err))}."
            ) from None

    def _requests(self) -> Sequence[Mapping[str, Any]]:
        if not self.sample_requests:
            raise AssertionError(
                f"Set sample_requests on {type(self).__qualname__} to at least one "
                f"request for handle_request to answer."
            )
        return self.sample_requests

    @asynccontextmanager
    async def _initialized(
        self, config: Mapping[str, Any]
    ) -> AsyncIterator[BasePlatform]:
        """A platform initialized with ``config``, shut down (and checked) on exit."""
        options = self._prepared(config, "sample_config")
        platform = self._new_platform()
        try:
            ready, problem = await attempt(
                platform, "initialize", options, timeout=self.init_timeout
            )
            if problem is None and ready is not True:
                problem = f"returned {kind(ready)}"
            if problem is not None:
                raise AssertionError(
                    f"initialize must return True within the init timeout "
                    f"({self.init_timeout:g}s), but it {problem}."
                )
            yield platform
        except BaseException:
            with anyio.CancelScope(shield=True):
                await attempt(platform, "shutdown", timeout=self.shutdown_timeout)
            raise
        await self._require_shutdown(platform)

    async def _require_shutdown(self, platform: BasePlatform) -> None:
        with anyio.CancelScope(shield=True):
            _, problem = await attempt(
                platform, "shutdown", timeout=self.shutdown_timeout
            )
        if problem is not None:
            raise AssertionError(
                f"shutdown must finish within the shutdown timeout "
                f"({self.shutdown_timeout:g}s) without raising, but it {problem}."
            )
