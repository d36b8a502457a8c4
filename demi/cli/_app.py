"""What each ``demi`` command does, and the one place that turns errors into exit codes.

Imported only once a command runs, so ``demi --help`` stays fast.
"""

from __future__ import annotations

import functools
import importlib.util
import logging
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import anyio

from ..conductor import Conductor
from ..core.config import DemiSettings, load_settings
from ..core.logger import configure_logging, get_logger
from ..core.secrets import format_exception, register_secrets, scrub
from ..exceptions import ConfigError, DemiError, PluginNotFoundError
from ..handlers import load_handler
from ..plugins.discovery import scan_entry_points
from . import _render
from ._errors import NothingDone, UsageProblem
from ._request_body import parse_request
from ._signals import (
    Interrupted,
    StopGuard,
    handling_stop_signals,
    reinstall,
    run_async,
)

if TYPE_CHECKING:
    from pydantic import BaseModel

    from ..conductor import InstanceStatus
    from ..coordination.checking import CheckClaim
    from ..platforms.base import PluginHealth

LOG = get_logger("demi.cli")

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Options:
    """The options every command shares."""

    config_file: str | None
    debug: bool
    verbose: bool


def run_command(opts: Options, command: Callable[..., int], **kwargs: Any) -> NoReturn:
    """Run a command, print any error as one line on stderr, and exit with its code.

    Standard output is kept for the command's own output (anything else printed goes
    to stderr), and SIGINT and SIGTERM are demi's own throughout (see ``_signals``).
    """
    # Quiet unless asked (-v, --debug): a failing command says one line, below.
    quiet = logging.CRITICAL
    level = logging.DEBUG if opts.debug else logging.INFO if opts.verbose else quiet
    configure_logging(level)
    with _render.keeping_stdout(), handling_stop_signals() as received:
        try:
            code = command(opts, **kwargs)
        except BaseException as raised:  # the one place errors become exit codes
            _exit_for(raised, received(), opts)
        # A plugin may have caught and dropped the Interrupted raised in its code.
        interrupted = received()
        if interrupted is not None:
            _fail(str(interrupted), interrupted.exit_code, opts, interrupted)
    raise SystemExit(code)


def _exit_for(
    raised: BaseException, interrupted: Interrupted | None, opts: Options
) -> NoReturn:
    err = _unwrap(raised)
    if isinstance(err, Interrupted):
        interrupted = err
    if interrupted is not None:
        _fail(str(interrupted), interrupted.exit_code, opts, raised)
    if isinstance(err, ConfigError | UsageProblem):
        _fail(str(err), EXIT_USAGE, opts, raised)
    if isinstance(err, DemiError):
        _fail(str(err), EXIT_FAILED, opts, raised)
    if isinstance(err, KeyboardInterrupt | SystemExit):
        # Only demi's own signal handling means "interrupted" (or "exit now"): this
        # was raised by code (a plugin, most likely), so it is a failure.
        _fail(
            f"internal error: {type(err).__name__} raised while running the command, "
            "not by a signal (a plugin?); treated as a failure",
            EXIT_FAILED, opts, raised,
        )  # fmt: skip
    text = _render.safe_text(err)
    _fail(f"internal error: {type(err).__name__}: {text}", EXIT_FAILED, opts, raised)


def _unwrap(err: BaseException) -> BaseException:
    # Errors from inside task groups arrive wrapped; show the one that matters.
    while isinstance(err, BaseExceptionGroup) and len(err.exceptions) == 1:
        err = err.exceptions[0]
    return err


def _fail(message: str, code: int, opts: Options, raised: BaseException) -> NoReturn:
    if opts.debug:
        # Through the scrubber: a plugin's exception, or one it was chained from,
        # can hold a secret of its configuration.
        sys.stderr.write(format_exception(raised))
    hint = "" if opts.debug or code != EXIT_FAILED else " (--debug shows more)"
    print(f"demi: error: {scrub(message)}{hint}", file=sys.stderr)
    raise SystemExit(code)


def _settings(opts: Options) -> DemiSettings:
    settings = load_settings(opts.config_file)
    register_secrets(settings.model_dump())
    return settings


def _backend(settings: DemiSettings, chosen: str | None) -> str:
    """The backend to run on: ``--backend`` when given, else the settings'."""
    return chosen if chosen is not None else settings.backend


