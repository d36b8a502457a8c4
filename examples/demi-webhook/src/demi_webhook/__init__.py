"""demi-webhook: a demi platform that POSTs each request as JSON to a webhook."""

from __future__ import annotations

from .webhook import WebhookConfig as WebhookConfig
from .webhook import WebhookPlatform as WebhookPlatform

__all__ = ["WebhookConfig", "WebhookPlatform"]
