"""Which parts of a configuration a pydantic model types as secret, at any depth.

A private helper of :mod:`demi.core.secrets`, which owns what a secret is shown as:
this module only walks a model's field types beside the data and hands each value
typed ``SecretStr``, ``SecretBytes`` or ``Secret[...]`` to a ``mask`` callable.
"""

from __future__ import annotations

import types
from collections.abc import Callable, Iterator, Mapping
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import AliasChoices, BaseModel, Secret, SecretBytes, SecretStr

Mask = Callable[[Any], Any]

_SECRET_TYPES = (SecretStr, SecretBytes, Secret)
_UNIONS = (Union, types.UnionType)


def mask_model(value: Any, model: type[BaseModel], mask: Mask) -> Any:
    """``value`` (a mapping as it would be given to ``model``) with ``mask`` applied to
    every value that ``model`` types as a secret, at any depth; a copy, never the input.

    Keys are matched by field name and by alias; keys the model does not know, and
    values that do not have the shape the model expects, are left as they are.
    """
    if not isinstance(value, Mapping):
        return value
    fields = dict(_field_types(model))
    return {
        key: _mask(item, fields[key], mask) if key in fields else item
        for key, item in value.items()
    }


def _field_types(model: type[BaseModel]) -> Iterator[tuple[str, Any]]:
    """Every key a field of ``model`` may be given under, with the field's type."""
    for name, field in model.model_fields.items():
        yield name, field.annotation
        if field.alias:
            yield field.alias, field.annotation
        aliases = field.validation_alias
        choices = aliases.choices if isinstance(aliases, AliasChoices) else [aliases]
        for choice in choices:
            if isinstance(choice, str):
                yield choice, field.annotation


def _mask(value: Any, annotation: Any, mask: Mask) -> Any:
    """``value`` masked as far as ``annotation`` says it is secret."""
    if value is None:
        return value
    origin, args = get_origin(annotation), get_args(annotation)
    if origin is Annotated:
        return _mask(value, args[0], mask)
    if origin in _UNIONS:
        # Whichever member the value would validate as: mask what any of them says.
        for member in args:
            value = _mask(value, member, mask)
        return value
    if _is_secret_type(annotation):
        return mask(value)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return mask_model(value, annotation, mask)
    if isinstance(value, Mapping) and len(args) == 2 and origin is not None:
        # dict[str, X], Mapping[str, X] and the like: the values are X.
        return {key: _mask(item, args[1], mask) for key, item in value.items()}
    if isinstance(value, list | tuple) and args:
        # list[X], set[X], Sequence[X], tuple[X, ...] and tuple[X, Y]: item types
        # (items beyond a fixed tuple's types cannot validate; they are kept).
        fixed = origin is tuple and args[-1] is not Ellipsis
        kinds = args if fixed else (args[0],) * len(value)
        masked = [
            _mask(item, kind, mask) for item, kind in zip(value, kinds, strict=False)
        ]
        return masked + list(value[len(masked) :])
    return value


def _is_secret_type(annotation: Any) -> bool:
    kind = get_origin(annotation) or annotation
    return isinstance(kind, type) and issubclass(kind, _SECRET_TYPES)
