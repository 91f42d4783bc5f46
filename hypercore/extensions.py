"""Replication extensions (JS ``core.registerExtension``): named application messages that
travel on a core's replication channels, as ``extension`` messages.

An extension belongs to the core (every session and every peer of it sees the same ones) and
is destroyed when the session that registered it closes. Its default encoding is
compact-encoding ``buffer`` (length-prefixed bytes), as in JS; a name (``'json'``,
``'utf-8'``, ``'binary'``), a compact-encoding codec or an encoding object may be given.

A message that does not decode, or a callback that raises, is logged and dropped: the peer
stays connected (an extension is application data, not the core's), where JS would let the
exception escape its message handler.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from protomux import encoding as c

from .encodings import ValueEncoding, resolve

if TYPE_CHECKING:
    from .replicator import Peer, Replicator

__all__ = ["Extension", "ExtensionHandler", "destroy_owned", "register"]

log = logging.getLogger("hypercore.replicator")

#: ``on_message(message, peer)``
ExtensionHandler = Callable[[Any, "Peer"], object]


def register(
    replicator: Replicator,
    name: str,
    encoding: Any,
    on_message: ExtensionHandler | None,
    owner: object,
) -> Extension:
    """Register ``name`` on a core (see :meth:`Hypercore.register_extension`): again for a
    registered name, its encoding, handler and owner are updated and the same one returned.
    ``encoding=None`` is compact-encoding ``buffer``, as in JS."""
    resolved = resolve(c.buffer if encoding is None else encoding)
    ext = replicator.extensions.get(name)
    if ext is None:
        ext = replicator.extensions[name] = Extension(replicator, name, resolved, on_message, owner)
    else:
        ext.encoding, ext.on_message, ext._owner = resolved, on_message, owner
    return ext


def destroy_owned(replicator: Replicator, owner: object) -> None:
    """Destroy the extensions ``owner`` (a closing session) registered."""
    for ext in list(replicator.extensions.values()):
        if ext._owner is owner:
            ext.destroy()


class Extension:
    """A registered extension; made by :meth:`Hypercore.register_extension`."""

    def __init__(
        self,
        replicator: Replicator,
        name: str,
        encoding: ValueEncoding,
        on_message: ExtensionHandler | None,
        owner: object,
    ) -> None:
        self.name = name
        self.encoding = encoding
        self.on_message = on_message
        self._replicator = replicator
        self._owner = owner  # the session whose closing destroys it
        self.destroyed = False

    def send(self, message: Any, peer: Peer) -> None:
        """Send ``message`` to one peer of the core."""
        if not self.destroyed:
            peer.send_extension(self.name, self.encoding.encode(message))

    def broadcast(self, message: Any) -> None:
        """Send ``message`` to every peer of the core."""
        if self.destroyed:
            return
        data = self.encoding.encode(message)
        for peer in list(self._replicator.peers):
            peer.send_extension(self.name, data)

    def destroy(self) -> None:
        """Unregister: messages for it are ignored from now on."""
        self.destroyed = True
        if self._replicator.extensions.get(self.name) is self:
            del self._replicator.extensions[self.name]

    def _receive(self, data: bytes, peer: Peer) -> None:
        try:
            message = self.encoding.decode(data)
        except Exception as e:
            log.warning("extension %r: undecodable message from %r: %s", self.name, peer, e)
            return
        if self.on_message is None:
            return
        try:
            self.on_message(message, peer)
        except Exception:
            log.exception("extension %r: on_message failed", self.name)

    def __repr__(self) -> str:
        return f"<Extension {self.name!r}{' destroyed' if self.destroyed else ''}>"
