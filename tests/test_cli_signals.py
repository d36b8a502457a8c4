"""SIGINT and SIGTERM are the ``demi`` command's own, in every command.

Driven as the installed console script in a subprocess, against the installed
demi-testplugins distribution: a stop signal stops what had started and exits 130
(SIGINT) or 143 (SIGTERM); a plugin that never lets go cannot hold the process past
``stop_timeout`` and the watchdog margin; a ``KeyboardInterrupt`` or ``SystemExit``
raised by a plugin is a failure, never an interruption or a success.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import signal_when_ready

pytestmark = pytest.mark.slow

DEMI = Path(sys.executable).with_name("demi")
BACKENDS = ["asyncio", "trio"]
SIGNALS = [signal.SIGINT, signal.SIGTERM]
#: Exit code and error line for each stop signal.
INTERRUPTED = {
    signal.SIGINT: (130, "demi: error: interrupted by SIGINT"),
    signal.SIGTERM: (143, "demi: error: interrupted by SIGTERM"),
}
#: Generous: stop_timeout (1 s) and the watchdog margin (2 s) are far below it.
PROMPTLY = 15.0


def environment(**extra: str) -> dict[str, str]:
    """This process's environment without DEMI_* variables, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DEMI_")}
    env.pop("PYTHONPATH", None)
    env.update(extra)
    return env


def signal_demi(
    tmp_path: Path, args: list[str], ready: str, signum: int, **env: str
) -> tuple[int, str, str, float]:
    """``demi ARGS`` in tmp_path, sent ``signum`` once stderr shows ``ready``."""
    return signal_when_ready(
        tmp_path, [str(DEMI), *args], ready, signum, environment(**env)
    )


# -- every command: the exit code says which signal -----------------------------------


@pytest.mark.parametrize("signum", SIGNALS, ids=["INT", "TERM"])
@pytest.mark.parametrize("command", ["plugins", "config"])
def test_a_stop_signal_interrupts_a_synchronous_command(
    tmp_path: Path, command: str, signum: int
) -> None:
    """While ``demi plugins`` or ``demi config`` imports a plugin, SIGINT or SIGTERM
    ends it with 130 or 143 and one line naming the signal."""
    namespace = "demi_testplugins.sleepy"
    args = ["plugins", "--namespace", namespace] if command == "plugins" else [command]
    # Even if discovery caught the interruption raised inside the plugin's import
    # and carried on, the signal counts.
    code, _, err, took = signal_demi(
        tmp_path, args, "sleeps_at_import: importing", signum,
        DEMI_NAMESPACE=namespace, DEMI_PLATFORMS__S__DRIVER="sleeps_at_import",
    )  # fmt: skip
    expected_code, line = INTERRUPTED[signal.Signals(signum)]
    assert code == expected_code, err
    assert err.splitlines()[-1] == line
    assert "Traceback" not in err
    assert took < PROMPTLY


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("signum", SIGNALS, ids=["INT", "TERM"])
def test_a_stop_signal_during_a_request_stops_the_platform(
    tmp_path: Path, backend: str, signum: int
) -> None:
    """SIGINT or SIGTERM while ``demi request`` waits for an answer shuts the platform
    down and exits 130 or 143."""
    code, out, err, _ = signal_demi(
        tmp_path, ["-v", "request", "chat", "{}", "--backend", backend],
        "plugin chat: loading -> active", signum,
        DEMI_PLATFORMS__CHAT__DRIVER="request_hangs", DEMI_REQUEST_TIMEOUT="60",
    )  # fmt: skip
    expected_code, line = INTERRUPTED[signal.Signals(signum)]
    assert code == expected_code, err
    assert f"{signal.Signals(signum).name} received: stopping" in err
    assert "plugin chat: stopping -> stopped" in err
    assert err.splitlines()[-1] == line
    assert out == ""


@pytest.mark.parametrize("backend", BACKENDS)
def test_sigint_during_start_up_shuts_down_what_had_started(
    tmp_path: Path, backend: str
) -> None:
    """Ctrl-C while ``demi check`` is still starting platforms (one hangs in
    initialize) shuts down the one that had started, then exits 130."""
    marker = tmp_path / "shut-down"
    code, out, err, _ = signal_demi(
        tmp_path, ["-v", "check", "--backend", backend],
        "plugin done: loading -> active", signal.SIGINT,
        DEMI_PLATFORMS__SLOW__DRIVER="init_hangs", DEMI_INIT_TIMEOUT="60",
        DEMI_PLATFORMS__DONE__DRIVER="marks_shutdown",
        DEMI_PLATFORMS__DONE__CONFIG__MARKER=str(marker),
    )  # fmt: skip
    assert code == 130, err
    assert marker.read_text() == "shut down\n"
    assert "plugin slow: loading -> failed (cancelled during" in err
    assert err.splitlines()[-1] == "demi: error: interrupted by SIGINT"
    assert out == ""


# -- a plugin that never lets go cannot hold the process ------------------------------

