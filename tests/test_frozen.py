"""Frozen: freezing rules, the mapping API, JSON forms and the git-like hash_key.

Every expected digest is computed here independently, from hand-written literal dicts, with `hashlib` and `json`.
"""

from __future__ import annotations

import hashlib
import json
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from enum import Enum
from pathlib import Path
from typing import Any
from uuid import UUID

import pydantic
import pytest
from support import expected_hash, expected_serialized

import miniagents_nb
import miniagents_nb.promising.ext.frozen as frozen_module
from miniagents_nb import Frozen, Message, TextMessage, cached_privately
from miniagents_nb.errors import MiniAgentsError, NotFreezableError
from miniagents_nb.promising import PromisingContext


class Color(Enum):
    RED = "red"
    GREEN = "green"


class Point(Frozen):
    x: int
    y: int = 0


class Holder(Frozen):
    pass


class Sub(Frozen):
    pass


# ----------------------------------------------------------------------------------------------------------------------
# freezing
# ----------------------------------------------------------------------------------------------------------------------


def test_public_names() -> None:
    assert miniagents_nb.Frozen is frozen_module.Frozen
    assert miniagents_nb.cached_privately is frozen_module.cached_privately
    assert frozen_module.LONGER_HASH_KEYS is False
    assert miniagents_nb.FrozenType is frozen_module.FrozenType


def test_class_field_is_injected_and_a_user_given_one_is_overwritten() -> None:
    assert Frozen(a=1).class_ == "Frozen"
    assert Frozen(a=1, class_="Impostor").class_ == "Frozen"
    assert Point(x=1).class_ == "Point"
    assert Point(x=1, class_="Frozen").class_ == "Point"
    assert Holder(class_="Other")["class_"] == "Holder"


def test_lists_become_tuples_recursively() -> None:
    frozen = Frozen(a=[1, [2, [3]]], b=(4, [5]))
    assert frozen.a == (1, (2, (3,)))
    assert type(frozen.a) is tuple
    assert type(frozen.a[1]) is tuple
    assert type(frozen.a[1][1]) is tuple
    assert frozen.b == (4, (5,))
    assert type(frozen.b[1]) is tuple


def test_dicts_become_plain_frozen_never_a_subclass() -> None:
    holder = Holder(d={"a": 1, "inner": {"b": [2, {"c": 3}]}})
    assert type(holder.d) is Frozen
    assert holder.d.class_ == "Frozen"
    assert type(holder.d.inner) is Frozen
    assert type(holder.d.inner.b[1]) is Frozen
    assert holder.d.inner.b[1].c == 3
    assert type(Point(x=1, extra={"k": "v"}).extra) is Frozen


def test_nested_frozen_and_messages_are_kept_by_identity() -> None:
    sub = Sub(v=1)
    message = TextMessage("hello")
    holder = Holder(sub=sub, seq=[sub, message], deep={"m": message})
    assert holder.sub is sub
    assert type(holder.sub) is Sub
    assert holder.seq[0] is sub
    assert holder.seq[1] is message
    assert holder.deep.m is message


def test_set_is_rejected_frozenset_is_kept() -> None:
    with pytest.raises(NotFreezableError):
        Frozen(s={1, 2})
    with pytest.raises(NotFreezableError):
        Frozen(nested=[1, {"deeper": {3}}])
    kept = Frozen(fs=frozenset({1, 2}))
    assert kept.fs == frozenset({1, 2})
    assert isinstance(kept.fs, frozenset)


@pytest.mark.parametrize(
    "bad_value",
    [{1, 2}, set(), object(), bytearray(b"x"), lambda: None, range(3)],
    ids=["set", "empty-set", "object", "bytearray", "function", "range"],
)
def test_not_freezable_values_raise_a_type_error_from_the_error_tree(bad_value: Any) -> None:
    with pytest.raises(NotFreezableError) as exc_info:
        Frozen(bad=bad_value)
    assert isinstance(exc_info.value, TypeError)
    assert isinstance(exc_info.value, MiniAgentsError)


def test_not_freezable_error_names_the_class_the_type_and_the_key() -> None:
    with pytest.raises(NotFreezableError, match="are allowed as field values in Holder") as exc_info:
        Holder(good=1, bad_key={1, 2})
    message = str(exc_info.value)
    assert "set" in message
    assert "`bad_key`" in message
    assert "only {" in message

    with pytest.raises(NotFreezableError, match="are allowed as field values in TextMessage") as exc_info:
        TextMessage("x", weird=object())
    assert "object" in str(exc_info.value)
    assert "`weird`" in str(exc_info.value)


