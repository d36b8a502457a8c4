"""Benchmarks for demi (issue 6): demi against bare stevedore and the anyio floor.

Run ``python -m benchmarks`` (or ``tox -e bench``); ``--quick`` runs every case once
at small N, as the test suite does. See ``benchmarks/README.md``.
"""

from __future__ import annotations
