"""Protomux and compact-encoding for Python on Trio, byte-compatible with the JS packages.

- :mod:`protomux.encoding`: compact-encoding (``from protomux import encoding as c``).
- :class:`Protomux`: channels multiplexed over one message stream (JS ``protomux`` 3.12.1).
- :mod:`protomux.rpc`: request/response over a channel (JS ``protomux-rpc`` 1.10.0).
- :mod:`protomux.testing`: in-memory message stream pairs.
- :mod:`protomux.errors`: the errors of both (root :class:`ProtomuxError`, each with ``code``).

>>> import trio
>>> from protomux import Protomux, encoding as c
>>> from protomux.testing import memory_message_stream_pair
>>> async def main():
...     a, b = memory_message_stream_pair()
...     got = trio.Event()
...     async with Protomux(a) as ma, Protomux(b) as mb:
...         ca = ma.create_channel("chat")
...         say = ca.add_message(c.string)
...         ca.open()
...         cb = mb.create_channel("chat")
...         cb.add_message(c.string, lambda text, ch: (print(text), got.set()))
...         cb.open()
...         say.send("hello")
...         await got.wait()
>>> trio.run(main)
hello
"""

from . import encoding
from ._channel import Channel, Message
from .errors import (
    ChannelClosedError,
    ChannelDecodeError,
    ChannelRejectedError,
    MuxProtocolError,
    ProtomuxError,
)
from .mux import DEFAULT_HIGH_WATER_MARK, DEFAULT_MAX_MESSAGE_SIZE, MessageStream, Protomux

__all__ = [
    "DEFAULT_HIGH_WATER_MARK",
    "DEFAULT_MAX_MESSAGE_SIZE",
    "Channel",
    "ChannelClosedError",
    "ChannelDecodeError",
    "ChannelRejectedError",
    "Message",
    "MessageStream",
    "MuxProtocolError",
    "Protomux",
    "ProtomuxError",
    "encoding",
]
