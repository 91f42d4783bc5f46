"""Derive the identity of a hypercore from a seed, as JS hypercore 11 would.

    python examples/keys.py [hex-seed]

Prints the key pair, the core key (the hash of the default single-signer manifest), the
discovery key peers announce, and the encoded manifest.
"""

from __future__ import annotations

import sys

from hypercore import crypto
from hypercore.manifest import encode_manifest


def main(argv: list[str]) -> None:
    seed = bytes.fromhex(argv[1]) if len(argv) > 1 else crypto.random_bytes(32)
    kp = crypto.key_pair(seed)
    manifest = crypto.default_signer_manifest(kp.public_key)
    key = crypto.core_key(manifest)
    print("public key    ", kp.public_key.hex())
    print("core key      ", key.hex())
    print("compat key    ", crypto.core_key(kp.public_key, compat=True).hex())
    print("discovery key ", crypto.discovery_key(key).hex())
    print("manifest      ", encode_manifest(manifest).hex())


if __name__ == "__main__":
    main(sys.argv)
