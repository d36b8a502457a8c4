"""Settings for demi, on pydantic-settings.

Sources, highest precedence first: arguments given to :class:`DemiSettings`, the
environment (``DEMI_…``, ``__`` between nesting levels), a ``.env`` file, the TOML file
(``DEMI_CONFIG``, else ``./demi.toml`` when present), then the defaults below.

A platform instance in TOML::

    [platforms.chat]
    driver = "echo"

    [platforms.chat.config]
    greeting = "hi"

and the same from the environment: ``DEMI_PLATFORMS__CHAT__DRIVER=echo``.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping, Sequence
from contextvars import ContextVar
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    NonNegativeInt,
    PositiveFloat,
    PositiveInt,
    PrivateAttr,
    SecretStr,
    ValidationError,
)
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from ..exceptions import ConfigError

__all__ = [
    "DEFAULT_CONFIG_FILE",
    "DemiSettings",
    "PlatformSettings",
    "load_settings",
    "resolve_config_file",
]

#: Read when ``DEMI_CONFIG`` is not set and the file exists in the working directory.
DEFAULT_CONFIG_FILE = "demi.toml"
ENV_PREFIX = "DEMI_"
ENV_DELIMITER = "__"

# Which TOML file the settings being built read; set by load_settings().
_config_file: ContextVar[Path | None] = ContextVar("demi_config_file", default=None)


class PlatformSettings(BaseModel):
    """One platform instance: which driver backs it and how it is run."""

    model_config = ConfigDict(extra="forbid")

    #: The entry-point name in ``demi.platforms`` of the class that implements it.
    driver: str = Field(min_length=1)
    #: Disabled instances are listed but never started.
    enabled: bool = True
    #: When true, a failure to start this instance fails the whole start-up.
    required: bool = False
    #: Requests served at once by this instance; the rest wait.
    max_concurrency: PositiveInt = 64
    #: Passed to the driver's ``initialize`` (validated by its ``config_model``).
    config: dict[str, Any] = Field(default_factory=dict)
    #: Restart policy when the instance keeps failing health checks.
    restart: Literal["on-failure", "never"] = "on-failure"
    #: Consecutive unhealthy checks before a restart.
    failure_threshold: PositiveInt = 3
    #: Backoff between restart attempts: from this many seconds, doubling...
    backoff_initial: PositiveFloat = 1.0
    #: ...up to this many.
    backoff_max: PositiveFloat = 60.0
    #: At most this many restarts within ``restart_window`` seconds, then give up.
    max_restarts: NonNegativeInt = 5
    restart_window: PositiveFloat = 60.0


def _default_platforms() -> dict[str, PlatformSettings]:
    return {"echo": PlatformSettings(driver="echo")}


class DemiSettings(BaseSettings):
    """Every setting of demi. Times are in seconds."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter=ENV_DELIMITER,
        env_file=".env",
        extra="forbid",
        validate_default=True,
    )

    #: Bound on a plugin's import, configuration and ``initialize``.
    init_timeout: PositiveFloat = 30.0
    #: Bound on one ``health_check``.
    health_timeout: PositiveFloat = 5.0
    #: Bound on one ``shutdown``.
    shutdown_timeout: PositiveFloat = 10.0
    #: Bound on one ``handle_request``.
    request_timeout: PositiveFloat = 30.0
    #: A call into a platform that holds the event loop longer than this many
    #: seconds without yielding is logged as blocking it, naming the platform.
    loop_block_threshold: PositiveFloat = 0.1
    #: Seconds between health rounds under ``demi run``.
    health_interval: PositiveFloat = 30.0
    #: Bound on stopping everything, within an orchestrator's 30 s grace period.
    stop_timeout: PositiveFloat = 25.0
    #: The anyio backend the command line runs on.
    backend: Literal["asyncio", "trio"] = "asyncio"
    #: Log level for the command line.
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = "INFO"
    #: When set, the HTTP endpoints other than the probes require this bearer token.
    http_token: SecretStr | None = None
    #: The entry-point group that platforms are discovered in.
    namespace: str = "demi.platforms"
    #: Platform instances by name; the built-in ``echo`` when none are configured.
    platforms: dict[str, PlatformSettings] = Field(default_factory=_default_platforms)

    _config_file: Path | None = PrivateAttr(default=None)

    @property
    def config_file(self) -> Path | None:
        """The TOML file these settings were read from, if any."""
        return self._config_file

    def source_of(self, *loc: str) -> str:
        """Where the setting at ``loc`` (e.g. ``"platforms", "chat", "driver"``) came
        from: an environment variable, ``.env``, the TOML file or the defaults."""
        return source_of(loc, self._config_file)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Add the TOML file below the environment and ``.env``."""
        sources: list[PydanticBaseSettingsSource] = [
            init_settings,
            env_settings,
            dotenv_settings,
        ]
        toml_file = _config_file.get() or resolve_config_file()
        if toml_file is not None:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=toml_file))
        return tuple(sources)

    def enabled_platforms(self) -> dict[str, PlatformSettings]:
        """The instances to start, in configuration order."""
        return {name: spec for name, spec in self.platforms.items() if spec.enabled}


def resolve_config_file(explicit: str | os.PathLike[str] | None = None) -> Path | None:
    """The TOML file to read: ``explicit``, else ``DEMI_CONFIG``, else ``./demi.toml``
    if it exists, else none.

    :raises ConfigError: a file that was asked for by name does not exist.
    """
    named = explicit or os.environ.get(f"{ENV_PREFIX}CONFIG")
    if named:
        path = Path(named)
        if not path.is_file():
            origin = "--config" if explicit else f"{ENV_PREFIX}CONFIG"
            raise ConfigError(
                f"config file {str(path)!r} (from {origin}) does not exist"
            )
        return path
    default = Path(DEFAULT_CONFIG_FILE)
    return default if default.is_file() else None


def load_settings(
    config_file: str | os.PathLike[str] | None = None, **overrides: Any
) -> DemiSettings:
    """Build :class:`DemiSettings`, turning every problem into one :class:`ConfigError`.

    :param config_file: a TOML file to read instead of ``DEMI_CONFIG``/``./demi.toml``.
    :param overrides: values that take precedence over every source.
    :raises ConfigError: naming each bad key and where it came from; values are never
        shown, so secrets cannot leak through the message.
    """
    path = resolve_config_file(config_file)
    token = _config_file.set(path)
    try:
        settings = DemiSettings(**overrides)
        settings._config_file = path
        return settings
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(
            f"config file {str(path)!r} is not valid TOML: {err}"
        ) from None
    except OSError as err:
        raise ConfigError(
            f"config file {str(path)!r} cannot be read: {err.strerror}"
        ) from None
    except UnicodeDecodeError as err:
        # From the TOML file or the .env file: both must be UTF-8 text.
        culprit = ".env file"
        if path is not None and not _is_utf8(path):
            culprit = f"config file {str(path)!r}"
        raise ConfigError(
            f"{culprit} cannot be read: not UTF-8 text ({err.reason} at byte {err.start})"
        ) from None
    except ValidationError as err:
        raise ConfigError(explain_validation_error(err, path, overrides)) from None
    finally:
        _config_file.reset(token)


def _is_utf8(path: Path) -> bool:
    try:
        path.read_bytes().decode("utf-8")
    except (OSError, UnicodeDecodeError):
        return False
    return True


def explain_validation_error(
    err: ValidationError, config_file: Path | None, overrides: Mapping[str, Any] = {}
) -> str:
    """One paragraph: each bad key, what is wrong with it and where it came from."""
    problems = []
    for detail in err.errors(include_input=False):
        loc = tuple(str(part) for part in detail["loc"])
        problems.append(
            f"{'.'.join(loc) or '(top level)'}: {detail['msg']} "
            f"(from {source_of(loc, config_file, overrides)})"
        )
    return "invalid configuration: " + "; ".join(problems)


def source_of(
    loc: Sequence[str], config_file: Path | None, overrides: Mapping[str, Any] = {}
) -> str:
    """Name where the setting at ``loc`` came from, as best it can be told."""
    if loc and loc[0] in overrides:
        return "arguments"
    for depth in range(len(loc), 0, -1):
        variable = ENV_PREFIX + ENV_DELIMITER.join(loc[:depth]).upper()
        if variable in os.environ:
            return f"environment variable {variable}"
        if depth > 0 and _in_dotenv(variable):
            return f".env file, {variable}"
    if config_file is not None:
        return f"config file {str(config_file)!r}"
    return "defaults"


def _in_dotenv(variable: str) -> bool:
    try:
        text = Path(".env").read_text(encoding="utf-8")
    except OSError:
        return False
    return any(
        line.strip().removeprefix("export ").split("=", 1)[0].strip().upper()
        == variable
        for line in text.splitlines()
    )