def _check_backend(backend: str) -> None:
    if backend == "trio" and importlib.util.find_spec("trio") is None:
        raise UsageProblem(
            "the trio backend needs trio: pip install 'demi-conductor[trio]'"
        )


def _run_async(backend: str, func: Callable[[], Any]) -> Any:
    """Run ``func`` on ``backend``; it handles the stop signals itself."""
    _check_backend(backend)
    try:
        return anyio.run(func, backend=backend)
    finally:
        reinstall()


def _run_guarded(
    backend: str, work: Callable[[StopGuard], Awaitable[T]], settings: DemiSettings
) -> T:
    """Run ``work`` on ``backend``; a stop signal cancels it, it stops what it
    started, and the process ends within ``stop_timeout`` plus a margin whatever a
    plugin does (see ``_signals.run_async``)."""
    _check_backend(backend)
    return run_async(backend, work, settings.stop_timeout)


# -- commands -----------------------------------------------------------------


def plugins(opts: Options, *, as_json: bool, namespace: str | None) -> int:
    """``demi plugins``: every entry point, valid or not.

    ``namespace`` ``None`` means the configured one; an import that outlives the
    configured ``init_timeout`` is reported, not waited for.
    """
    settings = _settings(opts)
    namespace = settings.namespace if namespace is None else namespace
    report = scan_entry_points(namespace, timeout=settings.init_timeout)
    rows = [
        {
            "name": info.name,
            "target": info.target,
            "distribution": info.distribution,
            "version": info.version,
            "valid": info.valid,
            "error": info.error,
        }
        for info in report
    ]
    if as_json:
        _render.print_json(rows)
    else:
        _render.plugins_table(rows, namespace)
    return EXIT_OK if all(row["valid"] for row in rows) else EXIT_FAILED


def check(opts: Options, *, as_json: bool, backend: str | None) -> int:
    """``demi check``: start, one health round, stop."""
    settings = _settings(opts)
    if not settings.enabled_platforms():
        raise NothingDone(
            "nothing was checked: no platform is enabled (demi config shows the settings)"
        )

    async def round_trip(guard: StopGuard) -> list[dict[str, Any]]:
        conductor = Conductor(settings, config_file=opts.config_file)
        claim = _claim_for(conductor)
        guard.on_abort(conductor.abort)
        # The session hosts listening platforms' connections and the handler.
        async with conductor.session():
            try:
                if claim is not None:
                    await claim.claim()  # never joins: starts only what it may
                with _render.progress(conductor, "Starting platforms"):
                    await conductor.start()
                with _render.status("Checking health"):
                    health = await conductor.check_health()
                return [_row(status, health.get(status.instance), claim)
                        for status in conductor.instances()]  # fmt: skip
            finally:
                # Also whatever had started when start-up was cut short.
                guard.arm()
                with _render.status("Stopping"):
                    await conductor.stop()
                if claim is not None:
                    await claim.release()

    rows = _run_guarded(_backend(settings, backend), round_trip, settings)
    checked = [row for row in rows if row["health"] != UNCHECKED]
    healthy = bool(checked) and all(row["health"] == "healthy" for row in checked)
    if as_json:
        _render.print_json({"healthy": healthy, "platforms": rows})
    else:
        _render.check_table(rows, healthy)
    return EXIT_OK if healthy else EXIT_FAILED


#: ``demi check``'s health of an instance another replica of the fleet holds.
UNCHECKED = "unchecked"


def _claim_for(conductor: Conductor) -> CheckClaim | None:
    if conductor.settings.coordination_url is None:
        return None
    from ..coordination.checking import CheckClaim

    return CheckClaim(conductor)


def _row(
    status: InstanceStatus, health: PluginHealth | None, claim: CheckClaim | None
) -> dict[str, Any]:
    """One row of ``demi check``, with its ``owner`` (``None`` when nothing is
    coordinated); an instance another member holds is ``unchecked``."""
    row = _render.instance_row(status, health)
    row["owner"] = claim.owner.get(status.instance) if claim is not None else None
    if claim is not None and status.instance in claim.unchecked:
        row.update(health=UNCHECKED, error=None)
    return row


