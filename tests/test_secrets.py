"""demi.core.secrets: which keys are secret, redaction, and scrubbing text."""

from __future__ import annotations

import copy
import json
import logging
import os
import subprocess
import sys
import textwrap
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

import pytest
from pydantic import BaseModel, Field, SecretBytes, SecretStr

from demi.core.logger import configure_logging, get_logger
from demi.core.secrets import (
    REDACTED,
    SECRETS,
    SecretRegistry,
    format_exception,
    is_secret_key,
    redact,
    redact_by_model,
    register_secrets,
    scrub,
)


def unique_secret() -> str:
    """A secret value no other test has registered (the registry is process-wide)."""
    return f"secret-{uuid.uuid4().hex}"


@pytest.fixture
def fresh_secrets() -> Iterator[SecretRegistry]:
    """The process's registry, emptied before and after the test: how a test that
    must not see (or leave behind) other tests' secrets resets it."""
    SECRETS.reset()
    yield SECRETS
    SECRETS.reset()


#: Secrets written with every character that repr(), JSON and URLs escape.
AWKWARD_SECRETS = [
    "it's-a-secret-1f0a",
    'say-"cheese"-2b1c',
    "back\\slash-3c2d",
    "two\nlines-4d3e",
    "all'of\"them\\at\nonce-5e4f",
]


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
        "credentials",
        "private key",
        "private_key",
        "privateKey",
        "PRIVATE-KEY",
    ],
)
def test_secret_looking_keys_are_secret(key: str) -> None:
    """A key one of whose words names a secret is secret, whatever its case style."""
    assert is_secret_key(key)


