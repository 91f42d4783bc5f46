"""The raw-socket fast path of :class:`~hyperswarm.secret_stream.SecretStream`.

A TCP transport (``trio.SocketStream``) is read and written straight through its
non-blocking socket, without trio's per-call checkpoints: a small message costs one
``os.write``/``os.read`` instead of a trip through ``send_all``/``receive_some``. The socket
stays owned by the transport (closing is the transport's). Errors are trio's:
``trio.ClosedResourceError`` for a closed socket, ``trio.BrokenResourceError`` for a broken
connection.
"""

from __future__ import annotations

import errno
import os

import trio
from trio.lowlevel import cancel_shielded_checkpoint, checkpoint_if_cancelled

__all__ = ["Buffer", "RawSocket"]

Buffer = bytes | bytearray | memoryview


def _socket_error(exc: OSError) -> trio.BrokenResourceError | trio.ClosedResourceError:
    if exc.errno == errno.EBADF:
        return trio.ClosedResourceError("the socket was already closed")
    return trio.BrokenResourceError(f"socket connection broken: {exc}")


class RawSocket:
    """The socket of a ``trio.SocketStream``, used directly (see the module docstring).

    :attr:`may_read` is False after a read found nothing (wait for the socket before the next
    read); :attr:`nowait_skipped` remembers that :meth:`poll` declined once without reading.
    """

    __slots__ = ("may_read", "nowait_skipped", "sock", "stream")

    def __init__(self, stream: trio.SocketStream) -> None:
        self.stream = stream
        self.sock = stream.socket
        self.may_read = True
        self.nowait_skipped = False

    @classmethod
    def of(cls, stream: trio.abc.Stream) -> RawSocket | None:
        """The fast path of ``stream``, if it has one (a plain ``trio.SocketStream``)."""
        return cls(stream) if type(stream) is trio.SocketStream else None

    # --- writing --------------------------------------------------------------------------

    def write_some(self, data: Buffer) -> int:
        """Write what the socket takes now; the count of bytes written."""
        fd = self.sock.fileno()
        if fd < 0:
            raise trio.ClosedResourceError("the socket was already closed")
        try:
            return os.write(fd, data)
        except BlockingIOError:
            return 0
        except OSError as exc:
            raise _socket_error(exc) from exc

    async def send_all(self, data: Buffer) -> None:
        """Write all of ``data`` (non-empty): at once if the socket takes it, else the rest
        through the transport. A checkpoint either way."""
        await checkpoint_if_cancelled()
        sent = self.write_some(data)
        if sent == len(data):
            await cancel_shielded_checkpoint()
        else:
            await self.stream.send_all(memoryview(data)[sent:])

    # --- reading --------------------------------------------------------------------------

    def read_some(self, size: int) -> bytes | None:
        """What the socket holds (``b""`` at its end), or None if nothing is there yet."""
        fd = self.sock.fileno()
        if fd < 0:
            raise trio.ClosedResourceError("the socket was already closed")
        try:
            data = os.read(fd, size)
        except BlockingIOError:
            self.may_read = False
            return None
        except OSError as exc:
            raise _socket_error(exc) from exc
        # A short read most likely emptied the socket: the next read waits for it first.
        self.may_read = len(data) == size
        return data

    async def read(self, size: int) -> bytes:
        """Up to ``size`` bytes, waiting for them (``b""`` at the end); a checkpoint."""
        await checkpoint_if_cancelled()
        self.nowait_skipped = False
        if self.may_read:
            data = self.read_some(size)
            if data is not None:
                await cancel_shielded_checkpoint()
                return data
        while True:
            await trio.lowlevel.wait_readable(self.sock)
            data = self.read_some(size)
            if data is not None:
                return data

    def poll(self, size: int) -> bytes | None:
        """A read for ``receive_nowait``: None if nothing is there.

        After a read that emptied the socket, the first poll declines without reading: a
        caller that asks again (polling) gets a read, one that goes on to ``receive()``
        waits for bytes first.
        """
        if not self.may_read and not self.nowait_skipped:
            self.nowait_skipped = True
            return None
        self.nowait_skipped = False
        return self.read_some(size)