def request(opts: Options, *, instance: str, payload: str, backend: str | None) -> int:
    """``demi request INSTANCE JSON``: start one instance, dispatch once, stop."""
    body = parse_request(payload)
    settings = _settings(opts)
    try:
        conductor = Conductor(settings, config_file=opts.config_file).only([instance])
    except PluginNotFoundError as err:
        raise UsageProblem(str(err)) from None

    async def once(guard: StopGuard) -> dict[str, Any]:
        guard.on_abort(conductor.abort)
        async with conductor.session():
            try:
                await conductor.start()
                return await conductor.dispatch(instance, body)
            finally:
                guard.arm()
                await conductor.stop()

    response = _run_guarded(_backend(settings, backend), once, settings)
    _render.print_json(response)
    return EXIT_OK


def show_config(opts: Options, *, as_json: bool) -> int:
    """``demi config``: the effective settings, secrets redacted."""
    settings = _settings(opts)
    _render.config(settings, as_json=as_json, models=_secret_fields(settings))
    return EXIT_OK


def _secret_fields(settings: DemiSettings) -> dict[str, type[BaseModel]]:
    """Per instance, its driver's ``config_model``: what says which of its config
    keys are secret, at any depth, whatever their names.

    Each driver is imported in a daemon thread, all of them within one
    ``init_timeout``: one whose import hangs is abandoned and one that fails to
    import is skipped (either way its secret-looking keys are still redacted by
    name), so no driver can hang ``demi config`` or end it.
    """
    import threading
    import time

    from ..plugins.discovery import load_driver

    drivers = sorted({spec.driver for spec in settings.platforms.values()})
    models: dict[str, type[BaseModel] | None] = {}
    lock = threading.Lock()

    def load(driver: str) -> None:
        try:
            model = load_driver(driver, settings.namespace).config_model
        except BaseException as err:  # a worker thread: nothing may escape it
            LOG.debug("driver %r not imported for its config_model: %r", driver, err)
            return
        with lock:
            models[driver] = model

    threads = [
        threading.Thread(
            target=load, args=(driver,), daemon=True, name=f"demi-{driver}"
        )
        for driver in drivers
    ]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + settings.init_timeout
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    with lock:
        loaded = dict(models)
    late = [
        driver
        for driver, thread in zip(drivers, threads, strict=True)
        if thread.is_alive()
    ]
    if late:
        LOG.warning(
            "demi config: gave up importing %s after %ss; their secret-looking keys "
            "are redacted by name only", ", ".join(late), settings.init_timeout,
        )  # fmt: skip
    return {
        name: model
        for name, spec in settings.platforms.items()
        if (model := loaded.get(spec.driver)) is not None
    }


def run(
    opts: Options,
    *,
    backend: str | None,
    http_bind: str | None,
    handler: str | None = None,
) -> int:
    """``demi run``: the conductor in the foreground until a signal stops it, on
    ``--backend`` or else the backend the settings name, inbound events going to
    ``--handler`` or else the handler the settings name.

    Once demi has stopped, the process ends at once (see ``_serve.exit_now``).
    """
    settings = _settings(opts)
    if handler is not None:
        settings = settings.model_copy(update={"handler": handler})
    # Before anything binds or starts: an unknown handler is a usage error (exit 2)
    # naming it and the installed ones. The session loads it again, cheaply.
    load_handler(settings.handler)
    backend = _backend(settings, backend)
    configure_logging(logging.DEBUG if opts.debug else settings.log_level)
    bind = _parse_bind(http_bind) if http_bind else None
    if bind is not None and importlib.util.find_spec("hypercorn") is None:
        raise UsageProblem(
            "--http needs the http extra: pip install 'demi-conductor[http]'"
        )
    from ._serve import exit_now, open_listener, serve

    listener = None
    if bind is not None:
        # Before anything starts: a port in use must not start, then stop, every
        # platform, nor log "serving" for a socket someone else owns.
        try:
            listener = open_listener(*bind, settings)
        except OSError as err:
            reason = err.strerror or str(err)
            raise UsageProblem(
                f"cannot listen on {http_bind}: {reason[:1].lower()}{reason[1:]}"
            ) from None
    serving = functools.partial(serve, settings, opts.config_file, listener, backend)
    try:
        code = int(_run_async(backend, serving))
    finally:
        if listener is not None:
            listener.close()
    exit_now(code)


def _parse_bind(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise UsageProblem(f"--http takes HOST:PORT, e.g. 127.0.0.1:8080, not {text!r}")
    return host.strip("[]"), int(port)
