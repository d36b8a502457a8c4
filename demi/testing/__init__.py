"""Tools for testing platforms: the conformance kit and its helpers.

A platform author proves their class keeps demi's contract by subclassing
:class:`PlatformConformance` in their own test suite::

    from demi.testing import PlatformConformance
    from acme_chat import ChatPlatform


    class TestChatConformance(PlatformConformance):
        platform_class = ChatPlatform
        sample_config = {"greeting": "hi"}
        sample_requests = [{"text": "hello"}]

Every check runs on asyncio and on trio, and a failure says in one sentence what the
contract requires. A platform that listens is checked on its ``run`` as well (see
:meth:`PlatformConformance.trigger_events`), and :class:`FakeInbox` collects the
events a platform sends in the author's own tests. demi registers this package's pytest plugin (entry point
``pytest11``, name ``demi``), so nothing needs to be added to ``conftest.py``.

The library never imports this package; this package may import anything, pytest
included, which is why pytest is needed only where it is used (``demi-conductor[testing]``).
"""

from __future__ import annotations

from ._conformance import PlatformConformance as PlatformConformance
from ._fake_inbox import FakeInbox as FakeInbox
from ._manager import make_manager as make_manager
from ._tasks import new_tasks as new_tasks
from ._tasks import running_tasks as running_tasks

__all__ = [
    "FakeInbox",
    "PlatformConformance",
    "make_manager",
    "new_tasks",
    "running_tasks",
]
