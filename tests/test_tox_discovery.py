"""toxfile.py: plain `tox` finds the Pythons pyenv installed with none of them on PATH,
and a missing one fails fast, saying which version and how to get it."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

# tox.ini's deps install tox for these tests; a bare venv may lack it.
pytest.importorskip("tox")

ROOT = Path(__file__).resolve().parents[1]
TOX_INI = ROOT / "tox.ini"


@pytest.fixture(scope="module")
def toxfile() -> Iterator[Any]:
    """The project's inline tox plugin, imported as tox imports it."""
    sys.path.insert(0, str(ROOT))
    try:
        import toxfile as module

        yield module
    finally:
        sys.path.remove(str(ROOT))
        sys.modules.pop("toxfile", None)


def pyenv_versions() -> Path:
    """Where pyenv keeps its versions on this machine."""
    root = os.environ.get("PYENV_ROOT") or Path.home() / ".pyenv"
    return Path(root) / "versions"


def without_pythons_on_path(*minors: str) -> str:
    """PATH without pyenv and without any folder holding python3.MINOR: what a
    shell sees where pyenv is installed but those versions are not selected."""
    kept = []
    for entry in os.environ.get("PATH", "").split(os.pathsep):
        folder = Path(entry)
        if "pyenv" in entry or any((folder / f"python{m}").exists() for m in minors):
            continue
        kept.append(entry)
    return os.pathsep.join(kept)


def run_tox(*args: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """This environment's tox on the project's tox.ini, with 3.12 and 3.13 off PATH,
    its work in tmp_path, and nothing of the calling tox env leaking in."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("TOX_", "VIRTUAL_ENV", "PYTHON", "_TOX"))
    }
    env["PATH"] = without_pythons_on_path("3.12", "3.13")
    return subprocess.run(
        [sys.executable, "-m", "tox", *args, "-c", str(TOX_INI),
         "--workdir", str(tmp_path / "tox")],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


@pytest.mark.slow
@pytest.mark.skipif(
    not all(
        any(pyenv_versions().glob(f"{minor}.*/bin/python3"))
        for minor in ("3.12", "3.13")
    ),
    reason="pyenv has no 3.12 and 3.13 on this machine",
)
def test_tox_finds_pyenvs_interpreters_off_path(tmp_path: Path) -> None:
    """With no python3.12 or python3.13 on PATH, tox resolves py312 and py313 to
    pyenv's interpreters."""
    result = run_tox(
        "config", "-e", "py312,py313", "-k", "py_dot_ver", tmp_path=tmp_path
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "[testenv:py312]\npy_dot_ver = 3.12\n" in result.stdout, result.stdout
    assert "[testenv:py313]\npy_dot_ver = 3.13\n" in result.stdout, result.stdout


@pytest.mark.slow
def test_a_missing_interpreter_fails_fast_naming_it(tmp_path: Path) -> None:
    """An env whose Python is nowhere fails within seconds, with a line saying which
    version is missing and the pyenv command that installs it."""
    start = time.monotonic()
    result = run_tox("run", "-e", "py399", "--notest", tmp_path=tmp_path)
    elapsed = time.monotonic() - start
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    assert "py399: no Python 3.99: not on PATH, nor under" in output, output
    assert "install it with `pyenv install 3.99`" in output, output
    assert elapsed < 60, f"{elapsed:.1f} s"


@pytest.mark.slow
def test_a_skipped_missing_interpreter_is_named_too(tmp_path: Path) -> None:
    """Where missing interpreters are skipped (`--skip-missing-interpreters`, never
    in this project's tox.ini), the skip is reported with the same line, not a
    crash of the plugin."""
    result = run_tox(
        "run", "-e", "py399", "--notest", "--skip-missing-interpreters", "true",
        tmp_path=tmp_path,
    )  # fmt: skip
    output = result.stdout + result.stderr
    assert "Traceback" not in output, output
    assert "internal error" not in output, output
    assert "py399: skipped because could not find python interpreter" in output, output
    assert "install it with `pyenv install 3.99`" in output, output


def test_pyenv_interpreters_are_final_cpython_3_newest_first(
    toxfile: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Only final CPython 3 releases with a python3 count, newest first (so each spec
    gets the newest patch release), and no pyenv at all means none."""
    versions = tmp_path / "pyenv" / "versions"
    for name in (
        "3.9.18",
        "3.12.1",
        "3.12.10",
        "3.13-dev",
        "pypy3.10-7.3.17",
        "2.7.18",
    ):
        (versions / name / "bin").mkdir(parents=True)
        (versions / name / "bin" / "python3").touch()
    (versions / "3.14.0" / "bin").mkdir(parents=True)  # no python3: a broken install
    monkeypatch.setenv("PYENV_ROOT", str(tmp_path / "pyenv"))
    found = toxfile.pyenv_interpreters()
    assert found == [
        str(versions / name / "bin" / "python3")
        for name in ("3.12.10", "3.12.1", "3.9.18")
    ]
    monkeypatch.setenv("PYENV_ROOT", str(tmp_path / "nowhere"))
    assert toxfile.pyenv_interpreters() == []
