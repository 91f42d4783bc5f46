from __future__ import annotations

import hashlib
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hypercore import encryption as enc
from hypercore.crypto import DEFAULT_ENCRYPTION
from hypercore.crypto import discovery_key as crypto_discovery_key
from hypercore.encryption import (
    PADDING,
    DefaultEncryption,
    block_encryption_key,
    derive_keys,
    hsalsa20,
    salsa20_block,
    xsalsa20_xor,
)
from hypercore.errors import EncryptedBlockError

keys = st.binary(min_size=32, max_size=32)
indexes = st.integers(0, 2**64 - 1)
forks = st.integers(0, 2**64 - 1)
blocks = st.binary(max_size=300) | st.binary(min_size=1000, max_size=5000)

# NaCl's own test vectors (tests/core1.c and tests/stream.c): HSalsa20 of a Curve25519 shared
# secret with a zero nonce, and the SHA-256 of 4 MiB of XSalsa20 key stream under that subkey.
NACL_SHARED = bytes.fromhex("4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742")
NACL_FIRSTKEY = bytes.fromhex("1b27556473e985d462cd51197a9a46c76009549eac6474f206c4ee0844f68389")
NACL_NONCE = bytes.fromhex("69696ee955b62b73cd62bda875fc73d68219e0036b7a0b37")
NACL_STREAM_SHA256 = "662b9d0e3463029156069b12f918691a98f7dfb2ca0393c96bbfc6b1fbd630a2"

PATHS = [pytest.param(enc._xsalsa20_xor_python, id="python")]
if enc._native is not None:
    PATHS.append(pytest.param(enc._native, id="native"))


def test_hsalsa20_vector() -> None:
    assert hsalsa20(NACL_SHARED, bytes(16)) == NACL_FIRSTKEY


@pytest.mark.parametrize("xor", PATHS)
def test_xsalsa20_vector(xor: object) -> None:
    assert callable(xor)
    stream = xor(bytes(4 * 1024 * 1024), NACL_NONCE, NACL_FIRSTKEY)
    assert hashlib.sha256(stream).hexdigest() == NACL_STREAM_SHA256


def test_the_native_path_is_found() -> None:
    # PyNaCl's wheels bundle libsodium with its symbols exported; losing the fast path would
    # cost ~60x per block without failing anything else.
    assert enc._native is not None
    assert enc._xsalsa20_xor is enc._native


@settings(max_examples=300, deadline=None)
@given(data=blocks, nonce=st.binary(min_size=24, max_size=24), key=keys)
def test_xsalsa20_paths_agree(data: bytes, nonce: bytes, key: bytes) -> None:
    out = enc._xsalsa20_xor_python(data, nonce, key)
    assert len(out) == len(data)
    if enc._native is not None:
        assert enc._native(data, nonce, key) == out
    assert xsalsa20_xor(out, nonce, key) == data
    # XSalsa20 is Salsa20 under the HSalsa20 subkey; the first block shows it.
    first = salsa20_block(hsalsa20(key, nonce[:16]), nonce[16:], 0)
    assert out[:64] == bytes(a ^ b for a, b in zip(data[:64], first, strict=False))


def test_salsa20_counter_continues_the_stream() -> None:
    key, nonce = bytes(range(32)), bytes(range(24))
    stream = xsalsa20_xor(bytes(64 * 5 + 7), nonce, key)
    subkey = hsalsa20(key, nonce[:16])
    assert stream[64 * 3 : 64 * 4] == salsa20_block(subkey, nonce[16:], 3)


def test_bad_stream_arguments() -> None:
    with pytest.raises(ValueError):
        xsalsa20_xor(b"x", bytes(23), bytes(32))
    with pytest.raises(ValueError):
        xsalsa20_xor(b"x", bytes(24), bytes(31))
    with pytest.raises(ValueError):
        hsalsa20(bytes(32), bytes(8))


@given(core_key=keys, encryption_key=keys)
def test_key_derivation(core_key: bytes, encryption_key: bytes) -> None:
    block = block_encryption_key(core_key, encryption_key)
    assert (
        block
        == hashlib.blake2b(DEFAULT_ENCRYPTION + core_key + encryption_key, digest_size=32).digest()
    )
    compat = block_encryption_key(core_key, encryption_key, compat=True)
    assert compat == hashlib.blake2b(encryption_key, key=core_key, digest_size=32).digest()
    assert compat != block

    for is_compat, expected in ((False, block), (True, compat)):
        keys_ = derive_keys(encryption_key, core_key, compat=is_compat)
        assert keys_.block == expected
        assert keys_.blinding == hashlib.blake2b(expected, digest_size=32).digest()
        e = DefaultEncryption(encryption_key, core_key, compat=is_compat)
        assert (e.block_key, e.blinding_key, e.key, e.compat) == (
            *keys_,
            encryption_key,
            is_compat,
        )
        by_block = DefaultEncryption.from_block_key(expected)
        assert (by_block.block_key, by_block.blinding_key) == keys_
        assert DefaultEncryption(expected, block=True).block_key == expected


