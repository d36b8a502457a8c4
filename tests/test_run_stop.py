"""``demi run`` stops cleanly on a signal at any moment: during start-up, and even
when a plugin never lets go."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from helpers import free_port, install_distribution, sigterm_once

pytestmark = pytest.mark.slow

DEMI = Path(sys.executable).with_name("demi")
BACKENDS = ["asyncio", "trio"]


@dataclass
class Demi:
    """A ``demi`` process under test, its output going to a file."""

    process: subprocess.Popen[bytes]
    log: Path

    def output(self) -> str:
        """What the process said so far."""
        return self.log.read_text(errors="replace")

    def wait_for(self, text: str, deadline: float = 30, unless: str = "") -> None:
        """Wait until the output shows ``text``; fail if the process ends first, or
        at once if the output shows ``unless`` instead."""
        end = time.monotonic() + deadline
        while text not in self.output():
            assert self.process.poll() is None, self.output()
            assert not unless or unless not in self.output(), self.output()
            assert time.monotonic() < end, f"never saw {text!r}:\n{self.output()}"
            time.sleep(0.05)

    def send(self, signum: signal.Signals) -> None:
        """Send ``signum`` to the process."""
        self.process.send_signal(signum)


@contextmanager
def running_demi(tmp_path: Path, args: list[str], **environment: str) -> Iterator[Demi]:
    """Start ``demi *args`` in ``tmp_path`` with ``environment`` (no other DEMI_*
    variable); kill it afterwards if the test left it running."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DEMI_")}
    env.update(environment)
    log = tmp_path / "run.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [str(DEMI), *args],
            cwd=tmp_path, env=env, stdout=sink, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        yield Demi(process, log)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


_STUBBORN = '''
import anyio
from demi.platforms.echo import EchoPlatform


class Stubborn(EchoPlatform):
    """Swallows every cancellation in shutdown, forever."""

    async def shutdown(self):
        while True:
            try:
                await anyio.sleep(3600)
            except anyio.get_cancelled_exc_class():
                pass
'''


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_a_plugin_that_never_lets_go_cannot_hold_the_process(
    tmp_path: Path, backend: str
) -> None:
    """A shutdown that swallows every cancellation would hold any event loop forever;
    the watchdog ends the process soon after the stop budget, saying why."""
    site = tmp_path / "site"
    site.mkdir()
    install_distribution(
        site, "demi-stubborn", "1.0", module="demi_stubborn", source=_STUBBORN,
        platforms={"stubborn": "demi_stubborn:Stubborn"},
    )  # fmt: skip
    code, output = sigterm_once(
        tmp_path,
        ["run", "--backend", backend],
        "demi running",
        PYTHONPATH=str(site),
        DEMI_PLATFORMS__STUCK__DRIVER="stubborn",
        DEMI_STOP_TIMEOUT="1",
        DEMI_SHUTDOWN_TIMEOUT="1",
    )
    # Budget: stop 1 s + HTTP grace 3 s + margin 2 s; the 30 s wait is generous on top.
    assert code == 1, output
    assert "stopping did not finish within 6s; exiting now" in output
    assert "Traceback" not in output


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_a_stop_signal_during_start_up_stops_at_once(
    tmp_path: Path, backend: str
) -> None:
    """SIGTERM while a platform is still initializing (for up to a minute here)
    stops demi cleanly now, instead of after the start finishes."""
    code, output = sigterm_once(
        tmp_path,
        ["-v", "run", "--backend", backend],
        "plugin slow: discovered -> loading",
        DEMI_PLATFORMS__SLOW__DRIVER="init_hangs",
        DEMI_INIT_TIMEOUT="60",
    )
    assert code == 0, output
    assert "SIGTERM received during start-up: stopping" in output
    # The signal may land while the plugin is still importing or already initializing.
    assert re.search(
        r"plugin slow: loading -> failed \(cancelled during (import|initialize)\)",
        output,
    ), output


# -- stop signals while a plugin swallows cancellation -----------------------------

#: DEMI_STOP_TIMEOUT 1 s + HTTP grace 3 s + watchdog margin 2 s.
WATCHDOG_BUDGET = 6
#: Slack on top of it for a loaded machine.
SLACK = 20


def assert_ended_in_bound(code: int, output: str) -> None:
    """Either demi got the plugin to let go and stopped cleanly, or the watchdog
    ended the process, saying so; nothing else."""
    if code == 1:
        assert f"stopping did not finish within {WATCHDOG_BUDGET}s" in output
    else:
        assert code == 0, output
        assert output.rstrip().endswith("demi.run: stopped"), output
    assert "Traceback" not in output


@pytest.mark.parametrize("backend", BACKENDS)
def test_sigterm_while_an_initialize_swallows_cancellation_ends_in_bound(
    tmp_path: Path, backend: str
) -> None:
    """An initialize that never ends and swallows cancellation cannot hold demi in
    start-up: the watchdog is armed by the signal and ends the process in bound."""
    started = time.monotonic()
    code, output = sigterm_once(
        tmp_path,
        ["run", "--backend", backend],
        "run_init_swallows: initializing",
        DEMI_PLATFORMS__STUCK__DRIVER="run_init_swallows",
        DEMI_STOP_TIMEOUT="1",
        DEMI_INIT_TIMEOUT="600",
    )
    assert time.monotonic() - started < WATCHDOG_BUDGET + SLACK
    assert "SIGTERM received during start-up: stopping" in output
    assert_ended_in_bound(code, output)


