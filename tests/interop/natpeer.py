"""A Python HyperDHT peer for the NAT lab tests, run inside a lab host. It prints one JSON
line per event on stdout and ends when its stdin closes (servers) or when done (clients).

    natpeer.py server BOOTSTRAP SEED_HEX [--no-punch] [--fast] [--relay KEY_HEX]
        {"listening": PUBLIC_KEY_HEX}, then {"connection": REMOTE_KEY_HEX, "hash": HEX}
        for each connection (it echoes what it receives); --fast allows a random punch every
        10 ms instead of every 20 s, so that tests can punch random NATs back to back;
        --relay offers that blind relay to clients
    natpeer.py client BOOTSTRAP PUBLIC_KEY_HEX [--no-lan] [--relay KEY_HEX]
        {"connected": true, "ms": ..., "paths": {...}, "punches": {...}, "hash": HEX} once
        data went both ways, or {"error": CODE}; --relay falls back on that blind relay
    natpeer.py swarm BOOTSTRAP SEED_HEX TOPIC_HEX [--relay KEY_HEX]
        a swarm joining the topic (with that blind relay), saying "hello <key hex>" on each
        connection: {"event": "connection", "remotePublicKey": HEX, "handshakeHash": HEX},
        {"event": "data", "remotePublicKey": HEX, "data": TEXT}; at the end {"paths": {...}}
    natpeer.py relay BOOTSTRAP SEED_HEX
        {"relay": PUBLIC_KEY_HEX}: a blind relay listening on that key; at the end (stdin
        closed) {"stats": {...}}
    natpeer.py nat BOOTSTRAP
        {"firewall": N, "addresses": ["host:port", ...]}: the NAT verdict of a punch socket
    natpeer.py clients BOOTSTRAP PUBLIC_KEY_HEX COUNT
        COUNT connections one after the other, then {"done": COUNT, "fds_before": N,
        "fds_after": N, "sockets": N} (the punch sockets still open)
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

import trio

from hyperswarm.blind_relay import BlindRelayServer
from hyperswarm.hyperdht import HyperDHT
from hyperswarm.hyperdht.errors import HyperDHTError
from hyperswarm.hyperdht.nat import Nat
from hyperswarm.secret_stream import SecretStream
from hyperswarm.swarm import Hyperswarm, PeerInfo

TIMEOUT = 60


def say(**event: Any) -> None:
    print(json.dumps(event), flush=True)


def node(bootstrap: str, **opts: Any) -> HyperDHT:
    return HyperDHT(bootstrap=bootstrap.split(","), host="0.0.0.0", port=0, **opts)


async def until_stdin_closes() -> None:
    stdin = trio.lowlevel.FdStream(os.dup(0))
    async with stdin:
        while await stdin.receive_some(1024):
            pass


async def serve(bootstrap: str, seed: bytes, punch: bool, fast: bool, relay: bytes | None) -> None:
    async def echo(stream: SecretStream) -> None:
        say(connection=stream.remote_public_key.hex(), hash=stream.handshake_hash.hex())
        with trio.move_on_after(TIMEOUT):
            async for message in stream:
                await stream.send(message)

    async with node(bootstrap, **({"random_punch_interval": 10.0} if fast else {})) as dht:
        await dht.fully_bootstrapped()
        server = dht.create_server(on_connection=echo, holepunch=punch, relay_through=relay)
        await server.listen(HyperDHT.key_pair(seed))
        say(listening=server.public_key.hex() if server.public_key else None)
        await until_stdin_closes()
        say(paths=dict(dht.connection_paths), punches=dict(dht.punches))


async def connect_once(
    dht: HyperDHT, key: bytes, lan: bool, relay: bytes | None = None
) -> dict[str, Any]:
    start = trio.current_time()
    try:
        with trio.fail_after(TIMEOUT):
            stream = await dht.connect(key, local_connection=lan, relay_through=relay)
            async with stream:
                await stream.send(b"hello through the NAT")
                echoed = await stream.receive()
    except HyperDHTError as e:
        return {"error": e.code if hasattr(e, "code") else type(e).__name__}
    except trio.TooSlowError:
        return {"error": "TIMEOUT"}
    return {
        "connected": echoed == b"hello through the NAT",
        "ms": round((trio.current_time() - start) * 1000),
        "hash": stream.handshake_hash.hex(),
    }


async def client(bootstrap: str, key: bytes, lan: bool, relay: bytes | None) -> None:
    async with node(bootstrap) as dht:
        await dht.fully_bootstrapped()
        out = await connect_once(dht, key, lan, relay)
        say(**out, paths=dict(dht.connection_paths), punches=dict(dht.punches))


async def clients(bootstrap: str, key: bytes, count: int) -> None:
    async with node(bootstrap) as dht:
        await dht.fully_bootstrapped()
        fds = len(os.listdir("/proc/self/fd"))
        ok = 0
        for _ in range(count):
            out = await connect_once(dht, key, True)
            if out.get("connected"):
                ok += 1
            else:
                say(failed=out)
        with trio.move_on_after(10):
            while dht.open_sockets:
                await trio.sleep(0.05)
        say(
            done=ok,
            fds_before=fds,
            fds_after=len(os.listdir("/proc/self/fd")),
            sockets=dht.open_sockets,
            paths=dict(dht.connection_paths),
        )


async def nat(bootstrap: str) -> None:
    async with node(bootstrap) as dht:
        await dht.fully_bootstrapped()
        number, sock = await dht.open_socket()
        session = dht.session()
        sampler = Nat(dht, session, sock)
        sampler.auto_sample()
        with trio.move_on_after(TIMEOUT):
            await sampler.analyzing.wait()
        say(
            firewall=sampler.firewall,
            addresses=[f"{a.host}:{a.port}" for a in sampler.addresses or []],
        )
        session.destroy()
        await dht.close_socket(number)


async def relay(bootstrap: str, seed: bytes) -> None:
    async with node(bootstrap) as dht, BlindRelayServer(dht.create_raw_stream) as relay:
        await dht.fully_bootstrapped()
        server = dht.create_server(on_connection=relay.serve)
        await server.listen(HyperDHT.key_pair(seed))
        say(relay=server.public_key.hex() if server.public_key else None)
        await until_stdin_closes()
        stats = relay.stats
        say(stats={"matched": stats.pairings_matched, "relayed_packets": stats.relayed_packets})


async def swarm(bootstrap: str, seed: bytes, topic: bytes, relay: bytes | None) -> None:
    async def hello(stream: SecretStream, _info: PeerInfo) -> None:
        remote = stream.remote_public_key.hex()
        say(event="connection", remotePublicKey=remote, handshakeHash=stream.handshake_hash.hex())
        await stream.send(b"hello " + sw.key_pair.public_key.hex().encode())
        with trio.move_on_after(TIMEOUT):
            async for message in stream:
                say(event="data", remotePublicKey=remote, data=message.decode())

    async with (
        node(bootstrap) as dht,
        Hyperswarm(dht=dht, seed=seed, on_connection=hello, relay_through=relay) as sw,
    ):
        await dht.fully_bootstrapped()
        sw.join(topic)
        say(event="ready", publicKey=sw.key_pair.public_key.hex())
        await until_stdin_closes()
        say(paths=dict(dht.connection_paths))


def _relay_key(argv: list[str]) -> bytes | None:
    return bytes.fromhex(argv[argv.index("--relay") + 1]) if "--relay" in argv else None


def main(argv: list[str]) -> None:
    cmd, bootstrap = argv[0], argv[1]
    if cmd == "server":
        punch, fast = "--no-punch" not in argv, "--fast" in argv
        trio.run(serve, bootstrap, bytes.fromhex(argv[2]), punch, fast, _relay_key(argv))
    elif cmd == "client":
        lan = "--no-lan" not in argv
        trio.run(client, bootstrap, bytes.fromhex(argv[2]), lan, _relay_key(argv))
    elif cmd == "swarm":
        trio.run(swarm, bootstrap, bytes.fromhex(argv[2]), bytes.fromhex(argv[3]), _relay_key(argv))
    elif cmd == "relay":
        trio.run(relay, bootstrap, bytes.fromhex(argv[2]))
    elif cmd == "clients":
        trio.run(clients, bootstrap, bytes.fromhex(argv[2]), int(argv[3]))
    elif cmd == "nat":
        trio.run(nat, bootstrap)
    else:
        raise SystemExit(f"unknown command {cmd}")


if __name__ == "__main__":
    main(sys.argv[1:])
