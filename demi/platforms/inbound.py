"""The inbound half of the platform contract: events a platform receives.

A platform that listens (a chat gateway, a long poll, a webhook) turns what it
receives into :class:`InboundEvent` objects and hands each to ``await inbox.send(event)``
on the :class:`Inbox` demi gives it. Webhook callbacks arrive as a
:class:`WebhookRequest` and are answered with a :class:`WebhookResponse`.

This module defines the shapes only; the buffer behind an inbox lives in
:mod:`demi.inbox`, above the platform layer.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from ..exceptions import PluginValidationError

__all__ = [
    "InboundEvent",
    "Inbox",
    "NOT_RECEIVED",
    "WebhookRequest",
    "WebhookResponse",
    "check_event",
]

#: The ``received_at`` of an event demi has not accepted yet (the Unix epoch, UTC).
#: A typed sentinel rather than ``None``, so a handler can use ``received_at`` as a
#: ``datetime`` without a check: every event a handler sees carries the real time.
NOT_RECEIVED = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class InboundEvent:
    """One thing a platform received: a message, a reaction, a call.

    A platform builds it from the first four fields; demi fills in ``instance`` and
    ``received_at`` when it accepts the event (``dataclasses.replace``), so a handler
    always sees both.

    By convention a message has ``kind="message"`` and
    ``data={"text": ..., "sender": ...}``, and a reply is the request
    ``{"text": ..., "conversation": ...}`` sent back through the same instance.
    """

    #: What happened, for example ``"message"``.
    kind: str
    #: The payload, JSON-like (str keys; str, numbers, bools, None, lists, mappings).
    data: Mapping[str, Any]
    #: The platform's own id for the event; a redelivery carries the same id and is
    #: dropped as a duplicate.
    event_id: str
    #: The chat, channel or caller the event belongs to. Events of one conversation
    #: are handled one at a time, in order; ``None`` means no ordering is needed.
    conversation: str | None = None
    #: The configured instance that received it (set by demi; ``""`` until then).
    instance: str = field(default="", kw_only=True)
    #: When demi accepted it, timezone-aware UTC (:data:`NOT_RECEIVED` until then).
    received_at: datetime = field(default=NOT_RECEIVED, kw_only=True)


def check_event(event: object, instance: str) -> InboundEvent:
    """Check that ``event`` is a well-formed :class:`InboundEvent`; return it.

    demi calls this on every event a platform sends, before accepting it.

    :param event: what a platform passed to ``inbox.send``.
    :param instance: the instance whose inbox received it.
    :raises PluginValidationError: the event is malformed; the message names the
        instance and the field. Event contents never appear in it.
    """
    if not isinstance(event, InboundEvent):
        raise PluginValidationError(
            instance,
            f"platform {instance!r} sent a {type(event).__name__}, not an InboundEvent",
        )
    problem = _problem(event)
    if problem is not None:
        raise PluginValidationError(
            instance, f"platform {instance!r} sent a malformed event: {problem}"
        )
    return event


def _problem(event: InboundEvent) -> str | None:
    # Field names and types only: the values may be what a person wrote.
    # Typed as object: the annotations are what a platform promised, not proof.
    kind: object = event.kind
    event_id: object = event.event_id
    data: object = event.data
    conversation: object = event.conversation
    if type(kind) is not str or not kind:
        return f"kind must be a non-empty str, not {_shape(kind)}"
    if type(event_id) is not str or not event_id:
        return f"event_id must be a non-empty str, not {_shape(event_id)}"
    if not isinstance(data, Mapping):
        return f"data must be a mapping, not {type(data).__name__}"
    if conversation is not None and type(conversation) is not str:
        return f"conversation must be a str or None, not {type(conversation).__name__}"
    return None


def _shape(value: object) -> str:
    return "an empty str" if value == "" else type(value).__name__


class Inbox(Protocol):
    """What a platform's ``run`` and ``handle_webhook`` are given.

    It is a handle on a buffer that belongs to the configured instance, not to the
    platform object: after a restart or a driver swap the new platform gets a new
    handle on the same buffer, so nothing already accepted is lost.
    """

    @property
    def instance(self) -> str:
        """The configured instance whose buffer this is."""
        ...

    async def send(self, event: InboundEvent) -> bool:
        """Hand one event to demi.

        Returns once demi has accepted it (``True``), or dropped it as a redelivery
        of an event it accepted recently (``False``). Waits while the instance's
        buffer is full (backpressure).

        :raises PluginValidationError: the event is malformed.
        """
        ...


@dataclass(frozen=True, slots=True)
class WebhookRequest:
    """An HTTP callback a service sent to ``POST /platforms/NAME/webhook``.

    The body is raw, so that a platform can verify the service's signature over
    exactly the bytes that were sent.
    """

    #: The HTTP method, upper case (``"POST"``).
    method: str
    #: The request path, as received.
    path: str
    #: The headers, names lower-cased (HTTP names are case-insensitive). A header
    #: sent more than once appears once, its values joined with ``", "``.
    headers: Mapping[str, str] = field(default_factory=dict)
    #: The query string's parameters (the last value of a repeated one).
    query: Mapping[str, str] = field(default_factory=dict)
    #: The raw request body.
    body: bytes = b""

    def __post_init__(self) -> None:
        # One spelling per header name, whatever the server handed over.
        if any(name != name.lower() for name in self.headers):
            lowered = {name.lower(): value for name, value in self.headers.items()}
            object.__setattr__(self, "headers", lowered)

    def header(self, name: str, default: str | None = None) -> str | None:
        """The value of header ``name`` (any case), or ``default``."""
        return self.headers.get(name.lower(), default)


@dataclass(frozen=True, slots=True)
class WebhookResponse:
    """What a platform's ``handle_webhook`` answers the service with.

    A ``bytes`` body is sent as is, a ``str`` body encoded as UTF-8, and a mapping as
    JSON; ``content_type`` defaults to match (``application/octet-stream``,
    ``text/plain; charset=utf-8``, ``application/json``).
    """

    #: The HTTP status code.
    status: int = 200
    #: The response body.
    body: bytes | str | Mapping[str, Any] = b""
    #: Extra response headers.
    headers: Mapping[str, str] = field(default_factory=dict)
    #: The ``Content-Type``; ``None`` picks one from the type of ``body``.
    content_type: str | None = None

    @property
    def media_type(self) -> str:
        """The ``Content-Type`` the response is sent with."""
        if self.content_type is not None:
            return self.content_type
        if isinstance(self.body, bytes):
            return "application/octet-stream"
        if isinstance(self.body, str):
            return "text/plain; charset=utf-8"
        return "application/json"

    def encoded_body(self) -> bytes:
        """The body as the bytes to send (see the class docstring)."""
        if isinstance(self.body, bytes):
            return self.body
        if isinstance(self.body, str):
            return self.body.encode()
        return json.dumps(dict(self.body), separators=(",", ":")).encode()
