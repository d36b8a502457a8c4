"""A real IRC server for the tests: ngircd on a free loopback port, in the foreground.

A missing ngircd fails the tests (``shutil.which`` finds nothing: the fixture raises),
it never skips them: on Debian, ``apt-get install ngircd``.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["NGIRCD_MISSING", "Ngircd", "free_port"]

NGIRCD_MISSING = (
    "ngircd is not installed: the IRC tests need a real IRC server "
    "(Debian: apt-get install -y ngircd)"
)

# PingTimeout and PongTimeout at ngircd's minimum (5 s each): a client that does
# not answer PING is dropped after about 10 s of silence, quickly enough to prove
# that the bot answers. MaxPenaltyTime 0 turns off flood throttling, which would
# only slow the tests down. No DNS, no ident, no PAM: nothing leaves 127.0.0.1.
_CONF = """\
[Global]
Name = irc.demi.test
Info = demi test server
AdminInfo1 = demi tests
AdminInfo2 = 127.0.0.1
AdminEMail = nobody@demi.test
Listen = 127.0.0.1
Ports = {port}
PidFile = {dir}/ngircd.pid
MotdPhrase = demi test server
{password}
[Limits]
PingTimeout = 5
PongTimeout = 5
MaxConnectionsIP = 0
MaxNickLength = 30
MaxPenaltyTime = 0
[Options]
DNS = no
Ident = no
PAM = no
IncludeDir = {dir}/conf.d
"""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Ngircd:
    """One ngircd process with a generated configuration in ``directory``."""

    directory: Path
    password: str | None = None
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start ngircd (``-n``: no daemon) and wait until it accepts connections."""
        binary = shutil.which("ngircd") or _sbin("ngircd")
        if binary is None:
            raise RuntimeError(NGIRCD_MISSING)
        (self.directory / "conf.d").mkdir(exist_ok=True)
        conf = self.directory / "ngircd.conf"
        password = f"Password = {self.password}" if self.password else ""
        conf.write_text(
            _CONF.format(port=self.port, dir=self.directory, password=password)
        )
        log = (self.directory / "ngircd.log").open("ab")
        self.process = subprocess.Popen(
            [binary, "-n", "-f", str(conf)], stdout=log, stderr=subprocess.STDOUT
        )
        log.close()
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"ngircd exited at start: {self.log()}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"ngircd did not listen on {self.port}: {self.log()}")

    def stop(self) -> None:
        """Stop ngircd (SIGTERM, then SIGKILL) and wait for it."""
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)

    def log(self) -> str:
        """What ngircd printed so far."""
        path = self.directory / "ngircd.log"
        return path.read_text(errors="replace") if path.exists() else ""


def _sbin(name: str) -> str | None:
    # Debian installs ngircd to /usr/sbin, which a non-root PATH may lack.
    path = Path("/usr/sbin") / name
    return str(path) if path.exists() else None
