"""The ``demi`` command, driven as the installed console script in a subprocess.

Every command, every error path: exit codes, one clear line on stderr and no traceback
(unless ``--debug``), secrets never printed, progress only on a terminal, and
``demi run`` under real signals. Plugins come from the installed demi-testplugins
distribution; a few tests add a small distribution of their own through PYTHONPATH.
"""

from __future__ import annotations

import json
import os
import pty
import select
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import pytest
from helpers import install_distribution

pytestmark = pytest.mark.slow

#: The console script of the package under test, installed beside this interpreter.
DEMI = Path(sys.executable).with_name("demi")
#: Generous bound on one command; each takes well under a second when healthy.
TIMEOUT = 60.0
REDACTED = "**********"
BACKENDS = ["asyncio", "trio"]


def clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without DEMI_* variables, with wide, colourless
    output (rich wraps tables at 80 columns when piped), plus ``extra``."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("DEMI_") and key not in ("FORCE_COLOR", "PYTHONPATH")
    }
    env.update(COLUMNS="400", NO_COLOR="1")
    env.update(extra)
    return env


Run = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def demi(tmp_path: Path) -> Run:
    """Run ``demi ARGS`` to completion in tmp_path; ``env`` adds variables to a clean
    environment and ``stdin`` is fed to it."""

    def run(
        *args: str, env: Mapping[str, str] | None = None, stdin: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(DEMI), *args],
            cwd=tmp_path,
            env=clean_env(**(env or {})),
            input=stdin,
            stdin=subprocess.DEVNULL if stdin is None else None,
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
            check=False,
        )

    return run


def error_line(result: subprocess.CompletedProcess[str], code: int) -> str:
    """Assert the command failed with ``code`` saying exactly one line on stderr,
    without a traceback; return that line."""
    assert result.returncode == code, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("demi: error: ")
    return lines[0]


def write_config(tmp_path: Path, text: str) -> Path:
    """Write ``demi.toml`` in the working directory of the commands."""
    path = tmp_path / "demi.toml"
    path.write_text(textwrap.dedent(text))
    return path


# A distribution of two more plugins, put on PYTHONPATH by the extra_plugins fixture.
_EXTRA_MODULE = '''
"""Plugins for the CLI tests only."""

from pydantic import BaseModel, SecretStr
import sniffio

from demi.platforms import BasePlatform, HealthStatus, PluginHealth


class BackendProbe(BasePlatform):
    """Says which async library runs it, in its health and its answers."""

    async def initialize(self, config):
        return True

    async def health_check(self):
        backend = sniffio.current_async_library()
        return PluginHealth(HealthStatus.HEALTHY, error_message=f"running on {backend}")

    async def handle_request(self, request):
        return {"backend": sniffio.current_async_library()}

    async def shutdown(self):
        pass


class MarkupInError(BasePlatform):
    """Unhealthy, with a reason that rich would read as (broken) markup."""

    async def initialize(self, config):
        return True

    async def health_check(self):
        return PluginHealth(HealthStatus.UNHEALTHY, error_message="[/] tag [bold]x")

    async def handle_request(self, request):
        return {}

    async def shutdown(self):
        pass


class DsnConfig(BaseModel):
    dsn: SecretStr
    pool: int = 1


class DsnPlatform(BasePlatform):
    """Types a setting whose name does not look secret as SecretStr."""

    config_model = DsnConfig

    async def initialize(self, config):
        return True

    async def health_check(self):
        return PluginHealth(HealthStatus.HEALTHY)

    async def handle_request(self, request):
        return {"pool": self.pool}

    async def shutdown(self):
        pass
'''


@pytest.fixture
def extra_plugins(tmp_path: Path) -> dict[str, str]:
    """Environment variables that add the drivers ``backend_probe``, ``dsn`` and
    ``markup_in_error`` (a real distribution on PYTHONPATH) to demi.platforms."""
    site = tmp_path / "site"
    site.mkdir()
    install_distribution(
        site,
        "demi-cli-test-plugins",
        "1.0",
        module="demi_cli_test_plugins",
        source=_EXTRA_MODULE,
        platforms={
            "backend_probe": "demi_cli_test_plugins:BackendProbe",
            "dsn": "demi_cli_test_plugins:DsnPlatform",
            "markup_in_error": "demi_cli_test_plugins:MarkupInError",
        },
    )
    return {"PYTHONPATH": str(site)}


# -- help and usage -----------------------------------------------------------------


def test_help_lists_every_command(demi: Run) -> None:
    """``demi --help`` exits 0 and lists each command."""
    result = demi("--help")
    assert result.returncode == 0
    for command in ("plugins", "check", "run", "request", "config"):
        assert command in result.stdout


@pytest.mark.parametrize("command", ["plugins", "check", "run", "request", "config"])
def test_each_command_has_help(demi: Run, command: str) -> None:
    """``demi COMMAND --help`` exits 0 with that command's usage."""
    result = demi(command, "--help")
    assert result.returncode == 0
    assert f"Usage: demi {command}" in result.stdout


@pytest.mark.parametrize("command", ["check", "run", "request"])
def test_commands_that_run_platforms_take_a_backend(demi: Run, command: str) -> None:
    """Each command that runs platforms offers --backend asyncio|trio."""
    assert "--backend [asyncio|trio]" in demi(command, "--help").stdout


def test_version(demi: Run) -> None:
    """``demi --version`` prints the installed version."""
    result = demi("--version")
    assert result.returncode == 0
    assert "0.1.0" in result.stdout


@pytest.mark.parametrize(
    "args",
    [["no-such-command"], ["check", "--backend", "curio"], ["request", "echo"]],
    ids=["unknown-command", "bad-backend", "missing-argument"],
)
def test_usage_errors_exit_2_without_traceback(demi: Run, args: list[str]) -> None:
    """Bad command-line usage exits 2 with click's message as one line, no traceback
    (tests/test_cli_help.py pins the line)."""
    error_line(demi(*args), 2)


