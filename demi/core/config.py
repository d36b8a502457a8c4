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

Rules that every source is held to (each break is a :class:`~demi.ConfigError` naming
the key and where it came from, never the value):

* ``.env`` may be shared with other tools: its variables without the ``DEMI_`` prefix
  are ignored, as in the environment. A ``DEMI_`` variable that names no setting (a
  typo such as ``DEMI_INIT_TIMOUT``) is an error, wherever it is.
* Every time (timeouts, intervals, thresholds, backoffs, windows) is a finite number
  of seconds above zero and at most :data:`MAX_SECONDS` (one week), so that a
  ``threading.Timer`` watchdog or a cancel scope can always use it.
* Instance names (the keys of ``platforms``) match :data:`INSTANCE_NAME_PATTERN`: 1 to
  64 lower-case letters, digits, ``-`` and ``_``, starting with a letter or digit.
* ``http_token``, when set, is not empty: unset it to turn authentication off.
* ``coordination_url``, when set, is a URL with a scheme (``etcd3+http://...``);
  ``member_id`` and ``coordination_group`` match ``MEMBER_NAME_PATTERN``.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    NonNegativeInt,
    PositiveInt,
    PrivateAttr,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
)

from ..exceptions import ConfigError
from ._reading import (
    DemiDotEnvSource,
    Reading,
    TomlSource,
    explain_settings_error,
    explain_validation_error,
    reading_under_way,
)
from ._rules import INSTANCE_NAME_PATTERN as INSTANCE_NAME_PATTERN
from ._rules import MAX_SECONDS as MAX_SECONDS
from ._rules import InstanceName, MemberName, Replicas, Seconds, default_member_id
from ._rules import is_instance_name as is_instance_name
from ._sources import ENV_PREFIX, read_dotenv, source_of
from ._variables import CONFIG_VARIABLE, check_variables

__all__ = [
    "DEFAULT_CONFIG_FILE",
    "INSTANCE_NAME_PATTERN",
    "MAX_SECONDS",
    "DemiSettings",
    "PlatformSettings",
    "is_instance_name",
    "load_settings",
    "reload_settings",
    "resolve_config_file",
]

#: Read when ``DEMI_CONFIG`` is not set and the file exists in the working directory.
DEFAULT_CONFIG_FILE = "demi.toml"

# A tooz URL: a scheme, "://", then anything printable without spaces.
_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://\S*")


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
    #: Backoff before the supervisor's n-th restart since the platform was last
    #: stably healthy: from this many seconds, doubling...
    backoff_initial: Seconds = 1.0
    #: ...up to this many (with jitter between half and all of it).
    backoff_max: Seconds = 60.0
    #: Restarts the supervisor may make since the platform was last stably healthy.
    #: When one more is due it gives up: a CRITICAL log line, ``gave_up`` in
    #: /health, the platform left failed until a reload or an operator restart.
    #: With 0 it gives up at the first failure. Operator restarts do not count.
    max_restarts: NonNegativeInt = 5
    #: Seconds of unbroken health (from the first to the last check of a healthy
    #: streak, so at least two checks, whatever the interval) after which the
    #: platform counts as stably healthy and its restart count starts again from
    #: zero.
    restart_window: Seconds = 60.0
    #: With ``coordination_url`` set: ``1``, exactly one replica of the group runs
    #: it (the member the hash ring names); ``"all"``, every replica does (for a
    #: stateless request platform). Without coordination every instance runs here.
    replicas: Replicas = 1
    #: Where the platform runs: ``"inproc"`` in demi's own process, or ``"process"``
    #: in a child process of the same interpreter that imports only its driver, so
    #: that a crash, a blocked loop or a swallowed cancellation ends the child, not
    #: demi (see demi.isolation).
    isolation: Literal["inproc", "process"] = "inproc"
    #: For ``isolation = "process"``: the child's memory (resident set) in MiB
    #: above which it is ended and restarted; ``None`` for no limit.
    memory_limit_mb: PositiveInt | None = None

    @model_validator(mode="after")
    def _limit_needs_a_process(self) -> PlatformSettings:
        # demi cannot bound the memory of a platform inside its own process: a
        # limit that silently did nothing would mislead.
        if self.memory_limit_mb is not None and self.isolation != "process":
            raise ValueError('memory_limit_mb needs isolation = "process"')
        return self


def _default_platforms() -> dict[str, PlatformSettings]:
    return {"echo": PlatformSettings(driver="echo")}


