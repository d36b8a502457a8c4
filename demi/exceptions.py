"""The one exception tree of demi.

Every error demi raises on purpose is a :class:`DemiError`::

    DemiError
    ├── ConfigError (also ValueError)          bad settings: which key, from where
    │   └── PlatformConfigError (also PluginError)  a platform's config fails its config_model
    ├── PlatformFatalError                     raised by a platform: retrying cannot help
    └── PluginError                            carries .plugin_name
        ├── PluginNotFoundError (LookupError)  no such plugin; lists the known names
        ├── PluginValidationError (TypeError)  the class breaks the BasePlatform contract
        ├── PluginLoadError                    import, config or initialize failed
        ├── PluginStateError (RuntimeError)    an illegal lifecycle transition
        └── PlatformRequestError               a request to a platform failed
            ├── PlatformTimeoutError (TimeoutError)
            └── PlatformUnavailableError       not active, or the conductor is stopping

Health failures are data (:class:`~demi.platforms.PluginHealth`), never exceptions.
Messages never carry configuration values, so no secret can leak through them.
"""

from __future__ import annotations

__all__ = [
    "ConfigError",
    "DemiError",
    "PlatformConfigError",
    "PlatformFatalError",
    "PlatformRequestError",
    "PlatformTimeoutError",
    "PlatformUnavailableError",
    "PluginError",
    "PluginLoadError",
    "PluginNotFoundError",
    "PluginStateError",
    "PluginValidationError",
]


class DemiError(Exception):
    """Base class of every error demi raises on purpose."""


class ConfigError(DemiError, ValueError):
    """The configuration is invalid; the message names the key and its source."""


class PlatformFatalError(DemiError):
    """Raised by a platform's ``run`` or ``initialize`` when retrying cannot help.

    A revoked token, a banned account, a deleted bot: the supervisor stops the
    instance at once with this reason instead of backing off and trying again. Every
    other error a platform raises is transient and goes through its restart policy.
    The platform gives the reason only; demi adds which instance it was::

        raise PlatformFatalError("the service rejected the bot token (revoked)")
    """


class PluginError(DemiError):
    """An error about one plugin.

    :param plugin_name: the entry-point or instance name of the plugin, if known.
    :param message: what went wrong, as one sentence.
    """

    def __init__(self, plugin_name: str | None, message: str) -> None:
        super().__init__(message)
        #: The plugin the error is about (``None`` when there is no single one).
        self.plugin_name = plugin_name


class PluginNotFoundError(PluginError, LookupError):
    """No plugin of that name is known (installed, discovered or loaded)."""


class PluginValidationError(PluginError, TypeError):
    """An object does not fulfil the :class:`~demi.platforms.BasePlatform` contract."""


class PluginLoadError(PluginError):
    """A plugin could not be imported, configured or initialized."""


class PlatformConfigError(ConfigError, PluginError):
    """The configuration of one platform instance fails its driver's ``config_model``.

    The operator's mistake, not the plugin's: the message names each bad key by its full
    path (``platforms.NAME.config.FIELD``), what is wrong and where it came from, never
    the value.

    :param plugin_name: the instance whose configuration is bad.
    :param message: the whole explanation, as one sentence.
    :param problems: per bad key, its path inside the instance's ``config`` and what is
        wrong with it, for callers that word the explanation themselves.
    """

    def __init__(
        self,
        plugin_name: str,
        message: str,
        problems: tuple[tuple[str, str], ...] = (),
    ) -> None:
        super().__init__(plugin_name, message)
        #: ``(key inside config, what is wrong)`` for each bad key.
        self.problems = problems


class PluginStateError(PluginError, RuntimeError):
    """A lifecycle transition that the state machine does not allow."""


class PlatformRequestError(PluginError):
    """A request sent to a platform failed; the platform stays usable."""


class PlatformTimeoutError(PlatformRequestError, TimeoutError):
    """A request to a platform did not finish within its timeout."""


class PlatformUnavailableError(PlatformRequestError):
    """The platform is not active (failed, stopped) or the conductor is stopping."""
