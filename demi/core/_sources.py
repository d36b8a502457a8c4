"""Where a setting came from, and how to name a key safely in a message.

The facts about the sources themselves (the ``DEMI_`` prefix, the ``__`` nesting
delimiter, the ``.env`` file) live here; :mod:`demi.core.config` and
:mod:`demi.core.prepare` ask this module rather than repeat them.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from dotenv import dotenv_values

from ..exceptions import ConfigError

ENV_PREFIX = "DEMI_"
ENV_DELIMITER = "__"
#: The ``.env`` file, in the working directory.
DOTENV_FILE = ".env"

# A key part shown as it is; anything else is shown with repr(), so that a control
# character or a dot in a key can neither garble a message nor fake a path.
_PLAIN_PART = re.compile(r"[A-Za-z0-9_-]+")


def format_loc(loc: Sequence[Any]) -> str:
    """A dotted path for an error location, each odd part shown with ``repr``.

    pydantic marks an error about a mapping's key (not its value) with a final
    ``"[key]"``; such a key is always shown with ``repr``.
    """
    parts = list(loc)
    key_error = bool(parts) and parts[-1] == "[key]"
    if key_error:
        parts.pop()
    shown = []
    for index, part in enumerate(parts):
        text = str(part)
        plain = _PLAIN_PART.fullmatch(text) and not (
            key_error and index == len(parts) - 1
        )
        shown.append(text if plain else repr(text))
    return ".".join(shown)


def read_dotenv() -> dict[str, str | None]:
    """The variables in ``./.env`` (none when there is no such file).

    :raises ConfigError: the file exists but cannot be read as UTF-8 text.
    """
    path = Path(DOTENV_FILE)
    if not path.is_file():
        return {}
    try:
        return dotenv_values(path, encoding="utf-8")
    except OSError as err:
        raise ConfigError(f".env file cannot be read: {err.strerror}") from None
    except UnicodeDecodeError as err:
        raise ConfigError(
            f".env file cannot be read: not UTF-8 text ({err.reason} at byte "
            f"{err.start})"
        ) from None


def demi_variables(variables: Iterable[str]) -> list[str]:
    """The names among ``variables`` that carry demi's prefix (in any case, as
    pydantic-settings matches them)."""
    return [name for name in variables if name.upper().startswith(ENV_PREFIX)]


def _variable_for(
    loc: Sequence[str], variables: Sequence[str], depth: int
) -> str | None:
    # The variable that sets loc[:depth] itself, or something inside it.
    exact = ENV_PREFIX + ENV_DELIMITER.join(loc[:depth]).upper()
    for name in variables:
        upper = name.upper()
        if upper == exact or upper.startswith(exact + ENV_DELIMITER):
            return name
    return None


def _in_toml(loc: Sequence[str], depth: int, toml: Mapping[str, Any]) -> bool:
    node: Any = toml
    for part in loc[:depth]:
        if not isinstance(node, Mapping) or part not in node:
            return False
        node = node[part]
    return True


def source_of(
    loc: Sequence[str],
    config_file: Path | None,
    overrides: Mapping[str, Any] = {},
    toml: Mapping[str, Any] | None = None,
) -> str:
    """Name where the setting at ``loc`` came from: the arguments, an environment
    variable, the ``.env`` file, the TOML file or the defaults.

    The most specific source wins: a variable that sets the key itself, then one that
    sets the table around it, and so on outwards. ``toml`` is the parsed TOML file;
    without it any key not found elsewhere is blamed on the file (if there is one).
    """
    if loc and loc[0] in overrides:
        return "arguments"
    environment = demi_variables(os.environ)
    try:
        dotenv = demi_variables(read_dotenv())
    except ConfigError:
        dotenv = []
    for depth in range(len(loc), 0, -1):
        variable = _variable_for(loc, environment, depth)
        if variable is not None:
            return f"environment variable {variable}"
        variable = _variable_for(loc, dotenv, depth)
        if variable is not None:
            return f".env file, variable {variable}"
        if config_file is not None and toml is not None and _in_toml(loc, depth, toml):
            return f"config file {str(config_file)!r}"
    if config_file is not None and toml is None:
        return f"config file {str(config_file)!r}"
    return "defaults"