# -- demi plugins -------------------------------------------------------------------


def test_plugins_table_shows_each_plugin_and_exits_1_when_any_is_broken(
    demi: Run,
) -> None:
    """``demi plugins`` lists valid and broken plugins with distribution, version and
    reason, and exits 1 because demi-testplugins ships broken ones."""
    result = demi("plugins")
    assert result.returncode == 1
    out = result.stdout
    for text in ("echo", "good", "demi-testplugins", "1.0.0", "import_fails"):
        assert text in out
    assert "ModuleNotFoundError" in out
    assert "broken" in out.splitlines()[-1]
    assert result.stderr == ""


def test_plugins_json_is_one_object_per_entry_point(demi: Run) -> None:
    """``demi plugins --json`` prints a JSON array of objects with exactly name,
    target, distribution, version, valid and error; broken ones carry a reason."""
    result = demi("plugins", "--json")
    assert result.returncode == 1
    rows = json.loads(result.stdout)
    assert isinstance(rows, list)
    for row in rows:
        assert set(row) == {
            "name",
            "target",
            "distribution",
            "version",
            "valid",
            "error",
        }
        assert isinstance(row["valid"], bool)
        assert (row["error"] is None) is row["valid"]
    by_name = {row["name"]: row for row in rows}
    assert by_name["echo"] == {
        "name": "echo",
        "target": "demi.platforms.echo:EchoPlatform",
        "distribution": "demi-conductor",
        "version": "0.1.0",
        "valid": True,
        "error": None,
    }
    assert by_name["good"]["distribution"] == "demi-testplugins"
    assert by_name["import_fails"]["valid"] is False
    assert "ModuleNotFoundError" in by_name["import_fails"]["error"]
    assert by_name["abstract"]["valid"] is False
    assert [row["name"] for row in rows if row["name"] == "twin"] == ["twin", "twin"]


@pytest.mark.parametrize("as_json", [False, True], ids=["table", "json"])
def test_plugins_exits_0_when_every_plugin_is_valid(demi: Run, as_json: bool) -> None:
    """In a namespace holding only valid plugins, ``demi plugins`` exits 0."""
    args = ["plugins", "--namespace", "demi_testplugins.only_good"]
    result = demi(*args, *(["--json"] if as_json else []))
    assert result.returncode == 0, result.stdout
    if as_json:
        rows = json.loads(result.stdout)
        assert [(r["name"], r["valid"]) for r in rows] == [
            ("good", True),
            ("good2", True),
        ]
    else:
        assert "good2" in result.stdout and "0 broken" in result.stdout


def test_plugins_of_an_empty_namespace(demi: Run) -> None:
    """A namespace with no entry points gives an empty array and exit 0."""
    result = demi("plugins", "--json", "--namespace", "demi_testplugins.nothing_here")
    assert result.returncode == 0
    assert json.loads(result.stdout) == []


def test_plugins_scans_the_namespace_of_the_settings(demi: Run) -> None:
    """Without --namespace, ``demi plugins`` scans the namespace setting (here from
    DEMI_NAMESPACE); --namespace overrides it."""
    env = {"DEMI_NAMESPACE": "demi_testplugins.only_good"}
    result = demi("plugins", "--json", env=env)
    assert result.returncode == 0, result.stderr
    assert [row["name"] for row in json.loads(result.stdout)] == ["good", "good2"]
    other = demi("plugins", "--json", "--namespace", "demi_testplugins.slow", env=env)
    assert [row["name"] for row in json.loads(other.stdout)] == ["slow_import"]


def test_plugins_table_shows_plugin_text_as_written_not_as_markup(
    demi: Run, tmp_path: Path
) -> None:
    """Targets and errors that look like rich markup are shown as written, not
    interpreted (a stray closing tag would otherwise end the command)."""
    site = tmp_path / "site"
    site.mkdir()
    install_distribution(
        site, "demi-markup", "1.0", module="demi_markup",
        source='raise RuntimeError("[/] broken [bold]on purpose")\n',
        platforms={"marked": "demi_markup:Platform [/]"},
    )  # fmt: skip
    namespace = ["--namespace", "demi.platforms"]
    result = demi("plugins", *namespace, env={"PYTHONPATH": str(site)})
    assert result.returncode == 1, result.stderr
    assert "[/] broken [bold]on purpose" in result.stdout
    assert "demi_markup:Platform [/]" in result.stdout


# -- demi check ---------------------------------------------------------------------


def test_check_on_the_default_echo_is_healthy(demi: Run) -> None:
    """With no configuration at all, ``demi check`` runs the built-in echo, prints a
    healthy table and exits 0."""
    result = demi("check")
    assert result.returncode == 0, result.stderr
    assert "echo" in result.stdout
    assert "healthy" in result.stdout
    assert "all healthy" in result.stdout


def test_check_json(demi: Run) -> None:
    """``demi check --json`` prints the verdict and one object per platform."""
    result = demi("check", "--json")
    assert result.returncode == 0
    report = json.loads(result.stdout)
    assert report["healthy"] is True
    (echo,) = report["platforms"]
    assert echo["instance"] == "echo"
    assert echo["driver"] == "echo"
    assert echo["state"] == "active"
    assert echo["health"] == "healthy"
    assert echo["error"] is None


def test_check_runs_only_enabled_platforms(demi: Run, tmp_path: Path) -> None:
    """``demi check`` loads the enabled platforms from config and leaves disabled ones
    out."""
    write_config(
        tmp_path,
        '[platforms.a]\ndriver = "good"\n'
        '[platforms.off]\ndriver = "init_raises"\nenabled = false\n',
    )
    result = demi("check", "--json")
    assert result.returncode == 0, result.stdout
    assert [row["instance"] for row in json.loads(result.stdout)["platforms"]] == ["a"]


