"""Preparing one platform instance's configuration for its ``initialize``.

One function, :func:`prepare_config`, used by the plugin manager, the conductor, the
command line and the conformance kit, so that a platform is configured the same way
wherever it is driven.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ValidationError

from ..exceptions import PlatformConfigError, PluginLoadError
from ._sources import format_loc
from .secrets import register_secrets, scrub

if TYPE_CHECKING:
    from .config import DemiSettings

__all__ = ["prepare_config"]

# A plugin's exception text is cut to this many characters in a message.
_MAX_TEXT = 300


def prepare_config(
    model: type[BaseModel] | None,
    raw: Mapping[str, Any],
    *,
    instance: str,
    settings: DemiSettings | None = None,
) -> dict[str, Any]:
    """The configuration to pass to the ``initialize`` of ``instance``.

    ``raw`` is deep-copied first, so a platform that changes what it is given can
    never change the stored settings; every call returns a fresh object. With a
    ``model`` (the driver's ``config_model``) the copy is validated and
    ``model.model_dump()`` returned (``SecretStr`` values stay ``SecretStr``). Secret
    values, before and after validation, are registered so that they are scrubbed
    from any text.

    :param model: the driver's ``config_model``, or ``None`` to pass ``raw`` on as is.
    :param raw: the instance's ``config`` table.
    :param instance: the instance's name, for messages.
    :param settings: where ``raw`` came from, to name the source of a bad key;
        without them the source is said to be the arguments.
    :raises PlatformConfigError: ``raw`` fails the model (the operator's mistake);
        each bad key is named as ``platforms.NAME.config.FIELD``, with what is wrong
        and where it came from, never its value.
    :raises PluginLoadError: the model itself failed, raising anything at all other
        than a validation error (the plugin's fault); the original exception is
        its ``__cause__``.
    """
    if not raw and model is None:
        return {}  # the common case of a start; nothing to copy or to register
    data = copy.deepcopy(dict(raw))
    register_secrets(data)
    if model is None:
        return data
    try:
        options = model.model_validate(data).model_dump()
    except ValidationError as err:
        raise _rejected(err, instance, settings) from None
    except BaseException as err:  # anything at all: the model is the plugin's code
        raise PluginLoadError(
            instance,
            f"plugin {instance!r} config_model raised {type(err).__name__}: "
            f"{_text(err)}",
        ) from err
    register_secrets(options)
    return options


def _rejected(
    err: ValidationError, instance: str, settings: DemiSettings | None
) -> PlatformConfigError:
    problems: list[tuple[str, str]] = []
    explained: list[str] = []
    for detail in err.errors(include_input=False):
        inner = tuple(detail["loc"])
        key = format_loc(inner) or "(config)"
        what = scrub(detail["msg"])
        loc = ("platforms", instance, "config", *inner)
        parts = tuple(str(part) for part in loc if part != "[key]")
        source = settings.source_of(*parts) if settings is not None else "arguments"
        problems.append((key, what))
        explained.append(f"{format_loc(loc)}: {what} (from {source})")
    return PlatformConfigError(
        instance,
        f"invalid configuration of platform {instance!r}: " + "; ".join(explained),
        tuple(problems),
    )


def _text(err: BaseException) -> str:
    # A plugin's exception may not even turn into text; it may also carry a secret.
    try:
        text = str(err)
    except BaseException:  # its __str__ is the plugin's code too
        return f"<{type(err).__name__} that cannot be shown>"
    text = "".join(char if char.isprintable() else " " for char in text)
    text = scrub(" ".join(text.split()))
    if len(text) > _MAX_TEXT:
        text = text[:_MAX_TEXT] + "..."
    return text or "(no message)"
