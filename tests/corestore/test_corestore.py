from __future__ import annotations

from pathlib import Path

import pytest
import trio

from corestore import Corestore, CorestoreClosedError, CorestoreError, PrimaryKeyMismatchError, keys
from hypercore import Hypercore, MemoryStorage, crypto, errors
from hypercore.core import Core
from hypercore.storage import Alias, RocksDBStorage, StorageLockedError

from .test_keys import AB_DKEY, AB_KEY, AB_NS, PK7, X_DKEY, X_KEY, X_PK


def store7(storage: MemoryStorage | Path | None = None) -> Corestore:
    return Corestore(storage or MemoryStorage(), primary_key=PK7, unsafe=True)


async def test_reference_vectors_and_rows() -> None:
    storage = MemoryStorage()
    async with store7(storage) as store:
        async with store.get("x") as core:
            assert core.key is not None and core.key_pair is not None
            assert core.key.hex() == X_KEY and core.key_pair.public_key.hex() == X_PK
            assert core.discovery_key is not None and core.discovery_key.hex() == X_DKEY
            assert core.writable
            await core.append([b"hello", b"world"])
            await core.set_user_data("foo", b"bar")
        ab = store.namespace("a").namespace("b")
        assert ab.ns.hex() == AB_NS
        async with ab.get("x") as core:
            assert core.key is not None and core.key.hex() == AB_KEY
    rows = dict(storage.rows())
    # REFERENCE.md section 8: head = version 2, cores 2, datas 2, groups 0, flags 3, seed, dkey.
    assert rows[b"\x00"] == bytes([2, 2, 2, 0, 3]) + PK7 + bytes.fromhex(X_DKEY)
    assert rows[b"\x01" + bytes.fromhex(X_DKEY)] == bytes([2, 0, 0, 1, 1]) + b"x" + bytes(32)
    assert rows[b"\x02" + bytes(32) + b"\x00x\x00\x01"] == bytes.fromhex(X_DKEY)
    assert rows[b"\x02" + bytes.fromhex(AB_NS) + b"\x00x\x00\x01"] == bytes.fromhex(AB_DKEY)
    assert storage.get_core_record(bytes.fromhex(AB_DKEY)).alias == Alias(  # type: ignore[union-attr]
        bytes.fromhex(AB_NS), "x"
    )
    assert rows[b"\x04\x00\x06\x00foo\x00\x01"] == b"bar"


async def test_primary_key_is_random_then_stored() -> None:
    storage = MemoryStorage()
    async with Corestore(storage) as store:
        pk = store.primary_key
        assert pk is not None and len(pk) == 32
        key = store.get("x").key
    assert storage.seed() == pk
    async with Corestore(storage) as store:
        assert store.primary_key == pk and store.get("x").key == key
    async with Corestore(MemoryStorage()) as other:
        assert other.primary_key != pk


async def test_primary_key_checks() -> None:
    with pytest.raises(errors.AssertionFailedError, match="unsafe"):
        Corestore(MemoryStorage(), primary_key=PK7)
    with pytest.raises(errors.BadArgumentError):
        Corestore(MemoryStorage(), primary_key=bytes(31), unsafe=True)
    with pytest.raises(errors.BadArgumentError):
        Corestore(42)  # type: ignore[arg-type]
    storage = MemoryStorage()
    async with store7(storage):
        pass
    async with store7(storage) as store:  # the same key again is fine
        assert store.primary_key == PK7
    other = Corestore(storage, primary_key=bytes(32), unsafe=True)
    with pytest.raises(PrimaryKeyMismatchError, match="Another corestore is stored here") as info:
        await other.ready()
    assert isinstance(info.value, CorestoreError) and info.value.code == "PRIMARY_KEY_MISMATCH"
    assert storage.seed() == PK7


