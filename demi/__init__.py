"""demi: the plugin lifecycle manager behind Demi's conductor.

Platforms are plugins in the ``demi.platforms`` entry-point group. demi discovers them
(stevedore), loads the ones configuration asks for, keeps them healthy (anyio), routes
requests to them and swaps one for another without stopping.
"""

from __future__ import annotations

from typing import Any

from .conductor import Conductor as Conductor
from .core.config import DemiSettings as DemiSettings
from .core.config import PlatformSettings as PlatformSettings
from .exceptions import ConfigError as ConfigError
from .exceptions import DemiError as DemiError
from .exceptions import PlatformConfigError as PlatformConfigError
from .exceptions import PlatformFatalError as PlatformFatalError
from .exceptions import PlatformRequestError as PlatformRequestError
from .exceptions import PlatformTimeoutError as PlatformTimeoutError
from .exceptions import PlatformUnavailableError as PlatformUnavailableError
from .exceptions import PluginError as PluginError
from .exceptions import PluginLoadError as PluginLoadError
from .exceptions import PluginNotFoundError as PluginNotFoundError
from .exceptions import PluginStateError as PluginStateError
from .exceptions import PluginValidationError as PluginValidationError
from .platforms import BasePlatform as BasePlatform
from .platforms import HealthStatus as HealthStatus
from .platforms import InboundEvent as InboundEvent
from .platforms import Inbox as Inbox
from .platforms import PluginHealth as PluginHealth
from .platforms import SyncPlatform as SyncPlatform
from .platforms import WebhookRequest as WebhookRequest
from .platforms import WebhookResponse as WebhookResponse
from .plugins import PluginManager as PluginManager
from .plugins import PluginMetadata as PluginMetadata
from .plugins import PluginState as PluginState
from .plugins import discover_plugins as discover_plugins
from .plugins import validate_plugin_class as validate_plugin_class

__all__ = [
    "BasePlatform",
    "Conductor",
    "ConfigError",
    "DemiError",
    "DemiSettings",
    "HealthStatus",
    "InboundEvent",
    "Inbox",
    "PlatformConfigError",
    "PlatformFatalError",
    "PlatformRequestError",
    "PlatformSettings",
    "PlatformTimeoutError",
    "PlatformUnavailableError",
    "PluginError",
    "PluginHealth",
    "PluginLoadError",
    "PluginManager",
    "PluginMetadata",
    "PluginNotFoundError",
    "PluginState",
    "PluginStateError",
    "PluginValidationError",
    "SyncPlatform",
    "WebhookRequest",
    "WebhookResponse",
    "discover_plugins",
    "validate_plugin_class",
]


def __getattr__(name: str) -> Any:
    # The version lives in setup.cfg only; read it when asked. The distribution is
    # demi-conductor: "demi" on PyPI is an unrelated project.
    if name == "__version__":
        from importlib.metadata import version

        return version("demi-conductor")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
