"""Every public error of secret-stream and UDX has a ``code`` class attribute and descends
from its package's root."""

from __future__ import annotations

import inspect
from types import ModuleType

import pytest
import trio

from hyperswarm import secret_stream, udx
from hyperswarm.secret_stream import errors as ss_errors
from hyperswarm.secret_stream.errors import SecretStreamError, SecretStreamProtocolError
from hyperswarm.udx import errors as udx_errors
from hyperswarm.udx.errors import UDXError

PACKAGES: list[tuple[list[ModuleType], type[BaseException]]] = [
    ([ss_errors, secret_stream], SecretStreamError),
    ([udx_errors, udx], UDXError),
]


def _exported(modules: list[ModuleType]) -> list[type[BaseException]]:
    found: dict[type[BaseException], None] = {}
    for module in modules:
        for name in module.__all__:
            obj = getattr(module, name)
            if inspect.isclass(obj) and issubclass(obj, BaseException):
                found[obj] = None
    return list(found)


CASES = [(cls, root) for modules, root in PACKAGES for cls in _exported(modules)]


@pytest.mark.parametrize(("cls", "root"), CASES, ids=lambda x: getattr(x, "__name__", ""))
def test_every_public_error_has_a_code_and_the_root(
    cls: type[BaseException], root: type[BaseException]
) -> None:
    assert issubclass(cls, root)
    assert isinstance(getattr(cls, "code", None), str)
    assert cls.__name__.endswith("Error")


@pytest.mark.parametrize(("modules", "root"), PACKAGES)
def test_every_subclass_of_a_root_is_exported(
    modules: list[ModuleType], root: type[BaseException]
) -> None:
    exported = set(_exported(modules))

    def walk(cls: type[BaseException]) -> None:
        for sub in cls.__subclasses__():
            if sub.__module__ == modules[0].__name__:
                assert sub in exported, sub
            walk(sub)

    walk(root)


def test_codes_are_distinct_within_a_package() -> None:
    for modules, _root in PACKAGES:
        classes = _exported(modules)
        codes = [cls.code for cls in classes]
        assert len(codes) == len(set(codes)), codes


def test_secret_stream_errors_are_broken_resources_and_garbage_is_a_value_error() -> None:
    assert issubclass(SecretStreamError, trio.BrokenResourceError)
    assert issubclass(SecretStreamProtocolError, ValueError)
    err = ss_errors.DecryptionFailedError("bad")
    again = err.copy()
    assert type(again) is type(err) and str(again) == "bad" and again.code == "DECRYPTION_FAILED"


def test_udx_codes_are_those_of_udx_native() -> None:
    assert udx_errors.UDXResetError.code == "ECONNRESET"
    assert udx_errors.UDXTimeoutError.code == "ETIMEDOUT"
    assert issubclass(udx_errors.UDXDecodeError, ValueError)