@pytest.mark.parametrize("backend", BACKENDS)
def test_sigterm_during_a_reload_that_starts_a_hanging_plugin_ends_in_bound(
    tmp_path: Path, backend: str
) -> None:
    """A reload that starts a platform whose initialize swallows cancellation forever
    does not deafen demi: SIGTERM abandons the reload and the watchdog bounds the end."""
    config = tmp_path / "demi.toml"
    config.write_text('[platforms.kept]\ndriver = "good"\n', encoding="utf-8")
    with running_demi(tmp_path, ["run", "--backend", backend],
                      DEMI_STOP_TIMEOUT="1", DEMI_INIT_TIMEOUT="600") as demi:  # fmt: skip
        demi.wait_for("demi running")
        config.write_text(
            '[platforms.kept]\ndriver = "good"\n'
            '[platforms.stuck]\ndriver = "run_init_swallows"\n',
            encoding="utf-8",
        )
        demi.send(signal.SIGHUP)
        demi.wait_for("run_init_swallows: initializing")
        started = time.monotonic()
        demi.send(signal.SIGTERM)
        code = demi.process.wait(timeout=WATCHDOG_BUDGET + SLACK)
    output = demi.output()
    assert time.monotonic() - started < WATCHDOG_BUDGET + SLACK
    assert "SIGTERM received during a reload: stopping" in output
    assert_ended_in_bound(code, output)


# -- after "stopped", the process ends ---------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_process_exits_after_stopped_despite_a_blocked_worker_thread(
    tmp_path: Path, backend: str
) -> None:
    """A blocking platform whose health_check sleeps for an hour in its worker thread
    (abandoned at each health timeout) does not keep the process alive once demi has
    stopped, HTTP face included."""
    code, output = sigterm_once(
        tmp_path,
        ["run", "--backend", backend, "--http", f"127.0.0.1:{free_port()}"],
        "health round 3",
        DEMI_PLATFORMS__BLOCKED__DRIVER="run_sync_blocks",
        DEMI_HEALTH_INTERVAL="0.1",
        DEMI_HEALTH_TIMEOUT="0.2",
        DEMI_STOP_TIMEOUT="1",
    )
    assert code == 0, output
    assert output.rstrip().endswith("demi.run: stopped"), output


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_process_exits_after_stopped_despite_a_non_daemon_thread(
    tmp_path: Path, backend: str
) -> None:
    """A plugin that left a non-daemon thread running forever does not keep the
    process alive once demi has stopped."""
    code, output = sigterm_once(
        tmp_path,
        ["run", "--backend", backend],
        "demi running",
        DEMI_PLATFORMS__LEAKY__DRIVER="run_leaves_thread",
        DEMI_STOP_TIMEOUT="1",
    )
    assert code == 0, output
    assert output.rstrip().endswith("demi.run: stopped"), output


# -- SIGHUP without a readable configuration file ------------------------------------


def break_file(path: Path, change: str) -> None:
    """Make the configuration file vanish, turn into a directory, or become unreadable
    (a symbolic link to itself: even root cannot read that)."""
    path.unlink()
    if change == "directory":
        path.mkdir()
    elif change == "unreadable":
        path.symlink_to(path.name)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("origin", ["--config", "DEMI_CONFIG", "./demi.toml"])
@pytest.mark.parametrize("change", ["vanished", "directory", "unreadable"])
def test_a_reload_without_a_readable_config_file_is_refused(
    tmp_path: Path, backend: str, origin: str, change: str
) -> None:
    """SIGHUP when the file demi started from is gone, a directory or unreadable
    changes nothing and says so: demi never falls back to the defaults (the built-in
    echo instance) in silence, however the file was found."""
    args, environment = ["run", "--backend", backend], {}
    if origin == "./demi.toml":
        path = tmp_path / "demi.toml"
    else:
        (tmp_path / "etc").mkdir()
        path = tmp_path / "etc" / "demi.toml"
        if origin == "--config":
            args = ["--config", str(path), *args]
        else:
            environment["DEMI_CONFIG"] = str(path)
    path.write_text('[platforms.kept]\ndriver = "good"\n', encoding="utf-8")
    with running_demi(tmp_path, args, **environment) as demi:
        demi.wait_for("demi running")
        break_file(path, change)
        demi.send(signal.SIGHUP)
        demi.wait_for("reload refused, nothing changed: ", unless="reloaded:")
        demi.send(signal.SIGTERM)
        code = demi.process.wait(timeout=30)
    output = demi.output()
    assert code == 0, output
    assert "reloaded:" not in output
    assert "plugin echo" not in output
    assert "plugin kept: active -> stopping" in output
