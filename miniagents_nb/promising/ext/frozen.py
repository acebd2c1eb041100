"""`Frozen`: immutable pydantic models with a content hash, the base of every message.

Freezing happens once, at construction: lists become tuples, dicts become plain `Frozen` models and anything that
could change later is refused. That is what lets promises hand the same objects to any number of consumers, and what
makes `hash_key` (a git-like content address) stable.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from enum import Enum
from numbers import Number
from pathlib import PurePath
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar, Union, overload
from uuid import UUID

from pydantic import BaseModel, ConfigDict, model_validator

from miniagents_nb.errors import NotFreezableError
from miniagents_nb.promising.sentinels import NO_VALUE

__all__ = [
    "FROZEN_CLASS_FIELD",
    "LONGER_HASH_KEYS",
    "Frozen",
    "FrozenType",
    "cached_field",
    "cached_privately",
    "freeze_kwargs",
    "freeze_value",
    "to_json_compatible",
]

LONGER_HASH_KEYS = False
"""Use 64-character hash keys when no active context says otherwise."""

FROZEN_CLASS_FIELD = "class_"

FrozenType = Union[
    str,
    Number,
    bool,
    UUID,
    datetime,
    date,
    time,
    timedelta,
    PurePath,
    Enum,
    bytes,
    frozenset[Any],
    tuple[Any, ...],
    "Frozen",
    None,
]

# Types kept as they are, checked with `type(value) in ...` first because that is the common, cheap case.
_PLAIN_TYPES: frozenset[type] = frozenset({str, int, float, bool, type(None)})
_ALLOWED_TYPES: tuple[type, ...] = (
    str,
    Number,
    UUID,
    datetime,
    date,
    time,
    timedelta,
    PurePath,
    Enum,
    bytes,
    frozenset,
)
_ALLOWED_NAMES = (
    "{NoneType, str, Number, bool, UUID, datetime, date, time, timedelta, Path, Enum, bytes, frozenset, tuple, "
    "list, dict, Frozen}"
)

_T = TypeVar("_T")

# Interned field-name sets of frozen models (immutable values; a cache, not state: see `Frozen.__init__`).
_SHARED_FIELD_NAME_SETS: dict[frozenset[str], frozenset[str]] = {}


def cached_privately(func: Callable[[Any], _T]) -> Callable[[Any], _T]:
    """Cache a method's result on the instance, outside the model's fields (upstream-compatible helper)."""
    attr = f"__cached_privately__{func.__name__}"

    def wrapper(self: Any) -> _T:
        try:
            return self.__dict__[attr]  # type: ignore[no-any-return]
        except KeyError:
            value = func(self)
            self.__dict__[attr] = value
            return value

    wrapper.__name__ = func.__name__
    wrapper.__doc__ = func.__doc__
    return wrapper


class cached_field(Generic[_T]):
    """A cached read-only property that keeps its value under a `_cached_*` key of the instance `__dict__`.

    pydantic skips `_`-prefixed keys when it iterates, compares or dumps a model, so cached values never leak into
    a message's fields (unlike `functools.cached_property`, whose key is the public name).
    """

    __slots__ = ("_func", "_key")

    def __init__(self, func: Callable[[Any], _T]) -> None:
        self._func = func
        self._key = f"_cached_{func.__name__}"

    @overload
    def __get__(self, obj: None, owner: type) -> cached_field[_T]: ...
    @overload
    def __get__(self, obj: object, owner: type) -> _T: ...
    def __get__(self, obj: object | None, owner: type) -> _T | cached_field[_T]:
        if obj is None:
            return self
        cache = obj.__dict__
        try:
            return cache[self._key]  # type: ignore[no-any-return]
        except KeyError:
            value = cache[self._key] = self._func(obj)
            return value


def freeze_value(value: Any, owner: str, key: str) -> Any:
    """Return an immutable equivalent of `value`, or raise `NotFreezableError` naming `owner` and `key`."""
    value_type = type(value)
    if value_type in _PLAIN_TYPES:
        return value
    if isinstance(value, Frozen):
        return value
    if isinstance(value, (list, tuple)):
        return tuple([freeze_value(item, owner, key) for item in value])
    if isinstance(value, dict):
        return Frozen(**value)
    if isinstance(value, _ALLOWED_TYPES):
        return value
    raise NotFreezableError(
        f"only {_ALLOWED_NAMES} are allowed as field values in {owner}, got {value_type.__name__} in `{key}`. "
        "Convert the value to one of those types, or pass it through `non_freezable_kwargs` if it is an agent argument."
    )


def freeze_kwargs(kwargs: dict[str, Any], owner: str) -> dict[str, Any]:
    """Freeze every value of a kwargs dict (used for agent arguments, which need no model instance)."""
    return {key: freeze_value(value, owner, key) for key, value in kwargs.items()}


def _longer_hash_keys() -> bool:
    # Imported here: the context module imports this one.
    from miniagents_nb.promising.context import current_context_or_none

    ctx = current_context_or_none()
    if ctx is None or ctx.longer_hash_keys is NO_VALUE:
        return LONGER_HASH_KEYS
    return bool(ctx.longer_hash_keys)


class Frozen(BaseModel):
    """An immutable model whose fields may only hold immutable values; `hash_key` addresses its content."""

    model_config = ConfigDict(frozen=True, extra="allow", ignored_types=(cached_field,))

    class_: str = ""
    """The model's class name, set on every instance by the validator (so serialized data says what it is)."""

    _excluded_fields: ClassVar[frozenset[str]] = frozenset()

    if TYPE_CHECKING:
        # Extra fields are allowed (`Message(content=..., role=...)`, metadata an LLM adds): type checkers see them
        # as the `Any` they are at run time, so `message.role` checks in strict mode as it works.
        def __getattr__(self, name: str) -> Any: ...

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        cls._excluded_fields = frozenset(name for name, field in cls.model_fields.items() if field.exclude)

    def __init__(self, /, **data: Any) -> None:
        super().__init__(**data)
        # pydantic gives every instance its own set of the field names it was given. Frozen models never change,
        # so instances with the same names share one frozenset: one object less per message for the cyclic GC.
        names = frozenset(self.__pydantic_fields_set__)
        object.__setattr__(self, "__pydantic_fields_set__", _SHARED_FIELD_NAME_SETS.setdefault(names, names))

    @model_validator(mode="before")
    @classmethod
    def _freeze_fields(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        owner = cls.__name__
        frozen = {
            key: value if type(value) in _PLAIN_TYPES else freeze_value(value, owner, key)
            for key, value in data.items()
        }
        frozen[FROZEN_CLASS_FIELD] = owner
        return frozen

    # --- mapping-like read access -------------------------------------------------------------------------------

    def get(self, key: str, default: Any = None) -> Any:
        """Return the field `key`, or `default` when the model has no such field."""
        try:
            return getattr(self, key)
        except AttributeError:
            return default

    def __getitem__(self, item: str) -> Any:
        try:
            return getattr(self, item)
        except AttributeError:
            raise KeyError(item) from None

    def __contains__(self, key: object) -> bool:
        if isinstance(key, tuple):
            return key in tuple(self)
        return key in self.keys()

    def keys(self) -> tuple[str, ...]:
        """Field names, `class_` first (a method, as upstream)."""
        return tuple(name for name, _ in self)

    def values(self) -> tuple[Any, ...]:
        """Field values, in the order of `keys()`."""
        return tuple(value for _, value in self)

    def __len__(self) -> int:
        return len(self.keys())

    def as_kwargs(self) -> dict[str, Any]:
        """Every field except `class_`, ready to be passed on as keyword arguments."""
        return {name: value for name, value in self if name != FROZEN_CLASS_FIELD}

    def __iter__(self) -> Iterator[tuple[str, Any]]:  # type: ignore[override]
        excluded = self._excluded_fields
        for name, value in super().__iter__():
            if name not in excluded:
                yield name, value

    # --- string forms and hashing -------------------------------------------------------------------------------

    def __str__(self) -> str:
        return self.as_string

    @cached_field
    def as_string(self) -> str:
        """What `str()` returns (override `_as_string` to change it)."""
        return self._as_string()

    def _as_string(self) -> str:
        return self.full_json

    @cached_field
    def full_json(self) -> str:
        """Compact JSON of every field, nested models inlined."""
        return self.model_dump_json(exclude=set(self._excluded_fields) or None)

    @cached_field
    def serialized(self) -> str:
        """The canonical JSON that `hash_key` is computed over (sorted keys, non-ASCII kept)."""
        return json.dumps(self.serialize(), ensure_ascii=False, sort_keys=True)

    def serialize(self) -> dict[str, Any]:
        """A JSON-compatible dict of the model (messages override this to reference nested messages by hash)."""
        return self.model_dump(mode="json", exclude=set(self._excluded_fields) or None)

    @cached_field
    def hash_key(self) -> str:
        """sha256 of `serialized`: 40 hex characters, or 64 with `longer_hash_keys`."""
        digest = hashlib.sha256(self.serialized.encode("utf-8")).hexdigest()
        return digest if _longer_hash_keys() else digest[:40]

    def model_copy(self, *, update: dict[str, Any] | None = None, deep: bool = False) -> Any:  # type: ignore[override]
        """Build a new, re-validated instance: updated values get frozen and no cached value is carried over."""
        data = self.as_kwargs()
        if update:
            data.update(update)
        return type(self)(**data)


# Values that pydantic turns into JSON-compatible values the way `model_dump(mode="json")` does.
_JSON_SCALARS = (str, int, float, bool, type(None))


def to_json_compatible(value: Any) -> Any:
    """Turn a frozen scalar into what `model_dump(mode='json')` would produce for it."""
    if type(value) in _JSON_SCALARS:
        return value
    from pydantic_core import to_jsonable_python

    if isinstance(value, Decimal):
        return str(value)
    return to_jsonable_python(value)
