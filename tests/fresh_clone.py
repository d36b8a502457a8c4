"""The README's two commands, exactly as printed, in a fresh clone and a fresh
virtual environment, with nothing added to PATH: what ``tox -e fresh`` runs.

1. ``git clone`` this checkout's committed state (HEAD) into a temporary folder.
2. ``python3 -m venv`` with the machine's ``python3``, PATH stripped to
   ``/usr/local/bin:/usr/bin:/bin``; the commands then run with that venv in front
   of it (as activating it would), nothing else.
3. The README's first command, read from README.md, must exit 0.
4. The README's second command, read from README.md, must exit 0. It runs tox on
   the whole suite (about 25 minutes), so by default it is limited through tox's own
   environment variables, the command untouched: ``TOX_ENV`` picks the three Python
   envs (interpreter discovery: 3.12 and 3.13 are off PATH) and ``TOX_OVERRIDE``
   gives them a short pytest run (the install path: wheel, extras, fixtures).
   ``--full`` runs it as a reader would, every env, the whole suite.

Not a test module (pytest does not collect it); ``tests/test_readme_commands.py``
imports :func:`readme_commands` so the README's commands have one reader.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
#: What a fresh login shell on this machine has, before anything is added.
SYSTEM_PATH = "/usr/local/bin:/usr/bin:/bin"
#: The quick run of the second command: every Python, a short suite.
QUICK_TOX = {
    "TOX_ENV": "py311,py312,py313",
    "TOX_OVERRIDE": "testenv.commands=pytest -q tests/test_public_api.py "
    "tests/test_readme_commands.py",
}
# What a caller's environment may carry that a fresh shell would not have: a venv
# (this script runs inside tox's), what tox sets in every env (besides its TOX_*),
# a changed import path.
_NOT_FRESH = (
    "VIRTUAL_ENV",
    "PYTHONPATH",
    "PYTHONHOME",
    "PYTHONDONTWRITEBYTECODE",
    "PYTHONHASHSEED",
    "PYTHONIOENCODING",
    "PIP_USER",
    "XDG_CACHE_HOME",
)


def readme_commands(readme: Path = ROOT / "README.md") -> list[str]:
    """The commands of the README's "Two commands" section, in order: each
    ``console`` block's text."""
    text = readme.read_text(encoding="utf-8")
    section = text.split("\n## Two commands\n", 1)[1].split("\n## ", 1)[0]
    return [
        block.strip()
        for block in re.findall(r"^```console\n(.*?)^```", section, re.M | re.S)
    ]


def _say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def _environment(venv: Path) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in _NOT_FRESH and not key.startswith(("TOX_", "_TOX"))
    }
    env["PATH"] = f"{venv / 'bin'}:{SYSTEM_PATH}"
    env["VIRTUAL_ENV"] = str(venv)
    return env


def _run(command: str, cwd: Path, env: dict[str, str]) -> None:
    _say(f"\n$ {command}")
    code = subprocess.run(["/bin/sh", "-c", command], cwd=cwd, env=env).returncode
    if code != 0:
        raise SystemExit(f"fresh: {command!r} exited {code}")


def main(argv: list[str] | None = None) -> int:
    """Clone, make the venv, run both commands; exit non-zero at the first failure."""
    parser = argparse.ArgumentParser(prog="tox -e fresh --", description=__doc__)
    parser.add_argument("--full", action="store_true",
                        help="run the second command with no limit (every env)")  # fmt: skip
    parser.add_argument("--keep", action="store_true",
                        help="keep the temporary folder (its path is printed)")  # fmt: skip
    args = parser.parse_args(argv)
    first, second = readme_commands()
    python3 = shutil.which("python3", path=SYSTEM_PATH)
    if python3 is None:
        raise SystemExit(f"fresh: no python3 on {SYSTEM_PATH}")
    head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"],
                          capture_output=True, text=True, check=True).stdout.strip()  # fmt: skip
    dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain"],
                           capture_output=True, text=True, check=True).stdout  # fmt: skip
    if dirty:
        _say("fresh: uncommitted changes are not part of the clone")
    work = Path(tempfile.mkdtemp(prefix="demi-fresh-"))
    try:
        clone, venv = work / "demi", work / "venv"
        subprocess.run(["git", "clone", "--quiet", str(ROOT), str(clone)], check=True)
        subprocess.run(
            ["git", "-C", str(clone), "checkout", "--quiet", head], check=True
        )
        stripped = {"PATH": SYSTEM_PATH, "HOME": os.environ.get("HOME", "/")}
        subprocess.run([python3, "-m", "venv", str(venv)], env=stripped, check=True)
        env = _environment(venv)
        _say(f"fresh: {head[:12]} in {clone}, {python3} in {venv}")
        _run(first, clone, env)
        if not args.full:
            env.update(QUICK_TOX)
            _say(
                "fresh: limited by "
                + ", ".join(f"{k}={v!r}" for k, v in QUICK_TOX.items())
            )
        _run(second, clone, env)
    finally:
        if args.keep:
            _say(f"fresh: kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    _say("\nfresh: both README commands passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
