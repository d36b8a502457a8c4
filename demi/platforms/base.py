"""The contract every platform integration fulfils: :class:`BasePlatform`.

A platform is a class registered under the ``demi.platforms`` entry-point group.
The manager constructs it with no arguments, then drives it through four coroutine
methods: :meth:`~BasePlatform.initialize`, :meth:`~BasePlatform.health_check`,
:meth:`~BasePlatform.handle_request` and :meth:`~BasePlatform.shutdown`, each under
a timeout. A platform that listens also implements :meth:`~BasePlatform.run` (it
holds a connection and sends what arrives to its inbox) or
:meth:`~BasePlatform.handle_webhook` (a service calls it over HTTP), or both.
"""

from __future__ import annotations

import abc
import enum
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, ClassVar

import anyio

if TYPE_CHECKING:
    from anyio.abc import TaskStatus
    from pydantic import BaseModel

    from .inbound import Inbox, WebhookRequest, WebhookResponse

__all__ = [
    "BasePlatform",
    "HealthStatus",
    "PluginHealth",
    "is_exclusive",
    "listens",
    "takes_webhooks",
]


class HealthStatus(str, enum.Enum):
    """How a platform reports on its own health."""

    #: Working as intended.
    HEALTHY = "healthy"
    #: Working, but with reduced capacity or quality.
    DEGRADED = "degraded"
    #: Not working; the check failed, raised or timed out.
    UNHEALTHY = "unhealthy"
    #: Not checked yet, or the answer could not be read.
    UNKNOWN = "unknown"


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class PluginHealth:
    """One health-check result.

    The manager measures ``response_time_ms`` itself and overwrites what the plugin
    reported, so results are comparable across plugins.
    """

    #: The verdict.
    status: HealthStatus
    #: How long the check took, in milliseconds.
    response_time_ms: float = 0.0
    #: When the check finished (timezone-aware, UTC).
    last_check: datetime = field(default_factory=_utcnow)
    #: Why the platform is not healthy, if it is not.
    error_message: str | None = None

    def __post_init__(self) -> None:
        # Accept the plain strings of the enum ("healthy", ...) for convenience.
        status: object = self.status
        if not isinstance(status, HealthStatus):
            object.__setattr__(self, "status", HealthStatus(status))
        if self.last_check.tzinfo is None:
            raise ValueError("PluginHealth.last_check must be timezone-aware (UTC)")

    @property
    def is_healthy(self) -> bool:
        """Whether :attr:`status` is :attr:`HealthStatus.HEALTHY`."""
        return self.status is HealthStatus.HEALTHY


class BasePlatform(abc.ABC):
    """Abstract base class of every platform integration.

    Subclasses implement the four coroutine methods. ``name`` and ``status`` come for
    free: the manager that loads the platform sets the name it was loaded under and
    owns its lifecycle state, which ``status`` reports.

    A platform may set :attr:`config_model` to a pydantic model class; the manager then
    validates the configuration against it before :meth:`initialize` and passes the
    validated values (``model_dump()``, so ``SecretStr`` fields stay secret).
    """

    #: Optional pydantic model that validates this platform's configuration.
    config_model: ClassVar[type[BaseModel] | None] = None

    #: True when the platform holds something only one instance may hold at a time
    #: (a bot account's connection): a restart or swap then stops the old platform
    #: before the new one starts, instead of starting the new one beside it. ``None``
    #: (the default) means: exclusive exactly when it implements :meth:`run`.
    exclusive: ClassVar[bool | None] = None

    #: The anyio backends the platform can run on (``("asyncio",)`` for one built on
    #: an asyncio-only SDK); ``None`` for all. Loading it on another is a failure
    #: that says which backend it needs.
    supported_backends: ClassVar[tuple[str, ...] | None] = None

    # Set by the manager when it loads the platform; see demi.plugins.manager.
    _demi_name: str | None = None
    _demi_state: Callable[[], str] | None = None

    @property
    def name(self) -> str:
        """The name this platform was loaded under (its class name until then)."""
        return self._demi_name or type(self).__name__

    @property
    def status(self) -> str:
        """The value of the platform's lifecycle state, as its manager tracks it.

        A platform that no manager has loaded reports ``"discovered"``.
        """
        return self._demi_state() if self._demi_state is not None else "discovered"

    @abc.abstractmethod
    async def initialize(self, config: Mapping[str, Any]) -> bool:
        """Connect and prepare to serve; return ``True`` when ready.

        Returning ``False`` or raising fails the load; the reason is recorded.

        :param config: this platform's configuration (validated by
            :attr:`config_model` when there is one).
        """

    @abc.abstractmethod
    async def health_check(self) -> PluginHealth:
        """Report on the platform's health. Must not take longer than the health timeout."""

    @abc.abstractmethod
    async def handle_request(self, request: Mapping[str, Any]) -> dict[str, Any]:
        """Serve one request and return its response as a JSON-like dict."""

    @abc.abstractmethod
    async def shutdown(self) -> None:
        """Release everything the platform holds. Must be safe to call more than once,
        and after a failed :meth:`initialize`."""

    async def run(
        self, inbox: Inbox, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        """Hold the platform's connection and send every inbound event to ``inbox``
        (optional: implement it in a platform that listens).

        demi starts it with ``task_group.start(platform.run, inbox)`` once
        :meth:`initialize` succeeded. Call ``task_status.started()`` once connected:
        that is the platform's readiness, bounded by the init timeout. Then
        ``await inbox.send(event)`` for every event; ``send`` waits while demi's
        buffer for the instance is full. Returning or raising means the connection is
        lost: the supervisor reconnects through the restart policy, unless the error
        is a :class:`~demi.PlatformFatalError`. demi cancels ``run`` before it calls
        :meth:`shutdown`.
        """
        raise NotImplementedError(f"{type(self).__qualname__} does not listen")

    async def handle_webhook(
        self, request: WebhookRequest, inbox: Inbox
    ) -> WebhookResponse:
        """Answer one HTTP callback from the platform's service (optional).

        ``demi run --http`` routes ``POST /platforms/NAME/webhook`` here with the raw
        body and headers. Verify the service's signature yourself (demi's bearer
        token does not apply to this route: the service cannot send it), send what
        arrived to ``inbox`` as events, and return the response the service expects.
        """
        raise NotImplementedError(f"{type(self).__qualname__} takes no webhooks")


def listens(platform: type[BasePlatform] | BasePlatform) -> bool:
    """Whether a platform implements :meth:`BasePlatform.run`."""
    cls = platform if isinstance(platform, type) else type(platform)
    return getattr(cls, "run", BasePlatform.run) is not BasePlatform.run


def takes_webhooks(platform: type[BasePlatform] | BasePlatform) -> bool:
    """Whether a platform implements :meth:`BasePlatform.handle_webhook`.

    A platform object that stands in for another (demi's side of a
    process-isolated platform) answers for it through ``_demi_webhooks``.
    """
    if not isinstance(platform, type):
        standing_in = getattr(platform, "_demi_webhooks", None)
        if isinstance(standing_in, bool):
            return standing_in
    cls = platform if isinstance(platform, type) else type(platform)
    method = getattr(cls, "handle_webhook", BasePlatform.handle_webhook)
    return method is not BasePlatform.handle_webhook


def is_exclusive(platform: type[BasePlatform]) -> bool:
    """Whether two platform objects of this class may never serve one instance at
    the same time: its ``exclusive``, or by default whether it :func:`listens`."""
    declared = getattr(platform, "exclusive", None)
    return listens(platform) if declared is None else bool(declared)
