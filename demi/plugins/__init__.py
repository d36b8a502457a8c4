"""Plugins: discovery through stevedore, lifecycle through anyio."""

from __future__ import annotations

from .base import PluginMetadata as PluginMetadata
from .base import PluginState as PluginState
from .discovery import discover_plugins as discover_plugins
from .discovery import validate_plugin_class as validate_plugin_class
from .manager import PluginManager as PluginManager

__all__ = [
    "PluginManager",
    "PluginMetadata",
    "PluginState",
    "discover_plugins",
    "validate_plugin_class",
]
