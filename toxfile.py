"""tox's inline plugin for this project (tox loads ``toxfile.py`` beside ``tox.ini``):
interpreter discovery that finds the Pythons pyenv installed, on PATH or not.

tox looks for ``py312`` as ``python3.12`` on PATH, where pyenv puts at most a shim that
fails unless that version is selected (``pyenv global``/``pyenv local``). This plugin
hands tox every CPython 3 under ``$PYENV_ROOT/versions`` (default ``~/.pyenv``),
newest first, as executables to try before PATH: the same list ``tox --discover``
takes, so an env still gets the first one that matches its spec, and PATH is still
searched after them. Nothing is downloaded. When no interpreter matches, one line
says which version is missing and how to get it.
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tox.plugin import impl

if TYPE_CHECKING:
    from tox.config.sets import ConfigSet
    from tox.session.state import State
    from tox.tox_env.api import ToxEnv

_LOGGER = logging.getLogger(__name__)
# A final CPython release as pyenv names its folder: 3.12.1, not 3.13-dev or pypy3.10.
_RELEASE = re.compile(r"3\.(\d+)\.(\d+)")


def pyenv_versions() -> Path:
    """The folder pyenv installs versions into."""
    root = os.environ.get("PYENV_ROOT") or Path.home() / ".pyenv"
    return Path(root) / "versions"


def pyenv_interpreters() -> list[str]:
    """The ``python3`` of every final CPython 3 release pyenv installed, newest first."""
    found: list[tuple[tuple[int, int], str]] = []
    versions = pyenv_versions()
    for folder in versions.iterdir() if versions.is_dir() else ():
        match = _RELEASE.fullmatch(folder.name)
        python = folder / "bin" / "python3"
        if match and python.is_file():
            found.append(((int(match[1]), int(match[2])), str(python)))
    return [python for _, python in sorted(found, reverse=True)]


def missing_hint(specs: list[str]) -> str:
    """What to do when no interpreter matches ``specs`` (``["py312"]``, ``["3.12"]``)."""
    wanted = []
    for spec in specs:
        match = re.fullmatch(r"(?:py|python|cpython)?(3)\.?(\d+)", spec)
        wanted.append(f"{match[1]}.{match[2]}" if match else spec)
    shown = " or ".join(wanted)
    get = " or ".join(f"`pyenv install {version}`" for version in wanted)
    return (
        f"no Python {shown}: not on PATH, nor under {pyenv_versions()}; "
        f"install it with {get}, or put python{wanted[0]} on PATH"
    )


@impl
def tox_add_core_config(core_conf: ConfigSet, state: State) -> None:
    """Put pyenv's interpreters after any ``--discover`` given on the command line."""
    del core_conf  # the option, not the configuration, is what tox's discovery reads
    options: Any = state.conf.options
    options.discover = [*getattr(options, "discover", []), *pyenv_interpreters()]


@impl
def tox_env_teardown(tox_env: ToxEnv) -> None:
    """After an env that found no interpreter, say which version and how to get it."""
    from tox.tox_env.errors import Skip
    from tox.tox_env.python.api import NoInterpreter, Python

    if not isinstance(tox_env, Python):
        return
    try:
        tox_env.base_python  # noqa: B018 (searched once; this reads the outcome)
    except (NoInterpreter, Skip):  # Skip: the same, with skip_missing_interpreters
        _LOGGER.error("%s", missing_hint(tox_env.conf["base_python"]))
