"""The protomux session table and channel state machine, sans-IO.

:class:`Session` takes whole frames in (:meth:`Session.receive`) and hands frames out through
its host (``host.write``); it keeps the local and remote channel ids, the free list, the
pairing of opens, the buffering of early messages and corking, as protomux 3.12.1 does. It
never touches a stream and imports no event loop: the host (the Trio adapter in
:mod:`protomux.mux`, or a test double) runs the async callbacks. A batch is read lazily, one
entry at a time as it is dispatched; a host with an event loop feeds frames with
:meth:`Session.receive_part` and lets the loop run between the steps of a long batch
(:meth:`Session.continue_batch`, :data:`BATCH_STEP` entries each).

Callbacks (``on_open``, ``on_message``, ``on_close``, ``on_destroy``, ``on_drain``) may be
plain functions or ``async`` functions. Per channel they run one at a time, in the order of
the events: a plain callback runs at once unless an async callback of the same channel is
still running, in which case it waits its turn behind it.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Awaitable, Callable, Generator, Iterable, Iterator, Mapping
from inspect import GEN_RUNNING, getgeneratorstate
from typing import Any, Protocol

from ._channel import (
    Callback,
    Channel,
    Event,
    Key,
    _Group,
    _Info,
    _is_awaitable,
    _Remote,
)
from ._frames import (
    BATCH,
    BatchBuilder,
    CloseFrame,
    ControlFrame,
    OpenFrame,
    RejectFrame,
    batch_entries,
    decode_control,
    encode_reject,
)
from .encoding import Codec, DecodeError, State, uint
from .errors import ChannelDecodeError, ChannelRejectedError, MuxError, MuxProtocolError

__all__ = ["BATCH_STEP", "MAX_BUFFERED", "Host", "Session"]

#: Early messages (for a channel the remote opened and we have not paired yet) are buffered;
#: above this many bytes (each message counted as 512 + its size) reading pauses.
MAX_BUFFERED = 32768
#: Messages waiting for an async callback of their channel to finish, over all channels;
#: above this many, reading pauses until they are handled (back-pressure on the peer). (A
#: callback that awaits more input of its own stream while this many wait would wait for
#: good: such protocols answer in background work, ``track``, which is not counted here.)
MAX_PENDING_WORK = 1024
#: The entries of a received batch are dispatched at most this many at a time: then
#: :meth:`Session.receive_part` / :meth:`Session.continue_batch` return and the host lets its
#: event loop run before it goes on. A batch may hold millions of tiny entries (an 8 MiB one
#: of 3-byte messages holds 2.8 million), which handled in one go would freeze every other
#: connection for seconds.
BATCH_STEP = 256

_Work = Generator[None, None, None]


class Host(Protocol):
    """What a :class:`Session` needs from its runtime."""

    #: Sending a larger message raises ValueError.
    max_message_size: int

    def write(self, frame: bytes) -> bool:
        """Queue one frame for the stream; False once the queue is above its high-water mark."""
        ...

    def spawn(self, fn: Callable[..., Awaitable[object]], *args: Any) -> None:
        """Run ``fn(*args)`` in the background."""
        ...

    def new_event(self) -> Event: ...

    def resume(self) -> None:
        """Reading was paused (``session.paused``) and may go on."""
        ...

    async def drain(self) -> None:
        """Wait until the queue is back under its high-water mark (checkpoints always)."""
        ...

    def fail(self, error: MuxError) -> None:
        """A background callback raised a MuxError: drop the peer with it."""
        ...


def _key(protocol: str, id: bytes | None) -> Key:
    return (protocol, id or b"")


def _malformed(e: DecodeError) -> MuxProtocolError:
    return MuxProtocolError(f"malformed frame: {e}")


class Session:
    """The sans-IO multiplexer: one per stream. See the module docstring."""

    def __init__(self, host: Host) -> None:
        self._host = host
        self._local: list[Channel | None] = []
        self._free: list[int] = []
        self._remote: list[_Remote | None] = []
        self._infos: dict[Key, _Info] = {}
        self._notify: dict[Key, Callback] = {}
        self._channels: dict[Channel, None] = {}  # created and not closed, in order
        self._batch: BatchBuilder | None = None
        self._group: _Group | None = None
        self._work: _Work | None = None  # the batch being handled, suspended between steps
        self._work_group: _Group | None = None  # its innermost group while it is suspended
        self._buffered = 0
        self._pending_work = 0
        #: How many more batch entries are dispatched before the batch being handled is
        #: suspended; the host sets it back to :data:`BATCH_STEP` after it let others run.
        #: It is spent (0 or less) while a batch is suspended and when reading gets paused.
        self.budget = BATCH_STEP
        self.corked = 0
        self.drained = True
        self.paused = False
        self.destroyed = False
        self.error: BaseException | None = None

    # --- the public table API ---------------------------------------------------------------

    def __iter__(self) -> Iterator[Channel]:
        return (ch for ch in self._local if ch is not None)

    def is_idle(self) -> bool:
        return len(self._local) == len(self._free)

    def opened(self, protocol: str, id: bytes | None = None) -> bool:
        info = self._infos.get(_key(protocol, id))
        return info is not None and info.opened > 0

    def get_last_channel(self, protocol: str, id: bytes | None = None) -> Channel | None:
        info = self._infos.get(_key(protocol, id))
        return info.last_channel if info is not None else None

    def pair(self, protocol: str, id: bytes | None, notify: Callback) -> None:
        self._notify[_key(protocol, id)] = notify

    def unpair(self, protocol: str, id: bytes | None = None) -> None:
        self._notify.pop(_key(protocol, id), None)

    def create_channel(
        self,
        protocol: str,
        id: bytes | None = None,
        *,
        handshake: Codec[Any] | None = None,
        unique: bool = True,
        aliases: Iterable[str] = (),
        user_data: Any = None,
        messages: Iterable[Mapping[str, Any] | None] = (),
        on_open: Callback | None = None,
        on_close: Callback | None = None,
        on_destroy: Callback | None = None,
        on_drain: Callback | None = None,
    ) -> Channel | None:
        if not isinstance(protocol, str):
            raise TypeError("protocol must be a str")
        if id is not None:
            id = bytes(id) or None
        if self.destroyed:
            return None
        aliases = tuple(aliases)
        info = self._get(protocol, id, aliases)
        if unique and info.opened > 0:
            return None
        ch = Channel(
            self,
            info,
            protocol,
            id,
            aliases,
            handshake,
            user_data,
            on_open,
            on_close,
            on_destroy,
            on_drain,
        )
        for spec in messages:
            ch._add_spec(spec)
        if info.incoming:
            remote_id = info.incoming.popleft()
            r = self._remote[remote_id - 1]
            if r is None:
                return None
            ch._remote_id = remote_id
            r.session = ch
        self._channels[ch] = None
        return ch

    # --- corking ----------------------------------------------------------------------------

    def cork(self) -> None:
        self.corked += 1
        if self.corked == 1:
            self._batch = BatchBuilder()

    def uncork(self) -> None:
        if self.corked == 0:
            if self.destroyed:  # shutdown dropped the batch and the cork count
                return
            raise RuntimeError("uncork() without cork()")
        self.corked -= 1
        if self.corked == 0:
            batch = self._batch
            self._batch = None
            frame = batch.build() if batch is not None else None
            if frame is not None and not self.destroyed:
                self.drained = self._host.write(frame)

    def _push_batch(self, channel: int, entry: bytes) -> None:
        assert self._batch is not None
        out = self._batch.push(channel, entry)
        if out is not None:
            self.drained = self._host.write(out)

    def _write0(self, frame: bytes) -> None:
        if self.destroyed:
            return
        if self._batch is not None:
            self._push_batch(0, frame[1:])
        else:
            self.drained = self._host.write(frame)

    # --- receiving --------------------------------------------------------------------------

    def receive(self, data: bytes) -> None:
        """Handle one whole frame (a host that lets others run during a long batch uses
        :meth:`receive_part` instead). Raises :class:`MuxProtocolError` when the peer broke the
        protocol (the caller must then close the connection); exceptions of callbacks pass
        through."""
        done = self.receive_part(data)
        while not done:
            self.budget = BATCH_STEP
            done = self.continue_batch()

    @property
    def busy(self) -> bool:
        """A batch is being handled: :meth:`continue_batch` goes on with it."""
        return self._work is not None

    def receive_part(self, data: bytes) -> bool:
        """Handle one frame, or as many entries of a batch as :attr:`budget` allows. True when
        the frame is handled; False when the rest of the batch waits for
        :meth:`continue_batch` (no other frame may be received before it returns True). Errors
        as :meth:`receive`; the entries before a malformed one are handled, as in JS."""
        if self._work is not None:
            raise RuntimeError("a batch is still being handled: call continue_batch() first")
        if not data or self.destroyed:
            return True
        if type(data) is not bytes:
            data = bytes(data)
        n = len(data)
        if n > 1 and 0 < data[0] <= 0xFC and data[1] <= 0xFC:
            # The common case: a message on a channel with a small id and type.
            self._on_message(data[0], data[1], State(data, 2, n))
            return True
        state = State(data, 0, n)
        try:
            channel = uint.decode(state)
            typ = uint.decode(state)
            frame = None if channel or typ == BATCH else decode_control(typ, state, 0)
        except DecodeError as e:
            raise _malformed(e) from e
        if frame is not None:
            self._on_control(frame)
        elif channel:
            self._on_message(channel, typ, state)
        else:
            self._work = self._read_batch(state, 0)
            self._work_group = None
            return self.continue_batch()
        return True

    def continue_batch(self) -> bool:
        """Dispatch the next entries of the batch being handled (up to :attr:`budget`); True
        once it is handled. Errors as :meth:`receive`."""
        work = self._work
        if work is None:
            return True
        outer = self._group
        self._group = self._work_group
        try:
            next(work)
        except StopIteration:
            self._work = None
            return True
        except BaseException:
            self._work = None
            raise
        finally:
            self._work_group = self._group
            self._group = outer
        return False

    def _on_message(self, channel: int, typ: int, state: State) -> None:
        remote = self._remote
        r = remote[channel - 1] if channel <= len(remote) else None
        if r is None:
            return  # closed or never opened: a late message, ignored as JS does
        if r.pending is not None:
            # A copy: the message may be a few bytes of a batch of megabytes, which a view
            # would keep alive for as long as the channel waits.
            payload = state.buffer[state.start : state.end]
            r.pending.append((typ, payload, 0, len(payload)))
            self._buffered += 512 + len(payload)
            self._pause_maybe()
            return
        ch = r.session
        if ch is not None:
            self._recv(ch, typ, state)

    def _recv(self, ch: Channel, typ: int, state: State) -> None:
        messages = ch.messages
        if typ >= len(messages):
            return  # unknown message types are ignored
        m = messages[typ]
        try:
            value = m.encoding.decode(state)
        except Exception as e:  # the peer's bytes do not fit the codec
            err = ChannelDecodeError(
                f"could not decode message {typ} of channel {ch.protocol!r}: {e}"
            )
            err.__cause__ = e
            ch._close_local(err)
            return
        if m.on_message is not None:
            self._invoke(ch, m.on_message, (value, ch), self._group if m.auto_batch else None)

    def _on_control(self, frame: ControlFrame) -> None:
        t = type(frame)
        if t is OpenFrame:
            self._on_open(frame)  # type: ignore[arg-type]
        elif t is CloseFrame:
            self._on_close(frame)  # type: ignore[arg-type]
        elif t is RejectFrame:
            self._on_reject(frame)  # type: ignore[arg-type]
        # other control types are ignored (batches are read by _read_batch)

    def _read_batch(self, state: State, depth: int) -> _Work:
        """Dispatch the entries of the batch in ``state`` in order, each one read only when
        its turn comes; suspends (yields) whenever :attr:`budget` is spent, to be resumed
        by :meth:`continue_batch`. Nested batches are read the same way, in place."""
        end = state.end
        entries = batch_entries(state, depth)
        group = prev = None
        try:
            while not self.destroyed:
                if self.budget <= 0:
                    yield
                    if self.destroyed:
                        break
                try:
                    entry = next(entries, None)
                except DecodeError as e:
                    raise _malformed(e) from e
                if entry is None:
                    break
                self.budget -= 1
                if group is None and state.end != end:
                    # More follows the entry: reply to a batch with a batch, staying corked
                    # until what the batch started is done.
                    self.cork()
                    group = _Group()
                    prev = self._group
                    self._group = group
                channel, typ = entry
                if channel:
                    self._on_message(channel, typ, state)
                elif typ == BATCH:
                    yield from self._read_batch(state, depth + 1)
                else:
                    try:
                        frame = decode_control(typ, state, depth + 1)
                    except DecodeError as e:
                        raise _malformed(e) from e
                    self._on_control(frame)
        finally:
            if group is not None:
                self._group = prev
                group.reading = False
                if group.pending == 0:
                    self._uncork_group()

    def _uncork_group(self) -> None:
        if not self.destroyed and self.corked:
            self.uncork()

    def _group_done(self, group: _Group | None) -> None:
        if group is not None:
            group.pending -= 1
            if group.pending == 0 and not group.reading:
                self._uncork_group()

    def _on_open(self, frame: OpenFrame) -> None:
        remote_id = frame.remote_id
        if remote_id == 0:
            # The control session cannot be opened: refuse it, as JS does.
            self._write0(encode_reject(0))
            return
        rid = remote_id - 1
        remote = self._remote
        if len(remote) == rid:
            remote.append(None)  # the remote may grow its ids by one
        if rid >= len(remote) or remote[rid] is not None:
            raise MuxProtocolError(
                f"invalid open message: remote channel id {remote_id} is "
                + ("in use" if rid < len(remote) else f"beyond the next one ({len(remote) + 1})")
            )
        info = self._get(frame.protocol, frame.id)
        if info.outgoing:
            local_id = info.outgoing.popleft()
            ch = self._local[local_id - 1]
            if ch is None:  # we closed it before the answer came: the id is free now
                self._free.append(local_id - 1)
                self._gc(info)
                return
            remote[rid] = _Remote(frame.handshake, None, info)
            ch._remote_id = remote_id
            self._fully_open(ch)
            return
        remote[rid] = _Remote(frame.handshake, [], info)
        info.pairing += 1
        info.incoming.append(remote_id)
        notify = self._notify.get(info.key) or self._notify.get((frame.protocol, b""))
        if notify is None:
            self._finish_pairing(info)
            return
        r = notify(frame.id)
        if r is not None and _is_awaitable(r):
            group = self._group
            if group is not None:
                group.pending += 1
            self._host.spawn(self._await_pairing, r, info, group)
        else:
            self._finish_pairing(info)

    async def _await_pairing(
        self, aw: Awaitable[object], info: _Info, group: _Group | None
    ) -> None:
        try:
            await aw
        except MuxError as e:
            self._host.fail(e)
        self._finish_pairing(info)
        self._group_done(group)

    def _finish_pairing(self, info: _Info) -> None:
        """After ``pair`` notifications ran, refuse the opens nobody took."""
        info.pairing -= 1
        if info.pairing > 0 or self.destroyed:
            return
        while info.incoming:
            self._reject_session(info.incoming.popleft())
        self._gc(info)

    def _reject_session(self, remote_id: int) -> None:
        r = self._remote[remote_id - 1]
        if r is not None:
            self._drop_pending(r)
            self._remote[remote_id - 1] = None
        self._write0(encode_reject(remote_id))

    def _drop_pending(self, r: _Remote) -> None:
        pending = r.pending
        if pending:
            r.pending = None
            for _, _, start, end in pending:
                self._buffered -= 512 + end - start
            self._resume_maybe()

    def _pause_maybe(self) -> None:
        if not self.paused and (
            self._buffered > MAX_BUFFERED or self._pending_work > MAX_PENDING_WORK
        ):
            self.paused = True
            self.budget = 0  # and a batch being handled stops at this entry

    def _resume_maybe(self) -> None:
        if (
            self.paused
            and self._buffered <= MAX_BUFFERED
            and self._pending_work <= MAX_PENDING_WORK
        ):
            self.paused = False
            self._host.resume()

    def _work_added(self) -> None:
        self._pending_work += 1
        self._pause_maybe()

    def _work_done(self) -> None:
        self._pending_work -= 1
        self._resume_maybe()

    def _on_reject(self, frame: RejectFrame) -> None:
        local_id = frame.remote_id
        for info in self._infos.values():
            if local_id not in info.outgoing:
                continue
            info.outgoing.remove(local_id)
            ch = self._local[local_id - 1]
            self._free.append(local_id - 1)
            if ch is not None:
                ch._close(True, ChannelRejectedError(f"channel {ch.protocol!r} was rejected"))
            self._gc(info)
            return
        raise MuxProtocolError(f"invalid reject message: channel {local_id} is not opening")

    def _on_close(self, frame: CloseFrame) -> None:
        remote_id = frame.remote_id
        if remote_id == 0:
            return
        remote = self._remote
        r = remote[remote_id - 1] if remote_id <= len(remote) else None
        if r is None:
            return
        ch = r.session
        if ch is not None:
            answered = ch._local_id != 0
            ch._close(True, None)
            if not answered:
                # Paired but our open is not sent yet: the remote keeps its id until we
                # answer, so answer with a reject.
                self._write0(encode_reject(remote_id))
        elif r.pending is not None:
            # Closed while we were still deciding whether to take it: answer with a reject,
            # which frees the id on the remote side (JS leaves the slot to a later open).
            info = r.info
            if remote_id in info.incoming:
                info.incoming.remove(remote_id)
                self._reject_session(remote_id)
                self._gc(info)

    async def _fully_open_soon(self, ch: Channel) -> None:
        try:
            self._fully_open(ch)
        except MuxError as e:
            self._host.fail(e)

    def _fully_open(self, ch: Channel) -> None:
        if ch.opened or ch.closed or self.destroyed:
            return
        r = self._remote[ch._remote_id - 1]
        assert r is not None
        value = None
        codec = ch._handshake
        if codec is not None:
            data = r.handshake or b""
            try:
                value = codec.decode(State(data, 0, len(data)))
            except Exception as e:
                err = ChannelDecodeError(
                    f"could not decode the handshake of channel {ch.protocol!r}: {e}"
                )
                err.__cause__ = e
                ch._close_local(err)
                return
        r.session = ch
        r.handshake = None
        ch.remote_handshake = value
        ch.opened = True
        if ch._on_open is not None:
            self._invoke(ch, ch._on_open, (value, ch), None)
        pending = r.pending
        if pending is not None:
            r.pending = None
            for typ, buf, start, end in pending:
                self._buffered -= 512 + end - start
                if not ch.closed and not self.destroyed:
                    self._recv(ch, typ, State(buf, start, end))
            self._resume_maybe()
        if ch._open_event is not None:
            ch._open_event.set()

    # --- the info table ---------------------------------------------------------------------

    def _get(self, protocol: str, id: bytes | None, aliases: tuple[str, ...] = ()) -> _Info:
        key = _key(protocol, id)
        info = self._infos.get(key)
        if info is not None:
            return info
        info = _Info(key, protocol, id)
        self._infos[key] = info
        for alias in aliases:
            k = _key(alias, id)
            info.aliases.append(k)
            self._infos[k] = info
        return info

    def _gc(self, info: _Info) -> None:
        if info.opened == 0 and not info.outgoing and not info.incoming:
            if self._infos.get(info.key) is info:
                del self._infos[info.key]
            for k in info.aliases:
                if self._infos.get(k) is info:
                    del self._infos[k]

    # --- callbacks --------------------------------------------------------------------------

    def _invoke(
        self, ch: Channel, fn: Callback, args: tuple[Any, ...], group: _Group | None
    ) -> None:
        q = ch._cbq
        if q is not None:  # an async callback of this channel is running: keep the order
            q.append((fn, args, group))
            self._work_added()
            if group is not None:
                group.pending += 1
            return
        r = fn(*args)
        if r is not None and _is_awaitable(r):
            ch._cbq = deque()
            ch._active += 1
            if group is not None:
                group.pending += 1
            self._host.spawn(self._run_callbacks, ch, r, group)

    async def _run_callbacks(
        self, ch: Channel, aw: Awaitable[object], group: _Group | None
    ) -> None:
        q = ch._cbq
        assert q is not None
        try:
            try:
                await aw
            except MuxError as e:
                self._host.fail(e)
            self._group_done(group)
            while q:
                fn, args, group = q.popleft()
                self._work_done()
                try:
                    self._group = group
                    try:
                        r = fn(*args)
                    finally:
                        self._group = None
                    if r is not None and _is_awaitable(r):
                        await r
                except MuxError as e:
                    self._host.fail(e)
                self._group_done(group)
        finally:
            for _ in q:
                self._work_done()
            q.clear()
            ch._cbq = None
            ch._active -= 1
            if ch._active == 0 and ch.closed:
                self._destroy_channel(ch)

    def track(self, ch: Channel, aw: Awaitable[object]) -> None:
        """Run ``aw`` in the background as work of ``ch`` (concurrently with its callbacks):
        the channel is destroyed only after it, and a batch being handled waits for it."""
        ch._active += 1
        group = self._group
        if group is not None:
            group.pending += 1
        self._host.spawn(self._run_tracked, ch, aw, group)

    async def _run_tracked(self, ch: Channel, aw: Awaitable[object], group: _Group | None) -> None:
        try:
            await aw
        except MuxError as e:
            self._host.fail(e)
        finally:
            ch._active -= 1
            if ch._active == 0 and ch.closed:
                self._destroy_channel(ch)
        self._group_done(group)

    def _destroy_channel(self, ch: Channel) -> None:
        if ch.destroyed:
            return
        ch.destroyed = True
        if ch._on_destroy is not None:
            self._invoke(ch, ch._on_destroy, (ch,), None)
        if ch._closed_event is not None:
            ch._closed_event.set()

    def on_drain(self) -> None:
        """The host's queue went back under its high-water mark."""
        self.drained = True
        for ch in list(self):
            if ch._on_drain is not None and not ch.closed:
                self._invoke(ch, ch._on_drain, (ch,), None)

    def shutdown(self, is_remote: bool, error: BaseException | None = None) -> None:
        """The stream is gone: close every channel (``on_close(is_remote, channel)``)."""
        if self.destroyed:
            return
        self.destroyed = True
        self.error = error
        self._batch = None
        self.corked = 0
        work = self._work
        if work is not None and getgeneratorstate(work) != GEN_RUNNING:
            # (from inside a step, the running batch sees `destroyed` and ends by itself)
            self._work = None
            work.close()
        for ch in list(self._channels):
            ch._close(is_remote, error)
