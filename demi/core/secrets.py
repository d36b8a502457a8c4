"""Keeping secrets out of every output: logs, errors, health reports and ``demi config``.

The one owner of what is secret. A :class:`SecretRegistry` remembers the secret values
demi has seen in configurations and is the one scrubber that text passes before it
leaves demi; :data:`SECRETS` is the process's registry, and the module functions
(:func:`register_secrets`, :func:`scrub`) use it. What counts as secret:

- values typed ``SecretStr``, ``SecretBytes`` or ``Secret[...]``, anywhere;
- values under secret-looking keys (:func:`is_secret_key`), whole;
- the password of a URL with user information (``postgres://app:PASSWORD@db/app``);
- fields a driver's ``config_model`` types as secret, at any depth
  (:func:`redact_by_model`).

Tests that must not see secrets registered by other tests call ``SECRETS.reset()``
(or build a :class:`SecretRegistry` of their own); see tests/test_secrets.py.
"""

from __future__ import annotations

import json
import re
import threading
import traceback
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import quote, quote_plus, unquote

from pydantic import BaseModel, Secret, SecretBytes, SecretStr

from ._secret_model import mask_model

__all__ = [
    "REDACTED",
    "SECRETS",
    "SecretRegistry",
    "format_exception",
    "is_secret_key",
    "redact",
    "redact_by_model",
    "register_secrets",
    "scrub",
]

#: What a secret value is shown as.
REDACTED = "**********"

# A key is secret when one of its words, less trailing digits ("password2"), is one
# of these: "api_key", "authToken", "DB_PASSWORD" and "PRIVATE-KEY" are secret,
# "monkey" and "keyboard_layout" are not.
_SECRET_WORDS = frozenset(
    {
        "token",
        "password",
        "passwd",
        "passphrase",
        "secret",
        "key",
        "apikey",
        "privatekey",
        "authorization",
        "credential",
        "credentials",
    }
)
# Words split at separators, at lower-to-upper ("authToken") and at the end of an
# acronym ("DBPassword", "APIKey").
_WORD_SPLIT = re.compile(
    r"[^a-zA-Z0-9]+|(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])"
)

# The password in a URL's user information: after "scheme://user:" and before the
# last "@" of the authority (an unquoted "@" in a password is common enough).
_URL_PASSWORD = re.compile(
    r"(?P<before>\b[a-zA-Z][a-zA-Z0-9+.\-]*://[^:/?#@\s]*:)"
    r"(?P<password>[^/?#\s]+)"
    r"(?=@[^@/?#\s]*(?:[/?#\s]|$))"
)

# Shorter values would scrub ordinary words.
_MIN_SECRET_LENGTH = 4


def is_secret_key(key: object) -> bool:
    """Whether a configuration key looks like it holds a secret."""
    if not isinstance(key, str):
        return False
    return any(
        word.lower().rstrip("0123456789") in _SECRET_WORDS
        for word in _WORD_SPLIT.split(key)
        if word
    )


def _is_secret_value(value: object) -> bool:
    return isinstance(value, SecretStr | SecretBytes | Secret)


def _redact_url_passwords(text: str) -> str:
    return _URL_PASSWORD.sub(lambda match: match["before"] + REDACTED, text)


def redact(value: Any) -> Any:
    """Return a copy of ``value`` with secrets replaced by :data:`REDACTED`.

    Secret types and the values of secret-looking keys are replaced at any depth of
    mappings and lists; in every other string, URL passwords and registered secret
    values are.
    """
    if _is_secret_value(value):
        return REDACTED
    if isinstance(value, Mapping):
        return {
            key: REDACTED if is_secret_key(key) and item is not None else redact(item)
            for key, item in value.items()
        }
    if isinstance(value, list | tuple):
        return [redact(item) for item in value]
    if isinstance(value, str):
        return SECRETS.scrub(_redact_url_passwords(value))
    return value


def redact_by_model(
    config: Mapping[str, Any], model: type[BaseModel]
) -> dict[str, Any]:
    """:func:`redact` of a driver's ``config``, also hiding every value its
    ``config_model`` types as a secret, at any depth (nested models, lists and dicts
    of models, ``Optional`` and ``Annotated`` types), whatever its key is called."""

    def hide(value: Any) -> Any:
        return REDACTED if value is not None else None

    redacted: dict[str, Any] = redact(mask_model(config, model, hide))
    return redacted


