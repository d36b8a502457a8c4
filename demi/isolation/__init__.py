"""Process isolation: a platform instance with ``isolation = "process"`` runs in a
child process of the same interpreter, which imports only its driver.

The conductor keeps a :class:`~demi.isolation._proxy.ProcessPlatform` in its place:
an ordinary platform to the manager, which forwards every call over a socket pair
(:mod:`demi.isolation._wire`) to the child (:mod:`demi.isolation.host`). A child
that crashes, blocks its loop or swallows a cancellation is killed or noticed dead
at once; its instance fails with the reason and the supervisor restarts it, while
demi and every other platform keep their timing.

:func:`fault_of` tells the supervisor which kind of fault a child's reason
describes (``crash``, ``hang``, ``memory``), for the restart it counts.
"""

from __future__ import annotations

from ._faults import Fault, fault_of

__all__ = ["Fault", "fault_of"]