def test_declared_fields_are_validated_by_pydantic() -> None:
    assert Point(x=3).x == 3
    assert Point(x=3).y == 0
    with pytest.raises(pydantic.ValidationError):
        Point(x="not an int")
    with pytest.raises(pydantic.ValidationError):
        Point()  # type: ignore[call-arg]  # deliberately wrong


def test_frozen_is_immutable() -> None:
    frozen = Frozen(a=1)
    with pytest.raises((pydantic.ValidationError, TypeError, AttributeError)):
        frozen.a = 2  # type: ignore[attr-defined]  # deliberately mutating
    with pytest.raises((pydantic.ValidationError, TypeError, AttributeError)):
        frozen.new_field = 3  # type: ignore[attr-defined]  # deliberately mutating
    point = Point(x=1)
    with pytest.raises((pydantic.ValidationError, TypeError, AttributeError)):
        point.x = 5  # type: ignore[misc]  # deliberately wrong
    assert frozen.a == 1
    assert point.x == 1
    assert "new_field" not in frozen


# ----------------------------------------------------------------------------------------------------------------------
# mapping API
# ----------------------------------------------------------------------------------------------------------------------


def test_mapping_api() -> None:
    frozen = Frozen(b=2, a=[1])
    assert frozen.get("b") == 2
    assert frozen.get("missing") is None
    assert frozen.get("missing", "default") == "default"
    assert frozen["b"] == 2
    assert frozen["a"] == (1,)
    assert frozen["class_"] == "Frozen"
    with pytest.raises((KeyError, AttributeError)):
        frozen["missing"]
    assert "a" in frozen
    assert "class_" in frozen
    assert "missing" not in frozen
    assert ("b", 2) in frozen
    assert ("b", 3) not in frozen
    assert frozen.keys() == ("class_", "b", "a")
    assert frozen.values() == ("Frozen", 2, (1,))
    assert len(frozen) == 3
    assert list(frozen) == [("class_", "Frozen"), ("b", 2), ("a", (1,))]
    assert dict(frozen) == {"class_": "Frozen", "b": 2, "a": (1,)}


def test_mapping_api_includes_declared_fields() -> None:
    point = Point(x=1, label="p")
    assert point.keys() == ("class_", "x", "y", "label")
    assert dict(point) == {"class_": "Point", "x": 1, "y": 0, "label": "p"}
    assert point.get("y") == 0
    assert len(point) == 4


def test_as_kwargs_excludes_the_class_field() -> None:
    frozen = Frozen(a=[1, 2], b={"c": 3})
    kwargs = frozen.as_kwargs()
    assert set(kwargs) == {"a", "b"}
    assert kwargs["a"] == (1, 2)
    assert type(kwargs["b"]) is Frozen
    assert Point(x=1).as_kwargs() == {"x": 1, "y": 0}


# ----------------------------------------------------------------------------------------------------------------------
# JSON forms and hashing
# ----------------------------------------------------------------------------------------------------------------------


def test_str_is_compact_pydantic_json() -> None:
    frozen = Frozen(b="юнікод ✓", a=[1, 2], c={"d": None, "e": True})
    expected = '{"class_":"Frozen","b":"юнікод ✓","a":[1,2],"c":{"class_":"Frozen","d":null,"e":true}}'
    assert frozen.full_json == expected
    assert str(frozen) == expected
    assert frozen.as_string == expected
    assert frozen.full_json == frozen.model_dump_json()


def test_serialized_is_sorted_json_with_default_separators_and_raw_unicode() -> None:
    frozen = Frozen(b="юнікод", a=1, nested={"z": [1, "two"], "y": None})
    expected = {
        "class_": "Frozen",
        "a": 1,
        "b": "юнікод",
        "nested": {"class_": "Frozen", "y": None, "z": [1, "two"]},
    }
    assert frozen.serialize() == expected
    assert frozen.serialized == json.dumps(frozen.serialize(), ensure_ascii=False, sort_keys=True)
    assert frozen.serialized == (
        '{"a": 1, "b": "юнікод", "class_": "Frozen", "nested": {"class_": "Frozen", "y": null, "z": [1, "two"]}}'
    )
    assert frozen.hash_key == expected_hash(expected)


def test_hash_key_of_the_upstream_test_example_from_a_literal_string() -> None:
    frozen = Frozen(content="test", final_sender_alias="user", custom_field={"role": "user"})
    literal = (
        '{"class_": "Frozen", "content": "test", "custom_field": {"class_": "Frozen", "role": "user"}, '
        '"final_sender_alias": "user"}'
    )
    assert frozen.serialized == literal
    assert frozen.hash_key == hashlib.sha256(literal.encode("utf-8")).hexdigest()[:40]
    assert len(frozen.hash_key) == 40
    assert all(ch in "0123456789abcdef" for ch in frozen.hash_key)


