"""An isolated environment for the child processes.

The children run as ``python -I -S`` with a ``sys.path`` the benchmark builds:

* the interpreter's standard library;
* a *deps* directory of symlinks to exactly the packages demi needs (found by
  importing them once in the real environment), with their ``.dist-info``, but
  without demi's own metadata, so no stray entry point (the test suite's fixture
  plugins, the built-in ``echo``) lands in ``demi.platforms``;
* for discovery, a generated *site* of N distributions, each with one entry point
  in ``demi.platforms`` and a byte-compiled five-line module.

The stevedore cache goes to an ``XDG_CACHE_HOME`` the caller chooses. stevedore
refuses to write its cache when ``sys.executable`` is under ``/tmp``, so the
interpreter must live elsewhere; the sandbox directory itself may be anywhere.
"""

from __future__ import annotations

import json
import os
import py_compile
import resource
import shutil
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ._child import FAKE_PREFIX, RESULT_MARKER

__all__ = ["NAMESPACE", "ChildError", "Sandbox"]

NAMESPACE = "demi.platforms"
CHILD = Path(__file__).with_name("_child.py")

# Imported in the real environment to learn which packages the children need; the
# lazy imports (worker threads, trio, rich tables) are exercised too.
_PROBE = """
import json, sys
before = set(sys.modules)
import demi, demi.conductor, demi.cli, demi.cli._app, demi.cli._render
import demi.isolation._proxy, msgspec
import anyio, anyio.to_thread, stevedore, pydantic_settings, trio, click
from rich.console import Console
from rich.table import Table
async def hop():
    await anyio.to_thread.run_sync(lambda: None)
for backend in ("asyncio", "trio"):
    anyio.run(hop, backend=backend)
import io
table = Table("a", "b"); table.add_row("1", "2")
Console(file=io.StringIO(), width=80).print(table)
tops = sorted({name.partition(".")[0] for name in set(sys.modules) - before})
import sysconfig
stdlib = tuple(sysconfig.get_paths()[key] for key in ("stdlib", "platstdlib"))
site = tuple(sysconfig.get_paths()[key] for key in ("purelib", "platlib"))
places = {}
for name in tops:
    if name in sys.stdlib_module_names or name in sys.builtin_module_names:
        continue
    module = sys.modules.get(name)
    path = list(getattr(module, "__path__", []) or [])
    place = path[0] if path else getattr(module, "__file__", None)
    if place and (place.startswith(site) or not place.startswith(stdlib)):
        places[name] = place
import importlib.metadata as md
dists = {}
for top, names in md.packages_distributions().items():
    if top in places:
        for dist_name in names:
            dist = md.distribution(dist_name)
            where = getattr(dist, "_path", None)
            # demi itself (demi-conductor since the rename) comes from the source tree.
            own = dist_name.lower().replace("_", "-") in {"demi", "demi-conductor"}
            if where is not None and not own:
                dists[dist_name] = str(where)
print(json.dumps({"modules": places, "dists": dists}))
"""

_PLUGIN_SOURCE = """\
from demi.platforms.base import BasePlatform, HealthStatus, PluginHealth


class Platform(BasePlatform):
    async def initialize(self, config):
        return True

    async def health_check(self):
        return PluginHealth(HealthStatus.HEALTHY)

    async def handle_request(self, request):
        return dict(request)

    async def shutdown(self):
        return None
"""


class ChildError(RuntimeError):
    """A child process failed."""