@pytest.mark.parametrize(
    ("driver", "state", "reason"),
    [
        ("health_raises", "active", "health probe exploded"),
        ("init_raises", "failed", "upstream refused the connection"),
        ("import_fails", "failed", "ModuleNotFoundError"),
    ],
)
def test_check_exits_1_when_a_platform_is_unhealthy_or_failed(
    demi: Run, driver: str, state: str, reason: str
) -> None:
    """An unhealthy platform, or one that failed to start, makes ``demi check`` exit 1
    and show why, while the healthy one beside it is reported healthy."""
    env = {"DEMI_PLATFORMS__X__DRIVER": driver, "DEMI_PLATFORMS__OK__DRIVER": "good"}
    result = demi("check", "--json", env=env)
    assert result.returncode == 1
    report = json.loads(result.stdout)
    assert report["healthy"] is False
    rows = {row["instance"]: row for row in report["platforms"]}
    assert rows["x"]["state"] == state
    assert rows["x"]["health"] == "unhealthy"
    assert reason in rows["x"]["error"]
    assert rows["ok"]["health"] == "healthy"
    table = demi("check", env=env)
    assert table.returncode == 1
    assert "not all healthy" in table.stdout


def test_check_lists_platforms_in_configuration_order(
    demi: Run, tmp_path: Path
) -> None:
    """The check table lists instances in configuration order, on trio too (which
    starts tasks in random order)."""
    names = ["kilo", "alpha", "zulu", "echo", "mike", "bravo"]
    write_config(
        tmp_path, "".join(f'[platforms.{n}]\ndriver = "good"\n' for n in names)
    )
    result = demi("check", "--json", "--backend", "trio")
    assert [row["instance"] for row in json.loads(result.stdout)["platforms"]] == names


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("how", ["option", "environment"])
def test_check_runs_on_the_chosen_backend(
    demi: Run, extra_plugins: dict[str, str], backend: str, how: str
) -> None:
    """``--backend`` (or DEMI_BACKEND) picks the async library the platforms run on."""
    env = {**extra_plugins, "DEMI_PLATFORMS__P__DRIVER": "backend_probe"}
    args = ["check", "--json"]
    if how == "option":
        args += ["--backend", backend]
    else:
        env["DEMI_BACKEND"] = backend
    result = demi(*args, env=env)
    assert result.returncode == 0, result.stderr
    (row,) = json.loads(result.stdout)["platforms"]
    assert row["error"] == f"running on {backend}"


def test_check_with_no_enabled_platform_exits_1_saying_nothing_was_checked(
    demi: Run, tmp_path: Path
) -> None:
    """With every platform disabled there is nothing to check: exit 1 and a line
    saying so, never success, for the table and for --json."""
    write_config(tmp_path, '[platforms.echo]\ndriver = "echo"\nenabled = false\n')
    for args in (["check"], ["check", "--json"]):
        line = error_line(demi(*args), 1)
        assert "nothing was checked: no platform is enabled" in line


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("as_json", [True, False], ids=["json", "table"])
def test_output_printed_by_a_plugin_never_reaches_stdout(
    demi: Run, backend: str, as_json: bool
) -> None:
    """A plugin that prints to stdout at import, in initialize (also straight to file
    descriptor 1) and in its health check cannot corrupt ``demi check``'s output:
    that chatter goes to stderr, and --json still parses."""
    env = {
        "DEMI_NAMESPACE": "demi_testplugins.chatty",
        "DEMI_PLATFORMS__TALKER__DRIVER": "prints_to_stdout",
    }
    args = ["check", "--backend", backend, *(["--json"] if as_json else [])]
    result = demi(*args, env=env)
    assert result.returncode == 0, result.stderr
    assert "prints_to_stdout: " not in result.stdout
    for chatter in ("imported", "initializing {", "straight to fd 1", "checking ]"):
        assert f"prints_to_stdout: {chatter}" in result.stderr
    if as_json:
        (row,) = json.loads(result.stdout)["platforms"]
        assert row["health"] == "healthy"
    else:
        assert "all healthy" in result.stdout


def strict_json(text: str) -> object:
    """Parse ``text`` as strict JSON: NaN and the infinities are refused."""

    def refuse(constant: str) -> object:
        raise AssertionError(f"{constant} is not JSON")

    return json.loads(text, parse_constant=refuse)


def test_check_json_is_strict_even_when_a_health_error_is_garbage(demi: Run) -> None:
    """A health error that is not text (a dict holding NaN, infinity and an object
    whose str() raises) still gives valid, strict JSON, the error as text."""
    env = {"DEMI_PLATFORMS__G__DRIVER": "health_error_garbage"}
    result = demi("check", "--json", env=env)
    assert result.returncode == 1, result.stderr
    (row,) = strict_json(result.stdout)["platforms"]  # type: ignore[index]
    assert row["health"] == "unhealthy"
    assert isinstance(row["error"], str) and row["error"]
    table = demi("check", env=env)
    assert table.returncode == 1 and "not all healthy" in table.stdout


def test_check_table_shows_a_plugin_error_as_text_not_markup(
    demi: Run, extra_plugins: dict[str, str]
) -> None:
    """An error message that looks like rich markup is shown as written."""
    env = {**extra_plugins, "DEMI_PLATFORMS__M__DRIVER": "markup_in_error"}
    result = demi("check", env=env)
    assert result.returncode == 1, result.stderr
    assert "[/] tag [bold]x" in result.stdout


