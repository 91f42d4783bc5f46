"""Every public error of protomux and protomux-rpc has a ``code`` and descends from
:class:`~protomux.errors.ProtomuxError`; codes that arrive from the wire pick their class."""

from __future__ import annotations

import inspect

import pytest

import protomux
from protomux import errors, rpc
from protomux.errors import (
    RPC_ERRORS,
    ProtomuxError,
    RemoteError,
    RPCError,
    RPCRequestError,
    UnknownMethodError,
    rpc_error,
)

MODULES = [errors, protomux, rpc]


def _exported_errors() -> list[type[BaseException]]:
    found: dict[type[BaseException], None] = {}
    for module in MODULES:
        for name in module.__all__:
            obj = getattr(module, name)
            if inspect.isclass(obj) and issubclass(obj, BaseException):
                found[obj] = None
    return list(found)


@pytest.mark.parametrize("cls", _exported_errors(), ids=lambda cls: cls.__name__)
def test_every_public_error_has_a_code_and_the_root(cls: type[BaseException]) -> None:
    assert issubclass(cls, ProtomuxError)
    assert isinstance(cls.__dict__.get("code", getattr(cls, "code", None)), str)
    assert cls.__name__.endswith("Error")


def test_every_subclass_of_the_root_is_exported() -> None:
    exported = set(_exported_errors())

    def walk(cls: type[BaseException]) -> None:
        for sub in cls.__subclasses__():
            if not sub.__name__.startswith("_") and sub.__module__ == errors.__name__:
                assert sub in exported, sub
            walk(sub)

    walk(ProtomuxError)


def test_one_class_per_rpc_code() -> None:
    assert sorted(RPC_ERRORS) == sorted(
        [
            rpc.CHANNEL_CLOSED,
            rpc.CHANNEL_DESTROYED,
            rpc.DECODE_ERROR,
            rpc.DUPLICATE_CHANNEL,
            rpc.ENCODE_ERROR,
            rpc.REQUEST_ERROR,
            rpc.TIMEOUT_EXCEEDED,
            rpc.UNKNOWN_METHOD,
        ]
    )
    for code, cls in RPC_ERRORS.items():
        assert cls.code == code
        e = cls("boom")
        assert (e.code, e.message, str(e)) == (code, "boom", f"{code}: boom")


def test_codes_from_the_wire_choose_the_class() -> None:
    cause = RemoteError("inner", "EBOOM")
    e = rpc_error("Request failed", "REQUEST_ERROR", cause)
    assert type(e) is RPCRequestError and e.cause is cause and e.__cause__ is cause
    assert type(rpc_error("x", "UNKNOWN_METHOD")) is UnknownMethodError
    other = rpc_error("x", "SOMETHING_ELSE")
    assert type(other) is RPCError and other.code == "SOMETHING_ELSE"
    assert str(other) == "SOMETHING_ELSE: x"
    none = rpc_error("x", None)
    assert type(none) is RPCError and none.code is None and str(none) == "x"


def test_compact_encoding_errors_have_a_code_and_their_root() -> None:
    from protomux import encoding as c
    from protomux.encoding import errors as encoding_errors

    for name in encoding_errors.__all__:
        cls = getattr(encoding_errors, name)
        assert issubclass(cls, c.CompactEncodingError)
        assert issubclass(cls, ValueError)
        assert isinstance(cls.code, str)
        assert getattr(c, name) is cls
    with pytest.raises(c.DecodeError) as e:
        c.decode(c.uint, b"")
    assert e.value.code == "DECODE_ERROR"


def test_a_response_picks_a_class_only_for_the_codes_js_decodes() -> None:
    for code in ("UNKNOWN_METHOD", "REQUEST_ERROR", "DECODE_ERROR", "ENCODE_ERROR"):
        assert type(rpc_error("x", code)) is RPC_ERRORS[code]
    for code in ("TIMEOUT_EXCEEDED", "CHANNEL_CLOSED", "CHANNEL_DESTROYED", "DUPLICATE_CHANNEL"):
        err = rpc_error("x", code)
        assert type(err) is RPCError and err.code == code  # a peer cannot fake a local error
