"""The package dependency order of ARCHITECTURE.md, checked on the import statements."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
OURS = {"protomux", "hypercore", "corestore", "hyperbee", "hyperswarm"}

# Which of our modules each package may import (a module or any module below it).
ALLOWED = {
    "protomux": {"protomux"},
    "hypercore": {"protomux", "hypercore"},
    "corestore": {"protomux", "hypercore", "corestore"},
    "hyperbee": {"protomux", "hypercore", "hyperbee"},
    "hyperswarm": {"protomux", "hypercore.crypto", "hyperswarm"},
}


def imported_modules(path: Path, package: str) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    rel = path.relative_to(ROOT).with_suffix("").parts
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = ".".join(rel[: len(rel) - node.level])
                module = f"{base}.{node.module}" if node.module else base
            else:
                module = node.module or ""
            # "from hypercore import crypto" is an import of hypercore.crypto.
            found.update(f"{module}.{alias.name}" for alias in node.names)
    return {m for m in found if m.split(".")[0] in OURS}


def allowed(module: str, package: str) -> bool:
    return any(module == a or module.startswith(a + ".") for a in ALLOWED[package])


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_package_imports_follow_the_layering(package: str) -> None:
    directory = ROOT / package
    if not directory.is_dir():
        return
    bad = []
    for path in sorted(directory.rglob("*.py")):
        for module in sorted(imported_modules(path, package)):
            if not allowed(module, package):
                bad.append(f"{path.relative_to(ROOT)} imports {module}")
    assert not bad, "\n".join(bad)


def test_the_check_catches_a_wrong_arrow(tmp_path: Path) -> None:
    path = ROOT / "hypercore" / "crypto.py"
    mods = imported_modules(path, "hypercore")
    assert "protomux.encoding" in mods
    assert any(m.startswith("hypercore.manifest.") for m in mods)
    assert not allowed("hyperswarm.secret_stream", "hypercore")
    assert not allowed("hypercore", "protomux")
    assert not allowed("hypercore.wire", "hyperswarm")


# The sans-IO modules (ARCHITECTURE.md "Sans-IO cores, thin Trio adapters"): plain synchronous
# state machines that take time and randomness as parameters. None of them imports trio; the
# Trio adapters around them (hypercore/replication/stream.py, protomux/mux.py, ...) do.
SANS_IO = sorted(
    [
        *(f"hypercore/replication/{name}.py" for name in ("limits", "requests", "serving")),
        *(f"hypercore/replication/{name}.py" for name in ("source", "peer", "replicator")),
        *(str(p.relative_to(ROOT)) for p in (ROOT / "hypercore" / "merkle").glob("*.py")),
        "hypercore/wire.py",
        "hypercore/bitfield.py",
        "hypercore/remote_bitfield.py",
        "hypercore/flat_tree.py",
        "protomux/_session.py",
        "protomux/_frames.py",
        "hyperswarm/udx/connection.py",
        "hyperswarm/udx/packet.py",
        "hyperswarm/secret_stream/protocol.py",
        "hyperswarm/secret_stream/box.py",
        "hyperswarm/secret_stream/noise.py",
        "hyperswarm/dht_rpc/core.py",
        "hyperswarm/dht_rpc/io.py",
        "hyperswarm/dht_rpc/query.py",
        "hyperswarm/dht_rpc/messages.py",
        "hyperswarm/dht_rpc/table.py",
        "hyperswarm/dht_rpc/nodes.py",
        "hyperswarm/dht_rpc/nat.py",
        "hyperswarm/dht_rpc/timers.py",
        "hyperswarm/dht_rpc/health.py",
        "hyperswarm/dht_rpc/simulation.py",
        "hyperswarm/hyperdht/messages.py",
        "hyperswarm/hyperdht/persistent.py",
        "hyperswarm/hyperdht/router.py",
        "hyperswarm/hyperdht/cache.py",
        "hyperswarm/hyperdht/noise_wrap.py",
        "hyperswarm/hyperdht/addresses.py",
    ]
)


def trio_imports(path: Path) -> list[str]:
    """The imports of trio (or of a module of it) anywhere in ``path``, as written."""
    tree = ast.parse(path.read_text(), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and not node.level:
            names = [node.module or ""]
        else:
            continue
        found += [f"line {node.lineno}: {n}" for n in names if n.split(".")[0] == "trio"]
    return found


@pytest.mark.parametrize("module", SANS_IO)
def test_sans_io_modules_do_not_import_trio(module: str) -> None:
    assert (ROOT / module).is_file(), f"{module} is gone: update SANS_IO"
    assert trio_imports(ROOT / module) == []


def test_the_check_catches_an_import_of_trio(tmp_path: Path) -> None:
    path = tmp_path / "decisions.py"
    path.write_text(
        "from __future__ import annotations\n"
        "import random\n"
        "from typing import TYPE_CHECKING\n"
        "from . import trio_like\n"
        "if TYPE_CHECKING:\n"
        "    import trio.lowlevel as ll\n"
        "def later() -> None:\n"
        "    from trio import sleep\n"
    )
    assert trio_imports(path) == ["line 6: trio.lowlevel", "line 8: trio"]
    adapter = trio_imports(ROOT / "hypercore" / "replication" / "stream.py")
    assert [found.split(": ")[1] for found in adapter] == ["trio"]