class DemiSettings(BaseSettings):
    """Every setting of demi. Times are in seconds (see :data:`MAX_SECONDS`)."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter="__",
        env_file=".env",
        extra="forbid",
        validate_default=True,
    )

    #: Bound on a plugin's import, configuration and ``initialize``.
    init_timeout: Seconds = 30.0
    #: Bound on one ``health_check``.
    health_timeout: Seconds = 5.0
    #: Bound on one ``shutdown``.
    shutdown_timeout: Seconds = 10.0
    #: Bound on one ``handle_request``.
    request_timeout: Seconds = 30.0
    #: A call into a platform that holds the event loop longer than this many
    #: seconds without yielding is logged as blocking it, naming the platform.
    loop_block_threshold: Seconds = 0.1
    #: Seconds between health rounds under ``demi run``.
    health_interval: Seconds = 30.0
    #: Bound on stopping everything, within an orchestrator's 30 s grace period.
    stop_timeout: Seconds = 25.0
    #: The anyio backend the command line runs on.
    backend: Literal["asyncio", "trio"] = "asyncio"
    #: Log level for the command line.
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = "INFO"
    #: When set, the HTTP endpoints other than the probes require this bearer token.
    #: Never empty: leave it unset to turn authentication off.
    http_token: SecretStr | None = None
    #: The entry-point group that platforms are discovered in.
    namespace: str = "demi.platforms"
    #: The entry point in ``demi.handlers`` that inbound events go to: ``log`` (logs
    #: and counts them), ``echo`` (replies with the same text), or one of yours.
    handler: str = Field(default="log", min_length=1)
    #: Handler calls running at once (events of one conversation take turns).
    handler_concurrency: PositiveInt = 64
    #: Bound on one handler call.
    handler_timeout: Seconds = 30.0
    #: A tooz backend URL (``etcd3+http://127.0.0.1:2379?timeout=10``,
    #: ``redis://...``, ``file:///var/lib/demi/coord``), passed to tooz as it is:
    #: replicas with the same URL and group share one set of instances, each
    #: instance run by one of them. Secret (it may carry a password). Unset: this
    #: conductor runs every enabled instance and nothing is coordinated.
    coordination_url: SecretStr | None = None
    #: This replica's name in the coordination group (in Kubernetes, the pod name).
    member_id: MemberName = Field(default_factory=default_member_id)
    #: The coordination group; ``None`` derives it from ``namespace``.
    coordination_group: MemberName | None = None
    #: Platform instances by name (see :data:`INSTANCE_NAME_PATTERN`); the built-in
    #: ``echo`` when none are configured.
    platforms: dict[InstanceName, PlatformSettings] = Field(
        default_factory=_default_platforms
    )

    _config_file: Path | None = PrivateAttr(default=None)
    # The same file as an absolute path, for reload_settings: a later change of the
    # working directory must not make it read another file.
    _config_path: Path | None = PrivateAttr(default=None)
    _toml: dict[str, Any] = PrivateAttr(default_factory=dict)
    _overrides: dict[str, Any] = PrivateAttr(default_factory=dict)

    def __init__(self, **values: Any) -> None:
        """Read every source; ``values`` take precedence over all of them."""
        reading = reading_under_way.get() or Reading(resolve_config_file())
        token = reading_under_way.set(reading)
        try:
            super().__init__(**values)
        finally:
            reading_under_way.reset(token)
        self._config_file = reading.path
        self._config_path = reading.path.absolute() if reading.path else None
        self._toml = reading.toml
        self._overrides = dict(values)

    @field_validator("http_token")
    @classmethod
    def _token_not_empty(cls, token: SecretStr | None) -> SecretStr | None:
        if token is not None and not token.get_secret_value().strip():
            raise ValueError("must not be empty: unset it to turn authentication off")
        return token

    @field_validator("coordination_url")
    @classmethod
    def _url_has_a_scheme(cls, url: SecretStr | None) -> SecretStr | None:
        if url is not None and _URL.fullmatch(url.get_secret_value()) is None:
            raise ValueError(
                "not a coordination URL: expected SCHEME://..., for example "
                "etcd3+http://127.0.0.1:2379 or file:///var/lib/demi/coord"
            )
        return url

    @property
    def config_file(self) -> Path | None:
        """The TOML file these settings were read from, if any."""
        return self._config_file

    def source_of(self, *loc: str) -> str:
        """Where the setting at ``loc`` (e.g. ``"platforms", "chat", "driver"``) came
        from: the arguments, an environment variable, ``.env``, the TOML file or the
        defaults."""
        return source_of(loc, self._config_file, self._overrides, self._toml)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Read ``.env`` like the environment, and add the TOML file below both."""
        sources: list[PydanticBaseSettingsSource] = [
            init_settings,
            env_settings,
            DemiDotEnvSource(settings_cls),
        ]
        reading = reading_under_way.get() or Reading(resolve_config_file())
        if reading.path is not None:
            sources.append(TomlSource(settings_cls, reading))
        return tuple(sources)

    def enabled_platforms(self) -> dict[str, PlatformSettings]:
        """The instances to start, in configuration order."""
        return {name: spec for name, spec in self.platforms.items() if spec.enabled}


