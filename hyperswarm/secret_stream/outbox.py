"""The coalescing outbox of :class:`~hyperswarm.secret_stream.SecretStream`.

``send_nowait`` writes the first frame of a burst at once; the frames that follow before the
flusher task runs (typically sent by other tasks in the same scheduling round) wait here,
in encryption order, and the flusher task (or the next ``send``, or ``flush``) writes them
out together, so a burst of small messages costs one write.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Final

import trio

from protomux._toolkit import ParkedTask

__all__ = ["MAX_PENDING_OUT", "Outbox"]

#: ``send_nowait`` refuses (``trio.WouldBlock``) while this many encrypted bytes wait to be
#: written, so a writer that ignores back-pressure falls back to awaiting ``send``.
MAX_PENDING_OUT: Final = 256 * 1024


class Outbox:
    """Encrypted frames waiting to be written, and the flusher task that writes them.

    :attr:`buffer` holds the frames; :attr:`running` is True while the flusher task runs (only
    then may ``send_nowait`` buffer); :attr:`coalescing` is True from a frame written at once
    until the flusher task has run, so the frames that follow it are buffered.
    """

    __slots__ = ("_flusher", "buffer", "coalescing", "running")

    def __init__(self) -> None:
        self.buffer = bytearray()
        self.running = False
        self.coalescing = False
        self._flusher = ParkedTask[None]()

    def full(self) -> bool:
        return len(self.buffer) >= MAX_PENDING_OUT

    def take(self, frame: bytes | bytearray | None = None) -> bytes | bytearray:
        """The buffered frames followed by ``frame``; empties the buffer (call it holding the
        stream's send lock)."""
        out = self.buffer
        if not out:
            return bytearray() if frame is None else frame
        self.buffer = bytearray()
        if frame is not None:
            out += frame
        return out

    def wake(self) -> None:
        """Let the flusher task look at the buffer."""
        self._flusher.wake()

    async def run(self, stopped: Callable[[], bool], write: Callable[[], Awaitable[None]]) -> None:
        """The flusher task: until ``stopped()``, ``await write()`` (which takes the send
        lock and writes :meth:`take`) whenever frames wait. Transport errors end it quietly
        (the stream's next call reports them); the buffer is dropped at the end."""
        try:
            while not stopped():
                if not self.buffer:
                    self.coalescing = False
                    await self._flusher.park()
                    continue
                self.coalescing = False
                await write()
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass
        finally:
            self.running = False
            self.buffer = bytearray()
