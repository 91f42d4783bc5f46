"""protomux-rpc 1.10.0 for Trio: request/response and events over one protomux channel.

>>> async with RPC(stream) as rpc:                        # doctest: +SKIP
...     rpc.respond("echo", lambda value: value)
...     assert await rpc.request("echo", b"hi") == b"hi"

Wire format (channel protocol ``"protomux-rpc"``, id and handshake optional):

- message 0, request: ``uint id`` (0: an event, no reply), ``string method``, raw value;
- message 1, response: a one-byte flags bitfield (bit 0 error, bit 1 the error has a code,
  bit 2 it has a cause, bit 3 the cause has a context), ``uint id``, then the raw value or
  ``string message``, [``string code``], [``string cause.message``, ``string cause.code``
  (maybe empty), [``string cause.context``]].

Values are encoded with the method's request/response encoding, by default
``c.optional_buffer`` (so ``None`` and ``b""`` both travel as ``00`` and arrive as ``None``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Final, TypeVar, overload

import outcome
import trio

from . import encoding as c
from ._channel import Channel, _is_awaitable
from ._frames import uint_bytes
from ._toolkit import AsyncResource, ParkedTask
from .encoding import Codec, DecodeError, State
from .errors import (
    RPC_ERRORS,
    ChannelDestroyedError,
    DuplicateChannelError,
    RemoteError,
    RPCChannelClosedError,
    RPCDecodeError,
    RPCEncodeError,
    RPCError,
    RPCRequestError,
    TimeoutExceededError,
    UnknownMethodError,
    rpc_error,
)
from .mux import MessageStream, Protomux

__all__ = [
    "CHANNEL_CLOSED",
    "CHANNEL_DESTROYED",
    "DECODE_ERROR",
    "DUPLICATE_CHANNEL",
    "ENCODE_ERROR",
    "REQUEST_ERROR",
    "RPC",
    "TIMEOUT_EXCEEDED",
    "UNKNOWN_METHOD",
    "ChannelDestroyedError",
    "DuplicateChannelError",
    "RPCChannelClosedError",
    "RPCDecodeError",
    "RPCEncodeError",
    "RPCError",
    "RPCRequestError",
    "RemoteError",
    "TimeoutExceededError",
    "UnknownMethodError",
]

DEFAULT_PROTOCOL: Final = "protomux-rpc"

DUPLICATE_CHANNEL: Final = "DUPLICATE_CHANNEL"
CHANNEL_CLOSED: Final = "CHANNEL_CLOSED"
CHANNEL_DESTROYED: Final = "CHANNEL_DESTROYED"
REQUEST_ERROR: Final = "REQUEST_ERROR"
TIMEOUT_EXCEEDED: Final = "TIMEOUT_EXCEEDED"
UNKNOWN_METHOD: Final = "UNKNOWN_METHOD"
DECODE_ERROR: Final = "DECODE_ERROR"
ENCODE_ERROR: Final = "ENCODE_ERROR"

#: Requests of the remote whose async responders are still running; further requests are
#: answered with a ``REQUEST_ERROR`` at once (JS has no bound: each would be a task).
MAX_RESPONDING: Final = 1024

H = TypeVar("H", bound=Callable[..., Any])


# --- the two messages -------------------------------------------------------------------------

Request = tuple[int, str, bytes]
Response = tuple[int, "RPCError | None", "bytes | None"]


class _RequestCodec(Codec[Request]):
    __slots__ = ()

    def preencode(self, state: State, m: Request) -> None:
        c.uint.preencode(state, m[0])
        c.string.preencode(state, m[1])
        c.raw.preencode(state, m[2])

    def encode(self, state: State, m: Request) -> None:
        c.uint.encode(state, m[0])
        c.string.encode(state, m[1])
        c.raw.encode(state, m[2])

    def decode(self, state: State) -> Request:
        return (c.uint.decode(state), c.string.decode(state), c.raw.decode(state))


def _cause_of(exc: BaseException) -> tuple[str, str, str | None]:
    """(message, code, context) of a handler's exception, as JS reads them off an Error."""
    if isinstance(exc, RemoteError):
        return exc.message, exc.code or "", exc.context
    message = str(exc) or type(exc).__name__
    code = getattr(exc, "code", None)
    context = getattr(exc, "context", None)
    return (
        message,
        code if isinstance(code, str) else "",
        context if isinstance(context, str) and context else None,
    )


