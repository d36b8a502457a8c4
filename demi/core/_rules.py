"""The shapes every source of settings must fit: times and instance names.

Exported from :mod:`demi.core.config`; kept apart so the settings module stays short.
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator, Field
from pydantic_core import PydanticCustomError

__all__ = [
    "INSTANCE_NAME_PATTERN",
    "MAX_SECONDS",
    "InstanceName",
    "Seconds",
    "is_instance_name",
]

#: The longest time any setting may be, in seconds: one week. Longer is a mistake
#: (``inf``, a value in milliseconds); it would also overflow some timers.
MAX_SECONDS = 7 * 24 * 3600

#: What an instance name (a key of ``platforms``) must match in full (``fullmatch``):
#: 1 to 64 lower-case ASCII letters, digits, ``-`` and ``_``, starting with a letter or
#: a digit. No other character (``#``, ``.``, ``:``, a space, a control character) can
#: appear in one, so a key made with one of them can never equal an instance name.
INSTANCE_NAME_PATTERN = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")

#: A time in seconds: finite, above zero, at most :data:`MAX_SECONDS`.
Seconds = Annotated[float, Field(gt=0, le=MAX_SECONDS, allow_inf_nan=False)]


def is_instance_name(name: str) -> bool:
    """Whether ``name`` may name a platform instance (:data:`INSTANCE_NAME_PATTERN`)."""
    return INSTANCE_NAME_PATTERN.fullmatch(name) is not None


def _check_instance_name(name: str) -> str:
    if not is_instance_name(name):
        raise PydanticCustomError(
            "instance_name",
            "not a valid instance name: use 1 to 64 lower-case letters, digits, '-' "
            "and '_', starting with a letter or digit",
        )
    return name


#: The key of one platform instance, checked against :data:`INSTANCE_NAME_PATTERN`.
InstanceName = Annotated[str, AfterValidator(_check_instance_name)]
