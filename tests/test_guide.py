"""docs/writing-a-platform.md: every command in the guide runs, in order, from an
empty folder, in a fresh virtual environment, so the guide cannot fall behind."""

from __future__ import annotations

import ast
import configparser
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import sysconfig
import tomllib
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
GUIDE = ROOT / "docs" / "writing-a-platform.md"
FENCE = re.compile(r"^```(?P<info>[^\n]*)\n(?P<body>.*?)^```[ \t]*$", re.M | re.S)
TITLE = re.compile(r'title="(?P<title>[^"]+)"')
# What the guide builds, and the files it writes on the way.
PACKAGE_FILES = {"pyproject.toml", "src/demi_hello/__init__.py", "demi.toml"}


@dataclass(frozen=True)
class Block:
    """One fenced block of the guide."""

    language: str
    #: The file the block is, for a block written as ```lang title="path".
    title: str | None
    body: str

    @property
    def commands(self) -> list[str]:
        """The ``$ `` lines of a console block, without the prompt."""
        if self.language != "console":
            return []
        return [line[2:] for line in self.body.splitlines() if line.startswith("$ ")]


def guide_blocks() -> list[Block]:
    """Every fenced block of the guide, in order."""
    blocks = []
    for match in FENCE.finditer(GUIDE.read_text(encoding="utf-8")):
        info = match["info"].strip()
        title = TITLE.search(info)
        blocks.append(
            Block(info.split(" ")[0], title["title"] if title else None, match["body"])
        )
    return blocks


def guide_script(blocks: list[Block], plugins_json: Path) -> str:
    """A bash script that does what the guide says: writes each titled file where the
    reader is at that point and runs each command, stopping at the first failure."""
    lines = [
        "set -euo pipefail",
        "trap 'echo \"guide command failed: $BASH_COMMAND\" >&2' ERR",
    ]
    for block in blocks:
        if block.title is not None:
            path = shlex.quote(block.title)
            lines += [
                f'mkdir -p "$(dirname {path})"',
                f"cat > {path} <<'DEMI_GUIDE_EOF'",
                block.body.rstrip("\n"),
                "DEMI_GUIDE_EOF",
            ]
        lines += block.commands
    # Where the reader ends up: ask demi, in machine form, what it lists.
    lines.append(f"demi plugins --json > {shlex.quote(str(plugins_json))}")
    return "\n".join(lines) + "\n"


def setup_cfg_version() -> str:
    """demi's version, from the one place it is written."""
    parser = configparser.ConfigParser()
    parser.read(ROOT / "setup.cfg", encoding="utf-8")
    return parser["metadata"]["version"]


def build_demi_wheel(wheelhouse: Path, scratch: Path) -> None:
    """Build demi's wheel from a copy of this checkout (the build writes beside its
    sources, and the checkout stays clean)."""
    source = scratch / "demi-src"
    source.mkdir()
    for name in ("setup.cfg", "pyproject.toml", "README.md"):
        if (ROOT / name).exists():
            (source / name).write_bytes((ROOT / name).read_bytes())
    shutil.copytree(
        ROOT / "demi", source / "demi", ignore=shutil.ignore_patterns("__pycache__")
    )
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps",
         "--wheel-dir", str(wheelhouse), str(source)],
        check=True, timeout=300,
    )  # fmt: skip


def dependency_farm(farm: Path) -> Path:
    """A directory of links to every installed distribution of this environment except
    demi's own, so the guide's venv finds demi's dependencies without downloading
    them and must install demi itself, as a reader would."""
    farm.mkdir()
    sites = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    for site in sorted(sites):
        for entry in Path(site).iterdir():
            name = entry.name.lower()
            if name.startswith(("demi", "__editable__", "_virtualenv")):
                continue
            if not (farm / entry.name).exists():
                (farm / entry.name).symlink_to(entry)
    return farm


def guide_environment(tmp_path: Path, wheelhouse: Path, farm: Path) -> dict[str, str]:
    """The caller's environment, pointed at the fresh build of demi."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DEMI_", "PYTHON", "VIRTUAL_ENV"))
    }
    user_cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    constraints = tmp_path / "constraints.txt"
    constraints.write_text(f"demi=={setup_cfg_version()}\n", encoding="utf-8")
    env.update(
        PATH=os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")]),
        PYTHONPATH=str(farm),
        PIP_FIND_LINKS=" ".join(filter(None, [str(wheelhouse), env.get("PIP_FIND_LINKS")])),
        PIP_CONSTRAINT=str(constraints),
        PIP_CACHE_DIR=env.get("PIP_CACHE_DIR", str(user_cache / "pip")),
        PIP_DISABLE_PIP_VERSION_CHECK="1",
        PIP_NO_INPUT="1",
        XDG_CACHE_HOME=str(tmp_path / "cache"),
    )  # fmt: skip
    return env


def test_guide_has_the_commands_and_files_to_run() -> None:
    """The guide's console commands and the package's files are found, so running the
    guide proves something."""
    blocks = guide_blocks()
    titles = {block.title for block in blocks if block.title}
    assert PACKAGE_FILES <= titles
    commands = [command for block in blocks for command in block.commands]
    assert commands[0].startswith("mkdir ")
    assert any(command.startswith("demi plugins") for command in commands)
    assert any("pytest" in command for command in commands)


def test_every_python_block_parses() -> None:
    """Every Python block of the guide, file or fragment, is valid Python."""
    for block in guide_blocks():
        if block.language == "python":
            ast.parse(block.body, filename=block.title or "<guide>")


def test_every_toml_block_parses() -> None:
    """Every TOML block of the guide is valid TOML."""
    for block in guide_blocks():
        if block.language == "toml":
            tomllib.loads(block.body)


@pytest.mark.slow
def test_guide_commands_run_in_a_fresh_virtual_environment(tmp_path: Path) -> None:
    """Run from an empty folder, the guide's commands all succeed and leave a platform
    that `demi plugins` lists as valid."""
    wheelhouse = tmp_path / "wheelhouse"
    build_demi_wheel(wheelhouse, tmp_path)
    farm = dependency_farm(tmp_path / "farm")
    workdir = tmp_path / "reader"
    workdir.mkdir()
    plugins_json = tmp_path / "plugins.json"
    script = tmp_path / "guide.sh"
    script.write_text(guide_script(guide_blocks(), plugins_json), encoding="utf-8")
    result = subprocess.run(
        ["bash", str(script)],
        cwd=workdir,
        env=guide_environment(tmp_path, wheelhouse, farm),
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    listed = {row["name"]: row for row in json.loads(plugins_json.read_text())}
    assert listed["hello"]["valid"], listed["hello"]["error"]
    assert listed["hello"]["distribution"] == "demi-hello"
