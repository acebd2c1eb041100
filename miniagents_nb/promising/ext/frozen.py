"""`Frozen`: immutable pydantic models with a content hash, the base of every message.

Freezing happens once, at construction: lists become tuples, dicts become plain `Frozen` models and anything that
could change later is refused. That is what lets promises hand the same objects to any number of consumers, and what
makes `hash_key` (a git-like content address) stable.

Freezing also refuses what could be held but never hashed, persisted or shown: text with lone surrogates, bytes that
are not UTF-8, ints too long for Python's int-to-text limit, dicts with non-string keys, values pydantic cannot turn
into JSON. A message that fails later, in a background persistence task, would surface far from its cause (or not at
all); refused at construction, the error names the field at the line that made it. Sets are hashed in a canonical
order (their elements' canonical JSON, sorted), so equal messages have equal hash keys in every process whatever
`PYTHONHASHSEED` is.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator
from datetime import date, datetime, time, timedelta
from enum import Enum
from numbers import Number
from pathlib import PurePath
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar, Union, overload
from uuid import UUID

from pydantic import BaseModel, ConfigDict, model_validator
from typing_extensions import Self

from miniagents_nb.errors import NotFreezableError
from miniagents_nb.promising.ext.hashable import (
    ALWAYS_PRINTABLE_INT_BITS,
    canonical_json_value,
    check_field_name,
    check_mapping_keys,
    refuse_bad_text,
    refuse_long_int,
    refuse_unserializable,
    to_json_compatible,
)
from miniagents_nb.promising.sentinels import NO_VALUE

__all__ = [
    "FROZEN_CLASS_FIELD",
    "LONGER_HASH_KEYS",
    "Frozen",
    "FrozenType",
    "cached_field",
    "cached_privately",
    "canonical_json_value",
    "check_mapping_keys",
    "freeze_kwargs",
    "freeze_value",
    "frozen_from_mapping",
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


def frozen_from_mapping(mapping: Any, owner: str, key: str) -> Frozen:
    """A plain `Frozen` model of a dict's items, its values frozen with their path (`key.name`) in any error."""
    check_mapping_keys(mapping, owner, key)
    return Frozen(**{name: freeze_value(item, owner, f"{key}.{name}") for name, item in mapping.items()})


def freeze_value(value: Any, owner: str, key: str) -> Any:
    """Return an immutable equivalent of `value`, or raise `NotFreezableError` naming `owner` and `key`."""
    value_type = type(value)
    if value_type is str:
        if not value.isascii():  # O(1) in CPython: only non-ASCII text is checked for lone surrogates
            refuse_bad_text(value, owner, key, "The field")
        return value
    if value_type is int:
        if value.bit_length() > ALWAYS_PRINTABLE_INT_BITS:
            refuse_long_int(value, owner, key)
        return value
    if value_type in _PLAIN_TYPES:
        return value
    if isinstance(value, Frozen):
        return value
    if isinstance(value, (list, tuple)):
        return tuple([freeze_value(item, owner, key) for item in value])
    if isinstance(value, dict):
        return frozen_from_mapping(value, owner, key)
    if isinstance(value, frozenset):
        return frozenset([freeze_value(item, owner, key) for item in value])
    if isinstance(value, _ALLOWED_TYPES):
        refuse_unserializable(value, owner, key)
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

    @classmethod
    def model_validate(cls, obj: Any, *args: Any, **kwargs: Any) -> Self:
        """Validate a dict into this model (a non-str key is named: pydantic would pass the dict on as keywords)."""
        if isinstance(obj, dict):
            for key in obj:
                if not isinstance(key, str):
                    check_field_name(key, cls.__name__)
        return super().model_validate(obj, *args, **kwargs)

    @model_validator(mode="before")
    @classmethod
    def _freeze_fields(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        owner = cls.__name__
        frozen: dict[Any, Any] = {}
        for key, value in data.items():
            if type(key) is not str or not key.isascii():
                check_field_name(key, owner)
            value_type = type(value)
            if value_type is str:
                if not value.isascii():  # O(1): only non-ASCII text can hold a lone surrogate
                    refuse_bad_text(value, owner, key, "The field")
            elif value_type is int:
                if value.bit_length() > ALWAYS_PRINTABLE_INT_BITS:
                    refuse_long_int(value, owner, key)
            elif value_type not in _PLAIN_TYPES:
                value = freeze_value(value, owner, key)
            frozen[key] = value
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
        """A JSON-compatible dict of the model (messages override this to reference nested messages by hash);
        sets are in their canonical order."""
        dumped = self.model_dump(mode="json", exclude=set(self._excluded_fields) or None)
        return _canonical_sets(self, dumped)  # type: ignore[no-any-return]

    @cached_field
    def hash_key(self) -> str:
        """sha256 of `serialized`: 40 hex characters, or 64 with `longer_hash_keys`."""
        digest = hashlib.sha256(self.serialized.encode("utf-8")).hexdigest()
        return digest if _longer_hash_keys() else digest[:40]

    def model_copy(self, *, update: dict[str, Any] | None = None, deep: bool = False) -> Any:  # type: ignore[override]
        """Build a new, re-validated instance: updated values get frozen and no cached value is carried over."""
        data = self.as_kwargs()
        if update:
            for name in update:
                check_field_name(name, type(self).__name__)
            data.update(update)
        return type(self)(**data)


def _dump(value: Any) -> Any:
    if isinstance(value, Frozen):
        return value.serialize()
    if isinstance(value, tuple):
        return [_dump(item) for item in value]
    if isinstance(value, frozenset):
        return canonical_json_value([_dump(item) for item in value])
    return to_json_compatible(value)


def _canonical_sets(value: Any, dumped: Any) -> Any:
    """`dumped` (pydantic's JSON form of `value`) with every set, at any depth, in its canonical order."""
    if isinstance(value, frozenset):
        return _dump(value)
    if isinstance(value, tuple) and isinstance(dumped, list) and len(dumped) == len(value):
        return [_canonical_sets(item, item_dumped) for item, item_dumped in zip(value, dumped, strict=True)]
    if isinstance(value, Frozen) and isinstance(dumped, dict):
        fields = value.__dict__
        extra = value.__pydantic_extra__ or {}
        for name, item_dumped in dumped.items():
            item = fields[name] if name in fields else extra.get(name)
            if isinstance(item, (frozenset, tuple, Frozen)):
                dumped[name] = _canonical_sets(item, item_dumped)
    return dumped
