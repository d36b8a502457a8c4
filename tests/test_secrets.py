"""demi.core.secrets: which keys are secret, redaction, and scrubbing text."""

from __future__ import annotations

import copy
import uuid
from typing import Any

import pytest
from pydantic import SecretBytes, SecretStr

from demi.core.secrets import REDACTED, is_secret_key, redact, register_secrets, scrub


def unique_secret() -> str:
    """A secret value no other test has registered (the registry is process-wide)."""
    return f"secret-{uuid.uuid4().hex}"


# -- is_secret_key ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "key",
    [
        "token",
        "password",
        "passwd",
        "secret",
        "api_key",
        "apiKey",
        "APIKEY",
        "authToken",
        "DB_PASSWORD",
        "client-secret",
        "aws.credentials",
        "private key",
    ],
)
def test_secret_looking_keys_are_secret(key: str) -> None:
    """A key one of whose words names a secret is secret, whatever its case style."""
    assert is_secret_key(key)


@pytest.mark.parametrize(
    "key",
    ["monkey", "keyboard_layout", "endpoint", "tokenizer", "retries", "passage", ""],
)
def test_ordinary_keys_are_not_secret(key: str) -> None:
    """Keys that merely contain a secret word inside another word are not secret."""
    assert not is_secret_key(key)


@pytest.mark.parametrize("key", [None, 42, ("token",), b"password"])
def test_non_string_keys_are_not_secret(key: object) -> None:
    """Only strings can be secret keys."""
    assert not is_secret_key(key)


# -- redact ------------------------------------------------------------------------


def test_redact_hides_the_values_of_secret_keys() -> None:
    """A secret-looking key keeps its name; its value is replaced."""
    assert redact({"endpoint": "https://x", "api_key": "abc"}) == {
        "endpoint": "https://x",
        "api_key": REDACTED,
    }


def test_redact_hides_secret_types_anywhere() -> None:
    """SecretStr and SecretBytes values are replaced under any key."""
    value = {"a": SecretStr("one"), "b": [SecretBytes(b"two")]}
    assert redact(value) == {"a": REDACTED, "b": [REDACTED]}


def test_redact_hides_a_bare_secret() -> None:
    """A SecretStr on its own is replaced."""
    assert redact(SecretStr("x")) == REDACTED


def test_redact_reaches_into_nested_mappings_and_lists() -> None:
    """Secrets are found at any depth of mappings, lists and tuples."""
    value = {
        "platforms": {
            "chat": {"driver": "good", "config": {"token": "t", "hosts": ["h1"]}},
        },
        "pairs": ({"password": "p"}, {"user": "u"}),
    }
    assert redact(value) == {
        "platforms": {
            "chat": {"driver": "good", "config": {"token": REDACTED, "hosts": ["h1"]}},
        },
        "pairs": [{"password": REDACTED}, {"user": "u"}],
    }


def test_redact_hides_a_whole_structure_under_a_secret_key() -> None:
    """Everything under a secret key is hidden, even a mapping."""
    assert redact({"credentials": {"user": "u", "pin": 1234}}) == {
        "credentials": REDACTED
    }


def test_redact_keeps_an_unset_secret_visible_as_unset() -> None:
    """A secret key whose value is None shows None, so "not set" stays readable."""
    assert redact({"token": None}) == {"token": None}


def test_redact_leaves_its_input_alone() -> None:
    """redact returns a copy; the value passed in is not changed."""
    value: dict[str, Any] = {"token": "t", "nested": {"password": "p"}, "n": [1]}
    before = copy.deepcopy(value)
    redact(value)
    assert value == before


@pytest.mark.parametrize("value", [1, 2.5, "plain", None, True])
def test_redact_passes_plain_values_through(value: object) -> None:
    """Values that are neither containers nor secret types come back unchanged."""
    assert redact(value) == value


# -- register_secrets and scrub -------------------------------------------------------


def test_scrub_removes_a_registered_secret_from_text() -> None:
    """Once registered, a secret value is replaced wherever it appears in text."""
    secret = unique_secret()
    register_secrets({"token": secret})
    assert (
        scrub(f"failed to log in with {secret}!")
        == f"failed to log in with {REDACTED}!"
    )


def test_scrub_leaves_unregistered_text_alone() -> None:
    """Text without registered secrets is unchanged."""
    text = f"nothing secret here: {unique_secret()}"
    assert scrub(text) == text


def test_register_secrets_finds_secret_types_and_nested_secret_keys() -> None:
    """SecretStr values and values under secret keys at any depth are registered;
    ordinary values are not."""
    typed, nested, listed, ordinary = (unique_secret() for _ in range(4))
    register_secrets(
        {
            "anything": SecretStr(typed),
            "auth": {"api_key": nested},
            "credentials": [listed],
            "endpoint": ordinary,
        }
    )
    text = " ".join((typed, nested, listed, ordinary))
    assert scrub(text) == " ".join((REDACTED, REDACTED, REDACTED, ordinary))


def test_register_secrets_ignores_very_short_values() -> None:
    """A value too short to be a real secret is not scrubbed from ordinary words."""
    register_secrets({"key": "Zq~", "token": "Zq~9"})
    assert scrub("Zq~ is too short") == "Zq~ is too short"
    assert scrub("Zq~9 is not") == f"{REDACTED} is not"
