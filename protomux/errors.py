"""The exceptions of protomux and protomux-rpc: one root, one subclass per code.

Every class has a ``code`` class attribute. JS protomux throws plain ``Error`` objects; the
multiplexer's codes name the same situations, so that a caller can tell a peer's misbehaviour
(:class:`MuxProtocolError`, :class:`ChannelDecodeError`) from the normal life of a channel
(:class:`ChannelRejectedError`, :class:`ChannelClosedError`). The RPC errors are those of JS
``protomux-rpc`` (``lib/errors.js``), one subclass per code it uses.

Which side is at fault: :class:`MuxProtocolError` and :class:`ChannelDecodeError` mean the
peer sent garbage (the mux drops that peer, or closes that channel, and goes on);
:class:`ChannelClosedError`, :class:`RPCChannelClosedError`, :class:`DuplicateChannelError`
are raised to a caller who used a channel that is gone or taken. The other RPC errors travel
in responses: the remote's verdict on our request (:class:`UnknownMethodError`,
:class:`RPCRequestError`, ...), or ours on its response (:class:`RPCDecodeError`).
"""

from __future__ import annotations

from typing import Final

__all__ = [
    "RPC_ERRORS",
    "WIRE_CODES",
    "ChannelClosedError",
    "ChannelDecodeError",
    "ChannelDestroyedError",
    "ChannelRejectedError",
    "DuplicateChannelError",
    "MuxError",
    "MuxProtocolError",
    "ProtomuxError",
    "RPCChannelClosedError",
    "RPCDecodeError",
    "RPCEncodeError",
    "RPCError",
    "RPCRequestError",
    "RemoteError",
    "TimeoutExceededError",
    "UnknownMethodError",
    "rpc_error",
]


class ProtomuxError(Exception):
    """Root of the errors of protomux and protomux-rpc; ``code`` is a short upper-case name."""

    code = "PROTOMUX_ERROR"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


# --- the multiplexer --------------------------------------------------------------------------


class MuxError(ProtomuxError):
    """Root of the multiplexer's own errors. One raised by a channel callback drops that peer
    (as the mux does for garbage it reads); the RPC errors are not among them, so a failed
    RPC call inside a callback propagates as any other exception of the callback does."""

    code = "MUX_ERROR"


class MuxProtocolError(MuxError):
    """The peer broke the framing or the channel protocol; the whole connection is closed.

    Malformed frames, an ``open`` with a channel id that is neither the next one nor a free
    one, a ``reject`` for a channel that is not waiting for an answer, an oversize message.
    Raising it from a callback also drops the peer (instead of crashing the mux's nursery).
    """

    code = "PROTOCOL_ERROR"


class ChannelDecodeError(MuxError):
    """The peer's handshake or a message of a channel could not be decoded with its codec.

    Only that channel is closed (a ``close`` is sent); the cause is the codec's error.
    """

    code = "DECODE_ERROR"


class ChannelRejectedError(MuxError):
    """The remote answered our ``open`` with ``reject`` (no channel for that protocol/id)."""

    code = "CHANNEL_REJECTED"


class ChannelClosedError(MuxError):
    """The channel (or the whole mux) closed before the operation could complete."""

    code = "CHANNEL_CLOSED"


# --- protomux-rpc -----------------------------------------------------------------------------


class RemoteError(ProtomuxError):
    """The cause of a remote failure as it came over the wire (the error a handler threw).

    ``code`` and ``context`` are what the peer sent: any string, or ``None`` when it sent
    none (the class attribute ``REMOTE_ERROR`` only names the class).
    """

    code: str | None = "REMOTE_ERROR"  # type: ignore[assignment]  # the peer's, or None

    def __init__(self, message: str, code: str | None = None, context: str | None = None):
        super().__init__(message)
        self.code = code
        self.context = context

    def __repr__(self) -> str:
        return f"RemoteError({self.message!r}, code={self.code!r}, context={self.context!r})"


