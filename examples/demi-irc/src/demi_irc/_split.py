"""Cut a reply into PRIVMSG texts that fit the protocol's 512-byte line limit."""

from __future__ import annotations

from ._message import LINE_LIMIT

__all__ = ["privmsg_budget", "split_text"]

# The longest user@host a server may put in our prefix when we do not know it yet:
# a 10-character ident (with ngircd's "~"), "@" and a 63-character host name.
_UNKNOWN_USERHOST = 1 + 10 + 1 + 63


def privmsg_budget(mask: str | None, nick: str, target: str) -> int:
    """How many bytes of text one PRIVMSG to ``target`` may carry.

    The server relays ``:mask PRIVMSG target :text\\r\\n`` to the recipients, so the
    prefix it adds counts against the limit too. ``mask`` is our ``nick!user@host``
    as the server showed it (our own JOIN echo); without it, the longest plausible
    one is assumed.
    """
    prefix = len(mask.encode()) if mask else len(nick.encode()) + _UNKNOWN_USERHOST
    # ":" mask " PRIVMSG " target " :" text "\r\n"
    overhead = 1 + prefix + len(" PRIVMSG ") + len(target.encode()) + 2 + 2
    return LINE_LIMIT - overhead


def split_text(text: str, budget: int) -> list[str]:
    """Split ``text`` into pieces of at most ``budget`` UTF-8 bytes.

    Each line of ``text`` is sent on its own (IRC has no multi-line message); blank
    lines are dropped (an empty PRIVMSG is an error). A line too long is cut at its
    last space within the budget, and that space dropped, as a reader expects; a
    word longer than half the budget is cut on a character boundary instead, never
    inside a multi-byte character. Servers strip a line's trailing spaces.

    :raises ValueError: ``budget`` cannot hold even one character.
    """
    if budget < 4:  # the longest UTF-8 character
        raise ValueError(f"a budget of {budget} bytes cannot hold a character")
    pieces: list[str] = []
    for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        encoded = line.encode()
        while encoded.strip():
            if len(encoded) <= budget:
                pieces.append(encoded.decode())
                break
            cut = budget
            # Back off while the cut would land on a continuation byte (10xxxxxx).
            while encoded[cut] & 0xC0 == 0x80:
                cut -= 1
            space = encoded.rfind(b" ", 0, cut + 1)
            if space >= cut // 2:
                pieces.append(encoded[:space].decode())
                encoded = encoded[space + 1 :]
            else:
                pieces.append(encoded[:cut].decode())
                encoded = encoded[cut:]
    return pieces