def _secret_values(value: Any, inherited: bool = False) -> Iterable[str]:
    """Every secret value in ``value``: secret types, everything under a secret key,
    and URL passwords (as written and percent-decoded)."""
    if isinstance(value, SecretStr | Secret):
        yield str(value.get_secret_value())
    elif isinstance(value, SecretBytes):
        yield value.get_secret_value().decode("utf-8", "replace")
    elif isinstance(value, Mapping):
        for key, item in value.items():
            yield from _secret_values(item, inherited or is_secret_key(key))
    elif isinstance(value, list | tuple | set | frozenset):
        for item in value:
            yield from _secret_values(item, inherited)
    elif inherited and value is not None and not isinstance(value, bool):
        yield str(value)
    elif isinstance(value, str):
        for match in _URL_PASSWORD.finditer(value):
            yield match["password"]
            yield unquote(match["password"])


def _written_forms(secret: str) -> set[str]:
    """How ``secret`` may be written in text: as it is, inside a ``repr()`` (with or
    without its single quotes escaped), inside JSON, and URL-quoted."""
    return {
        secret,
        _repr_body(secret, escape_quote=True),
        _repr_body(secret, escape_quote=False),
        json.dumps(secret)[1:-1],
        json.dumps(secret, ensure_ascii=False)[1:-1],
        quote(secret),
        quote(secret, safe=""),
        quote_plus(secret),
    }


def _repr_body(text: str, *, escape_quote: bool) -> str:
    # repr() escapes character by character, and whether it escapes "'" depends on the
    # whole string the secret is part of, so both spellings are kept.
    return "".join(
        ("\\'" if escape_quote else "'") if char == "'" else repr(char + '"')[1:-2]
        for char in text
    )


# Python indents the lines of an exception group's members, its messages' own line
# breaks included, with spaces and a margin ("  | "); a secret whose lines are split
# by that margin is still the secret.
_GROUP_MARGIN = r"(?: *[|+] )?"


class _Form:
    """One written form of a secret, and how to find it in text."""

    __slots__ = ("first_line", "pattern", "text")

    def __init__(self, text: str) -> None:
        self.text = text
        lines = text.splitlines(keepends=True)
        self.first_line = lines[0]
        # Plain replacement unless a line break may have gained a margin.
        self.pattern = (
            re.compile(_GROUP_MARGIN.join(map(re.escape, lines)))
            if len(lines) > 1
            else None
        )

    def replace(self, text: str) -> str:
        if self.first_line not in text:
            return text
        if self.pattern is None:
            return text.replace(self.text, REDACTED)
        return self.pattern.sub(REDACTED, text)


class SecretRegistry:
    """The secret values seen so far, and the one scrubber of text that leaves demi.

    Safe to use from worker threads: registering takes a lock, and :meth:`scrub`
    reads a tuple that registering replaces whole, never changes.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._values: set[str] = set()
        self._forms: tuple[_Form, ...] = ()

    def register(self, config: Any) -> None:
        """Remember every secret value in ``config`` (a mapping, at any depth; see the
        module's docstring for what is secret) so that :meth:`scrub` removes it."""
        self.add(*_secret_values(config))

    def add(self, *values: str) -> None:
        """Remember these secret values (those under four characters are ignored:
        they would scrub ordinary words)."""
        new = {value for value in values if len(value) >= _MIN_SECRET_LENGTH}
        with self._lock:
            new -= self._values
            if not new:
                return
            self._values |= new
            known = {form.text for form in self._forms}
            fresh = set().union(*map(_written_forms, new)) - known
            forms = [*self._forms, *map(_Form, fresh)]
            # Longest first, so a secret that contains another is replaced whole.
            self._forms = tuple(sorted(forms, key=lambda form: -len(form.text)))

    def scrub(self, text: str) -> str:
        """``text`` with every registered secret value, in any of its written forms,
        replaced by :data:`REDACTED`."""
        for form in self._forms:
            text = form.replace(text)
        return text

    def reset(self) -> None:
        """Forget every registered value (for tests)."""
        with self._lock:
            self._values.clear()
            self._forms = ()

    def __len__(self) -> int:
        """How many secret values are registered."""
        return len(self._values)


#: The process's registry: every configuration demi reads registers here.
SECRETS = SecretRegistry()


def register_secrets(config: Any) -> None:
    """Remember every secret value in ``config`` (a mapping, at any depth) so that
    :func:`scrub` removes it from text (:meth:`SecretRegistry.register` of
    :data:`SECRETS`)."""
    SECRETS.register(config)


def scrub(text: str) -> str:
    """``text`` with every registered secret value replaced by :data:`REDACTED`
    (:meth:`SecretRegistry.scrub` of :data:`SECRETS`)."""
    return SECRETS.scrub(text)


def format_exception(err: BaseException) -> str:
    """``err`` with its traceback, as Python prints it (chained causes and contexts
    and exception groups included), scrubbed of every registered secret."""
    return scrub("".join(traceback.format_exception(err)))