@pytest.mark.parametrize("where", ["toml", "environment"])
def test_backend_comes_from_the_settings(
    demi: Run, tmp_path: Path, extra_plugins: dict[str, str], where: str
) -> None:
    """Without --backend, ``demi check`` and ``demi request`` run on the backend the
    settings name (demi.toml or DEMI_BACKEND); --backend overrides it."""
    env = {**extra_plugins, "DEMI_PLATFORMS__P__DRIVER": "backend_probe"}
    if where == "toml":
        write_config(tmp_path, 'backend = "trio"\n')
    else:
        env["DEMI_BACKEND"] = "trio"
    (row,) = json.loads(demi("check", "--json", env=env).stdout)["platforms"]
    assert row["error"] == "running on trio"
    assert json.loads(demi("request", "p", "{}", env=env).stdout) == {"backend": "trio"}
    chosen = demi("check", "--json", "--backend", "asyncio", env=env)
    (row,) = json.loads(chosen.stdout)["platforms"]
    assert row["error"] == "running on asyncio"


def test_check_is_quiet_when_piped(demi: Run) -> None:
    """With output piped, ``demi check`` shows no progress: stderr stays empty and
    stdout holds only the table."""
    result = demi("check")
    assert result.returncode == 0
    assert result.stderr == ""
    assert "Starting platforms" not in result.stdout
    assert "Checking health" not in result.stdout


def test_check_shows_progress_on_a_terminal(tmp_path: Path) -> None:
    """With stderr on a terminal, ``demi check`` shows its progress there (the control
    for the piped test above)."""
    controller, terminal = pty.openpty()
    try:
        process = subprocess.Popen(
            [str(DEMI), "check"],
            cwd=tmp_path,
            env=clean_env(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=terminal,
        )
        os.close(terminal)
        shown = bytearray()
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline:
            ready, _, _ = select.select([controller], [], [], 1.0)
            if not ready:
                continue
            try:
                chunk = os.read(controller, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            shown += chunk
        assert process.wait(timeout=TIMEOUT) == 0
        assert process.stdout is not None
        assert b"all healthy" in process.stdout.read()
        process.stdout.close()
    finally:
        os.close(controller)
    assert b"Starting platforms" in shown
    assert b"Checking health" in shown


# -- demi request -------------------------------------------------------------------


def test_request_prints_the_response(demi: Run) -> None:
    """``demi request echo JSON`` prints the platform's response as JSON, exit 0."""
    result = demi("request", "echo", '{"text": "hi", "n": [1, 2]}')
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"text": "hi", "n": [1, 2]}
    assert result.stderr == ""


def test_request_reads_stdin_for_dash(demi: Run) -> None:
    """``demi request echo -`` reads the JSON request from standard input."""
    result = demi("request", "echo", "-", stdin='{"from": "stdin"}\n')
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"from": "stdin"}


def test_request_starts_only_that_instance(demi: Run) -> None:
    """``demi request`` starts the one instance asked for (even a disabled one), not
    the others: a broken sibling does not matter."""
    env = {
        "DEMI_PLATFORMS__BROKEN__DRIVER": "init_raises",
        "DEMI_PLATFORMS__OFF__DRIVER": "counter",
        "DEMI_PLATFORMS__OFF__ENABLED": "false",
    }
    result = demi("-v", "request", "off", "{}", env=env)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"count": 1}
    assert "broken" not in result.stderr


@pytest.mark.parametrize("backend", BACKENDS)
def test_request_runs_on_the_chosen_backend(
    demi: Run, extra_plugins: dict[str, str], backend: str
) -> None:
    """``demi request --backend`` serves the request on that backend."""
    env = {**extra_plugins, "DEMI_PLATFORMS__P__DRIVER": "backend_probe"}
    result = demi("request", "p", "{}", "--backend", backend, env=env)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"backend": backend}


@pytest.mark.parametrize(
    ("payload", "stdin", "fragment"),
    [
        ("{bad", None, "the JSON argument is not valid JSON"),
        ("", None, "the JSON argument is not valid JSON"),
        ("-", "{bad", "standard input is not valid JSON"),
        ("-", "", "standard input is not valid JSON"),
    ],
    ids=["argument", "empty-argument", "stdin", "empty-stdin"],
)
def test_request_with_bad_json_exits_2(
    demi: Run, payload: str, stdin: str | None, fragment: str
) -> None:
    """JSON that does not parse is one line on stderr and exit 2."""
    line = error_line(demi("request", "echo", payload, stdin=stdin), 2)
    assert fragment in line


@pytest.mark.parametrize("payload", ["[1, 2]", '"text"', "3", "null", "true"])
def test_request_with_non_object_json_exits_2(demi: Run, payload: str) -> None:
    """JSON that is not an object is one line on stderr and exit 2."""
    line = error_line(demi("request", "echo", payload), 2)
    assert "must be a JSON object" in line


def test_request_with_non_object_json_on_stdin_exits_2(demi: Run) -> None:
    """A non-object read from stdin is refused the same way."""
    line = error_line(demi("request", "echo", "-", stdin="[1]"), 2)
    assert "standard input must be a JSON object" in line


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
@pytest.mark.parametrize("via", ["argument", "stdin"])
def test_request_with_nan_or_infinity_exits_2(
    demi: Run, constant: str, via: str
) -> None:
    """NaN and the infinities are not JSON: one line naming the constant and where
    it came from, exit 2."""
    text = f'{{"x": [1, {constant}]}}'
    if via == "argument":
        line = error_line(demi("request", "echo", text), 2)
        assert f"the JSON argument holds {constant}" in line
    else:
        line = error_line(demi("request", "echo", "-", stdin=text), 2)
        assert f"standard input holds {constant}" in line


def nested(levels: int) -> str:
    """A JSON object nested ``levels`` deep."""
    return '{"a": ' * (levels - 1) + "{}" + "}" * (levels - 1)


