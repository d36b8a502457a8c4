"""Managers for tests: built around classes, never from entry points."""

from __future__ import annotations

from collections.abc import Mapping
from typing import cast

from ..core.config import DemiSettings
from ..platforms.base import BasePlatform
from ..platforms.sync import SyncPlatform
from ..plugins.manager import PluginManager

__all__ = ["make_manager"]


def make_manager(
    settings: DemiSettings | None = None,
    /,
    **classes: type[BasePlatform] | type[SyncPlatform],
) -> PluginManager:
    """A :class:`~demi.PluginManager` that knows exactly ``classes``, by name.

    No entry point is read, so a class needs no installing to be loaded::

        async with make_manager(chat=ChatPlatform) as manager:
            await manager.load_plugin("chat", {"greeting": "hi"})

    :param settings: timeouts and the rest; read from the environment when ``None``.
    :raises PluginValidationError: a class does not fulfil the contract.
    """
    # A SyncPlatform is a BasePlatform at run time; only type checkers see them apart.
    platforms = cast(Mapping[str, type[BasePlatform]], classes)
    return PluginManager.from_classes(platforms, settings=settings)