def resolve_config_file(explicit: str | os.PathLike[str] | None = None) -> Path | None:
    """The TOML file to read: ``explicit``, else ``DEMI_CONFIG``, else ``./demi.toml``
    if it exists, else none. The path is absolute, so that the same file is meant
    whatever the working directory is later.

    :raises ConfigError: a file that was asked for by name does not exist or is a
        directory.
    """
    named = explicit or os.environ.get(CONFIG_VARIABLE)
    if named:
        path = Path(named)
        origin = "--config" if explicit else CONFIG_VARIABLE
        if path.is_dir():
            raise ConfigError(
                f"config file {str(path)!r} (from {origin}) is a directory, not a file"
            )
        if not path.is_file():
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
    :raises ConfigError: naming each bad key and where it came from (the variable,
        the ``.env`` file or the TOML file); an unknown ``DEMI_`` variable, a
        variable that is not the JSON it must be, or a config file that is missing,
        a directory or unreadable. Values are never shown, so secrets cannot leak
        through the message.
    """
    return _build(resolve_config_file(config_file), overrides)


def reload_settings(current: DemiSettings) -> DemiSettings:
    """Read the settings again from the same sources as ``current``: the same TOML
    file (however it was found), the environment, ``.env`` and the same arguments.

    Never falls back to defaults: when ``current`` was read from a file that file
    must still be there. Without a file, none is looked for (a ``demi.toml`` that
    appeared since is not picked up).

    :raises ConfigError: the file is gone, is a directory or cannot be read, or the
        new settings are invalid (as :func:`load_settings`).
    """
    path = current._config_path
    if path is not None:
        if path.is_dir():
            raise ConfigError(f"config file {str(path)!r} is a directory")
        try:
            path.stat()
        except FileNotFoundError:
            if not path.is_symlink():
                raise ConfigError(f"config file {str(path)!r} is gone") from None
            raise ConfigError(
                f"config file {str(path)!r} cannot be read: it is a dangling link"
            ) from None
        except OSError as err:  # a link loop, a path that is not a folder, ...
            raise ConfigError(
                f"config file {str(path)!r} cannot be read: {err.strerror}"
            ) from None
        if not path.is_file():
            raise ConfigError(f"config file {str(path)!r} is not a regular file")
    return _build(path, current._overrides)


def _build(path: Path | None, overrides: Mapping[str, Any]) -> DemiSettings:
    fields = DemiSettings.model_fields
    platform_fields = PlatformSettings.model_fields
    check_variables(os.environ, "environment variable", fields, platform_fields)
    dotenv = read_dotenv()
    check_variables(
        dotenv, ".env file, variable", fields, platform_fields, names_config_file=False
    )
    reading = Reading(path)
    token = reading_under_way.set(reading)
    try:
        return DemiSettings(**overrides)
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(
            f"config file {str(path)!r} is not valid TOML: {err}"
        ) from None
    except OSError as err:
        raise ConfigError(
            f"config file {str(path)!r} cannot be read: {err.strerror}"
        ) from None
    except UnicodeDecodeError as err:
        # .env was read above, so this is the TOML file.
        raise ConfigError(
            f"config file {str(path)!r} cannot be read: not UTF-8 text "
            f"({err.reason} at byte {err.start})"
        ) from None
    except SettingsError as err:
        raise ConfigError(explain_settings_error(err, dotenv)) from None
    except ValidationError as err:
        raise ConfigError(
            explain_validation_error(err, path, overrides, reading.toml)
        ) from None
    finally:
        reading_under_way.reset(token)
