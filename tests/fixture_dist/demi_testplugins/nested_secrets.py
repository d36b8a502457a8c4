"""A platform whose config_model holds SecretStr fields deep inside: in a nested model
two levels down, in a list of models, in a dict of models and behind Optional and
Annotated, none of them under a secret-looking key."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, Field, SecretStr

from demi_testplugins._echo import HealthyEcho


class Login(BaseModel):
    """Two levels down: who connects, and how they prove it."""

    user: str
    proof: SecretStr


class Upstream(BaseModel):
    """One level down: where to connect, and the login (two levels down)."""

    url: str
    login: Login
    spare: Annotated[SecretStr | None, Field(description="a second proof")] = None


class Mirror(BaseModel):
    """One of a list of mirrors, each with a proof of its own."""

    host: str
    proof: SecretStr


class NestedSecretsConfig(BaseModel):
    """An upstream, mirrors, and named replicas, each holding secrets."""

    upstream: Upstream
    mirrors: list[Mirror] = []
    replicas: dict[str, Mirror] = {}
    fallback: Login | None = None


class NestedSecretsPlatform(HealthyEcho):
    """Healthy; its configuration is what matters."""

    config_model = NestedSecretsConfig
