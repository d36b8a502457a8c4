"""Handlers: what demi does with each inbound event.

A handler is ``async def handler(event: InboundEvent) -> Mapping | None``; a mapping it
returns is sent as a request to ``event.instance`` (the reply). ``demi run`` takes its
handler by name from the ``demi.handlers`` entry-point group, whose objects are the
handler coroutine functions themselves. demi ships two:

- ``log`` (the default): logs each event, without its contents, and counts it.
- ``echo``: answers a message with its own text, in the same conversation.
"""

from __future__ import annotations

import inspect
from collections import Counter
from collections.abc import Mapping
from typing import Any, cast

import stevedore
from stevedore.exception import MultipleMatches, NoMatches

from .core.logger import get_logger
from .exceptions import ConfigError
from .inbox import Handler
from .platforms.inbound import InboundEvent
from .plugins.discovery import entry_point_names

__all__ = ["DEFAULT_HANDLER", "NAMESPACE", "echo", "load_handler", "log", "logged"]

LOG = get_logger(__name__)

#: The entry-point group handlers register under.
NAMESPACE = "demi.handlers"
#: The handler ``demi run`` uses when none is set.
DEFAULT_HANDLER = "log"

_counts: Counter[str] = Counter()


async def log(event: InboundEvent) -> None:
    """Log the event (kind, instance, conversation, id: never what was said) and
    count it per instance (:func:`logged`). Never replies."""
    _counts[event.instance] += 1
    LOG.info(
        "event %s of %s: %s in %s (#%d from this instance)",
        event.event_id,
        event.instance,
        event.kind,
        event.conversation or "no conversation",
        _counts[event.instance],
    )


def logged(instance: str) -> int:
    """How many events of ``instance`` the :func:`log` handler has seen."""
    return _counts[instance]


async def echo(event: InboundEvent) -> Mapping[str, Any] | None:
    """Reply to a message with its own text, in the same conversation.

    Events that are not messages with a ``text`` get no reply.
    """
    text = event.data.get("text")
    if event.kind != "message" or not isinstance(text, str):
        return None
    return {"text": text, "conversation": event.conversation}


def load_handler(name: str, namespace: str = NAMESPACE) -> Handler:
    """The handler registered as ``name``, imported through stevedore.

    :raises ConfigError: no handler has that name (the message lists the known
        ones), the name is registered twice, its import failed, or what it names is
        not a coroutine function.
    """
    try:
        driver: object = stevedore.DriverManager(
            namespace, name, invoke_on_load=False, on_missing_entrypoints_callback=None
        ).driver
    except NoMatches:
        raise ConfigError(
            f"invalid configuration: handler: no handler named {name!r} in "
            f"{namespace!r}; known: {', '.join(entry_point_names(namespace)) or 'none'}"
        ) from None
    except MultipleMatches:
        raise ConfigError(
            f"invalid configuration: handler: {name!r} is registered more than once "
            f"in {namespace!r}; uninstall one of the distributions"
        ) from None
    except (Exception, SystemExit) as err:
        kind = type(err).__name__
        raise ConfigError(
            f"invalid configuration: handler: handler {name!r} failed to import: {kind}"
            + (f": {err}" if str(err) else "")
        ) from err
    if not inspect.iscoroutinefunction(driver):
        raise ConfigError(
            f"invalid configuration: handler: {name!r} in {namespace!r} is a "
            f"{type(driver).__name__}, not an async function"
        )
    return cast(Handler, driver)
