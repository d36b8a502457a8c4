"""Check that ``demi plugins --json`` lists a platform as valid.

Usage: ``python check_listed.py NAME [--distribution DIST]``. Exits 0 when an entry
named NAME is listed, valid (and registered by DIST, when given); otherwise prints
why and exits 1. Other plugins may be broken: only NAME is judged.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

KEYS = {"name", "target", "distribution", "version", "valid", "error"}


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``demi plugins --json`` and judge the entry NAME; return the exit code."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("name", help="the entry-point name in demi.platforms")
    parser.add_argument("--distribution", help="the distribution that must own it")
    args = parser.parse_args(argv)
    demi = _find_demi()
    if demi is None:
        return _fail("no `demi` command beside this Python or on PATH")
    result = subprocess.run(
        [demi, "plugins", "--json"], capture_output=True, text=True, check=False
    )
    try:
        rows: list[dict[str, Any]] = json.loads(result.stdout)
    except json.JSONDecodeError:
        return _fail(
            f"`demi plugins --json` printed no JSON (exit {result.returncode}): "
            f"{result.stderr.strip() or result.stdout.strip()}"
        )
    malformed = [row for row in rows if set(row) != KEYS]
    if malformed:
        return _fail(f"entries without exactly the keys {sorted(KEYS)}: {malformed}")
    listed = [row for row in rows if row["name"] == args.name]
    if not listed:
        names = ", ".join(sorted({row["name"] for row in rows})) or "none"
        return _fail(f"{args.name!r} is not listed; listed: {names}")
    for row in listed:
        if not row["valid"]:
            return _fail(f"{args.name!r} ({row['target']}) is invalid: {row['error']}")
        if args.distribution and row["distribution"] != args.distribution:
            return _fail(
                f"{args.name!r} comes from {row['distribution']!r}, "
                f"not {args.distribution!r}"
            )
        print(
            f"{args.name}: valid, {row['target']} "
            f"from {row['distribution']} {row['version']}"
        )
    return 0


def _find_demi() -> str | None:
    """The ``demi`` script of the environment this Python belongs to, else PATH's."""
    beside = Path(sys.executable).with_name("demi")
    return str(beside) if beside.is_file() else shutil.which("demi")


def _fail(message: str) -> int:
    print(f"check_listed: {message}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    raise SystemExit(main())