class _ResponseCodec(Codec[Response]):
    __slots__ = ()

    def _fields(self, m: Response) -> list[tuple[Codec[Any], Any]]:
        id, error, value = m
        if error is None:
            return [(c.uint, id), (c.raw, value or b"")]
        flags = 1
        fields: list[tuple[Codec[Any], Any]] = [(c.uint, id), (c.string, error.message)]
        if error.code:
            flags |= 2
            fields.append((c.string, error.code))
        if error.cause is not None:
            message, code, context = _cause_of(error.cause)
            flags |= 4
            fields.append((c.string, message))
            fields.append((c.string, code))
            if context:
                flags |= 8
                fields.append((c.string, context))
        return [(c.uint8, flags), *fields]

    def preencode(self, state: State, m: Response) -> None:
        fields = self._fields(m)
        if m[1] is None:
            state.end += 1
        for codec, value in fields:
            codec.preencode(state, value)

    def encode(self, state: State, m: Response) -> None:
        if m[1] is None:
            state.buffer[state.start] = 0
            state.start += 1
        for codec, value in self._fields(m):
            codec.encode(state, value)

    def decode(self, state: State) -> Response:
        buf = state.buffer
        s = state.start
        if s >= state.end:
            raise DecodeError("out of bounds")
        # compact-encoding-bitfield(1): a 0xfd/0xfe/0xff prefix announces 2/4/8 bytes, of
        # which the first carries the flags.
        b = buf[s]
        n = 1 if b <= 0xFC else 2 if b == 0xFD else 4 if b == 0xFE else 8
        if n > 1:
            s += 1
        if state.end - s < n:
            raise DecodeError("out of bounds")
        flags = buf[s]
        state.start = s + n
        id = c.uint.decode(state)
        if not flags & 1:
            return (id, None, c.raw.decode(state))
        message = c.string.decode(state)
        code = c.string.decode(state) if flags & 2 else None
        cause = None
        if flags & 4:
            cmessage = c.string.decode(state)
            ccode = c.string.decode(state)
            context = c.string.decode(state) if flags & 8 else None
            cause = RemoteError(cmessage, ccode or None, context or None)
        return (id, rpc_error(message, code or None, cause), None)


request_encoding: Final = _RequestCodec()
response_encoding: Final = _ResponseCodec()


def _encode(codec: Codec[Any], value: Any) -> bytes:
    """``c.encode`` with a short cut for the default codec."""
    if codec is c.optional_buffer:
        if value is None:
            return b"\x00"
        if type(value) is bytes:
            return uint_bytes(len(value)) + value
    return c.encode(codec, value)


def _decode(codec: Codec[Any], data: bytes) -> Any:
    """``c.decode`` as JS calls it (trailing bytes allowed), short cut for the default."""
    if codec is c.optional_buffer and data and data[0] <= 0xFC:
        n = data[0]
        if len(data) > n:
            return data[1 : n + 1] if n else None
    return c.decode(codec, data, allow_trailing=True)


# --- waiting for a response -------------------------------------------------------------------


class _Pending(ParkedTask[Any]):
    """One request in flight: the waiting task (parked) and, once known, its outcome."""

    __slots__ = ("encoding", "result")

    def __init__(self, encoding: Codec[Any]) -> None:
        super().__init__()
        self.encoding = encoding
        self.result: outcome.Outcome[Any] | None = None

    def settle(self, result: outcome.Outcome[Any]) -> None:
        if self.result is not None:
            return
        self.result = result
        self.wake(result)

    async def wait(self) -> Any:
        if self.result is not None:
            await trio.lowlevel.checkpoint()
            return self.result.unwrap()
        return await self.park()