def test_request_nested_too_deep_exits_2(demi: Run) -> None:
    """A request may nest 100 levels; more is one line and exit 2, also when it is
    deep enough to exhaust the JSON parser's recursion (from stdin)."""
    assert demi("request", "echo", nested(100)).returncode == 0
    line = error_line(demi("request", "echo", nested(101)), 2)
    assert "the JSON argument is nested more than 100 levels deep" in line
    line = error_line(demi("request", "echo", "-", stdin="[" * 100_000), 2)
    assert "standard input is nested more than 100 levels deep" in line
    line = error_line(demi("request", "echo", "-", stdin=nested(100_000)), 2)
    assert "standard input is nested more than 100 levels deep" in line


def test_request_from_stdin_that_is_not_utf8_exits_2(tmp_path: Path) -> None:
    """Standard input that is not UTF-8 text is bad input, not an internal error."""
    result = subprocess.run(
        [str(DEMI), "request", "echo", "-"],
        cwd=tmp_path, env=clean_env(), input=b'{"x": "\xff"}',
        capture_output=True, timeout=TIMEOUT, check=False,
    )  # fmt: skip
    assert result.returncode == 2
    assert b"standard input is not UTF-8 text" in result.stderr


@pytest.mark.parametrize(
    ("driver", "fragment"),
    [
        ("request_answers_nan", "a non-finite number"),
        ("request_answers_cycle", "nesting deeper than 100 levels"),
    ],
)
def test_a_reply_json_cannot_carry_is_one_line_exit_1(
    demi: Run, driver: str, fragment: str
) -> None:
    """A platform answering with NaN, infinity or a dict that contains itself has
    failed the request (a reply leaves demi as JSON): one line naming the platform
    and what JSON cannot carry, exit 1, nothing on stdout."""
    result = demi("request", "p", "{}", env={"DEMI_PLATFORMS__P__DRIVER": driver})
    line = error_line(result, 1)
    assert "platform 'p'" in line and fragment in line
    assert result.stdout == ""


def test_request_to_an_unknown_instance_exits_2(demi: Run) -> None:
    """An instance that is not configured is one line naming it and the configured
    ones, exit 2."""
    line = error_line(demi("request", "nope", "{}"), 2)
    assert "'nope'" in line and "echo" in line


@pytest.mark.parametrize(
    ("driver", "fragment"),
    [
        ("request_raises", "ValueError: cannot handle that request"),
        ("request_garbage", "answered with list, not a dict"),
        ("request_hangs", "did not answer within 0.5s"),
    ],
)
def test_request_platform_error_exits_1(demi: Run, driver: str, fragment: str) -> None:
    """A platform that raises, answers garbage or times out is one line naming the
    instance and why, exit 1."""
    env = {"DEMI_PLATFORMS__CHAT__DRIVER": driver, "DEMI_REQUEST_TIMEOUT": "0.5"}
    line = error_line(demi("request", "chat", "{}", env=env), 1)
    assert "'chat'" in line and fragment in line


@pytest.mark.parametrize(
    ("driver", "fragment"),
    [
        ("import_fails", "ModuleNotFoundError"),
        ("not_a_platform", "does not inherit from demi.platforms.BasePlatform"),
        ("init_raises", "upstream refused the connection"),
    ],
)
def test_request_to_a_broken_plugin_exits_1_with_one_line(
    demi: Run, driver: str, fragment: str
) -> None:
    """A plugin that cannot be imported or started is one line naming the instance and
    the reason, exit 1, no traceback."""
    env = {"DEMI_PLATFORMS__CHAT__DRIVER": driver}
    line = error_line(demi("request", "chat", "{}", env=env), 1)
    assert "'chat'" in line and fragment in line


def test_a_driver_config_the_driver_rejects_exits_2_naming_key_and_source(
    demi: Run, tmp_path: Path
) -> None:
    """A configuration value the driver's config_model rejects is the operator's
    error: exit 2, the full key path and the file it came from, nothing started."""
    (tmp_path / "demi.toml").write_text(
        '[platforms.chat]\ndriver = "rejects_config"\n'
        '[platforms.chat.config]\nlevel = "loud"\n'
    )
    line = error_line(
        demi("--config", str(tmp_path / "demi.toml"), "request", "chat", "{}"), 2
    )
    assert "platforms.chat.config.level" in line
    assert "demi.toml" in line


def test_request_with_debug_shows_the_traceback(demi: Run) -> None:
    """``--debug`` adds the traceback to a platform error."""
    env = {"DEMI_PLATFORMS__CHAT__DRIVER": "request_raises"}
    result = demi("--debug", "request", "chat", "{}", env=env)
    assert result.returncode == 1
    assert "Traceback (most recent call last)" in result.stderr
    assert "ValueError: cannot handle that request" in result.stderr


# -- demi config and secrets --------------------------------------------------------

SECRETS = {
    "http": "http-bearer-7f3a91",
    "token": "configured-secretstr-52c8",
    "api_token": "api-token-value-e41d",
    "env_password": "env-password-0b77",
}


@pytest.fixture
def secret_config(tmp_path: Path) -> dict[str, str]:
    """A demi.toml and environment holding secrets four ways: a SecretStr setting, a
    driver's SecretStr field, a secret-looking key, and one from the environment."""
    write_config(
        tmp_path,
        f"""
        http_token = "{SECRETS["http"]}"
        [platforms.chat]
        driver = "configured"
        [platforms.chat.config]
        endpoint = "https://chat.example"
        token = "{SECRETS["token"]}"
        [platforms.other]
        driver = "good"
        [platforms.other.config]
        api_token = "{SECRETS["api_token"]}"
        colour = "blue"
        """,
    )
    return {"DEMI_PLATFORMS__OTHER__CONFIG__PASSWORD": SECRETS["env_password"]}


def assert_no_secret(result: subprocess.CompletedProcess[str]) -> None:
    """No secret value appears anywhere in what the command printed."""
    for secret in SECRETS.values():
        assert secret not in result.stdout
        assert secret not in result.stderr


