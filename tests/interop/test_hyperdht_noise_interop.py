"""hyperswarm.hyperdht.noise_wrap against hyperdht 6.34.0's lib/noise-wrap.js: a Python client
and a JS server (and the other way round) finish the connection handshake with the same hash,
mirrored transport keys, the same holepunch secret and each other's public key, and each
reads the other's payload; a message for another server key, or a damaged one, fails."""

from __future__ import annotations

import pytest

from hypercore.crypto import key_pair
from hyperswarm.hyperdht import messages as m
from hyperswarm.hyperdht.constants import FIREWALL
from hyperswarm.hyperdht.errors import HandshakeInvalidError, HandshakeUnfinishedError
from hyperswarm.hyperdht.noise_wrap import ConnectionKeys, NoiseWrap
from hyperswarm.hyperdht.secure_payload import SecurePayload
from protomux.encoding import Address

from .jsenv import JSHelper

CLIENT_SEED = bytes([1]) * 32
SERVER_SEED = bytes([2]) * 32

CLIENT_PAYLOAD = m.NoisePayload(
    firewall=FIREWALL.UNKNOWN,
    addresses4=(Address("127.0.0.1", 40001),),
    udx=m.UdxInfo(id=0x12345678, seq=0),
    secret_stream=m.SecretStreamInfo(),
)
SERVER_PAYLOAD = m.NoisePayload(
    firewall=FIREWALL.UNKNOWN,
    holepunch=m.HolepunchInfo(
        id=3,
        relays=(
            m.RelayInfo(
                relay_address=Address("127.0.0.1", 40100),
                peer_address=Address("127.0.0.1", 40002),
            ),
        ),
    ),
    addresses4=(Address("127.0.0.1", 40002),),
    udx=m.UdxInfo(id=0xCAFE, seq=0),
    secret_stream=m.SecretStreamInfo(),
)


def _check(mine: ConnectionKeys, theirs: dict[str, bytes]) -> None:
    assert mine.hash == theirs["hash"] and len(mine.hash) == 64
    assert mine.tx == theirs["rx"] and mine.rx == theirs["tx"]
    assert mine.holepunch_secret == theirs["holepunchSecret"]
    assert mine.public_key == theirs["remotePublicKey"]
    assert mine.remote_public_key == theirs["publicKey"]


def test_a_python_client_finishes_with_a_js_server(js: JSHelper) -> None:
    client = NoiseWrap(key_pair(CLIENT_SEED), key_pair(SERVER_SEED).public_key)
    with pytest.raises(HandshakeUnfinishedError):
        client.final()
    msg1 = client.send(CLIENT_PAYLOAD)
    out = js("hyperdhtNoise.serverReply", SERVER_SEED, msg1, m.NOISE_PAYLOAD.encode(SERVER_PAYLOAD))
    assert m.NOISE_PAYLOAD.decode(out["payload"]) == CLIENT_PAYLOAD
    assert client.recv(out["msg2"]) == SERVER_PAYLOAD
    keys = client.final()
    assert keys.is_initiator
    _check(keys, out["keys"])


def test_a_js_client_finishes_with_a_python_server(js: JSHelper) -> None:
    server_kp = key_pair(SERVER_SEED)
    msg1 = js(
        "hyperdhtNoise.clientStart",
        "c1",
        CLIENT_SEED,
        server_kp.public_key,
        m.NOISE_PAYLOAD.encode(CLIENT_PAYLOAD),
    )
    server = NoiseWrap(server_kp)
    assert server.recv(msg1) == CLIENT_PAYLOAD
    assert server.remote_public_key == key_pair(CLIENT_SEED).public_key
    msg2 = server.send(SERVER_PAYLOAD)
    out = js("hyperdhtNoise.clientFinish", "c1", msg2)
    assert m.NOISE_PAYLOAD.decode(out["payload"]) == SERVER_PAYLOAD
    keys = server.final()
    assert not keys.is_initiator
    _check(keys, out["keys"])


def test_a_message_for_another_key_or_damaged_fails(js: JSHelper) -> None:
    msg1 = js(
        "hyperdhtNoise.clientStart",
        "c2",
        CLIENT_SEED,
        key_pair(bytes([9]) * 32).public_key,
        m.NOISE_PAYLOAD.encode(CLIENT_PAYLOAD),
    )
    with pytest.raises(HandshakeInvalidError):
        NoiseWrap(key_pair(SERVER_SEED)).recv(msg1)
    good = NoiseWrap(key_pair(CLIENT_SEED), key_pair(SERVER_SEED).public_key).send(CLIENT_PAYLOAD)
    for damaged in (good[:-1], good[:40], good[:-5] + bytes(5), b""):
        with pytest.raises(HandshakeInvalidError):
            NoiseWrap(key_pair(SERVER_SEED)).recv(damaged)


HOLEPUNCH_PAYLOADS = [
    m.HolepunchPayload(),
    m.HolepunchPayload(
        error=0,
        firewall=FIREWALL.CONSISTENT,
        round=3,
        punching=True,
        addresses=(Address("23.0.0.11", 40000), Address("23.0.0.11", 40001)),
        remote_address=Address("23.0.0.12", 5000),
        token=bytes(range(32)),
        remote_token=bytes(32),
    ),
    m.HolepunchPayload(error=1, firewall=FIREWALL.RANDOM, round=7, connected=True),
]


@pytest.mark.parametrize("payload", HOLEPUNCH_PAYLOADS)
def test_sealed_holepunch_payloads_open_on_the_other_side(
    js: JSHelper, payload: m.HolepunchPayload
) -> None:
    secret = bytes([9]) * 32
    ours = SecurePayload(secret)
    opened = js("hyperdhtNoise.open", secret, ours.encrypt(payload))
    assert opened is not None and m.HOLEPUNCH_PAYLOAD.decode(opened) == payload
    sealed = js("hyperdhtNoise.seal", secret, m.HOLEPUNCH_PAYLOAD.encode(payload))
    assert ours.decrypt(sealed) == payload
    # under another secret, or damaged, neither side opens it
    assert SecurePayload(bytes(32)).decrypt(sealed) is None
    damaged = sealed[:30] + bytes([sealed[30] ^ 1]) + sealed[31:]
    assert ours.decrypt(damaged) is None
    assert js("hyperdhtNoise.open", secret, damaged) is None
    assert js("hyperdhtNoise.open", bytes(32), ours.encrypt(payload)) is None
