from __future__ import annotations

import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from corestore import keys
from hypercore import crypto

PK7 = bytes([7]) * 32

# REFERENCE.md section 7, full values from JS corestore 7.12.5.
X_KEY = "48898f3b961021866c86ea1e7e2ae6073872dbb9af9a88aa05796b9a6741e0c1"
X_PK = "b0ef9a9ef99eb57f0e4a85c51b83e3827ab1851cce8f1836c559165a4f614adf"
X_DKEY = "65bb23074358d74fdce4a30f3b180092d6cc6f9c108bba5ceb6cc127c3eb20b9"
AB_NS = "d0ae678ce0be4526c454bcfa0f859c859311a6425338c4430c5f70fcffd98dd1"
AB_KEY = "81a260b35cc88b1177a56f3207a2ec8d1befb4a2685365ae39e577dcdb28d488"
AB_PK = "00bcc87046f8b9c6a5699c1b178d8f86d7be75719991c931ab32f5c9e9344c77"
AB_DKEY = "6c4efbc93820cd966957cf72914e5d03269e209205fe98a433dce457cea8188a"


def test_constants() -> None:
    assert keys.NS.hex() == "ac5c4cbfb1064776404637a280c71fac823281d351ebeced03151743270def29"
    assert keys.DEFAULT_NAMESPACE == bytes(32)


def test_reference_vectors() -> None:
    kp = keys.create_key_pair(PK7, keys.DEFAULT_NAMESPACE, "x")
    assert kp.public_key.hex() == X_PK
    assert kp.secret_key == keys.derive_seed(PK7, keys.DEFAULT_NAMESPACE, "x") + kp.public_key
    key = keys.named_core_key(PK7, keys.DEFAULT_NAMESPACE, "x")
    assert key.hex() == X_KEY
    assert crypto.discovery_key(key).hex() == X_DKEY

    ns = keys.generate_namespace(keys.generate_namespace(keys.DEFAULT_NAMESPACE, "a"), "b")
    assert ns.hex() == AB_NS
    assert keys.create_key_pair(PK7, ns, "x").public_key.hex() == AB_PK
    assert keys.named_core_key(PK7, ns, "x").hex() == AB_KEY
    assert crypto.discovery_key(keys.named_core_key(PK7, ns, b"x")).hex() == AB_DKEY


@given(st.binary(min_size=32, max_size=32), st.binary(min_size=32, max_size=32), st.text())
def test_derivation_is_the_documented_hash(pk: bytes, ns: bytes, name: str) -> None:
    expected = hashlib.blake2b(keys.NS + ns + name.encode(), key=pk, digest_size=32).digest()
    assert keys.derive_seed(pk, ns, name) == expected
    assert keys.derive_seed(pk, ns, name.encode()) == expected
    assert (
        keys.generate_namespace(ns, name)
        == hashlib.blake2b(ns + name.encode(), digest_size=32).digest()
    )


def test_bad_inputs() -> None:
    with pytest.raises(ValueError):
        keys.derive_seed(bytes(31), bytes(32), "x")
    with pytest.raises(ValueError):
        keys.generate_namespace(bytes(33), "x")
    with pytest.raises(TypeError):
        keys.derive_seed(bytes(32), bytes(32), 5)  # type: ignore[arg-type]
