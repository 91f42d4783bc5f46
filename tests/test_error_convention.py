"""The error convention of ARCHITECTURE.md, checked across every package: each package's
errors are written as classes in its ``errors`` module (so mypy sees them), under one root,
with CapWords names ending in ``Error`` and a ``code``; no exception class is made anywhere
with ``type()``."""

from __future__ import annotations

import ast
import importlib
import inspect
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("protomux", "hypercore", "corestore", "hyperbee", "hyperswarm")

# errors module -> its root exception
ROOTS = {
    "protomux.errors": "ProtomuxError",
    "protomux.encoding.errors": "CompactEncodingError",
    "hypercore.errors": "HypercoreError",
    "hypercore.storage.errors": "StorageError",
    "corestore.errors": "CorestoreError",
    "hyperbee.errors": "HyperbeeError",
    "hyperswarm.secret_stream.errors": "SecretStreamError",
    "hyperswarm.udx.errors": "UDXError",
    "hyperswarm.dht_rpc.errors": "DHTError",
    "hyperswarm.hyperdht.errors": "HyperDHTError",
    "hyperswarm.swarm.errors": "SwarmError",
    "hyperswarm.blind_relay.errors": "BlindRelayError",
}


def test_every_errors_module_is_listed() -> None:
    found = {
        ".".join(p.relative_to(ROOT).with_suffix("").parts)
        for package in PACKAGES
        for p in (ROOT / package).rglob("errors.py")
    }
    assert found == set(ROOTS)


@pytest.mark.parametrize("module_name", sorted(ROOTS))
def test_errors_have_a_code_and_the_package_root(module_name: str) -> None:
    module = importlib.import_module(module_name)
    root = getattr(module, ROOTS[module_name])
    classes = [
        obj
        for name in module.__all__
        if inspect.isclass(obj := getattr(module, name)) and issubclass(obj, BaseException)
    ]
    assert root in classes
    for cls in classes:
        assert issubclass(cls, root), cls
        assert cls.__name__.endswith("Error"), cls
        assert cls.__name__[0].isupper() and "_" not in cls.__name__, cls
        assert isinstance(cls.__dict__.get("code", cls.code), str), cls
        # Written in this module (a class statement mypy reads), not made or re-exported.
        assert cls.__module__ == module.__name__, cls


def _type_calls(path: Path) -> list[int]:
    tree = ast.parse(path.read_text(), filename=str(path))
    return [
        node.lineno
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id == "type"
        and len(node.args) == 3
    ]


def test_no_class_is_made_with_type() -> None:
    bad = [
        f"{path.relative_to(ROOT)}:{line}"
        for package in PACKAGES
        for path in sorted((ROOT / package).rglob("*.py"))
        for line in _type_calls(path)
    ]
    assert not bad, bad


def test_the_type_check_catches_one(tmp_path: Path) -> None:
    path = tmp_path / "made.py"
    path.write_text('BadError = type("BadError", (Exception,), {})\nx = type(3)\n')
    assert _type_calls(path) == [1]
