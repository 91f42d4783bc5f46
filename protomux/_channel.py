"""Channels and their message types (the per-channel half of the sans-IO multiplexer).

A :class:`Channel` belongs to a :class:`~protomux._session.Session`, which owns the id tables
it reads and writes; see that module for the state machine as a whole.
"""

from __future__ import annotations

import inspect
from collections import deque
from collections.abc import Callable, Mapping
from types import CoroutineType
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

from ._frames import encode_close, encode_open, uint_bytes
from .encoding import Codec, State, raw
from .errors import ChannelClosedError, ChannelRejectedError, ProtomuxError

if TYPE_CHECKING:
    from ._session import Session

__all__ = ["Callback", "Channel", "Event", "Message"]

T = TypeVar("T")

Callback = Callable[..., Any]
Key = tuple[str, bytes]


class Event(Protocol):
    def set(self) -> None: ...
    def is_set(self) -> bool: ...
    async def wait(self) -> None: ...


def _is_awaitable(r: object) -> bool:
    return type(r) is CoroutineType or inspect.isawaitable(r)


class _Info:
    """Everything known about one ``(protocol, id)``: counts, pending opens both ways."""

    __slots__ = (
        "aliases",
        "id",
        "incoming",
        "key",
        "last_channel",
        "opened",
        "outgoing",
        "pairing",
        "protocol",
    )

    def __init__(self, key: Key, protocol: str, id: bytes | None) -> None:
        self.key = key
        self.protocol = protocol
        self.id = id
        self.aliases: list[Key] = []
        self.pairing = 0
        self.opened = 0
        self.incoming: deque[int] = deque()  # remote ids waiting for a local channel
        self.outgoing: deque[int] = deque()  # local ids waiting for the remote's open
        self.last_channel: Channel | None = None


class _Remote:
    """A remote channel slot: its handshake until paired, early messages, our channel."""

    __slots__ = ("handshake", "info", "pending", "session")

    def __init__(self, handshake: bytes | None, pending: list[Any] | None, info: _Info) -> None:
        self.handshake = handshake
        self.pending: list[tuple[int, bytes, int, int]] | None = pending
        self.session: Channel | None = None
        self.info = info


class _Group:
    """The work started by one received batch; JS keeps its replies corked until it is done."""

    __slots__ = ("pending", "reading")

    def __init__(self) -> None:
        self.pending = 0
        self.reading = True


class Message(Generic[T]):
    """One message type of a channel (its index in ``channel.messages`` is its wire type)."""

    __slots__ = (
        "_channel",
        "_hdr",
        "_hdr_id",
        "_type_hdr",
        "auto_batch",
        "encoding",
        "on_message",
        "type",
    )

    def __init__(
        self,
        channel: Channel,
        type: int,
        encoding: Codec[T],
        on_message: Callback | None,
        auto_batch: bool,
    ) -> None:
        self._channel = channel
        self.type = type
        self.encoding = encoding
        self.on_message = on_message
        self.auto_batch = auto_batch
        self._type_hdr = uint_bytes(type)
        self._hdr = b""
        self._hdr_id = 0

    def _header(self, local_id: int) -> bytes:
        if self._hdr_id != local_id:
            self._hdr = uint_bytes(local_id) + self._type_hdr
            self._hdr_id = local_id
        return self._hdr

    def send(self, value: T) -> bool:
        """Queue ``value``; False if the channel is closed or the mux is above its high-water
        mark (back-pressure: the frame is queued anyway, ``await mux.drain()`` waits)."""
        ch = self._channel
        if ch.closed:
            return False
        local_id = ch._local_id
        if not local_id:
            raise RuntimeError("call channel.open() before sending messages")
        s = ch._session
        corked = s._batch is not None
        hdr = self._type_hdr if corked else self._header(local_id)
        enc = self.encoding
        n = len(hdr)
        state = State(None, 0, n)
        enc.preencode(state, value)
        buf = bytearray(state.end)
        buf[:n] = hdr
        state.buffer = buf
        state.start = n
        enc.encode(state, value)
        if len(buf) > s._host.max_message_size:
            raise ValueError(f"message of {len(buf)} bytes is over the mux's max_message_size")
        if corked:
            s._push_batch(local_id, bytes(buf))
            return True
        s.drained = d = s._host.write(bytes(buf))
        return d

    async def send_async(self, value: T) -> None:
        """Send ``value`` and, if the mux is above its high-water mark, wait until it has
        drained. Raises :class:`~protomux.ChannelClosedError` if the channel is closed."""
        ch = self._channel
        if ch.closed:
            raise ChannelClosedError(f"channel {ch.protocol!r} is closed")
        self.send(value)
        await ch._session._host.drain()

    def send_encoded(self, payload: bytes) -> bool:
        """Like :meth:`send` with the payload already encoded with this message's codec."""
        ch = self._channel
        if ch.closed:
            return False
        local_id = ch._local_id
        if not local_id:
            raise RuntimeError("call channel.open() before sending messages")
        s = ch._session
        if len(payload) + 2 > s._host.max_message_size:
            raise ValueError(f"message of {len(payload)} bytes is over the mux's max_message_size")
        if s._batch is not None:
            s._push_batch(local_id, self._type_hdr + payload)
            return True
        s.drained = d = s._host.write(self._header(local_id) + payload)
        return d