def test_config_shows_the_effective_configuration_with_secrets_redacted(
    demi: Run, secret_config: dict[str, str]
) -> None:
    """``demi config --json`` shows every setting with its source file, and each secret
    as the redaction marker."""
    result = demi("config", "--json", env=secret_config)
    assert result.returncode == 0, result.stderr
    assert_no_secret(result)
    shown = json.loads(result.stdout)
    assert shown["config_file"] == "demi.toml"
    settings = shown["settings"]
    assert settings["http_token"] == REDACTED
    chat, other = settings["platforms"]["chat"], settings["platforms"]["other"]
    assert chat["driver"] == "configured"
    assert chat["config"] == {"endpoint": "https://chat.example", "token": REDACTED}
    assert other["config"] == {
        "api_token": REDACTED,
        "colour": "blue",
        "password": REDACTED,
    }
    assert settings["request_timeout"] == 30.0


def test_config_table_redacts_secrets(demi: Run, secret_config: dict[str, str]) -> None:
    """``demi config`` for people redacts the same secrets."""
    result = demi("config", env=secret_config)
    assert result.returncode == 0
    assert_no_secret(result)
    assert REDACTED in result.stdout
    assert "https://chat.example" in result.stdout


def test_config_redacts_a_driver_secretstr_whatever_its_name(
    demi: Run, tmp_path: Path, extra_plugins: dict[str, str]
) -> None:
    """A value the driver's config_model types as SecretStr is redacted by ``demi
    config`` even when its key does not look secret."""
    write_config(
        tmp_path,
        """
        [platforms.db]
        driver = "dsn"
        [platforms.db.config]
        dsn = "postgres://app:hunter2-9d1c@db/app"
        pool = 4
        """,
    )
    result = demi("config", "--json", env=extra_plugins)
    assert result.returncode == 0, result.stderr
    assert "hunter2-9d1c" not in result.stdout + result.stderr
    options = json.loads(result.stdout)["settings"]["platforms"]["db"]["config"]
    assert options == {"dsn": REDACTED, "pool": 4}


@pytest.mark.parametrize(
    "args",
    [
        ["check"],
        ["check", "--json"],
        ["-v", "check"],
        ["--debug", "check"],
        ["--debug", "request", "chat", "{}"],
        ["--debug", "request", "other", "{}"],
    ],
)
def test_secrets_never_appear_in_command_output(
    demi: Run, secret_config: dict[str, str], args: list[str]
) -> None:
    """Running the configured platforms, even with debug logs and tracebacks, prints
    no secret value."""
    result = demi(*args, env=secret_config)
    assert result.returncode == 0, result.stderr
    assert_no_secret(result)


def test_secrets_never_appear_in_errors(demi: Run, tmp_path: Path) -> None:
    """A secret in a setting that fails validation is not echoed in the error."""
    write_config(tmp_path, 'http_token = ["s3cret-in-a-list-81f0"]\n')
    result = demi("--debug", "check")
    assert result.returncode == 2
    assert "s3cret-in-a-list-81f0" not in result.stdout + result.stderr


# -- bad configuration --------------------------------------------------------------

BAD_CONFIGS: dict[str, tuple[str | None, dict[str, str], list[str]]] = {
    # id: (demi.toml text or None, environment, fragments the error line must hold)
    "unknown-driver-env": (
        None,
        {"DEMI_PLATFORMS__CHAT__DRIVER": "no_such_driver"},
        [
            "platforms.chat.driver",
            "no_such_driver",
            "environment variable DEMI_PLATFORMS__CHAT__DRIVER",
        ],
    ),
    "unknown-driver-toml": (
        '[platforms.chat]\ndriver = "no_such_driver"\n',
        {},
        ["platforms.chat.driver", "no_such_driver", "config file 'demi.toml'"],
    ),
    "wrong-type-env": (
        None,
        {"DEMI_REQUEST_TIMEOUT": "soon"},
        ["request_timeout", "environment variable DEMI_REQUEST_TIMEOUT"],
    ),
    "wrong-type-nested-env": (
        None,
        {
            "DEMI_PLATFORMS__CHAT__DRIVER": "good",
            "DEMI_PLATFORMS__CHAT__ENABLED": "maybe",
        },
        [
            "platforms.chat.enabled",
            "environment variable DEMI_PLATFORMS__CHAT__ENABLED",
        ],
    ),
    "wrong-type-toml": (
        '[platforms.chat]\ndriver = "good"\nmax_concurrency = "many"\n',
        {},
        ["platforms.chat.max_concurrency", "config file 'demi.toml'"],
    ),
    "unreadable-toml": (
        '[platforms.chat\ndriver = "good"\n',
        {},
        ["demi.toml", "not valid TOML", "line 1"],
    ),
    "unknown-top-level-key": (
        'request_timeout = 5\nrequest_timout = 5\n[platforms.chat]\ndriver = "good"\n',
        {},
        ["request_timout", "config file 'demi.toml'"],
    ),
    "missing-config-file": (
        None,
        {"DEMI_CONFIG": "nowhere.toml"},
        ["nowhere.toml", "DEMI_CONFIG", "does not exist"],
    ),
}


def setup_bad_config(tmp_path: Path, case: str) -> tuple[dict[str, str], list[str]]:
    """Write the case's demi.toml, if any; return its environment and fragments."""
    toml, env, fragments = BAD_CONFIGS[case]
    if toml is not None:
        write_config(tmp_path, toml)
    return env, fragments


@pytest.mark.parametrize("case", sorted(BAD_CONFIGS))
@pytest.mark.parametrize(
    "command", [["check"], ["request", "chat", "{}"], ["run"]], ids=lambda c: c[0]
)
def test_bad_configuration_exits_2_with_one_line_naming_key_and_source(
    demi: Run, tmp_path: Path, case: str, command: list[str]
) -> None:
    """Bad configuration is one line on stderr naming the key and the file or variable
    it came from, exit 2, no traceback, for every command that runs platforms."""
    env, fragments = setup_bad_config(tmp_path, case)
    line = error_line(demi(*command, env=env), 2)
    for fragment in fragments:
        assert fragment in line


