"""The shapes every source of settings must fit: times and instance names.

Exported from :mod:`demi.core.config`; kept apart so the settings module stays short.
"""

from __future__ import annotations

import os
import re
import socket
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BeforeValidator, Field
from pydantic_core import PydanticCustomError

__all__ = [
    "INSTANCE_NAME_PATTERN",
    "MAX_SECONDS",
    "MEMBER_NAME_PATTERN",
    "InstanceName",
    "MemberName",
    "Replicas",
    "Seconds",
    "default_member_id",
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


#: What a coordination member id or group name must match in full: 1 to 128 ASCII
#: letters, digits, ``.``, ``_``, ``:``, ``@`` and ``-``, starting with a letter or
#: digit. A Kubernetes pod name fits; a space, a slash or a control character (which
#: would garble a log line or a backend key) does not.
MEMBER_NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:@-]{0,127}")


def _check_member_name(name: str) -> str:
    if MEMBER_NAME_PATTERN.fullmatch(name) is None:
        raise PydanticCustomError(
            "member_name",
            "not a valid name: use 1 to 128 letters, digits, '.', '_', ':', '@' "
            "and '-', starting with a letter or digit",
        )
    return name


#: A coordination member id or group name, checked against :data:`MEMBER_NAME_PATTERN`.
MemberName = Annotated[str, AfterValidator(_check_member_name)]


def default_member_id() -> str:
    """This process's name in a coordination group: the host name, ``-``, the
    process id (characters a member id may not hold become ``-``)."""
    host = re.sub(r"[^A-Za-z0-9._:@-]", "-", socket.gethostname()).lstrip("._:@-")
    name = f"{host[:100] or 'demi'}-{os.getpid()}"
    return name


def _replicas_from_text(value: Any) -> Any:
    # An environment variable is text: DEMI_PLATFORMS__CHAT__REPLICAS=1 means 1.
    return 1 if isinstance(value, str) and value.strip() == "1" else value


#: How many replicas of a coordination group run an instance: ``1`` (the member the
#: hash ring names) or ``"all"``.
Replicas = Annotated[Literal[1, "all"], BeforeValidator(_replicas_from_text)]