async def test_named_cores_are_stable_across_reopen_on_disk(tmp_path: Path) -> None:
    async with Corestore(tmp_path) as store:
        pk = store.primary_key
        async with store.namespace("app").get("log", value_encoding="utf-8") as core:
            await core.append(["a", "b"])
            key = core.key
            assert key is not None
    async with Corestore(tmp_path) as store:
        assert store.primary_key == pk
        async with store.namespace("app").get("log", value_encoding="utf-8") as core:
            assert core.key == key and core.writable and core.length == 2
            assert [await core.get(i) for i in range(2)] == ["a", "b"]
            await core.append("c")
        assert store.list() == [crypto.discovery_key(key)]
    # The root opened the directory, so closing it released the lock.
    RocksDBStorage.open(tmp_path).close()


async def test_lock_is_held_while_open(tmp_path: Path) -> None:
    async with Corestore(tmp_path):
        with pytest.raises(StorageLockedError):
            await Corestore(tmp_path).ready()


async def test_namespaces_and_sessions() -> None:
    async with store7() as store:
        a = store.namespace("a")
        assert a.ns == keys.generate_namespace(bytes(32), "a")
        assert a.namespace("b").ns.hex() == AB_NS
        assert store.namespace(b"a").ns == a.ns
        assert a.session().ns == a.ns and store.session().ns == bytes(32)
        assert a.root is store and store.root is store
        keys_seen = {
            store.get("n").key,
            a.get("n").key,
            a.namespace("b").get("n").key,
            store.namespace("b").get("n").key,
        }
        assert len(keys_seen) == 4
        assert a.session().get("n").key == a.get("n").key


async def test_sessions_share_one_state() -> None:
    async with store7() as store:
        one = store.get("x")
        two = store.namespace("ns").session().get(key=one.key)
        three = store.get(discovery_key=one.discovery_key)
        assert len(list(store.cores())) == 1
        await one.append(b"hi")
        assert two.length == 1 and three.length == 1 and two.writable
        await one.aclose()
        assert await two.get(0) == b"hi"
        [state] = store.cores()
        await two.aclose()
        await three.aclose()
        # The last session closed the state; the next get opens a new one.
        assert state.closed and list(store.cores()) == []
        async with store.get("x") as again:
            assert again.length == 1 and await again.get(0) == b"hi"
            [fresh] = store.cores()
            assert fresh is not state


async def test_closing_a_view_closes_its_sessions_only() -> None:
    storage = MemoryStorage()
    async with store7(storage) as store:
        kept = store.get("kept")
        view = store.namespace("v")
        a = view.get("a")
        b = view.get(key=kept.key)
        async with view:  # views are ready at once and close on exit
            assert view.opened
        assert view.closed and a.closed and b.closed and not kept.closed
        with pytest.raises(CorestoreClosedError, match="Corestore is closed"):
            view.get("a")
        with pytest.raises(CorestoreClosedError):
            view.session()
        await view.aclose()  # idempotent
        await kept.append(b"still open")
        assert store.get("kept").length == 1
    assert kept.closed and not storage.closed  # storage passed in: not closed


async def test_closing_the_root_closes_everything(tmp_path: Path) -> None:
    store = Corestore(tmp_path)
    view = store.namespace("v")  # made before ready: usable once the root is open
    with pytest.raises(errors.BadArgumentError, match="not open"):
        view.get("x")
    await view.ready()
    assert store.opened
    a = view.get("x")
    sub = a.session()  # not handed out by a store, but its state is closed with the root
    b = store.session().get("y")
    await store.aclose()
    assert a.closed and b.closed and view.closed and store.closed
    with pytest.raises(errors.SessionClosedError):
        await sub.append(b"x")
    with pytest.raises(CorestoreClosedError):
        store.get("x")
    with pytest.raises(CorestoreClosedError):
        await store.ready()
    await store.aclose()
    assert store.storage is not None and store.storage.closed
    RocksDBStorage.open(tmp_path).close()


async def test_aclose_closes_even_when_cancelled(tmp_path: Path) -> None:
    store = Corestore(tmp_path)
    await store.ready()
    core = store.get("x")
    with trio.CancelScope() as scope:
        scope.cancel()
        await store.aclose()
    assert core.closed and store.storage is not None and store.storage.closed


async def test_aclose_before_ready() -> None:
    store = Corestore(MemoryStorage())
    await store.aclose()
    with pytest.raises(CorestoreClosedError):
        await store.ready()


