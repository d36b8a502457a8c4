"""Logging for demi, on the standard :mod:`logging` module.

The library only ever asks for loggers under ``demi`` and adds a
:class:`~logging.NullHandler`, so a host application keeps full control of where
records go. :func:`configure_logging` is for the ``demi`` command, not for libraries.
"""

from __future__ import annotations

import logging
import sys
from typing import TextIO

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
    """Send demi's records to standard error, one line each (used by the CLI), every
    line of them (tracebacks and stacks included) scrubbed of registered secrets.

    Calling it again replaces the handler it installed before, never stacks a second one.
    """
    logger = logging.getLogger(_ROOT)
    for handler in list(logger.handlers):
        if isinstance(handler, _ScrubbingHandler):
            logger.removeHandler(handler)
    handler = _ScrubbingHandler(sys.stderr)
    handler.setFormatter(
        logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s")
    )
    logger.addHandler(handler)
    logger.setLevel(level)


class _ScrubbingHandler(logging.StreamHandler[TextIO]):
    """A stream handler that scrubs the whole formatted record: the message, and the
    ``exc_info`` traceback and ``stack_info`` a formatter appends to it, since a
    plugin's exception or a source line in a stack can hold a secret as well."""

    def format(self, record: logging.LogRecord) -> str:
        # Imported here: secrets imports pydantic, and `demi --help` stays fast.
        from .secrets import scrub

        # The record is scrubbed too, not only this handler's text: handlers of the
        # loggers above "demi" (a host's, pytest's) see it after this one, and
        # formatters reuse the traceback text cached on it.
        message = record.getMessage()
        cleaned = scrub(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        text = super().format(record)
        if record.exc_text:
            record.exc_text = scrub(record.exc_text)
        if record.stack_info:
            record.stack_info = scrub(record.stack_info)
        return scrub(text)
