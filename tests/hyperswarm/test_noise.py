"""Sans-IO Noise handshakes (noise.py)."""

from __future__ import annotations

import hashlib
import hmac

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hyperswarm.secret_stream.errors import HandshakeError
from hyperswarm.secret_stream.noise import (
    HASHLEN,
    CipherState,
    NoiseState,
    SymmetricState,
    dh,
    ed25519_scalar,
    generate_key_pair,
    hkdf,
    hmac_blake2b,
)

A = generate_key_pair(bytes([1]) * 32)
B = generate_key_pair(bytes([2]) * 32)


def run(init: NoiseState, resp: NoiseState, payloads: list[bytes] | None = None) -> list[bytes]:
    """Run a handshake to completion, returning the messages."""
    messages = []
    sender, receiver = init, resp
    i = 0
    while not (init.complete and resp.complete):
        payload = payloads[i] if payloads and i < len(payloads) else b""
        msg = sender.send(payload)
        assert receiver.recv(msg) == payload
        messages.append(msg)
        sender, receiver = receiver, sender
        i += 1
    return messages


def test_hmac_and_hkdf_follow_rfc_definitions() -> None:
    key, data = b"k" * 64, b"some input"
    assert hmac_blake2b(key, data) == hmac.new(key, data, "blake2b").digest()
    # a key longer than the block is hashed first, as HMAC says
    long_key = b"x" * 200
    inner = hashlib.blake2b(long_key).digest()
    assert hmac_blake2b(long_key, data) == hmac_blake2b(inner, data)
    out = hkdf(b"salt" * 16, b"ikm", 3)
    prk = hmac_blake2b(b"salt" * 16, b"ikm")
    t1 = hmac_blake2b(prk, b"\x01")
    t2 = hmac_blake2b(prk, t1 + b"\x02")
    t3 = hmac_blake2b(prk, t2 + b"\x03")
    assert out == [t1, t2, t3]
    assert all(len(x) == HASHLEN for x in out)


def test_symmetric_state_initialisation() -> None:
    name = b"Noise_XX_Ed25519_ChaChaPoly_BLAKE2b"
    ss = SymmetricState(name)
    assert ss.h == name + bytes(64 - len(name)) == ss.ck
    long_name = b"N" * 65
    assert SymmetricState(long_name).h == hashlib.blake2b(long_name).digest()


def test_cipher_state_nonce_layout_and_passthrough() -> None:
    cs = CipherState()
    assert cs.encrypt_with_ad(b"ad", b"plain") == b"plain"
    key = bytes(range(32))
    cs.initialise_key(key)
    c0 = cs.encrypt_with_ad(b"ad", b"x")
    c1 = cs.encrypt_with_ad(b"ad", b"x")
    assert c0 != c1 and cs.nonce == 2
    dec = CipherState(key)
    assert dec.decrypt_with_ad(b"ad", c0) == b"x"
    with pytest.raises(HandshakeError):
        dec.decrypt_with_ad(b"other ad", c1)
    with pytest.raises(HandshakeError):
        dec.decrypt_with_ad(b"ad", b"short")


def test_dh_is_symmetric_and_rejects_bad_points() -> None:
    assert dh(ed25519_scalar(A.secret_key), B.public_key) == dh(
        ed25519_scalar(B.secret_key), A.public_key
    )
    identity = (1).to_bytes(32, "little")  # small order
    with pytest.raises(HandshakeError):
        dh(ed25519_scalar(A.secret_key), identity)
    with pytest.raises(HandshakeError):
        dh(ed25519_scalar(A.secret_key), b"\x00" * 31)


def test_xx_handshake_completes_with_matching_keys() -> None:
    init = NoiseState("XX", True, A)
    resp = NoiseState("XX", False, B)
    messages = run(init, resp)
    assert [len(m) for m in messages] == [32, 96, 64]
    assert init.tx == resp.rx and init.rx == resp.tx and init.tx != init.rx
    assert init.handshake_hash == resp.handshake_hash
    assert init.handshake_hash is not None and len(init.handshake_hash) == 64
    assert init.remote_static == B.public_key and resp.remote_static == A.public_key


def test_ik_handshake_carries_payloads() -> None:
    init = NoiseState("IK", True, A, remote_static=B.public_key, prologue=b"p")
    resp = NoiseState("IK", False, B, prologue=b"p")
    run(init, resp, [b"hello", b"world"])
    assert init.complete and resp.complete
    assert resp.remote_static == A.public_key
    assert init.tx == resp.rx


def test_ik_needs_the_responder_key_and_fails_on_a_wrong_one() -> None:
    with pytest.raises(ValueError):
        NoiseState("IK", True, A)
    init = NoiseState("IK", True, A, remote_static=generate_key_pair().public_key)
    resp = NoiseState("IK", False, B)
    with pytest.raises(HandshakeError):
        resp.recv(init.send(b""))


def test_prologue_mismatch_fails() -> None:
    init = NoiseState("XX", True, A, prologue=b"one")
    resp = NoiseState("XX", False, B, prologue=b"two")
    resp.recv(init.send())
    with pytest.raises(HandshakeError):
        init.recv(resp.send())


def test_turns_are_enforced() -> None:
    init = NoiseState("XX", True, A)
    resp = NoiseState("XX", False, B)
    assert init.my_turn and not resp.my_turn
    with pytest.raises(RuntimeError):
        resp.send()
    with pytest.raises(HandshakeError):
        init.recv(b"\x00" * 32)
    run(init, resp)
    with pytest.raises(HandshakeError):
        init.recv(b"\x00" * 64)


@pytest.mark.parametrize("index", [0, 1, 2])
def test_any_flipped_bit_breaks_the_handshake(index: int) -> None:
    for bit in (0, 7, 8 * 40, -1):
        init = NoiseState("XX", True, A)
        resp = NoiseState("XX", False, B)
        states = [(init, resp), (resp, init), (init, resp)]
        for i, (sender, receiver) in enumerate(states):
            msg = bytearray(sender.send())
            if i == index:
                pos = bit if bit >= 0 else len(msg) * 8 - 1
                pos %= len(msg) * 8
                msg[pos // 8] ^= 1 << (pos % 8)
                if index == 0:
                    # msg1 is an unauthenticated ephemeral key: the break shows up later,
                    # either as an invalid point now or as a failed MAC on msg2.
                    try:
                        receiver.recv(msg)
                        reply = receiver.send()
                    except HandshakeError:
                        break
                    with pytest.raises(HandshakeError):
                        sender.recv(reply)
                    break
                with pytest.raises(HandshakeError):
                    receiver.recv(msg)
                break
            receiver.recv(msg)


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 2), st.binary(max_size=200))
def test_arbitrary_handshake_messages_only_raise_handshake_error(step: int, data: bytes) -> None:
    init = NoiseState("XX", True, A)
    resp = NoiseState("XX", False, B)
    if step == 0:
        target = resp
    else:
        resp.recv(init.send())
        if step == 1:
            target = init
        else:
            init.recv(resp.send())
            init.send()
            target = resp
    try:
        target.recv(data)
    except HandshakeError:
        pass
