"""demi-irc: an IRC bot as a demi platform (the driver ``irc``)."""

from __future__ import annotations

from .config import IrcConfig
from .platform import IrcConnectionError, IrcPlatform

__all__ = ["IrcConfig", "IrcConnectionError", "IrcPlatform"]