def test_serialization_of_special_types() -> None:
    sub = Sub(label="sub")
    frozen = Frozen(
        when=datetime(2024, 1, 2, 3, 4, 5),
        day=date(2024, 1, 2),
        moment=time(3, 4, 5),
        duration=timedelta(days=1, hours=2, minutes=30),
        path=Path("/tmp/some file.txt"),
        color=Color.RED,
        raw=b"bytes",
        amount=Decimal("1.50"),
        uuid=UUID("12345678-1234-5678-1234-567812345678"),
        fs=frozenset({"only"}),
        tup=(1, "a", None),
        nothing=None,
        flag=True,
        ratio=1.5,
        text="юнікод ✓ 😀",
        sub=sub,
        nested={"k": [1, {"deep": "x"}]},
    )
    expected = {
        "class_": "Frozen",
        "when": "2024-01-02T03:04:05",
        "day": "2024-01-02",
        "moment": "03:04:05",
        "duration": "P1DT2H30M",
        "path": "/tmp/some file.txt",
        "color": "red",
        "raw": "bytes",
        "amount": "1.50",
        "uuid": "12345678-1234-5678-1234-567812345678",
        "fs": ["only"],
        "tup": [1, "a", None],
        "nothing": None,
        "flag": True,
        "ratio": 1.5,
        "text": "юнікод ✓ 😀",
        "sub": {"class_": "Sub", "label": "sub"},
        "nested": {"class_": "Frozen", "k": [1, {"class_": "Frozen", "deep": "x"}]},
    }
    assert frozen.serialize() == expected
    assert frozen.serialized == expected_serialized(expected)
    assert frozen.hash_key == expected_hash(expected)
    # the special values themselves are kept as given
    assert frozen.when == datetime(2024, 1, 2, 3, 4, 5)
    assert frozen.color is Color.RED
    assert frozen.amount == Decimal("1.50")
    assert frozen.path == Path("/tmp/some file.txt")


def test_hash_key_of_a_subclass_with_declared_fields() -> None:
    point = Point(x=5, tag="t")
    expected = {"class_": "Point", "x": 5, "y": 0, "tag": "t"}
    assert point.hash_key == expected_hash(expected)
    assert Point(x=5, tag="t").hash_key == point.hash_key
    assert Point(x=6, tag="t").hash_key != point.hash_key


def test_hash_key_does_not_depend_on_keyword_order_or_list_vs_tuple() -> None:
    assert Frozen(a=1, b=[1, 2]).hash_key == Frozen(b=(1, 2), a=1).hash_key
    assert Frozen(a=1).hash_key != Frozen(a=2).hash_key
    assert Frozen(a=1).hash_key != Holder(a=1).hash_key


async def test_longer_hash_keys_via_the_context() -> None:
    expected = {"class_": "Frozen", "a": 1}
    async with PromisingContext(longer_hash_keys=True):
        longer = Frozen(a=1).hash_key
    async with PromisingContext(longer_hash_keys=False):
        shorter = Frozen(a=1).hash_key
    async with PromisingContext():
        default = Frozen(a=1).hash_key
    assert longer == expected_hash(expected, 64)
    assert len(longer) == 64
    assert shorter == expected_hash(expected, 40)
    assert default == expected_hash(expected, 40)


async def test_longer_hash_keys_via_the_module_constant(monkeypatch: pytest.MonkeyPatch) -> None:
    expected = {"class_": "Frozen", "a": 2}
    monkeypatch.setattr(frozen_module, "LONGER_HASH_KEYS", True)
    assert Frozen(a=2).hash_key == expected_hash(expected, 64)  # no context active
    async with PromisingContext():  # longer_hash_keys not given: the module constant decides
        assert Frozen(a=2).hash_key == expected_hash(expected, 64)
    async with PromisingContext(longer_hash_keys=False):  # an explicit context value wins
        assert Frozen(a=2).hash_key == expected_hash(expected, 40)


def test_hash_key_is_cached() -> None:
    frozen = Frozen(a=1)
    assert frozen.hash_key is frozen.hash_key
    assert frozen.serialized is frozen.serialized
    assert frozen.full_json is frozen.full_json


# ----------------------------------------------------------------------------------------------------------------------
# caches never survive a copy (fix 2, design decision 10)
# ----------------------------------------------------------------------------------------------------------------------


