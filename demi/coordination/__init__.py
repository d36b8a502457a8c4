"""Several ``demi run`` replicas sharing one set of instances, on tooz (issue 13).

With ``coordination_url`` set, each replica joins a tooz group; tooz's consistent
hash ring decides which member runs which instance (:mod:`.ownership`); exclusive
instances are also guarded by a tooz lock each; a replica cut off from the backend
stops its exclusive instances before their locks can expire (:mod:`._timing`).
It sits beside supervision: it uses the conductor, the command line and the HTTP
face use it, the conductor never does. tooz is imported only once a coordinator
connects, so demi runs without the ``coordination`` extra when nothing is
coordinated.
"""

from __future__ import annotations

from ._member import Coordinator, group_of
from ._timing import Timing
from ._tooz import BackendError
from .ownership import EVERYWHERE, owners, share_of

__all__ = [
    "EVERYWHERE",
    "BackendError",
    "Coordinator",
    "Timing",
    "group_of",
    "owners",
    "share_of",
]