async def test_get_by_key_and_discovery_key() -> None:
    remote = crypto.core_key(crypto.key_pair(bytes(range(32))).public_key)
    async with store7() as store:
        with pytest.raises(errors.StorageEmptyError):
            store.get(key=remote, create_if_missing=False)
        with pytest.raises(errors.StorageEmptyError, match="No Hypercore is stored here"):
            store.get(discovery_key=crypto.discovery_key(remote))
        assert store.list() == []
        core = store.get(key=remote.hex())
        assert core.key == remote and not core.writable and core.length == 0
        assert store.get(discovery_key=crypto.discovery_key(remote)).key == remote
        auth = store.get_auth(crypto.discovery_key(remote))
        assert auth is not None and auth.manifest is None and auth.key_pair is None
        # Nothing was created for the missing lookups, and no alias for a key.
        assert store.list() == [crypto.discovery_key(remote)]
        assert list(store.storage.aliases()) == []  # type: ignore[union-attr]
        with pytest.raises(errors.StorageEmptyError):
            store.get("never", create_if_missing=False)
        assert store.list() == [crypto.discovery_key(remote)]


async def test_get_with_key_pair_or_manifest() -> None:
    kp = crypto.key_pair(bytes(range(32)))
    key = crypto.core_key(kp.public_key)
    async with store7() as store:
        core = store.get(key_pair=kp)
        assert core.key == key and core.writable
        await core.append(b"x")
        again = store.get(key=key, key_pair=kp)
        assert again.length == 1 and again.writable
        reader = store.get(manifest=crypto.default_signer_manifest(kp.public_key))
        assert reader.key == key
        with pytest.raises(errors.BadArgumentError):
            store.get(key=bytes(32), key_pair=kp)
        with pytest.raises(errors.BadArgumentError):
            store.get(key=key, discovery_key=bytes(32))
        with pytest.raises(errors.BadArgumentError):
            store.get(discovery_key=bytes(32), key_pair=kp)


async def test_get_argument_errors() -> None:
    async with store7() as store:
        with pytest.raises(errors.BadArgumentError, match="Could not derive discovery from input"):
            store.get()
        with pytest.raises(errors.BadArgumentError):
            store.get("")
        with pytest.raises(errors.BadArgumentError):
            store.get(b"x")  # type: ignore[arg-type]
        with pytest.raises(errors.BadArgumentError):
            store.get("x", key_pair=crypto.key_pair())
        with pytest.raises(errors.BadArgumentError):
            store.get(key="not a key")
        with pytest.raises(errors.BadArgumentError):
            store.list(bytes(3))


async def test_named_key_mismatch_with_stored_alias() -> None:
    storage = MemoryStorage()
    async with store7(storage) as store:
        store.get("x")
    async with store7(storage) as store:
        with pytest.raises(errors.BadArgumentError):
            store.get("x", key=bytes(32))


async def test_writable_option() -> None:
    storage = MemoryStorage()
    async with Corestore(storage, writable=False) as store:
        core = store.get("x")
        assert not core.writable and not store.writable
        with pytest.raises(errors.SessionNotWritableError):
            await core.append(b"no")
        assert store.get("x", writable=True).writable
        assert not store.namespace("a").get("y").writable
        assert store.session(writable=True).get("x").writable


async def test_create_key_pair() -> None:
    async with store7() as store:
        a = store.namespace("a")
        assert store.create_key_pair("x").public_key.hex() == X_PK
        assert a.create_key_pair("x") == store.create_key_pair("x", a.ns)
        core = a.get("x")
        assert core.key_pair == a.create_key_pair("x")
    with pytest.raises(errors.BadArgumentError):
        Corestore(MemoryStorage()).create_key_pair("x")


async def test_list_all_and_by_namespace() -> None:
    async with store7() as store:
        a = store.namespace("a")
        dk = [c.discovery_key for c in (store.get("r"), a.get("1"), a.get("2"))]
        remote = store.get(key=crypto.core_key(crypto.key_pair(bytes(32)).public_key))
        assert sorted(store.list()) == store.list()
        assert set(store.list()) == {*dk, remote.discovery_key}
        assert set(store.list(a.ns)) == set(dk[1:])
        assert store.list(bytes(32)) == [dk[0]]
        assert store.list(keys.generate_namespace(bytes(32), "none")) == []


