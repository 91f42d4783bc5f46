"""Iterative Kademlia queries, sans-IO (JS dht-rpc ``lib/query.js``).

A :class:`Query` walks toward ``target``: it asks the closest nodes it knows (from the routing
table, else the bootstrap nodes), adds the closer nodes each reply names, keeps the ``k``
closest nodes that answered (:attr:`Query.closest_replies`), and ends when nothing closer is
left to ask. With ``commit``, it then sends the command once more to each of those nodes with
the token each gave (announces and puts).

Every reply without an error is handed to ``on_data`` as it arrives; ``on_close(error)`` is
called once at the end (``None`` when the query finished). The Trio node turns these into an
async iterator.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from protomux.encoding import Address

from .errors import DHTError, NodeDestroyedError, QueryError, RequestTimeoutError
from .io import OutgoingRequest, Peer, Reply, Session
from .peer import node_id

__all__ = ["Commit", "Query", "QueryHost", "auto_commit"]

DOWN_HINT = 3

#: ``commit(reply, query, done)``: write to one of the closest nodes, then call
#: ``done(None)`` or ``done(error)``.
Commit = Callable[[Reply, "Query", Callable[[BaseException | None], None]], None]


class _QueryStats(Protocol):
    queries_total: int
    queries_active: int


class _TableNode(Protocol):
    @property
    def id(self) -> bytes: ...

    @property
    def host(self) -> str: ...

    @property
    def port(self) -> int: ...


class _QueryTable(Protocol):
    @property
    def id(self) -> bytes: ...

    @property
    def k(self) -> int: ...

    def closest(self, target: bytes, k: int | None = None) -> Sequence[_TableNode]: ...


class QueryHost(Protocol):
    """What a query needs of its node (:class:`~hyperswarm.dht_rpc.core.DHTCore`)."""

    @property
    def stats(self) -> _QueryStats: ...

    @property
    def table(self) -> _QueryTable: ...

    @property
    def concurrency(self) -> int: ...

    @property
    def filter_node(self) -> Callable[[Peer], bool] | None: ...

    def session(self) -> Session: ...

    def bootstrap_addresses(self) -> list[tuple[str, int]]: ...

    def send_down_hint(self, to: Peer, down: Address, session: Session | None) -> None: ...

    def create_request(
        self,
        to: Peer,
        token: bytes | None,
        internal: bool,
        command: int,
        target: bytes | None,
        value: bytes | None,
        session: Session | None = None,
        ttl: int = 0,
    ) -> OutgoingRequest | None: ...


_DONE: list[Peer] = []
_DOWN: list[Peer] = []


class _NodeLike(Protocol):
    @property
    def host(self) -> str: ...

    @property
    def port(self) -> int: ...


def auto_commit(reply: Reply, query: Query, done: Callable[[BaseException | None], None]) -> None:
    """The default commit: the query's command again, with the token the node gave."""
    if reply.token is None:
        done(QueryError("No token received for closest node"))
        return
    to = reply.from_
    req = query.dht.create_request(
        Peer(to.host, to.port), reply.token, False, query.command, query.target, query.value
    )
    if req is None:
        done(NodeDestroyedError())
        return
    req.on_response = lambda _r, _q: done(None)
    req.on_error = lambda err, _q: done(err)
    req.send()


