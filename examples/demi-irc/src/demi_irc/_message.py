"""IRC lines: parse what the server sends, build what we send (RFC 1459/2812, IRCv3 tags)."""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["LINE_LIMIT", "Message", "build", "parse"]

#: The protocol's limit on one line, CR LF included (RFC 2812 section 2.3).
LINE_LIMIT = 512

_TAG_ESCAPES = {":": ";", "s": " ", "\\": "\\", "r": "\r", "n": "\n"}


@dataclass(frozen=True, slots=True)
class Message:
    """One parsed line: ``@tags :prefix COMMAND params... :trailing``."""

    command: str
    params: tuple[str, ...] = ()
    prefix: str | None = None
    tags: dict[str, str] = field(default_factory=dict)

    @property
    def nick(self) -> str | None:
        """The nick part of the prefix (``nick!user@host``), if there is a prefix."""
        if self.prefix is None:
            return None
        return self.prefix.split("!", 1)[0]


def parse(line: str) -> Message:
    """Parse one line (without CR LF) the server sent."""
    tags: dict[str, str] = {}
    if line.startswith("@"):
        raw_tags, _, line = line[1:].partition(" ")
        for item in raw_tags.split(";"):
            key, _, value = item.partition("=")
            if key:
                tags[key] = _unescape(value)
    prefix = None
    line = line.lstrip(" ")
    if line.startswith(":"):
        prefix, _, line = line[1:].partition(" ")
    head, sep, trailing = line.partition(" :")
    params = head.split()
    command = params.pop(0).upper() if params else ""
    if sep:
        params.append(trailing)
    return Message(command, tuple(params), prefix, tags)


def build(command: str, *params: str) -> bytes:
    """One line to send, CR LF included.

    The last parameter is sent as trailing (``:`` first) only when it must be: it
    is empty, holds a space or starts with ``:``; servers parse both forms alike,
    and ``CAP END`` reads better than ``CAP :END``.

    :raises ValueError: a parameter holds CR, LF or NUL (it would inject a second
        command), or a middle parameter holds a space or is empty.
    """
    for param in params:
        if any(char in param for char in "\r\n\0"):
            raise ValueError("an IRC parameter cannot hold CR, LF or NUL")
    for param in params[:-1]:
        if not param or " " in param or param.startswith(":"):
            raise ValueError(f"{param!r} is not a valid middle IRC parameter")
    parts = [command, *params]
    if params and (not params[-1] or " " in params[-1] or params[-1][0] == ":"):
        parts[-1] = ":" + params[-1]
    return (" ".join(parts) + "\r\n").encode()


def _unescape(value: str) -> str:
    # IRCv3 message-tags: "\:" is ";", "\s" a space, "\\" a backslash, ...
    out: list[str] = []
    chars = iter(value)
    for char in chars:
        if char == "\\":
            escaped = next(chars, "")
            out.append(_TAG_ESCAPES.get(escaped, escaped))
        else:
            out.append(char)
    return "".join(out)