async def test_encryption() -> None:
    storage = MemoryStorage()
    enc = bytes(range(32))
    async with store7(storage) as store:
        async with store.get("secret", encryption_key=enc) as core:
            await core.append(b"plain")
            assert core.padding == 8
            assert await core.get(0, raw=True) != b"plain"
            with pytest.raises(errors.BadArgumentError):
                store.get("secret", encryption_key=bytes(32))
            same = store.get("secret", encryption_key=enc)
            assert await same.get(0) == b"plain"
    async with store7(storage) as store:
        core = store.get("secret")
        assert core.padding == 0 and (await core.get(0)) != b"plain"
        # An open core without encryption takes the key of a later get.
        keyed = store.get("secret", encryption_key=enc)
        assert await keyed.get(0) == b"plain"


async def test_find_core_watch_and_cores() -> None:
    storage = MemoryStorage()
    async with store7(storage) as store:
        async with store.get("x") as core:
            await core.append(b"1")
            dkey = core.discovery_key
        assert dkey is not None
    async with store7(storage) as store:
        seen: list[Core] = []
        view = store.namespace("w")
        view.watch(seen.append)
        view.watch(seen.append)  # once only
        assert await store.find_core(bytes(32)) is None
        state = await store.find_core(dkey)
        assert state is not None and state.discovery_key == dkey and state.head.length == 1
        assert seen == [state] and list(store.cores()) == [state]
        assert await store.find_core(dkey) is state
        # get() shares the state found, and the watchers do not see it again.
        async with store.get("x") as core:
            assert core.length == 1
        assert seen == [state]
        view.unwatch(seen.append)
        store.get("y")
        assert len(seen) == 1
        view.watch(seen.append)
        await view.aclose()  # a closed store's watchers are dropped
        store.get("z")
        assert len(seen) == 1
        with pytest.raises(CorestoreClosedError):
            view.watch(seen.append)
        # The state find_core opened closed with the last session attached to it.
        assert state.closed and dkey not in {s.discovery_key for s in store.cores()}
    assert await store.find_core(dkey) is None  # closed: nothing to attach


async def test_many_sessions_do_not_pile_up() -> None:
    async with store7() as store:
        for _ in range(500):
            async with store.get("x"):
                pass
        assert len(store._sessions) < 130
        assert isinstance(store.get("x"), Hypercore)


async def test_repr() -> None:
    store = store7()
    assert "not ready" in repr(store)
    async with store:
        assert "root" in repr(store) and "view" in repr(store.session())
    assert "closed" in repr(store)


async def test_a_store_entered_again_inside_its_own_block() -> None:
    store = store7()
    async with store:
        async with store:  # shares the outer block's nursery
            core = store.get(name="nested")
            await core.append(b"x")
            assert store.opened
        assert store.closed  # leaving the inner block closes the store, as aclose() would
    assert store.closed


async def test_a_core_the_remote_rejected_is_replicated_once_the_remote_opens_it() -> None:
    """A's core is offered on the stream first and rejected (B does not know it yet); when B
    later opens it by key, it replicates over the same stream (the tutorial's getKey flow)."""
    from tests.hypercore.replication_helpers import secret_pair

    async with (
        Corestore(MemoryStorage()) as a,
        Corestore(MemoryStorage()) as b,
        secret_pair() as (sa, sb),
    ):
        local = a.get("local")
        await local.append([b"first"])
        a.replicate(sa)
        b.replicate(sb)
        await trio.sleep(0.2)  # A's open reaches B and is rejected
        assert local.key is not None
        mirror = b.get(key=local.key)
        with trio.fail_after(10):
            assert await mirror.get(0) == b"first"
            await local.append([b"second"])
            while mirror.length < 2:  # upgraded eagerly, no update() call
                await mirror.wait_for_append()
        assert await mirror.get(1) == b"second"