def test_key_derivation_arguments() -> None:
    with pytest.raises(ValueError):
        derive_keys(bytes(32), None)
    with pytest.raises(ValueError):
        DefaultEncryption.from_block_key(bytes(31))
    with pytest.raises(ValueError):
        block_encryption_key(bytes(8), bytes(32), compat=True)
    # Non-compat hashing takes any lengths, as the JS does.
    assert len(block_encryption_key(b"", b"")) == 32


@settings(max_examples=300, deadline=None)
@given(
    core_key=keys,
    encryption_key=keys,
    compat=st.booleans(),
    index=indexes,
    fork=forks,
    block=blocks,
)
def test_round_trip(
    core_key: bytes, encryption_key: bytes, compat: bool, index: int, fork: int, block: bytes
) -> None:
    e = DefaultEncryption(encryption_key, core_key, compat=compat)
    stored = e.encrypt(index, block, fork)
    assert len(stored) == len(block) + PADDING == len(block) + e.padding
    assert e.decrypt(index, stored) == block
    assert e.decrypt(index, bytearray(stored)) == block
    assert e.decrypt(index, memoryview(stored)) == block
    assert e.fork(index, stored) == fork
    # Another instance built from the block key reads it too.
    assert DefaultEncryption.from_block_key(e.block_key).decrypt(index, stored) == block
    assert e.encrypt(index, bytearray(block), fork) == stored


@settings(max_examples=200, deadline=None)
@given(key=keys, index=indexes, fork=forks, block=st.binary(min_size=1, max_size=200))
def test_padding_is_the_blinded_fork(key: bytes, index: int, fork: int, block: bytes) -> None:
    e = DefaultEncryption.from_block_key(key)
    stored = e.encrypt(index, block, fork)
    padding = stored[:PADDING]
    blinding_nonce = struct.pack("<Q", index) + bytes(16)
    stream = xsalsa20_xor(bytes(PADDING), blinding_nonce, e.blinding_key)
    assert padding == bytes(a ^ b for a, b in zip(stream, struct.pack("<Q", fork), strict=True))
    assert e.encrypt(index, block, 0)[:PADDING] == stream
    body_nonce = struct.pack("<Q", index) + padding + bytes(8)
    assert stored[PADDING:] == xsalsa20_xor(block, body_nonce, e.block_key)


@settings(max_examples=200, deadline=None)
@given(
    key=keys,
    index=indexes,
    fork=forks,
    other=st.integers(0, 2**64 - 1),
    block=st.binary(min_size=16, max_size=200),
)
def test_index_and_fork_change_the_ciphertext(
    key: bytes, index: int, fork: int, other: int, block: bytes
) -> None:
    e = DefaultEncryption(key, bytes(32))
    stored = e.encrypt(index, block, fork)
    if other != index:
        moved = e.encrypt(other, block, fork)
        assert moved[:PADDING] != stored[:PADDING]
        assert moved[PADDING:] != stored[PADDING:]
        assert e.decrypt(other, stored) != block
    if other != fork:
        forked = e.encrypt(index, block, other)
        # Forks differ in the blinded padding by exactly their xor, and the body changes.
        diff = bytes(a ^ b for a, b in zip(forked[:PADDING], stored[:PADDING], strict=True))
        assert diff == struct.pack("<Q", fork ^ other)
        assert forked[PADDING:] != stored[PADDING:]
        assert e.decrypt(index, forked) == block


def test_keys_and_compat_change_the_ciphertext() -> None:
    block = bytes(64)
    a = DefaultEncryption(bytes(32), bytes(32)).encrypt(0, block, 0)
    b = DefaultEncryption(bytes(32), bytes(32), compat=True).encrypt(0, block, 0)
    c = DefaultEncryption(bytes(32), b"\x01" * 32).encrypt(0, block, 0)
    d = DefaultEncryption(b"\x01" * 32, bytes(32)).encrypt(0, block, 0)
    assert len({a, b, c, d}) == 4


def test_short_and_empty_blocks() -> None:
    e = DefaultEncryption(bytes(32), bytes(32))
    empty = e.encrypt(5, b"", 3)
    assert len(empty) == PADDING
    assert e.decrypt(5, empty) == b""
    assert e.fork(5, empty) == 3
    for n in range(PADDING):
        with pytest.raises(EncryptedBlockError):
            e.decrypt(5, empty[:n])
        with pytest.raises(ValueError):
            e.fork(5, empty[:n])


def test_index_and_fork_must_be_uint64() -> None:
    e = DefaultEncryption(bytes(32), bytes(32))
    for bad in (-1, 2**64):
        with pytest.raises(ValueError):
            e.encrypt(bad, b"x", 0)
        with pytest.raises(ValueError):
            e.encrypt(0, b"x", bad)
        with pytest.raises(ValueError):
            e.decrypt(bad, bytes(9))
    e.encrypt(2**64 - 1, b"x", 2**64 - 1)


async def test_a_block_too_short_to_decrypt_names_its_core() -> None:
    from hypercore import Hypercore, MemoryStorage

    storage = MemoryStorage()
    async with Hypercore(storage) as plain:
        await plain.append(b"abc")  # stored without the encryption padding
        key = plain.key
    async with Hypercore(storage, key, encryption_key=bytes(32)) as core:
        with pytest.raises(EncryptedBlockError) as info:
            await core.get(0)
    assert info.value.discovery_key == crypto_discovery_key(key)
    assert info.value.code == "DECODING_ERROR"
