"""Shared fixtures: both anyio backends, always, and a clean environment."""

from __future__ import annotations

import pytest

# Fixtures of the coordination tests: real etcd and Redis servers and the loopback
# connection counter.
pytest_plugins = ["coordination_fixtures"]


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    """Run every async test on asyncio and on trio.

    Defined here rather than taken from anyio's plugin, whose default quietly drops a
    backend that is not installed: a missing trio must fail, not shrink the matrix.
    """
    return str(request.param)


@pytest.fixture(autouse=True)
def _clean_demi_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """No DEMI_* variable or stray demi.toml/.env from the caller leaks into a test."""
    import os

    for variable in list(os.environ):
        if variable.startswith("DEMI_"):
            monkeypatch.delenv(variable)
    monkeypatch.chdir(tmp_path_factory.mktemp("cwd"))