def test_model_copy_never_carries_cached_values_frozen() -> None:
    original = Frozen(content="old", n=1)
    assert str(original) == '{"class_":"Frozen","content":"old","n":1}'
    original_hash = original.hash_key
    _ = original.serialized
    _ = original.keys()
    copied = original.model_copy(update={"content": "new"})
    assert copied.content == "new"
    assert str(copied) == '{"class_":"Frozen","content":"new","n":1}'
    assert copied.full_json == '{"class_":"Frozen","content":"new","n":1}'
    assert copied.serialized == expected_serialized({"class_": "Frozen", "content": "new", "n": 1})
    assert copied.hash_key == expected_hash({"class_": "Frozen", "content": "new", "n": 1})
    assert copied.values() == ("Frozen", "new", 1)
    assert original.hash_key == original_hash
    assert str(original) == '{"class_":"Frozen","content":"old","n":1}'


def test_model_copy_never_carries_cached_values_text_message() -> None:
    message = TextMessage("old", role="user")
    assert str(message) == "old"
    _ = message.hash_key, message.full_json, message.serialized, message.message_to_tokens()
    copied = message.model_copy(update={"content": "x"})
    assert str(copied) == "x"
    assert copied.content == "x"
    assert copied.hash_key == expected_hash(
        {"class_": "TextMessage", "content": "x", "content_template": None, "role": "user"}
    )
    assert '"content":"x"' in copied.full_json
    tokens = copied.message_to_tokens()
    assert len(tokens) == 1
    assert tokens[0] is copied
    assert str(message) == "old"


def test_model_copy_revalidates() -> None:
    copied = Frozen(a=1).model_copy(update={"a": [1, [2]], "b": {"c": 1}})
    assert copied.a == (1, (2,))
    assert type(copied.b) is Frozen
    assert Frozen(a=1).model_copy(update={"class_": "Bogus"}).class_ == "Frozen"


# ----------------------------------------------------------------------------------------------------------------------
# private attributes, cached_privately, equality and hash()
# ----------------------------------------------------------------------------------------------------------------------


def test_private_attributes_do_not_affect_the_hash() -> None:
    plain = Frozen(a=1)
    decorated = Frozen(a=1)
    decorated._note = "private"  # type: ignore[attr-defined]  # private attributes may be set on frozen instances
    assert decorated._note == "private"
    assert decorated.hash_key == plain.hash_key == expected_hash({"class_": "Frozen", "a": 1})
    assert "_note" not in decorated.keys()
    assert decorated == plain


def test_cached_privately_computes_once_and_stays_out_of_the_fields() -> None:
    calls: list[int] = []

    class WithCache(Frozen):
        @property
        @cached_privately
        def doubled(self) -> int:
            calls.append(1)
            return int(self.x * 2)

    instance = WithCache(x=21)
    assert instance.doubled == 42
    assert instance.doubled == 42
    assert calls == [1]
    assert instance.keys() == ("class_", "x")
    assert instance.hash_key == expected_hash({"class_": "WithCache", "x": 21})
    other = WithCache(x=1)
    assert other.doubled == 2
    assert calls == [1, 1]


def test_equality_semantics() -> None:
    assert Frozen(a=1) == Frozen(a=1)
    assert Frozen(a=1, b=[1]) == Frozen(a=1, b=(1,))
    assert Frozen(a=1) != Frozen(a=2)
    assert Frozen(a=1) != Holder(a=1)
    assert Frozen(content="x") != Message(content="x")
    assert TextMessage("x") == TextMessage("x")
    assert TextMessage("x") != TextMessage("y")
    # cached values (str, hash_key, ...) never take part in equality
    with_caches = Frozen(a=1, b={"c": 2})
    _ = str(with_caches), with_caches.hash_key, with_caches.serialized, with_caches.keys()
    assert with_caches == Frozen(a=1, b={"c": 2})
    assert Frozen(a=1, b={"c": 2}) == with_caches
    message = TextMessage("cached", role="user")
    _ = str(message), message.hash_key, message.message_to_tokens()
    assert message == TextMessage("cached", role="user")


def test_hash_semantics() -> None:
    assert hash(Frozen(a=1)) == hash(Frozen(a=1))
    assert hash(Frozen(a=(1, {"b": 2}))) == hash(Frozen(a=[1, {"b": 2}]))
    lookup = {Frozen(a=1): "one", TextMessage("t"): "text"}
    assert lookup[Frozen(a=1)] == "one"
    assert lookup[TextMessage("t")] == "text"
    assert len({Frozen(a=1), Frozen(a=1), Frozen(a=2)}) == 2
