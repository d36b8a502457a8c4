"""How :class:`~demi.core.config.DemiSettings` reads its files, and how a failure
to read them is explained.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from pydantic_settings import (
    BaseSettings,
    DotEnvSettingsSource,
    EnvSettingsSource,
    InitSettingsSource,
    SettingsError,
)

from ._sources import ENV_PREFIX, format_loc, source_of
from ._variables import unparsable_json


@dataclass
class Reading:
    """What one construction of :class:`DemiSettings` reads: which TOML file, and
    what was in it (filled in by the TOML source)."""

    path: Path | None
    toml: dict[str, Any] = field(default_factory=dict)


#: The reading under way: set by ``DemiSettings.__init__`` (or, with the file already
#: chosen, by ``load_settings`` and ``reload_settings``), read by its sources.
reading_under_way: ContextVar[Reading | None] = ContextVar("demi_reading", default=None)


class TomlSource(InitSettingsSource):
    """The TOML file, read strictly: a file that is gone or unreadable is an error,
    never an empty table (pydantic-settings' own TOML source skips a missing file)."""

    def __init__(self, settings_cls: type[BaseSettings], reading: Reading) -> None:
        assert reading.path is not None
        with reading.path.open("rb") as stream:
            reading.toml = tomllib.load(stream)
        super().__init__(settings_cls, reading.toml)


class DemiDotEnvSource(DotEnvSettingsSource):
    """``.env`` read like the environment: variables that are not demi's are left to
    the other tools that share the file (pydantic-settings would pass them on as
    extra inputs, which ``extra="forbid"`` rejects)."""

    def __call__(self) -> dict[str, Any]:
        return EnvSettingsSource.__call__(self)


def explain_settings_error(err: SettingsError, dotenv: Mapping[str, str | None]) -> str:
    """Name the variables behind a :class:`SettingsError` (``dotenv``: the ``.env``
    file's variables) and what is wrong with them."""
    # pydantic-settings says only 'error parsing value for field "platforms" from
    # source "EnvSettingsSource"': find the variables it could not parse as JSON.
    found = re.search(r'field "(\w+)" from source "(\w+)"', str(err))
    if found is None:
        return f"invalid configuration: {err}"
    name, source = found.groups()
    if "DotEnv" in source:
        origin, variables = ".env file, variable", dotenv
    else:
        origin, variables = "environment variable", dict(os.environ)
    culprits = unparsable_json(variables, name) or [ENV_PREFIX + name.upper()]
    return "invalid configuration: " + "; ".join(
        f"{origin} {culprit}: not valid JSON" for culprit in culprits
    )


def explain_validation_error(
    err: ValidationError,
    config_file: Path | None,
    overrides: Mapping[str, Any] = {},
    toml: Mapping[str, Any] | None = None,
) -> str:
    """One paragraph: each bad key, what is wrong with it and where it came from."""
    problems = []
    for detail in err.errors(include_input=False):
        loc = tuple(str(part) for part in detail["loc"] if part != "[key]")
        problems.append(
            f"{format_loc(detail['loc']) or '(top level)'}: {detail['msg']} "
            f"(from {source_of(loc, config_file, overrides, toml)})"
        )
    return "invalid configuration: " + "; ".join(problems)
