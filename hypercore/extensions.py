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
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from protomux import encoding as c

from .codecs import ValueEncoding, resolve

__all__ = ["Extension", "ExtensionHandler", "ExtensionPeer", "Extensions"]

log = logging.getLogger("hypercore.replicator")


class ExtensionPeer(Protocol):
    """A peer as extensions see it (a :class:`~hypercore.replication.Peer`)."""

    def send_extension(self, name: str, message: bytes) -> None:
        """Send an already encoded extension message."""


#: ``on_message(message, peer)``
ExtensionHandler = Callable[[Any, ExtensionPeer], object]


class Extensions:
    """The extensions registered on one core, by name (its replicator holds them and hands
    them what peers send). ``peers``: the core's peers, a list kept up to date by its owner."""

    def __init__(self, peers: Sequence[ExtensionPeer]) -> None:
        self.peers = peers
        self._by_name: dict[str, Extension] = {}

    def get(self, name: str) -> Extension | None:
        return self._by_name.get(name)

    def register(
        self, name: str, encoding: Any, on_message: ExtensionHandler | None, owner: object
    ) -> Extension:
        """Register ``name`` (see :meth:`Hypercore.register_extension`): again for a
        registered name, its encoding, handler and owner are updated and the same one
        returned. ``encoding=None`` is compact-encoding ``buffer``, as in JS."""
        resolved = resolve(c.buffer if encoding is None else encoding)
        ext = self._by_name.get(name)
        if ext is None:
            ext = self._by_name[name] = Extension(self, name, resolved, on_message, owner)
        else:
            ext.encoding, ext.on_message, ext._owner = resolved, on_message, owner
        return ext

    def destroy_owned(self, owner: object) -> None:
        """Destroy the extensions ``owner`` (a closing session) registered."""
        for ext in list(self._by_name.values()):
            if ext._owner is owner:
                ext.destroy()

    def _remove(self, ext: Extension) -> None:
        if self._by_name.get(ext.name) is ext:
            del self._by_name[ext.name]


class Extension:
    """A registered extension; made by :meth:`Hypercore.register_extension`."""

    def __init__(
        self,
        registry: Extensions,
        name: str,
        encoding: ValueEncoding,
        on_message: ExtensionHandler | None,
        owner: object,
    ) -> None:
        self.name = name
        self.encoding = encoding
        self.on_message = on_message
        self._registry = registry
        self._owner = owner  # the session whose closing destroys it
        self.destroyed = False

    def send(self, message: Any, peer: ExtensionPeer) -> None:
        """Send ``message`` to one peer of the core."""
        if not self.destroyed:
            peer.send_extension(self.name, self.encoding.encode(message))

    def broadcast(self, message: Any) -> None:
        """Send ``message`` to every peer of the core."""
        if self.destroyed:
            return
        data = self.encoding.encode(message)
        for peer in list(self._registry.peers):
            peer.send_extension(self.name, data)

    def destroy(self) -> None:
        """Unregister: messages for it are ignored from now on."""
        self.destroyed = True
        self._registry._remove(self)

    def _receive(self, data: bytes, peer: ExtensionPeer) -> None:
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