class _Responder:
    __slots__ = ("handler", "request_encoding", "response_encoding")

    def __init__(self, handler: Callable[[Any], Any], req: Codec[Any], res: Codec[Any]) -> None:
        self.handler = handler
        self.request_encoding = req
        self.response_encoding = res


# --- RPC --------------------------------------------------------------------------------------


class RPC(AsyncResource):
    """RPC over a protomux channel, wire-compatible with JS ``protomux-rpc`` 1.10.0.

    ``RPC(stream)`` makes its own :class:`~protomux.Protomux` over a message stream (start it
    with ``async with RPC(stream) as rpc:``); ``RPC(mux)`` uses a mux that is running (or
    will run). The channel is ``protocol``/``id`` with an optional ``handshake`` value
    (encoded with ``handshake_encoding``, default ``c.raw``); ``value_encoding`` is the default
    of every method (``c.optional_buffer``). Both sides must create their RPC before the
    other's open arrives, or use ``mux.pair``, as in JS.

    Handlers may be sync or async; async ones run concurrently as tasks of the mux's nursery,
    so many requests can be in flight both ways. A handler's exception travels to the caller
    as ``REQUEST_ERROR`` with the exception as cause; unknown methods give
    ``UNKNOWN_METHOD``. When the channel closes, pending requests fail with
    ``CHANNEL_CLOSED`` (``CHANNEL_DESTROYED`` after :meth:`destroy`/:meth:`aclose`).
    """

    def __init__(
        self,
        stream_or_mux: MessageStream | Protomux,
        *,
        id: bytes | None = None,
        protocol: str = DEFAULT_PROTOCOL,
        handshake: Any = None,
        handshake_encoding: Codec[Any] | None = None,
        value_encoding: Codec[Any] | None = None,
    ) -> None:
        if isinstance(stream_or_mux, Protomux):
            self._mux = stream_or_mux
            self._owns_mux = False
        else:
            self._mux = Protomux(stream_or_mux)
            self._owns_mux = True
        self._default: Codec[Any] = value_encoding or c.optional_buffer
        self._next_id = 1
        self._requests: dict[int, _Pending] = {}
        self._responders: dict[str, _Responder] = {}
        self._responding = 0
        self._ending = False
        self._destroyed = False
        self._error: tuple[str, str] | None = None
        self._methods: dict[str, bytes] = {}
        self._closed_event = trio.Event()
        channel = self._mux.create_channel(
            protocol,
            id,
            handshake=None if handshake is None else handshake_encoding or c.raw,
            on_close=self._on_close,
        )
        if channel is None:
            if self._mux.closed:
                raise RPCChannelClosedError("channel closed")
            raise DuplicateChannelError("duplicate channel")
        self._channel: Channel = channel
        self._request = channel.add_message(request_encoding, self._on_request)
        self._response = channel.add_message(response_encoding, self._on_response)
        self._session = self._mux._session
        channel.open(handshake)

    # --- lifecycle --------------------------------------------------------------------------

    async def _open(self, nursery: trio.Nursery) -> None:
        # The RPC's own tasks run in the mux's nursery; a mux of its own runs in this block.
        if self._owns_mux:
            await self._mux.__aenter__()

    async def _exit(self, exc: BaseException | None) -> None:
        self.destroy()
        if self._owns_mux:
            tb = None if exc is None else exc.__traceback__
            await self._mux.__aexit__(None if exc is None else type(exc), exc, tb)

    async def aclose(self) -> None:
        """Close the channel at once (pending requests fail with ``CHANNEL_DESTROYED``) and,
        if this RPC made its own mux, the mux and stream. Idempotent."""
        self.destroy()
        if self._owns_mux:
            await self._mux.aclose()
        else:
            await trio.lowlevel.checkpoint()

    def destroy(self, error: RPCError | None = None) -> None:
        """Close the channel now; pending requests fail with ``error`` (default
        ``CHANNEL_DESTROYED``)."""
        if self._destroyed:
            return
        self._destroyed = True
        if error is not None:
            self._error = (error.message, error.code or "")
        else:
            self._error = ("channel destroyed", CHANNEL_DESTROYED)
        self._channel.close()

    async def end(self) -> None:
        """Close gracefully: once no request is pending either way, close the channel; wait
        until it is closed."""
        self._ending = True
        self._end_maybe()
        await self._closed_event.wait()

    def _end_maybe(self) -> None:
        if self._ending and self._responding == 0 and not self._requests:
            self._channel.close()

    def _on_close(self, is_remote: bool, channel: Channel) -> None:
        self._ending = True
        message, code = self._error or ("channel closed", CHANNEL_CLOSED)
        requests = list(self._requests.values())
        self._requests.clear()
        self._responders.clear()
        local = RPC_ERRORS.get(code)  # ours (CHANNEL_CLOSED ...) or the one destroy() was given
        for p in requests:
            error = local(message) if local is not None else RPCError(message, code)
            p.settle(outcome.Error(error))
        self._closed_event.set()

    async def wait_opened(self) -> None:
        """Wait until the remote opened the channel (raises if it closed first)."""
        try:
            await self._channel.wait_opened()
        except Exception as e:
            raise RPCChannelClosedError("channel closed", e) from e

    async def wait_closed(self) -> None:
        await self._closed_event.wait()

    @property
    def opened(self) -> bool:
        return self._channel.opened

    @property
    def closed(self) -> bool:
        return self._channel.closed

    @property
    def mux(self) -> Protomux:
        return self._mux

    @property
    def stream(self) -> Any:
        return self._mux.stream

    @property
    def channel(self) -> Channel:
        return self._channel

    @property
    def remote_handshake(self) -> Any:
        """The remote's handshake value (decoded with ``handshake_encoding``), once open."""
        return self._channel.remote_handshake

    def cork(self) -> None:
        self._channel.cork()

    def uncork(self) -> None:
        self._channel.uncork()

    # --- responding -------------------------------------------------------------------------

    @overload
    def respond(
        self,
        method: str,
        handler: None = None,
        *,
        request_encoding: Codec[Any] | None = None,
        response_encoding: Codec[Any] | None = None,
        value_encoding: Codec[Any] | None = None,
    ) -> Callable[[H], H]: ...

    @overload
    def respond(
        self,
        method: str,
        handler: H,
        *,
        request_encoding: Codec[Any] | None = None,
        response_encoding: Codec[Any] | None = None,
        value_encoding: Codec[Any] | None = None,
    ) -> H: ...

    def respond(
        self,
        method: str,
        handler: Callable[..., Any] | None = None,
        *,
        request_encoding: Codec[Any] | None = None,
        response_encoding: Codec[Any] | None = None,
        value_encoding: Codec[Any] | None = None,
    ) -> Any:
        """Answer ``method`` with ``handler(value)`` (sync or async; its return value is the
        response). Without ``handler``, a decorator. Encodings default to ``value_encoding``,
        then to the RPC's default."""
        venc = value_encoding or self._default
        req = request_encoding or venc
        res = response_encoding or venc

        def register(h: Callable[..., Any]) -> Callable[..., Any]:
            self._responders[method] = _Responder(h, req, res)
            return h

        if handler is None:
            return register
        return register(handler)

    def unrespond(self, method: str) -> None:
        self._responders.pop(method, None)

    def _on_request(self, m: Request, channel: Channel) -> None:
        id, method, data = m
        if self._responding >= MAX_RESPONDING:
            # A peer that keeps asking without waiting for the answers: no task or memory
            # per further request, an error answer instead.
            if id:
                self._send_error(id, RPCRequestError("Too many requests in progress"))
            return
        responder = self._responders.get(method)
        if responder is None:
            if id:
                self._send_error(id, UnknownMethodError(f"Unknown method '{method}'"))
            self._end_maybe()
            return
        try:
            value = _decode(responder.request_encoding, data)
        except Exception as e:
            if id:
                self._send_error(id, RPCDecodeError("Could not decode request", e))
            self._end_maybe()
            return
        try:
            result = responder.handler(value)
        except Exception as e:
            self._send_result(id, responder, None, RPCRequestError("Request failed", e))
            return
        if result is not None and _is_awaitable(result):
            self._responding += 1
            self._session.track(channel, self._respond_later(id, responder, result))
        else:
            self._send_result(id, responder, result, None)

    async def _respond_later(self, id: int, responder: _Responder, aw: Awaitable[Any]) -> None:
        try:
            value = await aw
        except Exception as e:
            self._responding -= 1
            self._send_result(id, responder, None, RPCRequestError("Request failed", e))
            return
        except BaseException:
            self._responding -= 1
            raise
        self._responding -= 1
        self._send_result(id, responder, value, None)

    def _send_result(
        self, id: int, responder: _Responder, value: Any, error: RPCError | None
    ) -> None:
        if id:
            if error is None:
                try:
                    data = _encode(responder.response_encoding, value)
                except Exception as e:
                    error = RPCEncodeError("Could not encode response", e)
                else:
                    self._response.send_encoded(b"\x00" + uint_bytes(id) + data)
            if error is not None:
                self._send_error(id, error)
        self._end_maybe()

    def _send_error(self, id: int, error: RPCError) -> None:
        self._response.send((id, error, None))

    # --- requesting -------------------------------------------------------------------------

    def _method(self, method: str) -> bytes:
        b = self._methods.get(method)
        if b is None:
            b = c.encode(c.string, method)
            if len(self._methods) < 1024:
                self._methods[method] = b
        return b

    async def request(
        self,
        method: str,
        value: Any = None,
        *,
        timeout: float | None = None,
        request_encoding: Codec[Any] | None = None,
        response_encoding: Codec[Any] | None = None,
        value_encoding: Codec[Any] | None = None,
    ) -> Any:
        """Call ``method`` on the remote and return its decoded response.

        Raises :class:`RPCError`: the remote's error, ``TIMEOUT_EXCEEDED`` after ``timeout``
        seconds, ``CHANNEL_CLOSED`` if the channel is or becomes closed first. Encoding errors
        of ``value`` (the caller's) raise ``protomux.encoding.EncodeError``.
        """
        if self._channel.closed:
            raise RPCChannelClosedError("channel closed")
        venc = value_encoding or self._default
        data = _encode(request_encoding or venc, value)
        id = self._next_id
        self._next_id = id + 1
        p = _Pending(response_encoding or venc)
        requests = self._requests
        requests[id] = p
        self._request.send_encoded(uint_bytes(id) + self._method(method) + data)
        try:
            if timeout is None:
                return await p.wait()
            with trio.move_on_after(timeout):
                return await p.wait()
            raise TimeoutExceededError(f"timeout of {timeout}s exceeded")
        finally:
            if requests.get(id) is p:
                del requests[id]
                self._end_maybe()

    def event(
        self,
        method: str,
        value: Any = None,
        *,
        request_encoding: Codec[Any] | None = None,
        value_encoding: Codec[Any] | None = None,
    ) -> None:
        """Send ``method`` with ``value`` as an event: the remote runs its handler, no reply."""
        if self._channel.closed:
            raise RPCChannelClosedError("channel closed")
        data = _encode(request_encoding or value_encoding or self._default, value)
        self._request.send_encoded(b"\x00" + self._method(method) + data)

    def _on_response(self, m: Response, channel: Channel) -> None:
        id, error, data = m
        if id == 0:
            return
        p = self._requests.pop(id, None)
        if p is None:
            return
        if error is not None:
            p.settle(outcome.Error(error))
        else:
            try:
                value = _decode(p.encoding, data or b"")
            except Exception as e:
                p.settle(outcome.Error(RPCDecodeError("Could not decode response", e)))
            else:
                p.settle(outcome.Value(value))
        self._end_maybe()
