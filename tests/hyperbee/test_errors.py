"""Every error hyperbee exports has a ``code`` (the JS one where JS has one) and is a
HyperbeeError; caller misuse and damaged blocks are told apart."""

from __future__ import annotations

import inspect

import pytest

import hyperbee
from hyperbee import errors
from hyperbee.errors import (
    BadArgumentError,
    BeeClosedError,
    BeeNotOpenError,
    BeeReadOnlyError,
    DecodingError,
    EncodingError,
    HyperbeeError,
)
from hypercore import Hypercore, MemoryStorage

EXPORTED = [
    obj
    for name in errors.__all__
    if inspect.isclass(obj := getattr(errors, name)) and issubclass(obj, Exception)
]


def test_every_error_is_exported() -> None:
    defined = {
        obj
        for obj in vars(errors).values()
        if inspect.isclass(obj) and issubclass(obj, Exception) and obj.__module__ == errors.__name__
    }
    assert defined == set(EXPORTED)
    assert all(getattr(hyperbee, cls.__name__) is cls for cls in EXPORTED)


@pytest.mark.parametrize("cls", EXPORTED, ids=lambda c: c.__name__)
def test_error_has_a_code_and_the_root(cls: type[Exception]) -> None:
    assert issubclass(cls, HyperbeeError)
    assert isinstance(cls.code, str) and cls.code  # type: ignore[attr-defined]
    assert cls.__name__.endswith("Error")


def test_codes_are_distinct_and_js_where_js_has_them() -> None:
    codes = [cls.code for cls in EXPORTED]  # type: ignore[attr-defined]
    assert len(codes) == len(set(codes))
    assert DecodingError.code == "DECODING_ERROR"
    assert errors.BlockNotAvailableError.code == "BLOCK_NOT_AVAILABLE"


def test_garbage_is_a_value_error_and_misuse_is_not_decoding() -> None:
    assert issubclass(DecodingError, ValueError)
    for cls in (BadArgumentError, BeeClosedError, BeeNotOpenError, BeeReadOnlyError):
        assert not issubclass(cls, DecodingError)
    assert not issubclass(EncodingError, DecodingError)


async def test_misuse_raises_its_class() -> None:
    core = Hypercore(MemoryStorage())
    bee = hyperbee.Hyperbee(core)
    with pytest.raises(BeeNotOpenError):
        await bee.get(b"a")
    async with bee:
        await bee.put(b"a", b"1")
        with pytest.raises(EncodingError):
            await bee.put(b"b", 1)
        with pytest.raises(BadArgumentError):
            await bee.get_by_seq(0)
        with pytest.raises(BadArgumentError):
            async for _ in bee.history(live=True, reverse=True):
                pass
        async with bee.checkout(2) as old:
            with pytest.raises(BeeReadOnlyError):
                await old.put(b"x", b"y")
            with pytest.raises(BadArgumentError):
                old.watch()
    with pytest.raises(BeeClosedError):
        await bee.get(b"a")