#: The method each plugin that never lets go holds on in (it says so on stderr).
HOLDS_ON_IN = {
    "init_swallows_forever": "initialize",
    "health_swallows_forever": "health_check",
    "shutdown_swallows_forever": "shutdown",
}


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(
    ("command", "driver"),
    [
        (["check"], "init_swallows_forever"),
        (["check"], "health_swallows_forever"),
        (["check"], "shutdown_swallows_forever"),
        (["request", "stuck", "{}"], "init_swallows_forever"),
        (["request", "stuck", "{}"], "shutdown_swallows_forever"),
    ],
    ids=["check-init", "check-health", "check-shutdown", "request-init",
         "request-shutdown"],
)  # fmt: skip
def test_sigterm_ends_the_command_even_if_a_plugin_never_lets_go(
    tmp_path: Path, backend: str, command: list[str], driver: str
) -> None:
    """SIGTERM while a plugin swallows every cancellation (in initialize, a health
    check or shutdown) ends ``demi check`` / ``demi request`` within stop_timeout
    plus the watchdog margin, saying why, exit 1."""
    ready = f"{HOLDS_ON_IN[driver]}: holding on forever"
    code, out, err, took = signal_demi(
        tmp_path, [*command, "--backend", backend], ready, signal.SIGTERM,
        DEMI_PLATFORMS__STUCK__DRIVER=driver, DEMI_STOP_TIMEOUT="1",
        DEMI_SHUTDOWN_TIMEOUT="1",
    )  # fmt: skip
    assert code == 1, err
    assert err.splitlines()[-1] == (
        "demi: error: stopping did not finish within 3s; exiting now"
    )
    assert took < PROMPTLY
    assert out == ""


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_shutdown_that_never_ends_cannot_hold_check(
    tmp_path: Path, backend: str
) -> None:
    """Without any signal, a shutdown that swallows every cancellation still ends
    ``demi check`` soon after stop_timeout: the watchdog is armed when stopping
    begins."""
    result = subprocess.run(
        [str(DEMI), "check", "--backend", backend],
        cwd=tmp_path,
        env=environment(
            DEMI_PLATFORMS__STUCK__DRIVER="shutdown_swallows_forever",
            DEMI_STOP_TIMEOUT="1",
            DEMI_SHUTDOWN_TIMEOUT="1",
        ),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=PROMPTLY,
        check=False,
    )
    assert result.returncode == 1, result.stderr
    assert result.stderr.splitlines()[-1] == (
        "demi: error: stopping did not finish within 3s; exiting now"
    )


# -- KeyboardInterrupt and SystemExit from a plugin are failures ----------------------


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(
    ("driver", "raised"),
    [("request_keyboard_interrupt", "KeyboardInterrupt"), ("request_exits", "SystemExit")],
)  # fmt: skip
def test_keyboard_interrupt_or_system_exit_from_a_plugin_is_a_failure(
    tmp_path: Path, backend: str, driver: str, raised: str
) -> None:
    """A plugin whose handle_request raises KeyboardInterrupt (no signal was sent) or
    SystemExit(0) makes ``demi request`` fail: exit 1 with one line, never 130 and
    never 0."""
    result = subprocess.run(
        [str(DEMI), "request", "chat", "{}", "--backend", backend],
        cwd=tmp_path,
        env=environment(DEMI_PLATFORMS__CHAT__DRIVER=driver),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1, result.stderr
    (line,) = result.stderr.splitlines()
    assert line.startswith("demi: error: ")
    assert raised in line or "'chat'" in line, line
    assert "interrupted" not in line
    assert result.stdout == ""


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_second_signal_cuts_a_hanging_stop_short(
    tmp_path: Path, backend: str
) -> None:
    """While a platform's shutdown hangs (for up to 40 s here), a second SIGTERM ends
    ``demi check`` promptly, with the first signal's exit code."""
    log = tmp_path / "check.log"
    env = environment(
        DEMI_PLATFORMS__STUCK__DRIVER="shutdown_hangs",
        DEMI_SHUTDOWN_TIMEOUT="40",
        DEMI_STOP_TIMEOUT="50",
    )
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [str(DEMI), "-v", "check", "--backend", backend],
            cwd=tmp_path, env=env, stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL, stderr=sink,
        )  # fmt: skip
        try:
            for ready in ("plugin stuck: active -> stopping", "received: stopping"):
                deadline = time.monotonic() + 30
                while ready not in log.read_text():
                    assert process.poll() is None, log.read_text()
                    assert time.monotonic() < deadline, log.read_text()
                    time.sleep(0.05)
                process.send_signal(signal.SIGTERM)
            second = time.monotonic()
            code = process.wait(timeout=30)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
    output = log.read_text()
    assert time.monotonic() - second < PROMPTLY, output
    assert code == 143, output
    assert "second SIGTERM: cutting the stop short" in output
    assert output.splitlines()[-1] == "demi: error: interrupted by SIGTERM"


def test_a_stop_signal_counts_even_if_a_plugin_swallows_the_interruption(
    tmp_path: Path,
) -> None:
    """A plugin that would catch an interruption raised in its import and carry on
    cannot turn SIGTERM into success: imports run in a worker thread, so the
    interruption never reaches plugin code, and ``demi plugins`` exits 143."""
    code, _, err, _ = signal_demi(
        tmp_path, ["plugins", "--namespace", "demi_testplugins.swallowing"],
        "swallows_interrupt_at_import: importing", signal.SIGTERM,
    )  # fmt: skip
    assert "swallowed" not in err
    assert code == 143, err
    assert err.splitlines()[-1] == "demi: error: interrupted by SIGTERM"
