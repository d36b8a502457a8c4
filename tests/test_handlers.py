"""Handlers: demi's own ``log`` and ``echo``, and loading one by entry-point name.

The entry points come from the installed demi-testplugins distribution (its
``demi.handlers`` group); demi's own ``log`` and ``echo`` are called directly and
through a real :class:`~demi.inbox.Dispatcher`.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Mapping
from typing import Any

import pytest

from demi import ConfigError, InboundEvent
from demi.handlers import DEFAULT_HANDLER, NAMESPACE, echo, load_handler, log, logged
from demi.inbox import Dispatcher


def message(
    text: str, conversation: str | None = "#demi", event_id: str = "m1"
) -> InboundEvent:
    return InboundEvent(
        "message", {"text": text, "sender": "ana"}, event_id, conversation
    )


class Replies:
    """A reply path that records what it was asked to send."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, Mapping[str, Any]]] = []

    async def __call__(self, instance: str, request: Mapping[str, Any]) -> None:
        self.sent.append((instance, dict(request)))


def test_the_group_and_the_default() -> None:
    """Handlers register under demi.handlers; log is the default."""
    assert (NAMESPACE, DEFAULT_HANDLER) == ("demi.handlers", "log")
    assert inspect.iscoroutinefunction(log) and inspect.iscoroutinefunction(echo)


async def test_log_logs_each_event_without_its_text_and_counts_it(
    caplog: pytest.LogCaptureFixture, anyio_backend: str
) -> None:
    """log writes one INFO line per event (id, instance, kind, conversation, never
    the text), counts per instance, and sends no reply."""
    instance = f"log-{anyio_backend}"
    replies = Replies()
    caplog.set_level(logging.INFO, logger="demi")
    async with Dispatcher(log, reply=replies) as dispatcher:
        handle = dispatcher.inbox(instance).handle()
        await handle.send(message("private words", event_id="m1"))
        await handle.send(message("more words", None, event_id="m2"))
    # Two conversations, handled concurrently: in either order.
    lines = sorted(r.getMessage() for r in caplog.records if r.name == "demi.handlers")
    assert len(lines) == 2
    assert f"event m1 of {instance}: message in #demi" in lines[0]
    assert f"event m2 of {instance}: message in no conversation" in lines[1]
    assert {"#1 from" in lines[0], "#1 from" in lines[1]} == {True, False}
    assert not any("words" in line or "ana" in line for line in lines)
    assert logged(instance) == 2
    assert replies.sent == []


async def test_echo_replies_with_the_same_text_to_the_same_conversation() -> None:
    """echo answers a message with its text, to the event's instance and
    conversation."""
    replies = Replies()
    async with Dispatcher(echo, reply=replies) as dispatcher:
        await dispatcher.inbox("irc").handle().send(message("hello demi"))
    assert replies.sent == [("irc", {"text": "hello demi", "conversation": "#demi"})]


@pytest.mark.parametrize(
    "event",
    [
        InboundEvent("reaction", {"text": "+1"}, "r1", "#demi"),
        InboundEvent("message", {"sender": "ana"}, "m1", "#demi"),
        InboundEvent("message", {"text": 5}, "m2", "#demi"),
    ],
    ids=["not-a-message", "no-text", "text-not-str"],
)
async def test_echo_ignores_what_is_not_a_text_message(event: InboundEvent) -> None:
    """Only messages with a text get an echo."""
    assert await echo(event) is None


async def test_load_handler_returns_the_registered_coroutine_function() -> None:
    """load_handler imports the named entry point of demi.handlers; the dispatcher
    runs it."""
    shout = load_handler("shout")
    assert inspect.iscoroutinefunction(shout)
    assert shout.__module__ == "demi_testplugins.handler_shout"
    replies = Replies()
    async with Dispatcher(shout, reply=replies) as dispatcher:
        await dispatcher.inbox("chat").handle().send(message("hi"))
    assert replies.sent == [("chat", {"text": "HI", "conversation": "#demi"})]


def test_unknown_handler_is_a_config_error_listing_the_known_ones() -> None:
    """A name nobody registered: ConfigError naming it and the names there are."""
    with pytest.raises(ConfigError, match="no handler named 'nope'") as caught:
        load_handler("nope")
    # demi's own log and echo join the list once setup.cfg registers them.
    known = str(caught.value).split("known: ", 1)[1].split(", ")
    assert {"import_fails", "not_async", "shout"} <= set(known)
    assert known == sorted(known)


def test_handler_that_is_not_async_is_a_config_error() -> None:
    """A plain function is refused: the dispatcher awaits handlers."""
    with pytest.raises(ConfigError, match="'not_async'.*not an async function"):
        load_handler("not_async")


def test_handler_that_fails_to_import_is_a_config_error() -> None:
    """An import failure names the handler and the error."""
    with pytest.raises(
        ConfigError, match="'import_fails' failed to import: ModuleNotFoundError"
    ):
        load_handler("import_fails")
