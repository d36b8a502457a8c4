"""The README's two commands, read as ``tox -e fresh`` reads them
(tests/fresh_clone.py), against what they name: the distribution and its extras in
setup.cfg, the ``demi`` console script and its command, tox's configuration. The
commands and the project cannot drift apart unnoticed; ``tox -e fresh`` runs them."""

from __future__ import annotations

import configparser
import re
import shlex
from pathlib import Path

from fresh_clone import QUICK_TOX, ROOT, readme_commands

from demi.cli import cli


def _setup_cfg() -> configparser.ConfigParser:
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(ROOT / "setup.cfg", encoding="utf-8")
    return parser


def _tox_ini() -> configparser.ConfigParser:
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(ROOT / "tox.ini", encoding="utf-8")
    return parser


def _steps(command: str) -> list[list[str]]:
    return [shlex.split(step) for step in command.split("&&")]


def test_the_readme_has_exactly_two_commands() -> None:
    assert len(readme_commands()) == 2


def test_the_first_command_installs_this_distribution_and_runs_demi_check() -> None:
    install, run = _steps(readme_commands()[0])
    assert install[:4] == ["python3", "-m", "pip", "install"] and len(install) == 5
    found = re.fullmatch(r"\.(?:\[([\w,-]+)\])?", install[4])
    assert found, f"installs {install[4]!r}, not this checkout"
    setup = _setup_cfg()
    extras = set(found[1].split(",")) if found[1] else set()
    assert extras <= set(setup["options.extras_require"]), extras
    # The checkout is the distribution the README names, with the command it runs.
    assert setup["metadata"]["name"] == "demi-conductor"
    assert "distribution is `demi-conductor`" in (ROOT / "README.md").read_text()
    scripts = setup["options.entry_points"]["console_scripts"]
    assert re.search(rf"^{re.escape(run[0])} = ", scripts.strip(), re.M), scripts
    assert run[0] == "demi" and len(run) == 2 and run[1] in cli.commands


def test_the_second_command_installs_tox_and_runs_the_default_envs() -> None:
    install, run = _steps(readme_commands()[1])
    assert install == ["python3", "-m", "pip", "install", "tox"]
    assert run == ["tox"]
    tox = _tox_ini()
    env_list = [env.strip() for env in tox["tox"]["env_list"].split(",")]
    # tox -e fresh runs this command: it must not be among what the command runs.
    assert "testenv:fresh" in tox and "fresh" not in env_list
    assert set(QUICK_TOX["TOX_ENV"].split(",")) <= set(env_list)
    quick_tests = QUICK_TOX["TOX_OVERRIDE"].partition("pytest")[2].split()
    for path in quick_tests:
        if not path.startswith("-"):
            assert (ROOT / path).is_file(), path


def test_readme_commands_reads_console_blocks_of_its_section_only(
    tmp_path: Path,
) -> None:
    readme = tmp_path / "README.md"
    readme.write_text(
        "# x\n\n```console\nnot this\n```\n\n## Two commands\n\ntext\n\n"
        "```console\none && two\n```\n\n```python\nno\n```\n\n```console\nthree\n```\n"
        "\n## Next\n\n```console\nnor this\n```\n"
    )
    assert readme_commands(readme) == ["one && two", "three"]
