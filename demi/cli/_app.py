"""What each ``demi`` command does, and the one place that turns errors into exit codes.

Imported only once a command runs, so ``demi --help`` stays fast.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NoReturn

import anyio

from ..conductor import Conductor
from ..core.config import DemiSettings, load_settings
from ..core.logger import configure_logging, get_logger
from ..core.secrets import format_exception, register_secrets, scrub
from ..exceptions import ConfigError, DemiError, PluginNotFoundError
from ..plugins.discovery import scan_entry_points
from . import _render

if TYPE_CHECKING:
    from pydantic import BaseModel

LOG = get_logger("demi.cli")

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


@dataclass(frozen=True, slots=True)
class Options:
    """The options every command shares."""

    config_file: str | None
    debug: bool
    verbose: bool


class UsageProblem(DemiError):
    """Bad input on the command line (JSON, an instance name): exit code 2."""


def run_command(opts: Options, command: Callable[..., int], **kwargs: Any) -> NoReturn:
    """Run a command, print any error as one line on stderr, and exit with its code."""
    # Quiet unless asked (-v, --debug): a failing command says one line, below.
    quiet = logging.CRITICAL
    level = logging.DEBUG if opts.debug else logging.INFO if opts.verbose else quiet
    configure_logging(level)
    try:
        code = command(opts, **kwargs)
    except BaseException as raised:  # the one place errors become exit codes
        err = _unwrap(raised)
        if isinstance(err, KeyboardInterrupt):
            _fail("interrupted", EXIT_INTERRUPTED, opts, raised)
        if isinstance(err, SystemExit):
            raise
        if isinstance(err, ConfigError | UsageProblem):
            _fail(str(err), EXIT_USAGE, opts, raised)
        if isinstance(err, DemiError):
            _fail(str(err), EXIT_FAILED, opts, raised)
        if not isinstance(err, Exception):
            raise
        _fail(f"internal error: {type(err).__name__}: {err}", EXIT_FAILED, opts, raised)
    raise SystemExit(code)


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


def _run_async(backend: str, func: Callable[[], Any]) -> Any:
    if backend == "trio" and importlib.util.find_spec("trio") is None:
        raise UsageProblem("the trio backend needs trio: pip install 'demi[trio]'")
    return anyio.run(func, backend=backend)


# -- commands -----------------------------------------------------------------


def plugins(opts: Options, *, as_json: bool, namespace: str) -> int:
    """``demi plugins``: every entry point, valid or not."""
    report = scan_entry_points(namespace)
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


def check(opts: Options, *, as_json: bool, backend: str) -> int:
    """``demi check``: start, one health round, stop."""
    settings = _settings(opts)

    async def round_trip() -> list[dict[str, Any]]:
        conductor = Conductor(settings, config_file=opts.config_file)
        with _render.progress(conductor, "Starting platforms"):
            await conductor.start()
        try:
            with _render.status("Checking health"):
                health = await conductor.check_health()
            return [_render.instance_row(status, health.get(status.instance))
                    for status in conductor.instances()]  # fmt: skip
        finally:
            with _render.status("Stopping"):
                await conductor.stop()

    rows = _run_async(backend, round_trip)
    healthy = bool(rows) and all(row["health"] == "healthy" for row in rows)
    if as_json:
        _render.print_json({"healthy": healthy, "platforms": rows})
    else:
        _render.check_table(rows, healthy)
    return EXIT_OK if healthy else EXIT_FAILED


def request(opts: Options, *, instance: str, payload: str, backend: str) -> int:
    """``demi request INSTANCE JSON``: start one instance, dispatch once, stop."""
    body = _parse_request(payload)
    settings = _settings(opts)
    try:
        conductor = Conductor(settings, config_file=opts.config_file).only([instance])
    except PluginNotFoundError as err:
        raise UsageProblem(str(err)) from None

    async def once() -> dict[str, Any]:
        async with conductor:
            return await conductor.dispatch(instance, body)

    response = _run_async(backend, once)
    _render.print_json(response)
    return EXIT_OK


def _parse_request(payload: str) -> Mapping[str, Any]:
    source = "standard input" if payload == "-" else "the JSON argument"
    text = sys.stdin.read() if payload == "-" else payload
    try:
        body = json.loads(text)
    except json.JSONDecodeError as err:
        raise UsageProblem(f"{source} is not valid JSON: {err}") from None
    if not isinstance(body, dict):
        raise UsageProblem(f"{source} must be a JSON object, not {type(body).__name__}")
    return body


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


def run(opts: Options, *, backend: str, http_bind: str | None) -> int:
    """``demi run``: the conductor in the foreground until a signal stops it."""
    settings = _settings(opts)
    configure_logging(logging.DEBUG if opts.debug else settings.log_level)
    bind = _parse_bind(http_bind) if http_bind else None
    if bind is not None and importlib.util.find_spec("hypercorn") is None:
        raise UsageProblem("--http needs the http extra: pip install 'demi[http]'")
    from ._serve import serve

    return int(
        _run_async(backend, lambda: serve(settings, opts.config_file, bind, backend))
    )


def _parse_bind(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise UsageProblem(f"--http takes HOST:PORT, e.g. 127.0.0.1:8080, not {text!r}")
    return host.strip("[]"), int(port)
