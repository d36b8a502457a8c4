"""Inbound events, from a platform's ``inbox.send`` to the handler.

Each configured instance has an :class:`InstanceInbox`: a bounded buffer that
outlives the platform objects behind the instance. A platform object gets an
:class:`InboxHandle` on it. The :class:`Dispatcher` drains every inbox into one
handler, in order per conversation and concurrently across conversations.

Redeliveries: an instance remembers the ids of the last ``dedup_window`` (default
10,000) events it accepted and drops an event whose ``event_id`` is among them.
"""

from __future__ import annotations

from ._buffer import EventObserver as EventObserver
from ._buffer import InboxHandle as InboxHandle
from ._buffer import InstanceInbox as InstanceInbox
from ._buffer import RecentIds as RecentIds
from ._call import HandledObserver as HandledObserver
from ._call import Handler as Handler
from ._call import HandlerCall as HandlerCall
from ._call import Reply as Reply
from ._dispatcher import Dispatcher as Dispatcher

__all__ = [
    "Dispatcher",
    "EventObserver",
    "HandledObserver",
    "Handler",
    "HandlerCall",
    "InboxHandle",
    "InstanceInbox",
    "RecentIds",
    "Reply",
]
