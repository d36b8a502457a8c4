"""Logging for demi, on the standard :mod:`logging` module.

The library only ever asks for loggers under ``demi`` and adds a
:class:`~logging.NullHandler`, so a host application keeps full control of where
records go. :func:`configure_logging` is for the ``demi`` command, not for libraries.
"""

from __future__ import annotations

import logging
import sys

__all__ = ["configure_logging", "get_logger"]

_ROOT = "demi"
logging.getLogger(_ROOT).addHandler(logging.NullHandler())


def get_logger(name: str) -> logging.Logger:
    """Return the logger for a demi module.

    :param name: usually ``__name__``; names outside ``demi`` are nested under it.
    """
    if name != _ROOT and not name.startswith(_ROOT + "."):
        name = f"{_ROOT}.{name}"
    return logging.getLogger(name)


def configure_logging(level: int | str = logging.INFO) -> None:
    """Send demi's records to standard error, one line each (used by the CLI).

    Calling it again replaces the handler it installed before, never stacks a second one.
    """
    logger = logging.getLogger(_ROOT)
    for handler in list(logger.handlers):
        if getattr(handler, "_demi_cli", False):
            logger.removeHandler(handler)
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(_ScrubSecrets())
    handler.setFormatter(
        logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s")
    )
    handler._demi_cli = True  # type: ignore[attr-defined]
    logger.addHandler(handler)
    logger.setLevel(level)


class _ScrubSecrets(logging.Filter):
    """Replace registered secret values in a record's final message."""

    def filter(self, record: logging.LogRecord) -> bool:
        from .secrets import scrub

        message = record.getMessage()
        cleaned = scrub(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True
