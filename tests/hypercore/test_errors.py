from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hypercore import errors, id_encoding


def test_codes_match_js_names() -> None:
    for name in errors.__all__:
        if name.isupper():
            cls = getattr(errors, name)
            assert cls.code == ("ERR_ASSERTION" if name == "ASSERTION" else name)
            assert errors.error_class(name) is cls
            assert errors.error_class(cls.code) is cls
            assert issubclass(cls, errors.HypercoreError)
    err = errors.BlockNotAvailableError()
    assert str(err) == "BLOCK_NOT_AVAILABLE: Block is not available"
    assert isinstance(errors.BadArgumentError("x"), ValueError)
    assert isinstance(errors.RequestTimeoutError(), TimeoutError)


def test_discovery_key_in_message() -> None:
    err = errors.InvalidSignatureError("bad head", discovery_key=bytes(32))
    assert str(err) == f"INVALID_SIGNATURE: bad head (discovery key: {'y' * 52})"


@given(st.binary(min_size=32, max_size=32))
def test_id_round_trip(key: bytes) -> None:
    text = id_encoding.encode(key)
    assert len(text) == 52
    assert id_encoding.decode(text) == key
    assert id_encoding.decode(key.hex()) == key
    assert id_encoding.normalize("pear://" + text + "/path") == text


def test_id_vector_and_bad_ids() -> None:
    # hypercore-id-encoding of bytes 0..31
    assert (
        id_encoding.encode(bytes(range(32)))
        == "yyyoryarywdyqnyjbefoadeqbhebnrounoktcfaadrpbs8y7daxo"
    )
    for bad in ["", "z" * 51, "0" * 52, "zz" * 32, b"short"]:
        with pytest.raises(ValueError):
            id_encoding.decode(bad)
