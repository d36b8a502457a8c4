"""A webhook platform: verifies the service's HMAC-SHA256 signature over the raw
body (header ``x-signature``, hex, key = config ``secret``), sends the JSON body
``{"id", "text", "conversation"}`` to its inbox as a message, answers 200 JSON.
Replies demi sends back are appended to the file config ``replies`` names."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from typing import Any

import anyio

from demi import InboundEvent, WebhookRequest, WebhookResponse
from demi.platforms import Inbox
from demi_testplugins._echo import HealthyEcho


class WebhookHmacPlatform(HealthyEcho):
    """Takes signed callbacks; no connection of its own."""

    async def initialize(self, config: Mapping[str, Any]) -> bool:
        self.secret = str(config["secret"]).encode()
        self.replies = config.get("replies")
        return True

    async def handle_webhook(
        self, request: WebhookRequest, inbox: Inbox
    ) -> WebhookResponse:
        expected = hmac.new(self.secret, request.body, hashlib.sha256).hexdigest()
        given = request.header("x-signature") or ""
        if not hmac.compare_digest(given, expected):
            return WebhookResponse(401, {"error": "bad signature"})
        if request.body == b"boom":
            raise RuntimeError("the platform broke on this callback")
        payload = json.loads(request.body)
        event = InboundEvent(
            "message",
            {"text": payload["text"], "sender": "service"},
            str(payload["id"]),
            payload.get("conversation"),
        )
        accepted = await inbox.send(event)
        return WebhookResponse(
            200,
            {"ok": True, "accepted": accepted, "query": dict(request.query)},
            headers={"x-handled-by": "webhook_hmac"},
        )

    async def handle_request(self, request: Mapping[str, Any]) -> dict[str, Any]:
        if self.replies:
            async with await anyio.open_file(self.replies, "a") as replies:
                await replies.write(json.dumps(dict(request)) + "\n")
        return {"sent": True}
