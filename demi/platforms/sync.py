"""Platforms written with blocking code: :class:`SyncPlatform`."""

from __future__ import annotations

import abc
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, ClassVar

from .base import BasePlatform, PluginHealth

if TYPE_CHECKING:
    from anyio.abc import TaskStatus
    from pydantic import BaseModel

    from .inbound import Inbox, WebhookRequest, WebhookResponse

__all__ = ["SyncPlatform"]

if TYPE_CHECKING:
    # What type checkers see as the base of SyncPlatform: BasePlatform without its
    # four coroutine methods. At run time the base is BasePlatform itself (below).
    # mypy checks a method against every base class that defines it, so with
    # BasePlatform visible, each plain ``def initialize`` of every author's subclass
    # would be an [override] error against ``async def initialize``.
    class _PlatformBase(abc.ABC):
        config_model: ClassVar[type[BaseModel] | None]
        exclusive: ClassVar[bool | None]
        supported_backends: ClassVar[tuple[str, ...] | None]
        _demi_name: str | None
        _demi_state: Callable[[], str] | None

        # Declarations only (never run), hence no bodies and no abstract marks.
        @property  # noqa: B027
        def name(self) -> str: ...

        @property  # noqa: B027
        def status(self) -> str: ...

        async def run(  # noqa: B027
            self, inbox: Inbox, *, task_status: TaskStatus[None] = ...
        ) -> None: ...

        async def handle_webhook(  # noqa: B027
            self, request: WebhookRequest, inbox: Inbox
        ) -> WebhookResponse: ...

else:
    _PlatformBase = BasePlatform


class SyncPlatform(_PlatformBase):
    """Base class of a platform whose four methods are plain ``def`` and may block.

    At run time a SyncPlatform is a :class:`~demi.platforms.BasePlatform` (discovery,
    the manager and ``isinstance`` treat it as one); type checkers see it apart, so
    that plain methods type-check without an ignore.

    Subclasses write ``initialize``, ``health_check``, ``handle_request`` and
    ``shutdown`` as ordinary functions, free to call blocking libraries (``requests``,
    database drivers, ``time.sleep``). The manager sees :attr:`blocking` and runs each
    call in a worker thread through :func:`anyio.to_thread.run_sync`, drawn from a
    small per-platform limiter, so a slow call never stalls the event loop or any
    other platform. Every call keeps its timeout: a call that outlives it is
    abandoned (its thread runs on, its result is dropped) and reported as a timeout.

    Two consequences for authors. Calls can overlap: several requests are served at
    once, each in its own thread, and ``shutdown`` may run while an abandoned call is
    still going, so guard shared state with a :class:`threading.Lock`. And a thread
    cannot be cancelled: give blocking I/O its own timeouts, shorter than demi's.
    """

    #: Tells the manager to run every lifecycle method in a worker thread.
    blocking: ClassVar[bool] = True

    # The four methods below replace BasePlatform's coroutine methods with plain
    # ones on purpose: the manager checks ``blocking`` and calls them through
    # anyio.to_thread (demi.plugins._calls), and validate_plugin_class insists on
    # plain ``def`` here.

    @abc.abstractmethod
    def initialize(self, config: Mapping[str, Any]) -> bool:
        """Connect and prepare to serve; return ``True`` when ready (in a thread).

        :param config: this platform's configuration (validated by
            :attr:`~demi.platforms.BasePlatform.config_model` when there is one).
        """

    @abc.abstractmethod
    def health_check(self) -> PluginHealth:
        """Report on the platform's health (in a thread), within the health timeout."""

    @abc.abstractmethod
    def handle_request(self, request: Mapping[str, Any]) -> dict[str, Any]:
        """Serve one request and return its response as a JSON-like dict (in a thread)."""

    @abc.abstractmethod
    def shutdown(self) -> None:
        """Release everything the platform holds (in a thread).

        Must be safe to call more than once, after a failed :meth:`initialize`, and
        while an abandoned call still runs in another thread.
        """
