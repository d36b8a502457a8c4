"""The IRC platform's configuration."""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

__all__ = ["IrcConfig"]

# RFC 2812 nicknames: a letter or special first, then letters, digits, specials, "-".
_NICK = re.compile(r"[A-Za-z\[\]\\`_^{|}][A-Za-z0-9\[\]\\`_^{|}-]*")
# A channel name: a type prefix, then no space, comma, BEL, CR, LF or NUL.
_CHANNEL = re.compile(r"[#&+!][^\s,\x07\x00]+")


class IrcConfig(BaseModel):
    """Which server to connect to, as whom, and which channels to join."""

    model_config = ConfigDict(extra="forbid")

    #: The IRC server's host name or address.
    host: str = Field(min_length=1)
    #: Its port (6667 is plain text; 6697 is the usual TLS port).
    port: int = Field(default=6667, ge=1, le=65535)
    #: The bot's nickname.
    nick: str
    #: The channels to join, for example ``["#demi"]``.
    channels: list[str] = Field(default_factory=list)
    #: The server password (sent as PASS); never logged, never returned.
    password: SecretStr | None = None
    #: Connect over TLS (the certificate is verified against the system's CAs).
    tls: bool = False

    @field_validator("nick")
    @classmethod
    def _valid_nick(cls, value: str) -> str:
        if not _NICK.fullmatch(value):
            raise ValueError("not a valid IRC nickname")
        return value

    @field_validator("channels")
    @classmethod
    def _valid_channels(cls, value: list[str]) -> list[str]:
        for channel in value:
            if not _CHANNEL.fullmatch(channel):
                raise ValueError(f"{channel!r} is not a valid IRC channel name")
        return value
