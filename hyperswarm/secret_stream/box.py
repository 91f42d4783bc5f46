"""Sans-IO libsodium secretstream boxes and the ``u24le`` frame parser.

:class:`PushBox` and :class:`PullBox` are ``crypto_secretstream_xchacha20poly1305`` push and
pull states, as JS ``sodium-secretstream``. A box adds :data:`ABYTES` (17) bytes: one
encrypted tag byte in front, a 16-byte MAC behind. They call libsodium through PyNaCl's cffi
module directly, so that a whole frame (length prefix and box) is written into one buffer and
a frame is opened straight from the receive buffer, without the copies PyNaCl's Python
wrappers make.

:class:`FrameParser` cuts a byte stream into ``u24le length || body`` frames.
"""

from __future__ import annotations

from typing import Any, Final

from nacl import _sodium

from .errors import (
    DecryptionFailedError,
    FrameTooLargeError,
    InvalidHeaderError,
    InvalidMessageError,
)

__all__ = [
    "ABYTES",
    "HEADERBYTES",
    "KEYBYTES",
    "MAX_FRAME",
    "TAG_FINAL",
    "TAG_MESSAGE",
    "FrameParser",
    "PullBox",
    "PushBox",
    "frame",
]

_ffi_any: Any = _sodium.ffi
_lib_any: Any = _sodium.lib

ABYTES: Final[int] = int(_lib_any.crypto_secretstream_xchacha20poly1305_abytes())
HEADERBYTES: Final[int] = int(_lib_any.crypto_secretstream_xchacha20poly1305_headerbytes())
KEYBYTES: Final[int] = int(_lib_any.crypto_secretstream_xchacha20poly1305_keybytes())
TAG_MESSAGE: Final[int] = int(_lib_any.crypto_secretstream_xchacha20poly1305_tag_message())
TAG_FINAL: Final[int] = int(_lib_any.crypto_secretstream_xchacha20poly1305_tag_final())
_STATEBYTES: Final[int] = int(_lib_any.crypto_secretstream_xchacha20poly1305_statebytes())
MAX_FRAME: Final = 0xFFFFFF
"""Largest frame body a ``u24le`` length can describe."""
MAX_MESSAGE: Final = MAX_FRAME - ABYTES
"""Largest plaintext one data frame can carry."""

# A cffi from_buffer() object holds a buffer export of its source until it is released.
# Always release it with `with` right after the call: if one stayed alive in a frame kept by
# a traceback, together with the memoryview it exports, the garbage collector may clear the
# memoryview while the export is still held, and CPython 3.11 then crashes when the
# memoryview is freed.
_push = _lib_any.crypto_secretstream_xchacha20poly1305_push
_pull = _lib_any.crypto_secretstream_xchacha20poly1305_pull
_from_buffer = _ffi_any.from_buffer
_NULL = _ffi_any.NULL

Buffer = bytes | bytearray | memoryview


def frame(body: Buffer) -> bytes:
    """``u24le(len(body)) || body``."""
    n = len(body)
    if n > MAX_FRAME:
        raise ValueError("frame body longer than 2^24 - 1 bytes")
    return n.to_bytes(3, "little") + bytes(body)


# Messages up to this size are boxed into (and opened from) scratch buffers and copied:
# for small messages a copy costs less than lending the caller's buffer to C.
_SMALL: Final = 4096


class PushBox:
    """The sending half of a secretstream; :attr:`header` (24 bytes) starts the peer's pull."""

    __slots__ = ("_scratch", "_state", "header")

    def __init__(self, key: bytes) -> None:
        if len(key) != KEYBYTES:
            raise ValueError("secretstream key must be 32 bytes")
        self._state = _ffi_any.new("unsigned char[]", _STATEBYTES)
        header = _ffi_any.new("unsigned char[]", HEADERBYTES)
        _lib_any.crypto_secretstream_xchacha20poly1305_init_push(self._state, header, bytes(key))
        self.header: bytes = bytes(_ffi_any.buffer(header, HEADERBYTES))
        self._scratch = _ffi_any.new("unsigned char[]", _SMALL + ABYTES)

    def push_frame(
        self, message: Buffer, prefix: bytes = b"", tag: int = TAG_MESSAGE
    ) -> bytes | bytearray:
        """``prefix || u24le(len) || box(message)`` in one new buffer."""
        n = len(message)
        size = n + ABYTES
        if n <= _SMALL:
            scratch = self._scratch
            _push(self._state, scratch, _NULL, bytes(message), n, _NULL, 0, tag)
            head = size.to_bytes(3, "little")
            body: bytes = _ffi_any.buffer(scratch, size)[:]
            return prefix + head + body if prefix else head + body
        if n > MAX_MESSAGE:
            raise ValueError(f"message longer than {MAX_MESSAGE} bytes does not fit one frame")
        start = len(prefix)
        out = bytearray(start + 3 + size)
        if start:
            out[:start] = prefix
        out[start] = size & 255
        out[start + 1] = (size >> 8) & 255
        out[start + 2] = size >> 16
        # Every from_buffer export is released before leaving (see the note at _push).
        with _from_buffer(out) as dst:
            if type(message) is bytes:
                _push(self._state, dst + (start + 3), _NULL, message, n, _NULL, 0, tag)
            else:
                with _from_buffer(message) as src:
                    _push(self._state, dst + (start + 3), _NULL, src, n, _NULL, 0, tag)
        return out

    def push(self, message: Buffer, tag: int = TAG_MESSAGE) -> bytes:
        """The box of ``message`` alone (no frame header)."""
        return bytes(memoryview(self.push_frame(message, tag=tag))[3:])