class RPCError(ProtomuxError):
    """An RPC failure with its protomux-rpc ``code``; root of the RPC errors.

    Each code of JS ``protomux-rpc`` has a subclass with ``code`` as class attribute:
    local ones (:class:`RPCChannelClosedError`, :class:`ChannelDestroyedError`,
    :class:`TimeoutExceededError`, :class:`DuplicateChannelError`, :class:`RPCDecodeError`
    for a response that does not decode) and those the remote answers with
    (:class:`UnknownMethodError`, :class:`RPCRequestError` when the handler raised, with
    ``cause`` a :class:`RemoteError` carrying its message, code and context;
    :class:`RPCDecodeError`, :class:`RPCEncodeError`).

    A response's code comes from the wire and may be anything: decoding picks the subclass
    of a known code (:func:`rpc_error`); any other code, or none, gives a plain
    :class:`RPCError` whose instance ``code`` is the string the peer sent (``None`` if it
    sent none; JS makes a plain ``Error`` of such a response). Only this class takes a
    ``code`` argument; the subclasses take ``(message, cause=None)``.

    ``message`` is the text without the ``CODE: `` prefix that ``str(error)`` (like the JS
    ``error.message``) carries.
    """

    code: str | None = "RPC_ERROR"  # type: ignore[assignment]  # an instance: the peer's code

    def __init__(
        self, message: str, code: str | None = None, cause: BaseException | None = None
    ) -> None:
        super().__init__(f"{code}: {message}" if code else message)
        self.message = message
        self.code = code
        self.cause = cause
        if cause is not None:
            self.__cause__ = cause

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r}, code={self.code!r}, cause={self.cause!r})"


class _CodedRPCError(RPCError):
    """An RPC error whose code is its class's."""

    code: str

    def __init__(self, message: str, cause: BaseException | None = None) -> None:
        super().__init__(message, type(self).code, cause)


class DuplicateChannelError(_CodedRPCError):
    """The mux already has an RPC channel for this protocol and id (the caller's mistake)."""

    code = "DUPLICATE_CHANNEL"


class RPCChannelClosedError(_CodedRPCError):
    """The RPC channel is closed, or closed while the request was pending."""

    code = "CHANNEL_CLOSED"


class ChannelDestroyedError(_CodedRPCError):
    """The RPC was destroyed (``destroy()``/``aclose()``) while the request was pending."""

    code = "CHANNEL_DESTROYED"


class RPCRequestError(_CodedRPCError):
    """The remote's handler raised; ``cause`` is a :class:`RemoteError` with what it raised.

    Also answered when the remote has too many requests in progress."""

    code = "REQUEST_ERROR"


class TimeoutExceededError(_CodedRPCError):
    """No response within the request's ``timeout``."""

    code = "TIMEOUT_EXCEEDED"


class UnknownMethodError(_CodedRPCError):
    """The remote has no responder for the method."""

    code = "UNKNOWN_METHOD"


class RPCDecodeError(_CodedRPCError):
    """A request (remote side) or response (our side) did not decode with its encoding: the
    sender's bytes were garbage for that method."""

    code = "DECODE_ERROR"


class RPCEncodeError(_CodedRPCError):
    """The remote's handler returned a value its response encoding cannot encode."""

    code = "ENCODE_ERROR"


#: The RPC error class of each protomux-rpc code.
RPC_ERRORS: Final[dict[str, type[_CodedRPCError]]] = {
    cls.code: cls
    for cls in (
        DuplicateChannelError,
        RPCChannelClosedError,
        ChannelDestroyedError,
        RPCRequestError,
        TimeoutExceededError,
        UnknownMethodError,
        RPCDecodeError,
        RPCEncodeError,
    )
}


#: The codes a response may carry that pick their class (JS ``protomux-rpc`` decodes only
#: these; the local codes, such as ``TIMEOUT_EXCEEDED``, are never taken from a peer).
WIRE_CODES: Final = frozenset({"UNKNOWN_METHOD", "REQUEST_ERROR", "DECODE_ERROR", "ENCODE_ERROR"})


def rpc_error(message: str, code: str | None, cause: BaseException | None = None) -> RPCError:
    """The error for ``code`` as it arrives from the wire: the subclass of a code JS decodes
    (:data:`WIRE_CODES`), else a plain :class:`RPCError` carrying the code (or ``None``) as
    given."""
    cls = RPC_ERRORS.get(code) if code in WIRE_CODES else None
    if cls is not None:
        return cls(message, cause)
    return RPCError(message, code, cause)
