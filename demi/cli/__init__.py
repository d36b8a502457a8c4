"""The ``demi`` command.

Every command module is imported lazily, and so are rich, the conductor and the HTTP
face, so ``demi --help`` costs little more than importing click.

Exit codes: 0 success; 1 something is broken or unhealthy (a plugin, a platform, a
request), nothing was checked or answered, a stop outlived its budget, or an internal
error (a ``KeyboardInterrupt`` or ``SystemExit`` raised by a plugin is one: it is
not a signal); 2 bad input (configuration, arguments, JSON, an unknown instance);
130 interrupted by SIGINT; 143 interrupted by SIGTERM (128 plus the signal number).

Every command handles SIGINT and SIGTERM itself: what had started is stopped
(bounded by ``stop_timeout``; ``demi run`` exits 0 after such a stop, as a service).

Standard output carries only demi's own output (tables, JSON): whatever else is
printed while a command runs, by a plugin for instance, goes to standard error.

``--backend`` and ``--namespace`` override the settings (``backend``, ``namespace``
in demi.toml or ``DEMI_BACKEND``, ``DEMI_NAMESPACE``); without them the settings
decide.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import click

__all__ = ["main"]

F = TypeVar("F", bound=Callable[..., Any])

BACKENDS = ("asyncio", "trio")


def _backend_option(func: F) -> F:
    return click.option(
        "--backend",
        type=click.Choice(BACKENDS),
        default=None,
        help="The anyio backend to run on [default: the backend setting, "
        "e.g. DEMI_BACKEND].",
    )(func)


def _json_option(func: F) -> F:
    return click.option(
        "--json",
        "as_json",
        is_flag=True,
        help="Print JSON for machines instead of a table.",
    )(func)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--config", "config_file", type=click.Path(dir_okay=False), default=None,
              help="TOML file to read (default: DEMI_CONFIG, else ./demi.toml).")  # fmt: skip
@click.option("--debug", is_flag=True, help="Show tracebacks and debug logs.")
@click.option("-v", "--verbose", is_flag=True, help="Log what happens to stderr.")
@click.version_option(package_name="demi-conductor", prog_name="demi")
@click.pass_context
def cli(
    ctx: click.Context, config_file: str | None, debug: bool, verbose: bool
) -> None:
    """demi: discover, run, check and swap Demi's platform plugins."""
    from ._app import Options

    ctx.obj = Options(config_file=config_file, debug=debug, verbose=verbose)


@cli.command(
    short_help="List installed plugins, valid or not; exit 1 if any is broken."
)
@_json_option
@click.option("--namespace", default=None,
              help="Entry-point group to scan [default: the namespace setting].")  # fmt: skip
@click.pass_obj
def plugins(opts: Any, as_json: bool, namespace: str | None) -> None:
    """List every installed platform plugin, valid or not (exit 1 if any is broken)."""
    from . import _app

    _app.run_command(opts, _app.plugins, as_json=as_json, namespace=namespace)


@cli.command(
    short_help="Start the platforms, check health once, stop; exit 0 if healthy."
)
@_json_option
@_backend_option
@click.pass_obj
def check(opts: Any, as_json: bool, backend: str | None) -> None:
    """Start the enabled platforms, run one health round, stop (exit 0 if all healthy)."""
    from . import _app

    _app.run_command(opts, _app.check, as_json=as_json, backend=backend)


@cli.command(short_help="Run the platforms until SIGINT or SIGTERM; SIGHUP reloads.")
@_backend_option
@click.option("--http", "http_bind", metavar="HOST:PORT", default=None,
              help="Serve /healthz, /readyz, /health, /metrics and the platforms' "
              "webhooks here "
              "(needs demi-conductor[http]; bind beyond loopback only on purpose).")  # fmt: skip
@click.option("--handler", default=None, metavar="NAME",
              help="The demi.handlers entry point inbound events go to "
              "[default: the handler setting, e.g. DEMI_HANDLER, else log].")  # fmt: skip
@click.pass_obj
def run(
    opts: Any, backend: str | None, http_bind: str | None, handler: str | None
) -> None:
    """Run the conductor in the foreground until SIGINT or SIGTERM (SIGHUP reloads)."""
    from . import _app

    _app.run_command(
        opts, _app.run, backend=backend, http_bind=http_bind, handler=handler
    )


@cli.command(short_help="Start INSTANCE, send it one JSON request, print the reply.")
@click.argument("instance")
@click.argument("payload", metavar="JSON")
@_backend_option
@click.pass_obj
def request(opts: Any, instance: str, payload: str, backend: str | None) -> None:
    """Start INSTANCE, send it one JSON request (or - to read stdin), print the reply."""
    from . import _app

    _app.run_command(
        opts, _app.request, instance=instance, payload=payload, backend=backend
    )


@cli.command(short_help="Print the effective settings as JSON, secrets redacted.")
@click.option("--json", "as_json", is_flag=True,
              help="Plain JSON, never coloured, for machines (the same document).")  # fmt: skip
@click.pass_obj
def config(opts: Any, as_json: bool) -> None:
    """Print the effective settings as one JSON document: "config_file", the TOML
    file they were read from (null if none), and "settings", every setting after the
    defaults, the TOML file, .env and DEMI_ variables are merged (each instance under
    "platforms" with its driver's "config"). Secrets are redacted: secret-looking
    keys, secret types, URL passwords, what a driver's config_model marks secret.
    On a terminal the JSON is coloured; piped or with --json it is plain."""
    from . import _app

    _app.run_command(opts, _app.show_config, as_json=as_json)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``demi`` command; return its exit code."""
    try:
        cli.main(args=list(argv) if argv is not None else None, prog_name="demi",
                 standalone_mode=False)  # fmt: skip
    except click.exceptions.Exit as done:
        return done.exit_code
    except click.exceptions.NoArgsIsHelpError as err:
        err.show()  # plain `demi`: the help, as a usage error
        return 2
    except click.ClickException as err:
        print(f"demi: error: {_one_line(err)}", file=sys.stderr)
        return 2 if isinstance(err, click.UsageError) else err.exit_code
    except click.exceptions.Abort:
        print("demi: interrupted", file=sys.stderr)
        return 130
    except SystemExit as done:
        return done.code if isinstance(done.code, int) else 1
    return 0


def _one_line(err: click.ClickException) -> str:
    """Click's message as one line like demi's own (lower case, no full stop), with
    where to find the usage instead of the usage itself."""
    message = " ".join(err.format_message().split()).rstrip(".")
    message = message[:1].lower() + message[1:]
    ctx = getattr(err, "ctx", None)
    if isinstance(err, click.UsageError):
        path = ctx.command_path if ctx is not None else "demi"
        message += f" ({path} --help shows the usage)"
    return message
