"""docs/writing-a-platform.md: every command in the guide runs, in order, from an
empty folder, in a fresh virtual environment, so the guide cannot fall behind.

Until demi is published the guide installs it from a clone at ``~/src/demi``, or from
a wheel built from that clone: the test lays a copy of this checkout there under a
scratch HOME and runs each way as written, with no package-index setting of its own
(pip gets demi's dependencies from PyPI, as a reader's does)."""

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
# The ways the guide installs demi: a block written ```console WAY is one of them.
INSTALL_WAYS = ("checkout", "wheel")
# Where the guide expects the reader's clone of demi, under HOME.
CLONE = Path("src", "demi")


@dataclass(frozen=True)
class Block:
    """One fenced block of the guide."""

    language: str
    #: The file the block is, for a block written as ```lang title="path".
    title: str | None
    body: str
    #: The install way the block belongs to, for a block written as ```console WAY;
    #: the other blocks belong to every way.
    way: str | None = None

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
        words = TITLE.sub("", info).split()
        blocks.append(
            Block(
                words[0] if words else "",
                title["title"] if title else None,
                match["body"],
                words[1] if len(words) > 1 else None,
            )
        )
    return blocks


def guide_script(blocks: list[Block], plugins_json: Path, way: str) -> str:
    """A bash script that does what the guide says, installing demi the ``way`` way:
    writes each titled file where the reader is at that point and runs each command,
    stopping at the first failure."""
    lines = [
        "set -euo pipefail",
        "trap 'echo \"guide command failed: $BASH_COMMAND\" >&2' ERR",
    ]
    for block in blocks:
        if block.way not in (None, way):
            continue
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


def setup_cfg_metadata() -> configparser.SectionProxy:
    """demi's distribution name and version, from the one place they are written."""
    parser = configparser.ConfigParser()
    parser.read(ROOT / "setup.cfg", encoding="utf-8")
    return parser["metadata"]


def lay_clone(home: Path) -> Path:
    """A copy of what building demi needs from this checkout, where the guide expects
    the reader's clone (the build writes beside its sources; the checkout stays
    clean)."""
    clone = home / CLONE
    clone.mkdir(parents=True)
    for name in ("setup.cfg", "pyproject.toml", "README.md"):
        shutil.copyfile(ROOT / name, clone / name)
    shutil.copytree(
        ROOT / "demi", clone / "demi", ignore=shutil.ignore_patterns("__pycache__")
    )
    return clone


def guide_environment(tmp_path: Path, home: Path) -> dict[str, str]:
    """The caller's environment with a scratch HOME (holding the clone) and without
    demi's settings or the caller's virtual environment."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DEMI_", "PYTHON", "VIRTUAL_ENV"))
    }
    user_cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    env.update(
        HOME=str(home),
        # The guide's `python` is this Python: the one the suite checks.
        PATH=os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")]),
        # pip's download cache is kept (it only saves time); nothing else of it is.
        PIP_CACHE_DIR=os.environ.get("PIP_CACHE_DIR", str(user_cache / "pip")),
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


def test_every_install_way_has_its_block_and_no_other_way_is_written() -> None:
    """Each way of installing demi has a block, and a block of a way the test does not
    know (a typo) cannot be silently left out of every run."""
    ways = [block.way for block in guide_blocks() if block.way is not None]
    assert sorted(ways) == sorted(INSTALL_WAYS)


def test_the_wheel_the_guide_installs_is_the_one_the_clone_builds() -> None:
    """The wheel file the guide names carries setup.cfg's distribution and version."""
    metadata = setup_cfg_metadata()
    name = metadata["name"].replace("-", "_")
    wheel = f"{name}-{metadata['version']}-py3-none-any.whl"
    (block,) = [block for block in guide_blocks() if block.way == "wheel"]
    assert any(wheel in command for command in block.commands), block.commands


@pytest.mark.slow
@pytest.mark.parametrize("way", INSTALL_WAYS)
def test_guide_commands_run_in_a_fresh_virtual_environment(
    tmp_path: Path, way: str
) -> None:
    """Run from an empty folder, installing demi from the clone or from a wheel built
    from it, the guide's commands all succeed and leave a platform that `demi
    plugins` lists as valid, beside demi-conductor's own echo."""
    home = tmp_path / "home"
    lay_clone(home)
    workdir = tmp_path / "reader"
    workdir.mkdir()
    plugins_json = tmp_path / "plugins.json"
    script = tmp_path / "guide.sh"
    script.write_text(guide_script(guide_blocks(), plugins_json, way), encoding="utf-8")
    result = subprocess.run(
        ["bash", str(script)],
        cwd=workdir,
        env=guide_environment(tmp_path, home),
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    listed = {row["name"]: row for row in json.loads(plugins_json.read_text())}
    assert listed["hello"]["valid"], listed["hello"]["error"]
    assert listed["hello"]["distribution"] == "demi-hello"
    assert listed["echo"]["distribution"] == "demi-conductor"
