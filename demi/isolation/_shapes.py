"""The inbound shapes as they cross the process boundary: an event the child's
platform sends, a webhook call and its answer, each as plain data the wire's codec
carries (and back). One place for these conversions, so both sides agree."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..platforms.inbound import InboundEvent, WebhookRequest, WebhookResponse

__all__ = [
    "event_from_wire",
    "event_to_wire",
    "request_from_wire",
    "request_to_wire",
    "response_from_wire",
    "response_to_wire",
]


def event_to_wire(event: InboundEvent) -> dict[str, Any]:
    """What the child sends for ``event`` (demi fills in the rest on accepting it)."""
    return {
        "kind": event.kind,
        "data": event.data,
        "event_id": event.event_id,
        "conversation": event.conversation,
    }


def event_from_wire(params: Any) -> InboundEvent:
    """The event the child sent; demi checks it as it checks any event."""
    fields = params if isinstance(params, Mapping) else {}
    return InboundEvent(
        kind=fields.get("kind"),  # type: ignore[arg-type]  # checked on accepting
        data=fields.get("data"),  # type: ignore[arg-type]
        event_id=fields.get("event_id"),  # type: ignore[arg-type]
        conversation=fields.get("conversation"),
    )


def request_to_wire(request: WebhookRequest) -> dict[str, Any]:
    """A webhook call as plain data."""
    return {
        "method": request.method,
        "path": request.path,
        "headers": dict(request.headers),
        "query": dict(request.query),
        "body": request.body,
    }


def request_from_wire(params: Mapping[str, Any]) -> WebhookRequest:
    """The webhook call demi forwarded."""
    return WebhookRequest(
        method=str(params.get("method", "")),
        path=str(params.get("path", "")),
        headers=dict(params.get("headers") or {}),
        query=dict(params.get("query") or {}),
        body=bytes(params.get("body") or b""),
    )


def response_to_wire(response: object) -> dict[str, Any]:
    """The child platform's answer as plain data.

    :raises TypeError: it is not a :class:`WebhookResponse` (the platform's error).
    """
    if not isinstance(response, WebhookResponse):
        raise TypeError(
            f"handle_webhook returned {type(response).__name__}, not a WebhookResponse"
        )
    body = response.body
    return {
        "status": response.status,
        "body": body if isinstance(body, bytes | str) else dict(body),
        "headers": dict(response.headers),
        "content_type": response.content_type,
    }


def response_from_wire(params: Any) -> WebhookResponse:
    """The answer the child sent back."""
    fields = params if isinstance(params, Mapping) else {}
    return WebhookResponse(
        status=int(fields.get("status", 500)),
        body=fields.get("body", b""),
        headers=dict(fields.get("headers") or {}),
        content_type=fields.get("content_type"),
    )
