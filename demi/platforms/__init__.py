"""The platform contract: what a plugin implements."""

from __future__ import annotations

from .base import BasePlatform as BasePlatform
from .base import HealthStatus as HealthStatus
from .base import PluginHealth as PluginHealth
from .inbound import InboundEvent as InboundEvent
from .inbound import Inbox as Inbox
from .inbound import WebhookRequest as WebhookRequest
from .inbound import WebhookResponse as WebhookResponse
from .sync import SyncPlatform as SyncPlatform

__all__ = [
    "BasePlatform",
    "HealthStatus",
    "InboundEvent",
    "Inbox",
    "PluginHealth",
    "SyncPlatform",
    "WebhookRequest",
    "WebhookResponse",
]
