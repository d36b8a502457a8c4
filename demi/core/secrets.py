"""Keeping secrets out of every output: logs, errors, health reports and ``demi config``."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from pydantic import SecretBytes, SecretStr

__all__ = ["REDACTED", "is_secret_key", "redact", "register_secrets", "scrub"]

#: What a secret value is shown as.
REDACTED = "**********"

# A key is secret when one of its words is one of these (so "api_key", "authToken"
# and "DB_PASSWORD" are, "monkey" and "keyboard_layout" are not).
_SECRET_WORDS = frozenset(
    {
        "token",
        "password",
        "passwd",
        "secret",
        "key",
        "apikey",
        "credential",
        "credentials",
    }
)
_WORD_SPLIT = re.compile(r"[^a-zA-Z0-9]+|(?<=[a-z0-9])(?=[A-Z])")


def is_secret_key(key: object) -> bool:
    """Whether a configuration key looks like it holds a secret."""
    if not isinstance(key, str):
        return False
    return any(word.lower() in _SECRET_WORDS for word in _WORD_SPLIT.split(key) if word)


def redact(value: Any) -> Any:
    """Return a copy of ``value`` with secrets replaced by :data:`REDACTED`.

    Secret types (``SecretStr``, ``SecretBytes``) and the values of secret-looking keys
    are replaced at any depth of mappings and lists.
    """
    if isinstance(value, SecretStr | SecretBytes):
        return REDACTED
    if isinstance(value, Mapping):
        return {
            key: REDACTED if is_secret_key(key) and item is not None else redact(item)
            for key, item in value.items()
        }
    if isinstance(value, list | tuple):
        return [redact(item) for item in value]
    return value


# Secret values seen in the configuration, so that text built elsewhere (a plugin's
# exception message, a log line) can be scrubbed of them before anyone sees it.
_KNOWN: set[str] = set()
# Shorter values would scrub ordinary words.
_MIN_SECRET_LENGTH = 4


def _secret_values(value: Any, inherited: bool = False) -> set[str]:
    if isinstance(value, SecretStr):
        return {value.get_secret_value()}
    if isinstance(value, SecretBytes):
        return {value.get_secret_value().decode("utf-8", "replace")}
    if isinstance(value, Mapping):
        found: set[str] = set()
        for key, item in value.items():
            found |= _secret_values(item, inherited or is_secret_key(key))
        return found
    if isinstance(value, list | tuple):
        return set().union(*(_secret_values(item, inherited) for item in value))
    if inherited and value is not None and not isinstance(value, bool):
        return {str(value)}
    return set()


def register_secrets(config: Any) -> None:
    """Remember every secret value in ``config`` (a mapping, at any depth) so that
    :func:`scrub` removes it from text."""
    _KNOWN.update(v for v in _secret_values(config) if len(v) >= _MIN_SECRET_LENGTH)


def scrub(text: str) -> str:
    """``text`` with every registered secret value replaced by :data:`REDACTED`."""
    for secret in sorted(_KNOWN, key=len, reverse=True):
        if secret in text:
            text = text.replace(secret, REDACTED)
    return text
