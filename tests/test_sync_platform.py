"""SyncPlatform: platforms written with plain def methods run in worker threads."""

from __future__ import annotations

import ast
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import anyio.lowlevel
import helpers
import pytest

import demi
import demi.platforms.sync
from demi import (
    DemiSettings,
    PluginValidationError,
    SyncPlatform,
    validate_plugin_class,
)
from demi.platforms import BasePlatform, HealthStatus, PluginHealth
from demi.testing import make_manager

BLOCK_SECONDS = 1.0
LIFECYCLE_METHODS = {"initialize", "health_check", "handle_request", "shutdown"}


class SyncEcho(helpers.SyncEcho):
    """Answers with the request, from whichever thread runs it."""

    def handle_request(self, request: Mapping[str, Any]) -> dict[str, Any]:
        return {**request, "thread": threading.get_ident()}


class Sleeper(SyncEcho):
    """Blocks its thread for a second in every health check."""

    def health_check(self) -> PluginHealth:
        time.sleep(BLOCK_SECONDS)
        return PluginHealth(HealthStatus.HEALTHY)


class Yielding(BasePlatform):
    """An async platform whose health check passes through the event loop a few times,
    so it is still in progress while another platform's check starts."""

    async def initialize(self, config: Mapping[str, Any]) -> bool:
        return True

    async def health_check(self) -> PluginHealth:
        for _ in range(20):
            await anyio.lowlevel.checkpoint()
        return PluginHealth(HealthStatus.HEALTHY)

    async def handle_request(self, request: Mapping[str, Any]) -> dict[str, Any]:
        return dict(request)

    async def shutdown(self) -> None:
        pass


class HalfAsync(SyncEcho):
    """Mixes an async method into a blocking platform."""

    async def health_check(self) -> PluginHealth:  # type: ignore[override]
        return PluginHealth(HealthStatus.HEALTHY)


def test_sync_platform_is_exported() -> None:
    """SyncPlatform is part of demi's public API and of demi.platforms."""
    assert demi.SyncPlatform is SyncPlatform
    assert demi.platforms.SyncPlatform is SyncPlatform


def test_sync_platform_is_blocking() -> None:
    """SyncPlatform tells the manager to use worker threads."""
    assert SyncPlatform.blocking is True


def test_sync_platform_leaves_the_four_methods_abstract() -> None:
    """A SyncPlatform subclass must still write all four lifecycle methods."""
    assert SyncPlatform.__abstractmethods__ == LIFECYCLE_METHODS


def test_sync_platform_is_a_base_platform_at_run_time() -> None:
    """Discovery, the manager and isinstance see a SyncPlatform as a BasePlatform."""
    assert issubclass(SyncPlatform, BasePlatform)
    assert isinstance(SyncEcho(), BasePlatform)


def test_type_checkers_view_keeps_the_rest_of_base_platform() -> None:
    """The base that type checkers see for SyncPlatform declares every attribute of
    BasePlatform except the four lifecycle methods."""
    tree = ast.parse(Path(demi.platforms.sync.__file__).read_text(encoding="utf-8"))
    (stub,) = [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.ClassDef) and node.name == "_PlatformBase"
    ]
    declared = {
        node.target.id
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)
        else getattr(node, "name", None)
        for node in stub.body
    }
    attributes = {
        name
        for name in vars(BasePlatform)
        if not name.startswith("__") and name != "_abc_impl"
    }
    assert declared == attributes - LIFECYCLE_METHODS


def test_sync_platform_subclass_validates() -> None:
    """A subclass with four plain methods is a valid platform."""
    validate_plugin_class(SyncEcho)


def test_async_method_on_sync_platform_is_rejected() -> None:
    """An async def method on a SyncPlatform fails validation, naming the method."""
    with pytest.raises(PluginValidationError, match=r"HalfAsync\.health_check"):
        validate_plugin_class(HalfAsync)


async def test_sync_platform_serves_requests_in_a_worker_thread() -> None:
    """handle_request of a SyncPlatform runs outside the event loop's thread."""
    async with make_manager(DemiSettings(), sync=SyncEcho) as manager:
        await manager.load_plugin("sync")
        response = await manager.handle_request("sync", {"ping": 1})
    assert response["ping"] == 1
    assert response["thread"] != threading.get_ident()


async def test_blocking_health_check_does_not_delay_another_platform() -> None:
    """A health check that blocks its thread for a second leaves another platform's
    concurrent check fast."""
    settings = DemiSettings(health_timeout=10)
    async with make_manager(settings, fast=Yielding, sleeper=Sleeper) as manager:
        await manager.load_plugin("fast")
        await manager.load_plugin("sleeper")
        results = await manager.health_check_all()
    assert results["sleeper"].response_time_ms >= BLOCK_SECONDS * 1000 * 0.9
    assert results["fast"].is_healthy
    assert results["fast"].response_time_ms < BLOCK_SECONDS * 1000 / 2