class _SkippedMessage(Message[bytes]):
    """A placeholder type (``None`` in ``messages``): incoming ones are ignored, sends too."""

    __slots__ = ()

    def send(self, value: bytes) -> bool:
        return False

    def send_encoded(self, payload: bytes) -> bool:
        return False


class Channel:
    """A protomux channel; made by ``mux.create_channel`` (see :class:`protomux.Protomux`)."""

    __slots__ = (
        "__weakref__",
        "_active",
        "_cbq",
        "_closed_event",
        "_handshake",
        "_info",
        "_local_id",
        "_on_close",
        "_on_destroy",
        "_on_drain",
        "_on_open",
        "_open_event",
        "_remote_id",
        "_session",
        "aliases",
        "closed",
        "destroyed",
        "error",
        "id",
        "messages",
        "opened",
        "protocol",
        "remote_handshake",
        "user_data",
    )

    def __init__(
        self,
        session: Session,
        info: _Info,
        protocol: str,
        id: bytes | None,
        aliases: tuple[str, ...],
        handshake: Codec[Any] | None,
        user_data: Any,
        on_open: Callback | None,
        on_close: Callback | None,
        on_destroy: Callback | None,
        on_drain: Callback | None,
    ) -> None:
        self._session = session
        self._info = info
        self.protocol = protocol
        self.id = id
        self.aliases = aliases
        self._handshake = handshake
        self.user_data = user_data
        self._on_open = on_open
        self._on_close = on_close
        self._on_destroy = on_destroy
        self._on_drain = on_drain
        self.messages: list[Message[Any]] = []
        #: The remote's handshake value, decoded with the ``handshake`` codec, once opened.
        self.remote_handshake: Any = None
        self.opened = False
        self.closed = False
        #: Closed and every callback of the channel has returned.
        self.destroyed = False
        #: Why the channel closed, when it was not a plain close (rejected, decode error,
        #: the mux failing); ``None`` otherwise.
        self.error: BaseException | None = None
        self._local_id = 0
        self._remote_id = 0
        self._active = 0
        self._cbq: deque[tuple[Callback, tuple[Any, ...], _Group | None]] | None = None
        self._open_event: Event | None = None
        self._closed_event: Event | None = None

    def __repr__(self) -> str:
        state = "closed" if self.closed else "opened" if self.opened else "opening"
        id = self.id.hex() if self.id else None
        return f"<Channel {self.protocol!r} id={id} {state} local={self._local_id}>"

    @property
    def mux(self) -> Any:
        """The :class:`protomux.Protomux` this channel belongs to."""
        return self._session._host

    @property
    def local_id(self) -> int:
        """Our id of the channel on the wire (0 before ``open()`` and after close)."""
        return self._local_id

    @property
    def remote_id(self) -> int:
        """The remote's id of the channel (0 until it opened it, and after close)."""
        return self._remote_id

    @property
    def drained(self) -> bool:
        return self._session.drained

    def add_message(
        self,
        encoding: Codec[T] | None = None,
        on_message: Callback | None = None,
        *,
        auto_batch: bool = True,
    ) -> Message[T]:
        """Add the next message type (wire type = its index). ``encoding`` defaults to
        ``c.raw``; ``on_message(value, channel)`` may be sync or async. ``auto_batch``: when
        it arrives in a batch, our replies stay corked until this callback has finished."""
        m: Message[Any] = Message(self, len(self.messages), encoding or raw, on_message, auto_batch)
        self.messages.append(m)
        return m

    def _add_spec(self, spec: Mapping[str, Any] | None) -> None:
        if spec is None:
            self.messages.append(_SkippedMessage(self, len(self.messages), raw, None, False))
            return
        unknown = set(spec) - {"encoding", "on_message", "auto_batch"}
        if unknown:
            raise TypeError(f"unknown message options: {sorted(unknown)}")
        self.add_message(
            spec.get("encoding"), spec.get("on_message"), auto_batch=spec.get("auto_batch", True)
        )

    def open(self, handshake: Any = None) -> None:
        """Send ``open`` (with ``handshake`` encoded by the channel's handshake codec).

        The channel is opened when the remote opens the same protocol/id (it may have done so
        already: then ``on_open`` runs right after this call returns). Does nothing on a
        closed channel.
        """
        if self.closed:
            return
        if self._local_id:
            raise RuntimeError("open() was already called on this channel")
        if self._handshake is None and handshake is not None:
            raise ValueError("this channel has no handshake codec")
        s = self._session
        free = s._free
        local = s._local
        index = free[-1] if free else len(local)
        frame = encode_open(index + 1, self.protocol, self.id, self._handshake, handshake)
        if free:
            free.pop()
        else:
            local.append(None)
        info = self._info
        if s._infos.get(info.key) is not info:
            # The entry was dropped (e.g. a remote open of the same protocol was refused while
            # this channel waited to be opened): take the current one. JS keeps using the
            # dropped entry and later fails on the answer to this open.
            self._info = info = s._get(self.protocol, self.id, self.aliases)
        info.opened += 1
        info.last_channel = self
        self._local_id = index + 1
        local[index] = self
        if self._remote_id == 0:
            info.outgoing.append(self._local_id)
        s._write0(frame)
        if self._remote_id:
            s._host.spawn(s._fully_open_soon, self)

    def close(self) -> None:
        """Close the channel (sends ``close``, or ``reject`` if we never answered its open)."""
        self._close_local(None)

    def _close_local(self, error: BaseException | None) -> None:
        if self.closed:
            return
        s = self._session
        if self._local_id:
            frame = encode_close(self._local_id)
            self._close(False, error)
            s._write0(frame)
        elif self._remote_id:
            remote_id = self._remote_id
            self._close(False, error)
            s._reject_session(remote_id)
        else:
            self._close(False, error)

    def cork(self) -> None:
        self._session.cork()

    def uncork(self) -> None:
        self._session.uncork()

    async def wait_opened(self) -> None:
        """Wait until the channel is open; raise :class:`ChannelRejectedError` if the remote
        refused it, :class:`ChannelClosedError` if it closed first (cause: ``error``)."""
        if not self.opened and not self.closed:
            if self._open_event is None:
                self._open_event = self._session._host.new_event()
            await self._open_event.wait()
        if not self.opened:
            raise self._not_opened_error()

    async def wait_closed(self) -> None:
        """Wait until the channel is closed and all its callbacks have returned."""
        if not self.destroyed:
            if self._closed_event is None:
                self._closed_event = self._session._host.new_event()
            await self._closed_event.wait()

    def _not_opened_error(self) -> ProtomuxError:
        err = self.error
        what = f"channel {self.protocol!r}"
        if isinstance(err, ChannelRejectedError):
            return ChannelRejectedError(f"{what} was rejected by the remote")
        e = ChannelClosedError(f"{what} closed before it opened" + (f": {err}" if err else ""))
        e.__cause__ = err
        return e

    def _close(self, is_remote: bool, error: BaseException | None) -> None:
        if self.closed:
            return
        self.closed = True
        if error is not None and self.error is None:
            self.error = error
        s = self._session
        info = self._info
        local_id = self._local_id
        remote_id = self._remote_id
        if local_id:
            info.opened -= 1
            if info.last_channel is self:
                info.last_channel = None
            s._local[local_id - 1] = None
            # The id is reusable at once only if the remote has answered our open.
            if remote_id:
                s._free.append(local_id - 1)
        if remote_id:
            r = s._remote[remote_id - 1]
            if r is not None:
                s._drop_pending(r)
                s._remote[remote_id - 1] = None
            self._remote_id = 0
        self._local_id = 0
        s._channels.pop(self, None)
        s._gc(info)
        if self._on_close is not None:
            s._invoke(self, self._on_close, (is_remote, self), None)
        if self._active == 0:
            s._destroy_channel(self)
        if self._open_event is not None:
            self._open_event.set()
