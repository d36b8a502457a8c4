"""demi's pytest plugin, registered through the ``pytest11`` entry point as ``demi``.

It declares the ``demi_conformance`` marker that every test of
:class:`~demi.testing.PlatformConformance` carries, so a suite run with
``--strict-markers`` accepts them and ``-m demi_conformance`` selects them.

And it shows a failed check as its sentence alone: the traceback of a failure the
kit raised is the kit's own source, which says nothing about the platform (the
kit's functions set ``__tracebackhide__``; this also hides the frames of the
standard library's context managers between them). ``--full-trace`` shows it all.
"""

from __future__ import annotations

import contextlib
import types
from collections.abc import Generator
from pathlib import Path

import pytest

__all__ = ["pytest_configure", "pytest_runtest_makereport"]

# The kit's context managers are built with contextlib, whose frames carry no
# __tracebackhide__ of their own.
_CONTEXTLIB = Path(contextlib.__file__)


def pytest_configure(config: pytest.Config) -> None:
    """Declare the ``demi_conformance`` marker."""
    config.addinivalue_line(
        "markers",
        "demi_conformance: a check of demi's platform conformance kit "
        "(demi.testing.PlatformConformance)",
    )


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, object, None]:
    """Drop contextlib's frames from a failure the kit raised, before the report
    is made from it: the kit's own frames hide themselves, so the report starts
    with the sentence."""
    excinfo = call.excinfo
    if (
        excinfo is not None
        and item.get_closest_marker("demi_conformance") is not None
        and not item.config.getoption("fulltrace", False)
        and _raised_by_the_kit(excinfo)
    ):
        # Rebuilt from the raw traceback: pytest cuts it at the test function by
        # following the raw frames, so filtering its entries would not last.
        excinfo.traceback = type(excinfo.traceback)(_without_contextlib(excinfo.tb))
    yield


def _without_contextlib(tb: types.TracebackType) -> types.TracebackType:
    frames: list[types.TracebackType] = []
    link: types.TracebackType | None = tb
    while link is not None:
        frames.append(link)
        link = link.tb_next
    rebuilt: types.TracebackType | None = None
    for frame in reversed(frames):
        if Path(frame.tb_frame.f_code.co_filename) != _CONTEXTLIB:
            rebuilt = types.TracebackType(
                rebuilt, frame.tb_frame, frame.tb_lasti, frame.tb_lineno
            )
    return rebuilt or tb


def _raised_by_the_kit(excinfo: pytest.ExceptionInfo[BaseException]) -> bool:
    if not isinstance(excinfo.value, AssertionError) or not excinfo.traceback:
        return False
    frame = excinfo.traceback[-1].frame
    module = str(frame.f_globals.get("__name__", ""))
    return module.startswith("demi.testing.") and "__tracebackhide__" in frame.f_locals
