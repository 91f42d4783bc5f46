from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hypercore.crypto import TreeNode
from hypercore.manifest import MANIFEST, Manifest, Signer, decode_manifest, encode_manifest
from hypercore.wire import DATA, Data, DataBlock, DataUpgrade
from protomux import encoding as c

from .strategies import data_messages, manifests


@given(manifests)
def test_manifest_round_trip(m: Manifest) -> None:
    state = c.State()
    MANIFEST.preencode(state, m)
    encoded = encode_manifest(m)
    assert state.end == len(encoded)
    assert decode_manifest(encoded) == m


@given(data_messages)
def test_data_round_trip(m: Data) -> None:
    state = c.State()
    DATA.preencode(state, m)
    encoded = c.encode(DATA, m)
    assert state.end == len(encoded)
    assert c.decode(DATA, encoded) == m


@settings(max_examples=500)
@given(st.binary(max_size=200))
def test_arbitrary_bytes_raise_only_decode_error(blob: bytes) -> None:
    for codec in (MANIFEST, DATA):
        try:
            c.decode(codec, blob)
        except c.DecodeError:
            pass


@given(data_messages, st.data())
def test_truncated_data_messages_are_rejected(m: Data, data: st.DataObject) -> None:
    encoded = c.encode(DATA, m)
    cut = data.draw(st.integers(0, len(encoded) - 1))
    with pytest.raises(c.DecodeError):
        c.decode(DATA, encoded[:cut])


def test_data_block_vector() -> None:
    # From a captured exchange (REFERENCE.md section 4): block 1 ("world") with its sibling.
    node0 = TreeNode(0, 5, bytes(range(32)))
    m = Data(request=1, fork=0, block=DataBlock(1, b"world", (node0,)))
    assert c.encode(DATA, m).hex() == "0101000105776f726c640100" + "05" + bytes(range(32)).hex()


def test_upgrade_signature_is_optional() -> None:
    m = Data(request=0, fork=2, upgrade=DataUpgrade(0, 3))
    assert c.encode(DATA, m).hex() == "080002" + "0003000000"
    assert c.decode(DATA, c.encode(DATA, m)) == m


@pytest.mark.parametrize(
    "blob",
    [
        "04",  # manifest version 4
        "0100010100" + "00" * 64,  # hash id 1
        "0100000101" + "01" + "00" * 64,  # signature type 1
        "000003",  # v0 type 3
    ],
)
def test_bad_manifests(blob: str) -> None:
    with pytest.raises(c.DecodeError):
        decode_manifest(bytes.fromhex(blob))


def test_manifest_encode_checks_key_sizes() -> None:
    with pytest.raises(c.EncodeError):
        encode_manifest(Manifest(signers=(Signer(namespace=b"x", public_key=bytes(32)),)))