class PullBox:
    """The receiving half of a secretstream, started from the peer's 24-byte header."""

    __slots__ = ("_out", "_out_size", "_state", "_tag", "last_tag")

    def __init__(self, key: bytes, header: Buffer) -> None:
        if len(key) != KEYBYTES:
            raise ValueError("secretstream key must be 32 bytes")
        if len(header) != HEADERBYTES:
            raise InvalidHeaderError("secretstream header must be 24 bytes")
        self._state = _ffi_any.new("unsigned char[]", _STATEBYTES)
        rc = _lib_any.crypto_secretstream_xchacha20poly1305_init_pull(
            self._state, bytes(header), bytes(key)
        )
        if rc != 0:  # pragma: no cover - libsodium accepts any header
            raise InvalidHeaderError("invalid secretstream header")
        self._tag = _ffi_any.new("unsigned char[1]")
        self._out_size = 65536
        self._out = _ffi_any.new("unsigned char[]", self._out_size)
        self.last_tag = TAG_MESSAGE

    def pull(self, box: Buffer) -> bytes:
        """The plaintext of the next box; a :class:`~.errors.SecretStreamProtocolError` if it
        does not authenticate.

        The tag is kept in :attr:`last_tag` and otherwise ignored, as JS does.
        """
        n = len(box)
        if n < ABYTES:
            raise InvalidMessageError("Invalid message received")
        mlen = n - ABYTES
        if mlen > self._out_size:
            self._out_size = max(mlen, 2 * self._out_size)
            self._out = _ffi_any.new("unsigned char[]", self._out_size)
        if type(box) is bytes or n <= _SMALL:
            rc = _pull(self._state, self._out, _NULL, self._tag, bytes(box), n, _NULL, 0)
        else:
            with _from_buffer(box) as src:
                rc = _pull(self._state, self._out, _NULL, self._tag, src, n, _NULL, 0)
        if rc != 0:
            raise DecryptionFailedError("message did not authenticate")
        self.last_tag = self._tag[0]
        return _ffi_any.buffer(self._out, mlen)[:]  # type: ignore[no-any-return]


class FrameParser:
    """Cuts a byte stream into ``u24le length || body`` frames (sans-IO).

    :meth:`feed` bytes as they arrive; :meth:`next_frame` returns each complete body (as
    ``bytes``, or a read-only ``memoryview`` that stays valid for large ones) or ``None``. A
    length above :attr:`max_frame` raises :class:`~.errors.SecretStreamProtocolError`.
    """

    __slots__ = ("_buf", "_exported", "_off", "_owned", "max_frame")

    def __init__(self, max_frame: int = MAX_FRAME) -> None:
        self.max_frame = max_frame
        self._buf: bytes | bytearray = b""
        self._off = 0
        self._owned = False  # _buf is a bytearray of ours
        self._exported = False  # a view of _buf was handed out

    def feed(self, data: Buffer) -> None:
        if not data:
            return
        buf = self._buf
        off = self._off
        if off == len(buf):
            self._buf = data if type(data) is bytes else bytes(data)
            self._owned = False
        elif self._owned and not self._exported:
            assert isinstance(buf, bytearray)
            if off:
                del buf[:off]
            buf += data
        else:
            # Views of the old buffer may be alive: start a new one with the unread tail.
            new = bytearray(memoryview(buf)[off:])
            new += data
            self._buf = new
            self._owned = True
        self._off = 0
        self._exported = False

    @property
    def buffered(self) -> int:
        """Bytes received and not yet returned as frames."""
        return len(self._buf) - self._off

    def bytes_wanted(self) -> int:
        """How many more bytes complete the next frame (at least 1)."""
        buf, off = self._buf, self._off
        avail = len(buf) - off
        if avail < 3:
            return 3 - avail
        n = buf[off] | buf[off + 1] << 8 | buf[off + 2] << 16
        return max(1, 3 + n - avail)

    def next_frame(self) -> bytes | memoryview | None:
        buf, off = self._buf, self._off
        avail = len(buf) - off
        if avail < 3:
            return None
        n = buf[off] | buf[off + 1] << 8 | buf[off + 2] << 16
        if n > self.max_frame:
            raise FrameTooLargeError(f"frame of {n} bytes exceeds the limit of {self.max_frame}")
        end = off + 3 + n
        if end > len(buf):
            return None
        self._off = end
        if n <= _SMALL + ABYTES:
            return bytes(buf[off + 3 : end])  # a copy is cheaper than a view here
        self._exported = True
        return memoryview(buf)[off + 3 : end].toreadonly()
