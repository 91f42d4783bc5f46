from __future__ import annotations

from collections.abc import Iterator

import pytest

from .jsenv import INTEROP_JS, JSHelper, ensure_installed


@pytest.fixture(scope="session")
def js() -> Iterator[JSHelper]:
    """The node helper over the pinned JS packages, installed once per session."""
    ensure_installed(INTEROP_JS)
    helper = JSHelper(INTEROP_JS)
    try:
        yield helper
    finally:
        helper.close()
