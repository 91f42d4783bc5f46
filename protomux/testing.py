"""In-memory message streams for tests: :func:`memory_message_stream_pair`."""

from __future__ import annotations

import math

import trio

__all__ = ["MemoryMessageStream", "RecordingMessageStream", "memory_message_stream_pair"]


class MemoryMessageStream(trio.abc.Channel[bytes]):
    """One end of an in-memory stream of whole messages (what a secret-stream looks like to
    protomux). Closing an end ends the other end's ``receive`` with ``trio.EndOfChannel``."""

    def __init__(
        self, send: trio.MemorySendChannel[bytes], receive: trio.MemoryReceiveChannel[bytes]
    ) -> None:
        self._send = send
        self._receive = receive

    async def send(self, value: bytes) -> None:
        await self._send.send(value if type(value) is bytes else bytes(value))

    async def receive(self) -> bytes:
        return await self._receive.receive()

    def send_nowait(self, value: bytes) -> None:
        """Send without blocking or raise ``trio.WouldBlock`` (Protomux uses it when offered)."""
        self._send.send_nowait(value if type(value) is bytes else bytes(value))

    def receive_nowait(self) -> bytes:
        """A waiting message or ``trio.WouldBlock``."""
        return self._receive.receive_nowait()

    async def aclose(self) -> None:
        await self._send.aclose()
        await self._receive.aclose()


def memory_message_stream_pair(
    max_buffer_size: float = math.inf,
) -> tuple[MemoryMessageStream, MemoryMessageStream]:
    """Two connected message streams; each direction buffers ``max_buffer_size`` messages."""
    a_send, b_receive = trio.open_memory_channel[bytes](max_buffer_size)
    b_send, a_receive = trio.open_memory_channel[bytes](max_buffer_size)
    return MemoryMessageStream(a_send, a_receive), MemoryMessageStream(b_send, b_receive)


class RecordingMessageStream(trio.abc.Channel[bytes]):
    """Wraps a message stream and records every message sent through it (it has no
    ``send_nowait``, so a mux over it uses its writer task)."""

    def __init__(self, inner: trio.abc.Channel[bytes]) -> None:
        self.inner = inner
        self.sent: list[bytes] = []

    async def send(self, value: bytes) -> None:
        self.sent.append(value)
        await self.inner.send(value)

    async def receive(self) -> bytes:
        return await self.inner.receive()

    async def aclose(self) -> None:
        await self.inner.aclose()
