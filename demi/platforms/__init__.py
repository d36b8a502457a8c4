"""The platform contract: what a plugin implements."""

from __future__ import annotations

from .base import BasePlatform as BasePlatform
from .base import HealthStatus as HealthStatus
from .base import PluginHealth as PluginHealth
from .sync import SyncPlatform as SyncPlatform

__all__ = ["BasePlatform", "HealthStatus", "PluginHealth", "SyncPlatform"]