class Query:
    """One iterative query; :meth:`start` sends the first requests."""

    def __init__(
        self,
        dht: QueryHost,
        target: bytes,
        internal: bool,
        command: int,
        value: bytes | None,
        *,
        concurrency: int | None = None,
        commit: Commit | bool | None = None,
        nodes: Sequence[_NodeLike] | None = None,
        replies: Sequence[Reply] | None = None,
        only_closest_nodes: bool = False,
        retries: int | None = None,
        force: bool = False,
        session: Session | None = None,
        map: Callable[[Reply], Any] | None = None,
    ) -> None:
        dht.stats.queries_total += 1
        dht.stats.queries_active += 1
        self.dht = dht
        self.k = dht.table.k
        self.target = target
        self.internal = internal
        self.command = command
        self.value = value
        self.force = force
        self.errors = 0
        self.successes = 0
        self.concurrency = concurrency or dht.concurrency
        self.inflight = 0
        self.visits = 0  # requests sent to nodes (not counting retries)
        self.map = map
        if retries is None:
            retries = 3 if internal and command == DOWN_HINT else 5
        self.retries = retries
        self.closest_replies: list[Reply] = []
        self.on_data: Callable[[Any], None] = _ignore
        self.on_close: Callable[[BaseException | None], None] = _ignore
        self.closed = False
        self.error: BaseException | None = None

        self._slow = 0
        self._slowdown = False
        self._seen: dict[tuple[str, int], list[Peer]] = {}
        self._depth: dict[tuple[str, int], int] = {}
        self._pending: list[Peer] = []
        self._from_table = False
        self._commit: Commit | None = auto_commit if commit is True else (commit or None)
        self._committing = False
        self._started = False
        self._session = session if session is not None else dht.session()
        self._auto_destroy_session = session is None
        self._only_closest_nodes = False
        self._target_int = int.from_bytes(target, "big")
        # distances of closest_replies, and the k-th of them once there are k
        self._closest_dists: list[int] = []
        self._kth: int | None = None

        if nodes:
            for node in reversed(nodes):
                nid = getattr(node, "id", None) or node_id(node.host, node.port)
                self._add_pending(Peer(node.host, node.port, nid), None)
        elif replies:
            for r in reversed(replies):
                self._add_pending(r.from_, None)
        if only_closest_nodes:
            self._only_closest_nodes = True

    # --- public ---------------------------------------------------------------------------

    @property
    def closest_nodes(self) -> list[Peer]:
        return [r.from_ for r in self.closest_replies]

    @property
    def hops(self) -> int:
        """Referrals from the first nodes asked to the closest node that answered (1: it
        was asked first)."""
        if not self.closest_replies:
            return 0
        best = self.closest_replies[0].from_
        return self._depth.get((best.host, best.port), 0)

    def start(self) -> None:
        """Add the table's closest nodes (or the bootstrap nodes) and send the first requests."""
        if self._started or self.closed:
            return
        self._started = True
        self._add_from_table()
        if len(self._pending) < self.k:
            for host, port in self.dht.bootstrap_addresses():
                self._add_pending(Peer(host, port, node_id(host, port)), None)
        self._read_more()

    def destroy(self, error: BaseException | None = None) -> None:
        """Stop the query; ``on_close(error)`` runs once."""
        if self.closed:
            return
        self.closed = True
        self.error = error
        self.dht.stats.queries_active -= 1
        if self._auto_destroy_session:
            self._session.destroy()
        self.on_close(error)

    # --- walking --------------------------------------------------------------------------

    def _add_from_table(self) -> None:
        if len(self._pending) >= self.k:
            return
        self._from_table = True
        for node in self.dht.table.closest(self.target, self.k - len(self._pending)):
            self._add_pending(Peer(node.host, node.port, node.id), None)

    def _distance(self, nid: bytes) -> int:
        return self._target_int ^ int.from_bytes(nid, "big")

    def _is_closer(self, nid: bytes | None) -> bool:
        """Whether a node with id ``nid`` would enter the ``k`` closest replies so far."""
        kth = self._kth
        if kth is None:
            return True
        return nid is not None and (self._target_int ^ int.from_bytes(nid, "big")) < kth

    def _add_pending(self, node: Peer, ref: Peer | None) -> bool:
        if self._only_closest_nodes:
            return False
        addr = (node.host, node.port)
        refs = self._seen.get(addr)
        closer = self._is_closer(node.id)
        if refs is _DONE:
            return closer
        if refs is _DOWN:
            if ref is not None:
                self._down_hint(ref, node)
            return closer
        if refs is not None:
            if ref is not None:
                refs.append(ref)
            return closer
        if not closer:
            return False
        self._seen[addr] = [] if ref is None else [ref]
        self._depth[addr] = 1 if ref is None else self._depth.get((ref.host, ref.port), 0) + 1
        self._pending.append(node)
        return True

    def _read_more(self) -> None:
        if self.closed or self._committing:
            return
        concurrency = (3 if self._slowdown else self.concurrency) + self._slow
        pending = self._pending
        while self.inflight < concurrency and pending:
            nxt = pending.pop()
            if nxt.id is not None and not self._is_closer(nxt.id):
                continue
            self._visit(nxt)
            if self.closed:
                return
        if not self._from_table and self.successes == 0 and self.errors == 0:
            self._slowdown = True
        if pending:
            return
        if self.inflight == 0 or (
            self._slow == self.inflight and len(self.closest_replies) >= self.k
        ):
            if not self._from_table and self.successes < self.k / 4:
                self._add_from_table()
                self._read_more()
                return
            self._flush()

    def _flush(self) -> None:
        if self._committing:
            return
        self._committing = True
        if self._commit is None:
            self.destroy(None)
            return
        replies = list(self.closest_replies)
        if not replies:
            self.destroy(QueryError("Too few nodes responded"))
            return
        state = {"pending": len(replies), "success": 0}

        def done(error: BaseException | None) -> None:
            if error is None:
                state["success"] += 1
            state["pending"] -= 1
            if state["pending"] > 0:
                return
            if state["success"] or error is None:
                self.destroy(None)
            else:
                self.destroy(error)

        commit = self._commit
        for reply in replies:
            try:
                commit(reply, self, done)
            except DHTError as err:
                done(err)

    def _dec(self, req: OutgoingRequest) -> None:
        if req.on_cycle is _noop_cycle:
            self._slow -= 1
        else:
            req.on_cycle = _noop_cycle
        self.inflight -= 1

    def _on_visit(self, m: Reply, req: OutgoingRequest) -> None:
        self._dec(req)
        self._seen[(req.to.host, req.to.port)] = _DONE
        if self._committing or self.closed:
            return
        if m.error == 0:
            self.successes += 1
        else:
            self.errors += 1
        if m.error == 0 and m.from_.id is not None and self._is_closer(m.from_.id):
            self._push_closest(m)
        if m.closer_nodes:
            own = self.dht.table.id
            node_filter = self.dht.filter_node
            for addr in m.closer_nodes:
                nid = node_id(addr.host, addr.port)
                node = Peer(addr.host, addr.port, nid)
                if node_filter is not None and not node_filter(node):
                    continue
                if nid == own:
                    continue
                if not self._add_pending(node, m.from_):
                    break
        if not self._from_table and self.successes + self.errors >= self.concurrency:
            self._slowdown = False
        if m.error != 0:
            self._read_more()
            return
        data = self.map(m) if self.map is not None else m
        if data is not None:
            self.on_data(data)
        self._read_more()

    def _on_error(self, err: DHTError, req: OutgoingRequest) -> None:
        addr = (req.to.host, req.to.port)
        refs = self._seen.get(addr)
        if isinstance(err, RequestTimeoutError):
            self._seen[addr] = _DOWN
            if refs is not None and refs is not _DONE and refs is not _DOWN:
                for node in refs:
                    self._down_hint(node, req.to)
        self._dec(req)
        self.errors += 1
        self._read_more()

    def _on_cycle(self, req: OutgoingRequest) -> None:
        req.on_cycle = _noop_cycle
        self._slow += 1
        self._read_more()

    def _down_hint(self, node: Peer, down: Peer) -> None:
        self.dht.send_down_hint(node, Address(down.host, down.port), self._session)

    def _push_closest(self, m: Reply) -> None:
        assert m.from_.id is not None
        d = self._distance(m.from_.id)
        dists = self._closest_dists
        i = bisect.bisect_left(dists, d)
        if i < len(dists) and dists[i] == d:
            return  # this node answered already: its first reply stays
        dists.insert(i, d)
        self.closest_replies.insert(i, m)
        if len(dists) > self.k:
            dists.pop()
            self.closest_replies.pop()
        if len(dists) >= self.k:
            self._kth = dists[-1]

    def _visit(self, to: Peer) -> None:
        self.inflight += 1
        self.visits += 1
        req = self.dht.create_request(
            to,
            None,
            self.internal,
            self.command,
            self.target,
            self.value,
            self._session,
        )
        if req is None:
            self.destroy(NodeDestroyedError())
            return
        req.on_response = self._on_visit
        req.on_error = self._on_error
        req.retries = 0 if self.force else self.retries
        req.on_cycle = self._on_cycle
        req.send(self.force)


def _noop_cycle(req: OutgoingRequest) -> None:
    pass


def _ignore(_value: Any) -> None:
    pass
