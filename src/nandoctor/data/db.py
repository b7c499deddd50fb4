"""LMDB and LevelDB sources: open read-only, plan key-range shards, scan a shard.

LMDB is opened ``readonly=True, lock=False``: no lock file is written and the data file is
only mapped. A truncated data.mdb makes the mapping fault (SIGBUS), so :func:`check_lmdb_file`
compares the file size with the last page the meta page claims before anything is mapped,
and scans run in worker processes so that any other corruption costs a worker, not the scan.

LevelDB cannot be opened without writing (a LOCK file, a LOG, recovery of the journal into a
new table), so we never open the original: :func:`leveldb_snapshot` builds a private copy
(hard links of the immutable table files, real copies of the small mutable ones) and reads
that. A database locked by a running job is refused unless a snapshot is explicitly allowed.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import itertools
import os
import shutil
import struct
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from nandoctor.core.types import InputError

LMDB_MAGIC = 0xBEEFC0DE


class SourceError(InputError):
    """A source that cannot be read at all; scanning reports it and goes on with the others."""


@dataclass(slots=True)
class KeyRange:
    """A shard of a DB: ``count`` records starting at ``start_key`` (ordinal ``start_index``)."""

    start_index: int
    count: int
    start_key: bytes | None


def check_lmdb_file(path: str) -> int:
    """Validate data.mdb against its meta pages; returns the number of entries."""
    from nandoctor.core.safeio import open_input

    data = os.path.join(path, "data.mdb")
    try:
        size = os.path.getsize(data)
        # a FIFO or a device as data.mdb would block lmdb's open (or never end): a file or nothing
        with open_input(data, "an LMDB data.mdb") as fh:
            head = fh.read(2 * 65536)
    except FileNotFoundError:
        raise SourceError("LMDB data.mdb not found", path) from None
    except SourceError:
        raise
    except InputError as exc:
        raise SourceError(exc.message, exc.path) from None
    except OSError as exc:
        raise SourceError(f"cannot read LMDB: {exc.strerror}", path) from None
    metas = []
    if len(head) >= 160:
        psize = struct.unpack_from("<I", head, 40)[0] or 4096
        for off in (0, psize):
            if off + 160 > len(head):
                continue
            magic, _version = struct.unpack_from("<II", head, off + 16)
            if magic != LMDB_MAGIC:
                continue
            last, txnid = struct.unpack_from("<QQ", head, off + 136)
            entries = struct.unpack_from("<Q", head, off + 40 + 48 + 32)[0]
            metas.append((txnid, last, entries, psize))
    if not metas:
        raise SourceError(f"not an LMDB file or its header is damaged ({size} bytes)", data)
    _txnid, last, entries, psize = max(metas)
    need = (last + 1) * psize
    if size < need:
        raise SourceError(
            f"truncated LMDB: data.mdb has {size} bytes but its meta page says {need} "
            f"(copied while being written, or the copy was cut short)",
            data,
        )
    return entries


def open_lmdb(path: str):
    import lmdb

    check_lmdb_file(path)
    try:
        return lmdb.open(path, readonly=True, lock=False, readahead=True, max_readers=512, subdir=True)
    except lmdb.Error as exc:
        raise SourceError(f"cannot open LMDB: {exc}", path) from None


def lmdb_ranges(path: str, shards: int) -> tuple[int, list[KeyRange]]:
    """Cut the key order into ``shards`` ranges of equal record count.

    No key is read here: the meta page gives the count, and each range's reader skips to its
    first record with a keys-only cursor (:func:`iter_lmdb`), so those skips run in parallel
    and the first range starts at once.
    """
    total = check_lmdb_file(path)
    shards = max(1, min(shards, total or 1))
    bounds = [total * i // shards for i in range(shards + 1)]
    return total, [KeyRange(a, b - a, None) for a, b in itertools.pairwise(bounds)]


def _cut(total: int, shards: int, keys: Iterator) -> list[KeyRange]:
    shards = max(1, min(shards, total or 1))
    bounds = [total * i // shards for i in range(shards)] + [total]
    out = []
    want = iter(bounds[1:-1])
    nxt = next(want, None)
    out.append(KeyRange(0, bounds[1], None))
    if nxt is None:
        return out
    for i, key in enumerate(keys):
        if i == nxt:
            out.append(KeyRange(i, 0, bytes(key)))
            nxt = next(want, None)
            if nxt is None:
                break
    for a, b in zip(out, bounds[1:], strict=False):
        a.count = b - a.start_index
    return out


def iter_lmdb(path: str, rng: KeyRange, chunk: int) -> Iterator[tuple[LazyKeys, list[bytes]]]:
    """Yield (keys, values) blocks of at most ``chunk`` records of one key range (keys fetched on demand)."""
    import lmdb

    env = open_lmdb(path)
    try:
        with env.begin(buffers=False) as txn:
            cur, kcur = txn.cursor(), txn.cursor()
            start_key = rng.start_key
            if start_key is None and rng.start_index > 0:
                start_key = _key_at(txn, rng.start_index)
                if start_key is None:
                    return
            for c in (cur, kcur):
                if start_key is None:
                    c.first()
                else:
                    c.set_range(start_key)
            values = cur.iternext(keys=False, values=True)
            keys = kcur.iternext(keys=True, values=False)
            yield from _blocks(values, keys, rng.count, chunk)
    except lmdb.Error as exc:
        raise SourceError(f"LMDB is corrupt: {exc}", path) from None
    finally:
        env.close()


def _key_at(txn, index: int) -> bytes | None:
    """The key at ordinal ``index`` in key order (a keys-only walk: no value is read)."""
    from itertools import islice

    keys = txn.cursor().iternext(keys=True, values=False)
    return next(islice(keys, index, None), None)


class _KeyWalker:
    """A keys-only cursor kept behind the values cursor: blocks nobody asks about are skipped unread."""

    def __init__(self, keys: Iterator):
        self.keys, self.pos = keys, 0

    def take(self, start: int, n: int) -> list[bytes]:
        from collections import deque
        from itertools import islice

        if start > self.pos:
            deque(islice(self.keys, start - self.pos), maxlen=0)
        self.pos = start + n
        return [bytes(k) for k in islice(self.keys, n)]


class LazyKeys:
    """The keys of one block, read only if a record of the block gets mentioned (most blocks: never)."""

    __slots__ = ("_keys", "n", "start", "walker")

    def __init__(self, walker: _KeyWalker, start: int, n: int):
        self.walker, self.start, self.n, self._keys = walker, start, n, None

    def _load(self) -> list[bytes]:
        if self._keys is None:
            self._keys = self.walker.take(self.start, self.n)
        return self._keys

    def __getitem__(self, j: int) -> bytes:
        return self._load()[j]

    def __len__(self) -> int:
        return self.n

    def __iter__(self):
        return iter(self._load())


def _blocks(values: Iterator, keys: Iterator, count: int, chunk: int) -> Iterator[tuple[LazyKeys, list[bytes]]]:
    from itertools import islice

    walker = _KeyWalker(keys)
    left, start = count, 0
    while left > 0:
        block = list(islice(values, min(chunk, left)))
        if not block:
            return
        yield LazyKeys(walker, start, len(block)), block
        left -= len(block)
        start += len(block)


# --------------------------------------------------------------------------- LevelDB


def leveldb_locked(path: str) -> bool:
    """True if another process holds LevelDB's LOCK (a training job still writing, typically)."""
    lock = os.path.join(path, "LOCK")
    try:
        fd = os.open(lock, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.lockf(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError as exc:
        return exc.errno in (errno.EACCES, errno.EAGAIN)
    else:
        fcntl.lockf(fd, fcntl.LOCK_UN)
        return False
    finally:
        os.close(fd)
    return False


def leveldb_snapshot(path: str, dest: str) -> None:
    """Make a private, openable copy of a LevelDB: tables hard-linked (they never change), the rest copied."""
    os.makedirs(dest, exist_ok=True)
    try:
        names = os.listdir(path)
    except OSError as exc:
        raise SourceError(f"cannot list LevelDB directory: {exc.strerror}", path) from None
    if "CURRENT" not in names:
        raise SourceError("not a LevelDB (no CURRENT file)", path)
    for name in names:
        if name == "LOCK" or name.startswith("LOG"):
            continue
        src, dst = os.path.join(path, name), os.path.join(dest, name)
        if name.endswith((".ldb", ".sst")):
            try:
                os.link(src, dst)
                continue
            except OSError:
                pass
        try:
            shutil.copyfile(src, dst)
        except OSError as exc:
            raise SourceError(f"cannot copy {name}: {exc.strerror}", path) from None


@contextlib.contextmanager
def open_leveldb(path: str, allow_locked: bool = False):
    """Open a snapshot copy of a LevelDB; the original is never opened (opening writes)."""
    import plyvel

    if not os.path.isdir(path):
        raise SourceError("LevelDB directory not found", path)
    if leveldb_locked(path) and not allow_locked:
        raise SourceError(
            "LevelDB is locked by a running process (a training job?); rerun with --snapshot to read "
            "a copy of it as it is now",
            path,
        )
    tmp = tempfile.mkdtemp(prefix="nandoctor-leveldb-")
    try:
        leveldb_snapshot(path, tmp)
        try:
            db = plyvel.DB(tmp, create_if_missing=False, paranoid_checks=False)
        except plyvel.Error as exc:
            raise SourceError(f"cannot open LevelDB: {exc}", path) from None
        try:
            yield db
        finally:
            db.close()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def leveldb_ranges(path: str, shards: int, allow_locked: bool = False) -> tuple[int, list[KeyRange]]:
    import plyvel

    with open_leveldb(path, allow_locked) as db:
        try:
            total = sum(1 for _ in db.iterator(include_value=False))
            return total, _cut(total, shards, db.iterator(include_value=False))
        except plyvel.Error as exc:
            raise SourceError(f"LevelDB is corrupt: {exc}", path) from None


def iter_leveldb(path: str, rng: KeyRange, chunk: int, allow_locked: bool = False):
    import plyvel

    with open_leveldb(path, allow_locked) as db:
        try:
            start = {"start": rng.start_key} if rng.start_key is not None else {}
            values = db.iterator(include_key=False, **start)
            keys = db.iterator(include_value=False, **start)
            yield from _blocks(values, keys, rng.count, chunk)
        except plyvel.Error as exc:
            raise SourceError(f"LevelDB is corrupt: {exc}", path) from None


def db_size(path: str) -> int:
    return sum(f.stat().st_size for f in Path(path).iterdir() if f.is_file())
