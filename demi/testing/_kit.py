"""The kit's foundation: what an author sets, the fixtures, and driving a platform
as the manager does (configuration, construction, initialize and shutdown)."""

from __future__ import annotations

import importlib.metadata
import importlib.util
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any, ClassVar, Literal, cast

import anyio
import pytest

from ..core.config import DemiSettings
from ..core.prepare import prepare_config
from ..exceptions import PlatformConfigError, PluginLoadError, PluginValidationError
from ..platforms.base import BasePlatform
from ..platforms.sync import SyncPlatform
from ..plugins.discovery import DEFAULT_NAMESPACE, validate_plugin_class
from ._attempts import attempt, detail, kind, label, sentence_part

__all__ = ["BACKENDS", "INSTANCE", "KitBase"]

#: The anyio backends every check runs on.
BACKENDS = ("asyncio", "trio")

#: The instance name the checks configure the platform under, for messages.
INSTANCE = "conformance"


def _default_timeout(name: str) -> float:
    __tracebackhide__ = True
    return float(DemiSettings.model_fields[name].default)


class KitBase:
    """What :class:`~demi.testing.PlatformConformance` is built on (see there)."""

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

    #: ``"process"`` runs every check against the platform in a child process, as
    #: ``isolation = "process"`` does, so its configuration, requests, replies,
    #: events and webhooks must cross the process boundary. The platform must be
    #: installed as an entry point in :attr:`namespace` (the child imports it from
    #: there), and :meth:`trigger_events` gets the conductor's side of it.
    isolation: ClassVar[Literal["inproc", "process"]] = "inproc"
    #: The entry-point group the platform is installed in (for ``"process"``).
    namespace: ClassVar[str] = DEFAULT_NAMESPACE

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

    # -- helpers ----------------------------------------------------------------

    def _platform_class(self) -> type[BasePlatform]:
        """The validated class under test."""
        __tracebackhide__ = True
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
        __tracebackhide__ = True
        cls = self._platform_class()
        if self.isolation == "process":
            return self._in_a_process(cls)
        try:
            return cls()
        except Exception as err:
            raise AssertionError(
                f"{label(cls)} must be constructible with no arguments, but "
                f"{label(cls)}() raised {detail(err)}."
            ) from None

    def _in_a_process(self, cls: type[BasePlatform]) -> BasePlatform:
        """demi's side of ``cls`` run in a child process, as the manager makes it."""
        __tracebackhide__ = True
        from ..isolation._proxy import process_platform

        target = f"{cls.__module__}:{cls.__qualname__}"
        for ep in importlib.metadata.entry_points(group=self.namespace):
            if ep.value.replace(" ", "") == target:
                platform = process_platform(self.namespace, ep.name)()
                platform._demi_name = INSTANCE
                return platform
        raise AssertionError(
            f'isolation = "process" runs {label(cls)} in a child process, which '
            f"imports it by its entry point, so it must be installed with one in "
            f"{self.namespace!r} (none points at {target})."
        )

    def _prepared(self, config: Mapping[str, Any], attribute: str) -> dict[str, Any]:
        """``config`` as the manager passes it to initialize: through
        :func:`~demi.core.prepare.prepare_config`, the one preparation there is."""
        __tracebackhide__ = True
        cls = self._platform_class()
        try:
            return prepare_config(cls.config_model, config, instance=INSTANCE)
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
        __tracebackhide__ = True
        if not self.sample_requests:
            raise AssertionError(
                f"Set sample_requests on {type(self).__qualname__} to at least one "
                f"request for handle_request to answer."
            )
        return self.sample_requests

    async def _require_dict_answers(
        self, platform: BasePlatform, requests: Sequence[Mapping[str, Any]], when: str
    ) -> None:
        """Fail with one sentence unless ``platform`` answers every request with a
        dict within the request timeout (``when``: the circumstance to name)."""
        __tracebackhide__ = True
        for index, request in enumerate(requests):
            result, problem = await attempt(
                platform, "handle_request", request, timeout=self.request_timeout
            )
            if problem is None and not isinstance(result, dict):
                problem = f"returned {kind(result)}"
            if problem is not None:
                raise AssertionError(
                    f"handle_request must return a dict within the request timeout "
                    f"({self.request_timeout:g}s){when}, but for "
                    f"sample_requests[{index}] it {problem}."
                )

    @asynccontextmanager
    async def _initialized(
        self, config: Mapping[str, Any]
    ) -> AsyncIterator[BasePlatform]:
        """A platform initialized with ``config``, shut down (and checked) on exit."""
        __tracebackhide__ = True
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
        __tracebackhide__ = True
        with anyio.CancelScope(shield=True):
            _, problem = await attempt(
                platform, "shutdown", timeout=self.shutdown_timeout
            )
        if problem is not None:
            raise AssertionError(
                f"shutdown must finish within the shutdown timeout "
                f"({self.shutdown_timeout:g}s) without raising, but it {problem}."
            )
