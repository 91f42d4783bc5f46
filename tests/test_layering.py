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
    assert not allowed("hypercore.messages", "hyperswarm")