@pytest.mark.parametrize(
    "case", sorted(c for c in BAD_CONFIGS if not c.startswith("unknown-driver"))
)
def test_demi_config_refuses_bad_configuration(
    demi: Run, tmp_path: Path, case: str
) -> None:
    """``demi config`` reports invalid settings the same way (exit 2, one line)."""
    env, fragments = setup_bad_config(tmp_path, case)
    line = error_line(demi("config", env=env), 2)
    for fragment in fragments:
        assert fragment in line


def test_bad_configuration_from_the_config_option(demi: Run, tmp_path: Path) -> None:
    """``--config FILE`` is read instead of ./demi.toml, and named in its errors."""
    (tmp_path / "other.toml").write_text('[platforms.chat]\ndriver = "nope"\n')
    write_config(tmp_path, '[platforms.chat]\ndriver = "good"\n')
    line = error_line(demi("--config", "other.toml", "check"), 2)
    assert "platforms.chat.driver" in line and "other.toml" in line
    missing = error_line(demi("--config", "absent.toml", "check"), 2)
    assert "absent.toml" in missing and "--config" in missing


def test_bad_configuration_from_the_dotenv_file(demi: Run, tmp_path: Path) -> None:
    """A bad value from ./.env names the .env file and the variable."""
    (tmp_path / ".env").write_text("DEMI_REQUEST_TIMEOUT=soon\n")
    line = error_line(demi("check"), 2)
    assert "request_timeout" in line and ".env" in line


@pytest.mark.parametrize("where", ["toml", "dotenv"])
def test_config_file_that_is_not_utf8_exits_2(
    demi: Run, tmp_path: Path, where: str
) -> None:
    """A TOML or .env file that is not UTF-8 text is a configuration error naming the
    file (exit 2), not an internal error."""
    name = "demi.toml" if where == "toml" else ".env"
    (tmp_path / name).write_bytes(b"request_timeout = \xff\xfe\n")
    line = error_line(demi("check"), 2)
    assert name in line


def test_bad_configuration_starts_no_platform(demi: Run) -> None:
    """With one good and one unknown driver configured, nothing is started at all."""
    env = {
        "DEMI_PLATFORMS__FINE__DRIVER": "good",
        "DEMI_PLATFORMS__CHAT__DRIVER": "no_such_driver",
    }
    result = demi("-v", "check", env=env)
    assert result.returncode == 2
    assert "loading" not in result.stderr
    assert "platforms.chat.driver" in result.stderr


def test_bad_configuration_with_debug_shows_the_traceback(demi: Run) -> None:
    """``--debug`` adds the traceback to a configuration error, still exit 2."""
    env = {"DEMI_PLATFORMS__CHAT__DRIVER": "no_such_driver"}
    result = demi("--debug", "check", env=env)
    assert result.returncode == 2
    assert "Traceback (most recent call last)" in result.stderr
    assert "ConfigError" in result.stderr
    assert result.stderr.rstrip().splitlines()[-1].startswith("demi: error: ")


# -- demi run -----------------------------------------------------------------------