class Sandbox:
    """The directory holding the deps, the generated sites and the caches.

    :param root: an empty (or previously used) directory.
    :param python: the interpreter for the children (not under ``/tmp``, or the
        stevedore cache stays cold).
    """

    def __init__(self, root: Path, python: str = sys.executable) -> None:
        self.root = root
        self.python = python
        self.cwd = root / "cwd"
        self.deps = root / "deps"
        self._sites: dict[int, Path] = {}
        root.mkdir(parents=True, exist_ok=True)
        self.cwd.mkdir(exist_ok=True)
        self.stdlib_path = self._stdlib_path()
        self.linked = self._link_deps()

    @property
    def cache_disabled(self) -> bool:
        """Whether stevedore will refuse to write its cache for this interpreter."""
        return self.python.startswith("/tmp")

    def _stdlib_path(self) -> list[str]:
        out = subprocess.run(
            [
                self.python,
                "-I",
                "-S",
                "-c",
                "import sys, json; print(json.dumps(sys.path))",
            ],
            check=True,
            capture_output=True,
            text=True,
        )
        return [entry for entry in json.loads(out.stdout) if entry]

    def _link_deps(self) -> dict[str, str]:
        out = subprocess.run(
            [self.python, "-I", "-c", _PROBE],
            check=True,
            capture_output=True,
            text=True,
            cwd=self.cwd,
        )
        found = json.loads(out.stdout.strip().splitlines()[-1])
        if self.deps.exists():
            shutil.rmtree(self.deps)
        self.deps.mkdir()
        linked: dict[str, str] = {}
        for name, place in sorted(found["modules"].items()):
            source = Path(place)
            if not source.is_dir() and source.name.startswith("__init__."):
                source = source.parent
            (self.deps / source.name).symlink_to(source)
            linked[name] = str(source)
        for place in sorted(found["dists"].values()):
            source = Path(place)
            if source.exists():
                (self.deps / source.name).symlink_to(source)
        return linked

    def site(self, n: int) -> Path:
        """A directory of ``n`` distributions with one ``demi.platforms`` entry point
        each (``fake0000`` ... ), generated once per sandbox."""
        if n in self._sites:
            return self._sites[n]
        site = self.root / f"site-{n}"
        if site.exists():
            shutil.rmtree(site)
        site.mkdir()
        for i in range(n):
            module = f"{FAKE_PREFIX}{i:04d}"
            info = site / f"{module}-1.0.dist-info"
            info.mkdir()
            (info / "METADATA").write_text(
                f"Metadata-Version: 2.1\nName: {module}\nVersion: 1.0\n"
            )
            (info / "entry_points.txt").write_text(
                f"[{NAMESPACE}]\nfake{i:04d} = {module}:Platform\n"
            )
            (info / "RECORD").write_text("")
            source = site / f"{module}.py"
            source.write_text(_PLUGIN_SOURCE)
            py_compile.compile(
                str(source),
                doraise=True,
                invalidation_mode=py_compile.PycInvalidationMode.TIMESTAMP,
            )
        self._sites[n] = site
        return site

    def path(self, n: int | None = None) -> list[str]:
        """The children's ``sys.path``: stdlib, deps and, if ``n``, the site of ``n``."""
        extra = [str(self.site(n))] if n is not None else []
        return [*self.stdlib_path, str(self.deps), *extra]

    def cache_dir(self, label: str, *, fresh: bool = False) -> Path:
        """An ``XDG_CACHE_HOME`` for stevedore; emptied first when ``fresh``."""
        where = self.root / "cache" / label
        if fresh and where.exists():
            shutil.rmtree(where)
        where.mkdir(parents=True, exist_ok=True)
        return where

    def environ(self, cache: Path | None) -> dict[str, str]:
        """The children's environment: no DEMI_* or PYTHON* variables."""
        env = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(("DEMI_", "PYTHON"))
        }
        env["XDG_CACHE_HOME"] = str(cache or self.cache_dir("default"))
        return env

    def _run(
        self, argv: Sequence[str], cache: Path | None, timeout: float, **kwargs: Any
    ) -> tuple[subprocess.CompletedProcess[str], float, float]:
        """Run one child; return it with its wall time and its CPU time (user and
        system, from the rusage of waited-for children), both in milliseconds."""
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        proc = subprocess.run(
            argv,
            text=True,
            cwd=self.cwd,
            env=self.environ(cache),
            timeout=timeout,
            check=False,
            **kwargs,
        )
        wall = (time.perf_counter() - start) * 1000
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (
            after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
        ) * 1000
        return proc, wall, cpu

    def run_child(
        self,
        spec: Mapping[str, Any],
        *,
        cache: Path | None = None,
        timeout: float = 900,
    ) -> tuple[dict[str, Any], float]:
        """Run ``_child.py`` with ``spec``; return its result (with the process's CPU
        time added as ``process_cpu_ms``) and the process wall time in ms."""
        argv = [self.python, "-I", "-S", str(CHILD), json.dumps(dict(spec))]
        proc, wall, cpu = self._run(argv, cache, timeout, capture_output=True)
        lines = [
            line for line in proc.stdout.splitlines() if line.startswith(RESULT_MARKER)
        ]
        if proc.returncode != 0 or not lines:
            raise ChildError(
                f"child {spec.get('mode')} failed with exit code {proc.returncode}:\n"
                f"{proc.stderr[-3000:]}"
            )
        result: dict[str, Any] = json.loads(lines[-1][len(RESULT_MARKER) :])
        result["process_cpu_ms"] = cpu
        return result, wall

    def run_code(
        self, code: str, path: Sequence[str], *, cache: Path | None = None
    ) -> tuple[float, float]:
        """Run ``python -I -S -c`` with ``sys.path`` set to ``path`` first; return its
        wall and CPU times in ms (output discarded; a failure raises)."""
        boot = f"import sys; sys.path[:] = {list(path)!r}\n{code}"
        argv = [self.python, "-I", "-S", "-c", boot]
        proc, wall, cpu = self._run(
            argv, cache, 300, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        if proc.returncode != 0:
            raise ChildError(
                f"command failed with exit code {proc.returncode}: {code!r}\n"
                f"{proc.stderr[-3000:]}"
            )
        return wall, cpu
