"""handle_request fails with the configured token in the message of the exception it
raises, of the exception group that one is chained from (``__cause__``), of the error
inside that group, and of the one that was being handled when that error was raised
(``__context__``), each written differently (as it is, by ``repr()``, as JSON)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, NoReturn

from demi_testplugins._echo import HealthyEcho


class SecretInErrorPlatform(HealthyEcho):
    """Starts and stays healthy; every request raises RuntimeError carrying
    ``config["token"]``, chained."""

    async def initialize(self, config: Mapping[str, Any]) -> bool:
        self.token = str(config["token"])
        return True

    async def handle_request(self, request: Mapping[str, Any]) -> NoReturn:
        token = self.token
        try:
            try:
                raise LookupError(f"no account for {json.dumps(token)}")
            except LookupError:
                raise ValueError(f"token {token!r} rejected")  # noqa: B904
        except ValueError as err:
            group = ExceptionGroup(f"all logins failed for {token}", [err])
            raise RuntimeError(f"bad token {token}") from group