@pytest.mark.parametrize(
    "key",
    [
        "monkey",
        "keyboard_layout",
        "endpoint",
        "tokenizer",
        "retries",
        "passage",
        "author",
        "version2",
        "",
    ],
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


@pytest.mark.parametrize("key", ["password2", "db_password1", "DBPassword2"])
def test_a_password_key_with_a_number_is_secret(key: str) -> None:
    """Numbered password keys (a second database's password) are secret."""
    assert is_secret_key(key)


@pytest.mark.parametrize("key", ["passphrase", "ssh_passphrase", "gpgPassphrase"])
def test_a_passphrase_key_is_secret(key: str) -> None:
    """A passphrase is a password by another name."""
    assert is_secret_key(key)


@pytest.mark.parametrize(
    "key", ["authorization", "Authorization", "proxy-authorization"]
)
def test_an_authorization_key_is_secret(key: str) -> None:
    """An Authorization header's value is a credential."""
    assert is_secret_key(key)


@pytest.mark.parametrize(
    "key", ["privatekey", "PRIVATEKEY", "DBPassword", "SMTPPassword"]
)
def test_secret_words_run_together_or_after_an_acronym_are_secret(key: str) -> None:
    """ "privatekey" is a secret word of its own, and an acronym ends before the word
    that follows it ("DB" + "Password")."""
    assert is_secret_key(key)


# -- URL passwords -------------------------------------------------------------------


def test_redact_hides_only_the_password_of_a_url() -> None:
    """A URL with user information keeps everything but its password, in any
    string at any depth; URLs without a password are left alone."""
    value = {
        "dsn": "postgres://user:pw-0c1d@host/db",
        "mirrors": ["see amqp://guest:p@ss-1d2e@rabbit:5672/vhost?x=1 first"],
        "no_user": "https://host:8443/path?next=a:b@c",
        "anonymous": "ftp://anonymous@files.example/pub",
    }
    assert redact(value) == {
        "dsn": f"postgres://user:{REDACTED}@host/db",
        "mirrors": [f"see amqp://guest:{REDACTED}@rabbit:5672/vhost?x=1 first"],
        "no_user": "https://host:8443/path?next=a:b@c",
        "anonymous": "ftp://anonymous@files.example/pub",
    }


def test_register_secrets_registers_url_passwords_as_written_and_decoded() -> None:
    """The password of a URL in a config value is scrubbed from text, whether the
    text quotes it as the URL does or not."""
    marker = uuid.uuid4().hex[:8]
    register_secrets({"endpoints": [f"redis://:p%40ss-{marker}@cache:6379/0"]})
    assert scrub(f"auth p@ss-{marker} and p%40ss-{marker}") == (
        f"auth {REDACTED} and {REDACTED}"
    )


def test_redact_scrubs_registered_secrets_out_of_plain_strings() -> None:
    """A registered secret inside an ordinary value (a header someone wrote out) is
    replaced, the rest of the value kept."""
    secret = unique_secret()
    register_secrets({"token": secret})
    assert redact({"headers": [f"X-Auth: {secret}"]}) == {
        "headers": [f"X-Auth: {REDACTED}"]
    }


# -- the registry --------------------------------------------------------------------


def test_registries_are_independent() -> None:
    """A SecretRegistry scrubs only what was registered with it."""
    first, second = SecretRegistry(), SecretRegistry()
    secret = unique_secret()
    first.register({"token": secret})
    assert first.scrub(secret) == REDACTED
    assert second.scrub(secret) == secret


def test_reset_forgets_every_registered_secret() -> None:
    """After reset(), nothing registered before is scrubbed."""
    registry = SecretRegistry()
    secret = unique_secret()
    registry.register({"token": secret})
    registry.reset()
    assert registry.scrub(secret) == secret
    assert len(registry) == 0


def test_module_functions_use_the_default_registry(
    fresh_secrets: SecretRegistry,
) -> None:
    """register_secrets() and scrub() are the default registry's; resetting it
    resets them."""
    secret = unique_secret()
    register_secrets({"token": secret})
    assert fresh_secrets.scrub(secret) == REDACTED
    fresh_secrets.reset()
    assert scrub(secret) == secret


def test_registering_from_many_threads_loses_nothing() -> None:
    """Worker threads may register and scrub at the same time; every value
    registered is scrubbed afterwards."""
    registry = SecretRegistry()
    secrets = [[unique_secret() for _ in range(50)] for _ in range(8)]

    def work(batch: list[str]) -> None:
        for secret in batch:
            registry.register({"token": secret})
            assert registry.scrub(secret) == REDACTED

    threads = [threading.Thread(target=work, args=(batch,)) for batch in secrets]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    everything = " ".join(secret for batch in secrets for secret in batch)
    assert set(registry.scrub(everything).split()) == {REDACTED}


# -- escaped forms -------------------------------------------------------------------


@pytest.mark.parametrize("secret", AWKWARD_SECRETS)
def test_scrub_catches_the_repr_of_a_secret(secret: str) -> None:
    """A message built with {secret!r} is scrubbed, quotes and escapes included."""
    registry = SecretRegistry()
    registry.register({"token": secret})
    assert registry.scrub(f"rejected {secret!r}") == f"rejected '{REDACTED}'".replace(
        "'", repr(secret)[0]
    )


@pytest.mark.parametrize("secret", AWKWARD_SECRETS)
def test_scrub_catches_a_secret_inside_a_larger_repr(secret: str) -> None:
    """In the repr of a container or of a longer string, the secret is escaped as
    that whole string needs (a "'" inside it may or may not be escaped)."""
    registry = SecretRegistry()
    registry.register({"token": secret})
    for text in (repr({"token": secret}), repr(f"""'"{secret}"""), repr([secret, "'"])):
        assert registry.scrub(text).count(REDACTED) == 1, text


@pytest.mark.parametrize("secret", AWKWARD_SECRETS)
def test_scrub_catches_the_json_form_of_a_secret(secret: str) -> None:
    """A secret inside JSON text (a health report, a response) is scrubbed."""
    registry = SecretRegistry()
    registry.register({"token": secret})
    text = json.dumps({"error": f"bad token {secret}"})
    assert json.loads(registry.scrub(text)) == {"error": f"bad token {REDACTED}"}


@pytest.mark.parametrize("secret", AWKWARD_SECRETS)
def test_scrub_catches_the_url_quoted_form_of_a_secret(secret: str) -> None:
    """A secret URL-quoted into a query string is scrubbed."""
    registry = SecretRegistry()
    registry.register({"token": secret})
    for quoted in (quote(secret), quote(secret, safe="")):
        assert registry.scrub(f"GET /login?t={quoted}&x=1") == (
            f"GET /login?t={REDACTED}&x=1"
        )


# -- redact_by_model -----------------------------------------------------------------


class _Login(BaseModel):
    user: str
    proof: SecretStr


class _Upstream(BaseModel):
    url: str
    login: _Login
    spare: Annotated[SecretBytes | None, Field(description="x")] = None


class _Mirror(BaseModel):
    host: str
    proof: SecretStr | None = None


class _DeepConfig(BaseModel):
    upstream: _Upstream
    mirrors: list[_Mirror] = []
    replicas: dict[str, _Mirror] = {}
    fallback: _Login | None = None
    pins: tuple[SecretStr, ...] = ()
    signing: SecretStr | None = Field(default=None, alias="signing-material")


def test_redact_by_model_hides_secret_fields_at_any_depth() -> None:
    """Fields the model types as secret are hidden in nested models, lists and dicts
    of models, Optional, Annotated and aliased fields, whatever their names."""
    config = {
        "upstream": {
            "url": "https://up.example",
            "login": {"user": "app", "proof": "p1"},
            "spare": "p2",
        },
        "mirrors": [{"host": "m1", "proof": "p3"}, {"host": "m2", "proof": None}],
        "replicas": {"eu": {"host": "r1", "proof": "p4"}},
        "fallback": {"user": "ops", "proof": "p5"},
        "pins": ["p6", "p7"],
        "signing-material": "p8",
    }
    assert redact_by_model(config, _DeepConfig) == {
        "upstream": {
            "url": "https://up.example",
            "login": {"user": "app", "proof": REDACTED},
            "spare": REDACTED,
        },
        "mirrors": [{"host": "m1", "proof": REDACTED}, {"host": "m2", "proof": None}],
        "replicas": {"eu": {"host": "r1", "proof": REDACTED}},
        "fallback": {"user": "ops", "proof": REDACTED},
        "pins": [REDACTED, REDACTED],
        "signing-material": REDACTED,
    }


def test_redact_by_model_also_redacts_what_redact_does() -> None:
    """Keys the model does not know are still redacted by name, and URL passwords
    anywhere; the input is not changed."""
    config = {
        "upstream": {"url": "https://u:pw-77@up", "login": {"user": "a", "proof": "b"}},
        "extra_token": "t",
    }
    before = copy.deepcopy(config)
    assert redact_by_model(config, _DeepConfig) == {
        "upstream": {
            "url": f"https://u:{REDACTED}@up",
            "login": {"user": "a", "proof": REDACTED},
        },
        "extra_token": REDACTED,
    }
    assert config == before


# -- tracebacks and logs -------------------------------------------------------------


def _chained_failure(secret: str) -> BaseException:
    """A RuntimeError with the secret, caused by an exception group with the
    secret, holding a ValueError with the secret's repr, raised while handling a
    LookupError with its JSON form."""
    try:
        try:
            try:
                raise LookupError(f"no account for {json.dumps(secret)}")
            except LookupError:
                raise ValueError(f"token {secret!r} rejected")  # noqa: B904
        except ValueError as err:
            group = ExceptionGroup(f"all logins failed for {secret}", [err])
            raise RuntimeError(f"bad token {secret}") from group
    except RuntimeError as err:
        return err
    raise AssertionError("unreachable")


def _marker_free(text: str, *markers: str) -> None:
    for marker in markers:
        assert marker not in text, text


@pytest.mark.parametrize("secret", AWKWARD_SECRETS)
def test_format_exception_scrubs_causes_contexts_and_groups(
    fresh_secrets: SecretRegistry, secret: str
) -> None:
    """The formatted traceback holds the whole chain and no form of the secret, even
    where a group's margin splits a secret's lines."""
    register_secrets({"token": secret})
    text = format_exception(_chained_failure(secret))
    for part in ("LookupError", "ValueError", "ExceptionGroup", "RuntimeError"):
        assert part in text
    _marker_free(text, secret[-4:], *secret.splitlines())


@pytest.fixture
def cli_logging() -> Iterator[None]:
    """configure_logging() for one test, the "demi" logger put back afterwards."""
    logger = logging.getLogger("demi")
    handlers, level = list(logger.handlers), logger.level
    yield
    logger.handlers[:] = handlers
    logger.setLevel(level)


def test_logged_tracebacks_are_scrubbed(
    cli_logging: None, capsys: pytest.CaptureFixture[str]
) -> None:
    """A record's exc_info traceback, causes included, is scrubbed, not only its
    message."""
    secret = unique_secret()
    register_secrets({"token": secret})
    configure_logging(logging.DEBUG)
    try:
        raise _chained_failure(secret)
    except RuntimeError:
        get_logger("demi.test").exception("request failed")
    err = capsys.readouterr().err
    assert "request failed" in err
    assert "ExceptionGroup" in err
    assert secret not in err


def test_logged_stack_info_is_scrubbed(
    cli_logging: None, capsys: pytest.CaptureFixture[str]
) -> None:
    """A record's stack_info is scrubbed: a stack shows source lines, which can
    hold a secret."""
    secret = "stack-secret-8e1f9a"
    register_secrets({"token": secret})
    configure_logging(logging.DEBUG)
    get_logger("demi.test").info("here", stack_info=True)  # stack-secret-8e1f9a
    err = capsys.readouterr().err
    assert "Stack (most recent call last)" in err
    assert secret not in err


def test_records_leave_the_cli_handler_scrubbed(
    cli_logging: None, caplog: pytest.LogCaptureFixture
) -> None:
    """Handlers that see a record after the CLI's (a host's, pytest's) get its
    message and traceback scrubbed as well."""
    secret = unique_secret()
    register_secrets({"token": secret})
    configure_logging(logging.DEBUG)
    try:
        raise _chained_failure(secret)
    except RuntimeError:
        get_logger("demi.test").exception("failed with %s", secret)
    assert "ExceptionGroup" in caplog.text
    assert secret not in caplog.text


# -- the demi command ----------------------------------------------------------------

#: The console script of the package under test, installed beside this interpreter.
DEMI = Path(sys.executable).with_name("demi")

#: Secrets a nested_secrets instance is configured with, none under a secret key.
NESTED = {
    "proof": "deep-proof-6a0b17",
    "spare": "spare-proof-7b1c28",
    "mirror": "mirror-proof-8c2d39",
    "replica": "replica-proof-9d3e4a",
    "fallback": "fallback-proof-ae4f5b",
}


def demi_command(
    cwd: Path, *args: str, timeout: float = 60.0
) -> subprocess.CompletedProcess[str]:
    """Run ``demi ARGS`` in ``cwd``, without the caller's DEMI_* variables, with
    wide colourless output."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("DEMI_")}
    clean.update(COLUMNS="400", NO_COLOR="1")
    return subprocess.run(
        [str(DEMI), *args],
        cwd=cwd,
        env=clean,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def nested_instance(name: str, driver: str = "nested_secrets") -> str:
    """demi.toml text for one instance of nested_secrets holding every NESTED value."""
    return textwrap.dedent(
        f"""
        [platforms.{name}]
        driver = "{driver}"
        [platforms.{name}.config.upstream]
        url = "https://up.example"
        login = {{ user = "app", proof = "{NESTED["proof"]}" }}
        spare = "{NESTED["spare"]}"
        [[platforms.{name}.config.mirrors]]
        host = "m1.example"
        proof = "{NESTED["mirror"]}"
        [platforms.{name}.config.replicas.eu]
        host = "eu.example"
        proof = "{NESTED["replica"]}"
        [platforms.{name}.config.fallback]
        user = "ops"
        proof = "{NESTED["fallback"]}"
        """
    )


def assert_nested_redacted(config: dict[str, Any]) -> None:
    """The nested_secrets config as ``demi config --json`` should show it."""
    assert config == {
        "upstream": {
            "url": "https://up.example",
            "login": {"user": "app", "proof": REDACTED},
            "spare": REDACTED,
        },
        "mirrors": [{"host": "m1.example", "proof": REDACTED}],
        "replicas": {"eu": {"host": "eu.example", "proof": REDACTED}},
        "fallback": {"user": "ops", "proof": REDACTED},
    }


@pytest.mark.slow
@pytest.mark.parametrize("as_json", [True, False], ids=["json", "table"])
def test_config_redacts_driver_secrets_at_any_depth(
    tmp_path: Path, as_json: bool
) -> None:
    """``demi config`` hides every value the driver's config_model types as SecretStr,
    in nested models, lists and dicts of models, whatever its key."""
    (tmp_path / "demi.toml").write_text(nested_instance("deep"))
    result = demi_command(tmp_path, "config", *(["--json"] if as_json else []))
    assert result.returncode == 0, result.stderr
    _marker_free(result.stdout + result.stderr, *NESTED.values())
    if as_json:
        shown = json.loads(result.stdout)["settings"]["platforms"]["deep"]["config"]
        assert_nested_redacted(shown)
    else:
        assert "eu.example" in result.stdout
        assert REDACTED in result.stdout


@pytest.mark.slow
def test_config_gives_up_on_a_driver_whose_import_hangs(tmp_path: Path) -> None:
    """A driver whose import never returns is abandoned after init_timeout: ``demi
    config`` still answers, redacting that instance's keys by name and the other
    instance's by its model."""
    (tmp_path / "demi.toml").write_text(
        'namespace = "demi_testplugins.config_imports"\ninit_timeout = 0.5\n'
        + nested_instance("deep")
        + textwrap.dedent(
            """
            [platforms.stuck]
            driver = "hangs_at_import"
            [platforms.stuck.config]
            api_token = "stuck-token-bf5a6c"
            colour = "blue"
            """
        )
    )
    result = demi_command(tmp_path, "config", "--json", timeout=30.0)
    assert result.returncode == 0, result.stderr
    _marker_free(result.stdout + result.stderr, "stuck-token-bf5a6c", *NESTED.values())
    platforms = json.loads(result.stdout)["settings"]["platforms"]
    assert platforms["stuck"]["config"] == {"api_token": REDACTED, "colour": "blue"}
    assert_nested_redacted(platforms["deep"]["config"])


@pytest.mark.slow
@pytest.mark.parametrize("secret", AWKWARD_SECRETS)
def test_debug_traceback_hides_secrets_in_chained_plugin_errors(
    tmp_path: Path, secret: str
) -> None:
    """``demi --debug request`` prints the plugin's whole exception chain (cause,
    context, exception group) and no form of the secret it carries."""
    (tmp_path / "demi.toml").write_text(
        textwrap.dedent(
            f"""
            [platforms.chat]
            driver = "secret_in_error"
            [platforms.chat.config]
            token = {json.dumps(secret)}
            """
        )
    )
    result = demi_command(tmp_path, "--debug", "request", "chat", "{}")
    assert result.returncode == 1
    for part in ("LookupError", "ValueError", "ExceptionGroup", "RuntimeError"):
        assert part in result.stderr
    _marker_free(result.stdout + result.stderr, secret[-4:], *secret.splitlines())


@pytest.mark.slow
def test_config_skips_a_driver_whose_import_raises_keyboardinterrupt(
    tmp_path: Path,
) -> None:
    """A driver whose import raises what the loader lets through (KeyboardInterrupt)
    is skipped: ``demi config`` still answers, redacting its keys by name."""
    (tmp_path / "demi.toml").write_text(
        textwrap.dedent(
            """
            namespace = "demi_testplugins.config_imports"
            [platforms.odd]
            driver = "interrupts_at_import"
            [platforms.odd.config]
            password = "odd-password-c06d7e"
            colour = "blue"
            """
        )
    )
    result = demi_command(tmp_path, "config", "--json")
    assert result.returncode == 0, result.stderr
    assert "odd-password-c06d7e" not in result.stdout + result.stderr
    platforms = json.loads(result.stdout)["settings"]["platforms"]
    assert platforms["odd"]["config"] == {"password": REDACTED, "colour": "blue"}
