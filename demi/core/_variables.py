"""Checking ``DEMI_`` variables before pydantic-settings reads them.

pydantic-settings drops an environment variable that matches no setting, so a typo
such as ``DEMI_INIT_TIMOUT`` would silently leave the default in force. Here every
variable with demi's prefix, in the environment or in ``.env``, must name a setting;
variables without the prefix belong to other tools and are none of demi's business.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Collection, Iterable, Mapping

from ..exceptions import ConfigError
from ._sources import ENV_DELIMITER, ENV_PREFIX, demi_variables

#: Names the TOML file to read; not a setting itself.
CONFIG_VARIABLE = f"{ENV_PREFIX}CONFIG"
# The one setting whose instances and their fields are set by nested variables.
_NESTED = "platforms"
# Inside an instance, the one field that takes any keys below it.
_FREE_FORM = "config"


def check_variables(
    variables: Iterable[str],
    origin: str,
    fields: Collection[str],
    platform_fields: Collection[str],
    *,
    names_config_file: bool = True,
) -> None:
    """Refuse an unknown ``DEMI_`` variable.

    :param variables: the variable names (the environment's or ``.env``'s).
    :param origin: how to name where they are, e.g. ``"environment variable"``.
    :param fields: the settings' field names; ``platform_fields`` an instance's.
    :param names_config_file: whether ``DEMI_CONFIG`` may be among them (it is read
        from the environment only, before anything else).
    :raises ConfigError: naming every unknown variable, where it is, and the closest
        known name.
    """
    problems = []
    for name in demi_variables(variables):
        if name.upper() == CONFIG_VARIABLE and not names_config_file:
            problems.append(
                f"{origin} {name}: only read from the environment, where it names "
                f"the config file"
            )
            continue
        suggestion = _unknown(name.upper(), fields, platform_fields)
        if suggestion is not None:
            hint = f"; did you mean {suggestion}?" if suggestion else ""
            problems.append(f"{origin} {name}: not a setting of demi{hint}")
    if problems:
        raise ConfigError("invalid configuration: " + "; ".join(problems))


def _unknown(
    name: str, fields: Collection[str], platform_fields: Collection[str]
) -> str | None:
    """``None`` for a known variable; else the closest known name, or ``""``."""
    if name == CONFIG_VARIABLE:
        return None
    parts = name.removeprefix(ENV_PREFIX).split(ENV_DELIMITER)
    top = parts[0].lower()
    if top != _NESTED:
        if top in fields and len(parts) == 1:
            return None
        known = [ENV_PREFIX + field.upper() for field in fields] + [CONFIG_VARIABLE]
        return _closest(name, known)
    if len(parts) <= 2:
        # DEMI_PLATFORMS (JSON) or DEMI_PLATFORMS__NAME (JSON for one instance).
        return None
    field = parts[2].lower()
    if field in platform_fields and (len(parts) == 3 or field == _FREE_FORM):
        return None
    stem = ENV_DELIMITER.join(parts[:2])
    known = [ENV_PREFIX + stem + ENV_DELIMITER + f.upper() for f in platform_fields]
    return _closest(name, known)


def _closest(name: str, known: list[str]) -> str:
    matches = difflib.get_close_matches(name, known, n=1)
    return matches[0] if matches else ""


def unparsable_json(variables: Mapping[str, str | None], field: str) -> list[str]:
    """The variables that pydantic-settings parses as JSON for ``field`` (the setting
    itself, or an instance's ``config`` below ``platforms``) but that are not JSON."""
    found = []
    for name, value in variables.items():
        parts = name.upper().removeprefix(ENV_PREFIX).split(ENV_DELIMITER)
        if not name.upper().startswith(ENV_PREFIX) or parts[0].lower() != field:
            continue
        complex_here = len(parts) == 1 or (
            parts[0].lower() == _NESTED
            and len(parts) == 3
            and parts[2].lower() == _FREE_FORM
        )
        if complex_here and not _is_json(value):
            found.append(name)
    return found


def _is_json(value: str | None) -> bool:
    if value is None:
        return True
    try:
        json.loads(value)
    except ValueError:
        return False
    return True
