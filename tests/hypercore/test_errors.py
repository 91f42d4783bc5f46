from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hypercore import errors, id_encoding
from hypercore.storage import errors as storage_errors

# The error constructors of the JS hypercore-errors package (11.37.1's dependency).
JS_NAMES = (
    "ASSERTION",
    "BAD_ARGUMENT",
    "STORAGE_EMPTY",
    "STORAGE_CONFLICT",
    "INVALID_SIGNATURE",
    "INVALID_CAPABILITY",
    "INVALID_CHECKSUM",
    "INVALID_OPERATION",
    "INVALID_PROOF",
    "BLOCK_NOT_AVAILABLE",
    "SNAPSHOT_NOT_AVAILABLE",
    "REQUEST_CANCELLED",
    "REQUEST_TIMEOUT",
    "SESSION_NOT_WRITABLE",
    "SESSION_CLOSED",
    "BATCH_UNFLUSHED",
    "BATCH_ALREADY_EXISTS",
    "BATCH_ALREADY_FLUSHED",
    "OPLOG_CORRUPT",
    "OPLOG_HEADER_OVERFLOW",
    "INVALID_OPLOG_VERSION",
    "WRITE_FAILED",
    "DECODING_ERROR",
    "SESSION_MOVED",
)


def test_codes_match_js_names() -> None:
    for name in JS_NAMES:
        cls = errors.error_class(name)
        assert cls.code == ("ERR_ASSERTION" if name == "ASSERTION" else name)
        assert errors.error_class(cls.code) is cls
        assert issubclass(cls, errors.HypercoreError)
        assert cls.__name__ in errors.__all__
        assert cls.__name__.endswith("Error")
    err = errors.BlockNotAvailableError()
    assert str(err) == "BLOCK_NOT_AVAILABLE: Block is not available"
    assert isinstance(errors.BadArgumentError("x"), ValueError)
    assert isinstance(errors.RequestTimeoutError(), TimeoutError)


def test_every_public_error_has_a_code_and_a_root() -> None:
    roots = ((errors, errors.HypercoreError), (storage_errors, storage_errors.StorageError))
    seen = 0
    for module, root in roots:
        for name in module.__all__:
            cls = getattr(module, name)
            if not (isinstance(cls, type) and issubclass(cls, Exception)):
                continue
            seen += 1
            assert issubclass(cls, root), name
            assert name.endswith("Error"), name
            assert isinstance(cls.__dict__.get("code", None) or cls.code, str), name
            assert cls.__module__ == module.__name__, name  # written there, not made elsewhere
    assert seen >= len(JS_NAMES) + 5


def test_damaged_storage_errors_keep_the_js_code() -> None:
    err = errors.DamagedTreeError("head", bytes(32), "its hash differs")
    assert isinstance(err, storage_errors.StorageCorruptionError)
    assert isinstance(err, errors.InvalidChecksumError)
    assert err.code == "INVALID_CHECKSUM"
    assert str(err).startswith("INVALID_CHECKSUM: damaged head")
    assert errors.DamagedSignatureError("head", None, "x").code == "INVALID_SIGNATURE"
    assert errors.DamagedAuthError("auth", None, "x").code == "STORAGE_EMPTY"


def test_a_core_names_itself_in_errors_of_the_merkle_tree() -> None:
    err = errors.InvalidProofError("Invalid hash")
    assert err.discovery_key is None
    assert err.with_discovery_key(bytes(32)) is err
    assert err.discovery_key == bytes(32)
    assert str(err) == f"INVALID_PROOF: Invalid hash (discovery key: {'y' * 52})"
    err.with_discovery_key(b"\x01" * 32)  # named once
    assert err.discovery_key == bytes(32)


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