class Running:
    """``demi run`` in the background, its log lines collected as they come."""

    def __init__(self, args: list[str], cwd: Path, env: Mapping[str, str]) -> None:
        self.process = subprocess.Popen(
            [str(DEMI), "run", *args],
            cwd=cwd,
            env=clean_env(**env),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: list[str] = []
        # Reentrant, so wait_for may read .log while holding it.
        self._changed = threading.Condition(threading.RLock())
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stderr is not None
        with self.process.stderr:
            for line in self.process.stderr:
                with self._changed:
                    self.lines.append(line.rstrip("\n"))
                    self._changed.notify_all()
        with self._changed:
            self._changed.notify_all()

    @property
    def log(self) -> str:
        """Everything logged so far."""
        with self._changed:
            return "\n".join(self.lines)

    def wait_for(self, text: str, since: int = 0, timeout: float = TIMEOUT) -> int:
        """Wait until a log line from index ``since`` on contains ``text``; return the
        index after it."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                for index in range(since, len(self.lines)):
                    if text in self.lines[index]:
                        return index + 1
                left = deadline - time.monotonic()
                ended = not self._reader.is_alive()
                if left <= 0 or ended:
                    raise AssertionError(f"no {text!r} in the log:\n{self.log}")
                self._changed.wait(min(left, 1.0))

    def send(self, signum: int) -> None:
        """Send a signal to demi run."""
        self.process.send_signal(signum)

    def wait_exit(self, timeout: float = TIMEOUT) -> int:
        """Wait for the process to end; return its exit code."""
        code = self.process.wait(timeout=timeout)
        self._reader.join(timeout)
        return code

    def kill(self) -> None:
        """Make sure the process is gone."""
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=TIMEOUT)
        self._reader.join(TIMEOUT)


@pytest.fixture
def run_demi(tmp_path: Path) -> Iterator[Callable[..., Running]]:
    """Start ``demi run ARGS`` in tmp_path; whatever is still running at the end of
    the test is killed."""
    started: list[Running] = []

    def start(*args: str, env: Mapping[str, str] | None = None) -> Running:
        running = Running(list(args), tmp_path, env or {})
        started.append(running)
        return running

    yield start
    for running in started:
        running.kill()


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["TERM", "INT"])
def test_run_logs_state_changes_and_exits_0_on_a_stop_signal(
    run_demi: Callable[..., Running], tmp_path: Path, backend: str, signum: int
) -> None:
    """``demi run`` starts the platforms, logs their state changes, and on SIGTERM or
    SIGINT shuts them down and exits 0."""
    write_config(tmp_path, '[platforms.a]\ndriver = "good"\n')
    running = run_demi("--backend", backend)
    running.wait_for(f"demi running on {backend} with platforms: a")
    assert "plugin a: loading -> active" in running.log
    running.send(signum)
    assert running.wait_exit() == 0, running.log
    log = running.log
    assert f"{signal.Signals(signum).name} received: stopping" in log
    assert "plugin a: active -> stopping" in log
    assert "plugin a: stopping -> stopped" in log
    assert log.splitlines()[-1].endswith("stopped")
    assert "Traceback" not in log


def test_run_takes_its_backend_from_the_settings(
    run_demi: Callable[..., Running], tmp_path: Path
) -> None:
    """Without --backend, ``demi run`` runs on the backend demi.toml names."""
    write_config(tmp_path, 'backend = "trio"\n[platforms.a]\ndriver = "good"\n')
    running = run_demi()
    running.wait_for("demi running on trio with platforms: a")
    running.send(signal.SIGTERM)
    assert running.wait_exit() == 0, running.log


@pytest.mark.parametrize("backend", BACKENDS)
def test_run_reloads_a_changed_config_on_sighup(
    run_demi: Callable[..., Running], tmp_path: Path, backend: str
) -> None:
    """SIGHUP re-reads demi.toml and applies the difference: added, removed and
    switched instances; then SIGTERM still stops cleanly."""
    config = write_config(
        tmp_path,
        """
        [platforms.keep]
        driver = "good"
        [platforms.swap]
        driver = "good"
        [platforms.drop]
        driver = "good"
        """,
    )
    running = run_demi("--backend", backend)
    mark = running.wait_for("demi running on")
    config.write_text(
        textwrap.dedent(
            """
            [platforms.keep]
            driver = "good"
            [platforms.swap]
            driver = "good2"
            [platforms.added]
            driver = "counter"
            """
        )
    )
    running.send(signal.SIGHUP)
    mark = running.wait_for("SIGHUP received: reloading", since=mark)
    running.wait_for(
        "reloaded: added ['added'], removed ['drop'], switched ['swap']", since=mark
    )
    assert "platform swap: now served by good2 (was good)" in running.log
    assert "plugin keep: active -> stopping" not in running.log
    running.send(signal.SIGTERM)
    assert running.wait_exit() == 0, running.log


def test_run_keeps_running_when_a_reload_is_refused(
    run_demi: Callable[..., Running], tmp_path: Path
) -> None:
    """A SIGHUP with a broken demi.toml changes nothing and logs why; a later SIGHUP
    with a good file applies it."""
    config = write_config(tmp_path, '[platforms.a]\ndriver = "good"\n')
    running = run_demi()
    mark = running.wait_for("demi running on")
    config.write_text("[platforms.a\n")
    running.send(signal.SIGHUP)
    mark = running.wait_for("reload refused, nothing changed", since=mark)
    assert "not valid TOML" in running.lines[mark - 1]
    config.write_text(
        '[platforms.a]\ndriver = "good"\n[platforms.b]\ndriver = "good2"\n'
    )
    running.send(signal.SIGHUP)
    running.wait_for("reloaded: added ['b']", since=mark)
    running.send(signal.SIGTERM)
    assert running.wait_exit() == 0, running.log
    assert "plugin a: active -> stopping" in running.log


def test_run_second_signal_cuts_a_hanging_stop_short(
    run_demi: Callable[..., Running], tmp_path: Path
) -> None:
    """While a platform's shutdown hangs (for up to 40 s here), a second SIGTERM ends
    demi run promptly."""
    write_config(tmp_path, '[platforms.stuck]\ndriver = "shutdown_hangs"\n')
    running = run_demi(env={"DEMI_SHUTDOWN_TIMEOUT": "40", "DEMI_STOP_TIMEOUT": "50"})
    mark = running.wait_for("demi running on")
    running.send(signal.SIGTERM)
    running.wait_for("plugin stuck: active -> stopping", since=mark)
    second = time.monotonic()
    running.send(signal.SIGTERM)
    code = running.wait_exit(timeout=TIMEOUT)
    assert time.monotonic() - second < 20.0, running.log
    assert code >= 0  # it exited by itself, not killed by the signal
    assert "cutting the stop short" in running.log


def test_run_logs_unhealthy_health_results(
    run_demi: Callable[..., Running], tmp_path: Path
) -> None:
    """Under demi run, periodic health rounds (DEMI_HEALTH_INTERVAL) log a platform
    that is not healthy, with the reason."""
    write_config(
        tmp_path,
        '[platforms.sick]\ndriver = "health_raises"\nrestart = "never"\n',
    )
    running = run_demi(env={"DEMI_HEALTH_INTERVAL": "0.2"})
    mark = running.wait_for("demi running on")
    mark = running.wait_for("platform sick: unhealthy", since=mark)
    assert "health probe exploded" in running.lines[mark - 1]
    running.wait_for("platform sick: unhealthy", since=mark)  # and again, periodically
    running.send(signal.SIGTERM)
    assert running.wait_exit() == 0


def test_run_exits_1_when_a_required_platform_fails(
    run_demi: Callable[..., Running], tmp_path: Path
) -> None:
    """A required platform that does not start ends demi run with exit 1 and an error
    line naming it, without a traceback."""
    write_config(
        tmp_path,
        '[platforms.must]\ndriver = "init_raises"\nrequired = true\n'
        '[platforms.fine]\ndriver = "good"\n',
    )
    running = run_demi()
    assert running.wait_exit() == 1
    last = running.log.splitlines()[-1]
    assert last.startswith("demi: error: ") and "'must'" in last
    assert "Traceback" not in running.log


def test_run_with_a_malformed_http_bind_is_a_usage_error(demi: Run) -> None:
    """``demi run --http`` with a malformed HOST:PORT is one line, exit 2."""
    line = error_line(demi("run", "--http", "nonsense"), 2)
    assert "HOST:PORT" in line
