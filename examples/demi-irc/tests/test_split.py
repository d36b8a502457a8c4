"""Cutting replies to the line limit, and parsing lines (no server needed)."""

from __future__ import annotations

import pytest
from demi_irc._message import build, parse
from demi_irc._split import privmsg_budget, split_text


def test_short_lines_pass_whole_and_blank_lines_are_dropped() -> None:
    assert split_text("hello\r\n\n  \nworld", 100) == ["hello", "world"]


def test_a_long_line_is_cut_at_a_space_which_is_dropped() -> None:
    assert split_text("aaaa bbbb cccc", 9) == ["aaaa bbbb", "cccc"]


def test_a_long_word_is_cut_on_a_character_boundary() -> None:
    text = "é" * 7  # 14 bytes
    pieces = split_text(text, 5)
    assert pieces == ["éé", "éé", "éé", "é"]
    assert "".join(pieces) == text


def test_a_four_byte_character_is_never_split() -> None:
    pieces = split_text("a😀" * 5, 6)
    assert all(len(piece.encode()) <= 6 for piece in pieces)
    assert "".join(pieces) == "a😀" * 5


def test_a_budget_below_one_character_is_refused() -> None:
    with pytest.raises(ValueError, match="budget"):
        split_text("x", 3)


def test_the_budget_counts_the_prefix_the_server_adds() -> None:
    mask = "demibot!~demibot@localhost"
    budget = privmsg_budget(mask, "demibot", "#demi")
    line = f":{mask} PRIVMSG #demi :{'x' * budget}\r\n"
    assert len(line.encode()) == 512
    # Without the mask, the longest plausible one is assumed: a smaller budget.
    assert privmsg_budget(None, "demibot", "#demi") < budget


def test_parse_reads_tags_prefix_and_trailing() -> None:
    message = parse(r"@msgid=abc\:1;time=x :alice!a@h PRIVMSG #demi :hello : there")
    assert message.tags == {"msgid": "abc;1", "time": "x"}
    assert message.nick == "alice"
    assert message.command == "PRIVMSG"
    assert message.params == ("#demi", "hello : there")
    assert parse("PING :irc.demi.test").params == ("irc.demi.test",)


def test_build_refuses_a_second_command_hidden_in_a_parameter() -> None:
    assert build("PRIVMSG", "#demi", "hi there") == b"PRIVMSG #demi :hi there\r\n"
    assert build("PRIVMSG", "#demi", ":)") == b"PRIVMSG #demi ::)\r\n"
    assert build("PRIVMSG", "#demi", "") == b"PRIVMSG #demi :\r\n"
    assert build("CAP", "END") == b"CAP END\r\n"
    with pytest.raises(ValueError, match="CR, LF"):
        build("PRIVMSG", "#demi", "hi\r\nQUIT")
    with pytest.raises(ValueError, match="middle"):
        build("PRIVMSG", "#demi x", "hi")
