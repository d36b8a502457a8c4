"""The configuration model: strict keys, valid names, a secret password."""

from __future__ import annotations

import pytest
from demi_irc import IrcConfig
from pydantic import ValidationError

BASE = {"host": "irc.example.org", "nick": "demibot", "channels": ["#demi"]}


def test_defaults_and_a_password_that_stays_secret() -> None:
    config = IrcConfig.model_validate(BASE | {"password": "hunter2"})
    assert (config.port, config.tls) == (6667, False)
    assert "hunter2" not in repr(config) and "hunter2" not in str(config.model_dump())
    assert config.password is not None
    assert config.password.get_secret_value() == "hunter2"


@pytest.mark.parametrize(
    "change",
    [
        {"server": "x"},  # unknown key: extra="forbid"
        {"nick": "9lives"},
        {"nick": "two words"},
        {"channels": ["demi"]},
        {"channels": ["#a,#b"]},
        {"port": 0},
        {"host": ""},
    ],
)
def test_invalid_settings_are_refused(change: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        IrcConfig.model_validate(BASE | change)
