"""A persistent store of token-vector matrices, keyed by record id and content hash.

Single-vector stores such as Chroma keep one vector per record; late-interaction models give one per
token. The store keeps each record's matrix on disk (one SQLite file, standard library only), beside
the single-vector collection that holds the record's first-stage vector::

    from modalbridge.multivector_store import MultiVectorStore

    store = MultiVectorStore("db/pages.mv.sqlite", token_dim=128, owner="collection 7d3e...")
    store.put(["p1", "p2"], ["sha256:aa", "sha256:bb"], [matrix1, matrix2])
    store.get(["p2"], ["sha256:bb"])     # {"p2": StoredMatrix(content_hash, matrix)}: that version
    store.present(["p1"], ["sha256:aa"])  # {"p1"}: stored already, no need to embed it again
    store.prune(["p1"], ["sha256:aa"])    # drop p1's other versions
    store.delete(["p1"])

Records are keyed by id and content hash: a record being replaced keeps its old version until the
single-vector store holds the new one (then :meth:`~MultiVectorStore.prune`), so a failure in between
never loses the version in use. Writes are transactional and the file is reopened by any later process. ``owner`` (e.g. the Chroma collection id) and ``token_dim`` are written
on creation and checked on every open, so a store is never read against the wrong collection or model.
Matrices are kept as float32 (exact MaxSim) or, with ``dtype="float16"``, at half the size.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import sqlite3
import threading
from dataclasses import dataclass
from typing import Any, Iterable, Iterator, Sequence

import numpy as np

from modalbridge.items import Combined, MediaItem, check_item

__all__ = ["MultiVectorStore", "MultiVectorStoreError", "StoredMatrix", "content_hash"]

FORMAT_VERSION = "2"
DTYPES = ("float32", "float16")
_CHUNK = 500  # ids per SQL statement (SQLite's variable limit is 999 on old builds)


class MultiVectorStoreError(RuntimeError):
    """The store does not match what it is opened for, or lacks records it should hold."""


@dataclass(frozen=True)
class StoredMatrix:
    content_hash: str
    matrix: np.ndarray
    """``(tokens, token_dim)`` float32."""


def content_hash(item: Any) -> str:
    """A stable hash of what an item is: the text, a file's bytes, an image's pixels, encoded bytes, a URL
    (its text: it is not fetched). Equal content gives equal hashes across processes, so an unchanged
    record is never embedded twice."""
    digest = hashlib.sha256()
    _feed(digest, check_item(item))
    return "sha256:" + digest.hexdigest()


def _feed(digest: Any, item: Any) -> None:
    if isinstance(item, str):
        digest.update(b"text\0" + item.encode("utf-8"))
        return
    if isinstance(item, Combined):
        for name, part in sorted(item.parts.items()):
            digest.update(f"part:{name}\0".encode())
            _feed(digest, part)
        return
    assert isinstance(item, MediaItem)
    digest.update(f"{item.modality}\0".encode())
    for spec in dataclasses.fields(item):  # sampling_rate, fps, a page number...: part of what the item is
        if spec.name != "source" and getattr(item, spec.name) is not None:
            digest.update(f"{spec.name}={getattr(item, spec.name)!r}\0".encode())
    source = item.source
    if isinstance(source, str) and source.startswith(("http://", "https://", "data:")):
        digest.update(b"uri\0" + source.encode("utf-8"))
    elif isinstance(source, (str, os.PathLike)):
        try:
            with open(source, "rb") as f:
                for block in iter(lambda: f.read(1 << 20), b""):
                    digest.update(block)
        except OSError as exc:
            raise ValueError(f"{item.describe()}: cannot read the file to hash it ({exc.strerror or exc})") from None
    elif isinstance(source, (bytes, bytearray, memoryview)):
        digest.update(bytes(source))
    elif hasattr(source, "getbuffer"):  # BytesIO
        digest.update(source.getbuffer())
    elif hasattr(source, "tobytes") and hasattr(source, "mode"):  # PIL image
        digest.update(f"pil:{source.mode}:{source.size}\0".encode() + source.tobytes())
    elif isinstance(source, (list, tuple)):  # video frames
        for frame in source:
            _feed(digest, type(item)(frame) if not isinstance(frame, MediaItem) else frame)
    else:
        array = np.ascontiguousarray(np.asarray(source.cpu() if hasattr(source, "cpu") else source))
        digest.update(f"array:{array.dtype}:{array.shape}\0".encode() + array.tobytes())


class MultiVectorStore:
    """Token-vector matrices on disk, one SQLite file (see the module doc).

    Args:
        path: the file (created with its folder when missing).
        token_dim: the size of each token vector; checked against the file.
        owner: who the store belongs to (a collection id); checked against the file when given.
        dtype: ``"float32"`` (default, exact) or ``"float16"``; fixed when the file is created.
        create: with ``False`` a missing file is an error instead of a new store.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        *,
        token_dim: int | None = None,
        owner: str | None = None,
        dtype: str = "float32",
        create: bool = True,
    ) -> None:
        if dtype not in DTYPES:
            raise ValueError(f"dtype must be one of {', '.join(DTYPES)}, got {dtype!r}")
        self.path = os.fspath(path)
        exists = os.path.exists(self.path)
        if not exists and not create:
            raise MultiVectorStoreError(f"no multi-vector store at {self.path!r}")
        if not exists:
            os.makedirs(os.path.dirname(os.path.abspath(self.path)), exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA auto_vacuum = FULL")  # deleted records give their pages back
        with self._transaction():
            self._db.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS records (id TEXT NOT NULL, content_hash TEXT NOT NULL, "
                "tokens INTEGER NOT NULL, data BLOB NOT NULL, PRIMARY KEY (id, content_hash))"
            )
            meta = dict(self._db.execute("SELECT key, value FROM meta"))
            if not meta:
                if token_dim is None:
                    raise MultiVectorStoreError(f"{self.path!r} is a new store: give its token_dim")
                meta = {"format": FORMAT_VERSION, "token_dim": str(int(token_dim)), "dtype": dtype, "owner": owner or ""}
                self._db.executemany("INSERT INTO meta VALUES (?, ?)", list(meta.items()))
        if meta.get("format") != FORMAT_VERSION:
            raise MultiVectorStoreError(f"{self.path!r}: unknown store format {meta.get('format')!r}")
        self.token_dim = int(meta["token_dim"])
        self.dtype = meta["dtype"]
        self.owner = meta["owner"] or None
        if token_dim is not None and int(token_dim) != self.token_dim:
            raise MultiVectorStoreError(
                f"{self.path!r} holds {self.token_dim}-d token vectors, not {token_dim}-d (another model's store?)"
            )
        if owner is not None and self.owner is not None and owner != self.owner:
            raise MultiVectorStoreError(f"{self.path!r} belongs to {self.owner!r}, not to {owner!r}")

    def __repr__(self) -> str:
        return f"MultiVectorStore({self.path!r}, token_dim={self.token_dim}, dtype={self.dtype!r}, records={len(self)})"

    def _transaction(self):
        store = self

        class _Transaction:
            def __enter__(self_inner):
                store._lock.acquire()
                store._db.execute("BEGIN IMMEDIATE")

            def __exit__(self_inner, exc_type, *_):
                try:
                    store._db.execute("ROLLBACK" if exc_type else "COMMIT")
                finally:
                    store._lock.release()

        return _Transaction()

    def close(self) -> None:
        self._db.close()

    # -- writing ------------------------------------------------------------------------------------

    def put(self, ids: Sequence[str], hashes: Sequence[str], matrices: Sequence[np.ndarray]) -> None:
        """Write one version (id, content hash) per record, all in one transaction. Other versions of the
        same ids stay until :meth:`prune` (so a failed write elsewhere never loses the version in use)."""
        if not (len(ids) == len(hashes) == len(matrices)):
            raise ValueError(f"got {len(ids)} ids, {len(hashes)} hashes and {len(matrices)} matrices")
        rows = []
        for record_id, digest, matrix in zip(ids, hashes, matrices):
            matrix = np.asarray(matrix)
            if matrix.ndim != 2 or matrix.shape[1] != self.token_dim:
                raise ValueError(f"id {record_id!r}: expected a (tokens, {self.token_dim}) matrix, got shape {matrix.shape}")
            data = np.ascontiguousarray(matrix, dtype=np.dtype(self.dtype).newbyteorder("<")).tobytes()
            rows.append((str(record_id), str(digest), int(matrix.shape[0]), data))
        with self._transaction():
            self._db.executemany("INSERT OR REPLACE INTO records VALUES (?, ?, ?, ?)", rows)

    def prune(self, ids: Sequence[str], keep_hashes: Sequence[str]) -> int:
        """Drop every version of these records but the one with ``keep_hashes`` (the version the
        single-vector store now holds); returns how many versions were dropped."""
        with self._transaction():
            cursor = self._db.executemany(
                "DELETE FROM records WHERE id = ? AND content_hash != ?", [(str(i), str(h)) for i, h in zip(ids, keep_hashes)]
            )
            return cursor.rowcount

    def delete(self, ids: Iterable[str]) -> int:
        """Remove records, every version (missing ids are fine); returns how many records were removed."""
        ids = list(dict.fromkeys(str(i) for i in ids))
        removed = 0
        with self._transaction():
            for chunk in _chunks(ids):
                removed += self._db.execute(
                    f"SELECT COUNT(DISTINCT id) FROM records WHERE id IN ({_marks(chunk)})", chunk
                ).fetchone()[0]
                self._db.execute(f"DELETE FROM records WHERE id IN ({_marks(chunk)})", chunk)
        return int(removed)

    def clear(self) -> None:
        with self._transaction():
            self._db.execute("DELETE FROM records")

    # -- reading ------------------------------------------------------------------------------------

    def _matrix(self, tokens: int, data: bytes) -> np.ndarray:
        matrix = np.frombuffer(data, dtype=np.dtype(self.dtype).newbyteorder("<")).reshape(tokens, self.token_dim)
        return matrix.astype(np.float32)

    def get(self, ids: Sequence[str], hashes: Sequence[str | None] | None = None) -> dict[str, StoredMatrix]:
        """The stored records among ``ids`` (missing ones are left out): the version with ``hashes[i]``
        when given (``None``: the latest), else each record's latest version."""
        ids = [str(i) for i in ids]
        found: dict[str, StoredMatrix] = {}
        pairs = [(i, h) for i, h in zip(ids, hashes)] if hashes is not None else []
        latest = [i for i, h in pairs if h is None] if hashes is not None else ids
        for chunk in _chunks([p for p in pairs if p[1] is not None]):
            rows = self._db.execute(
                "SELECT id, content_hash, tokens, data FROM records WHERE (id, content_hash) IN "
                f"(VALUES {', '.join(['(?, ?)'] * len(chunk))})",
                [value for pair in chunk for value in pair],
            )
            for record_id, digest, tokens, data in rows:
                found[record_id] = StoredMatrix(digest, self._matrix(tokens, data))
        for chunk in _chunks(latest):
            rows = self._db.execute(
                f"SELECT id, content_hash, tokens, data FROM records WHERE id IN ({_marks(chunk)}) ORDER BY rowid", chunk
            )
            for record_id, digest, tokens, data in rows:  # later versions overwrite earlier ones
                found[record_id] = StoredMatrix(digest, self._matrix(tokens, data))
        return found

    def present(self, ids: Sequence[str], hashes: Sequence[str]) -> set[str]:
        """The ids among ``ids`` whose version ``hashes[i]`` is stored (their content needs no embedding)."""
        present: set[str] = set()
        pairs = [(str(i), str(h)) for i, h in zip(ids, hashes)]
        for chunk in _chunks(pairs):
            rows = self._db.execute(
                f"SELECT id FROM records WHERE (id, content_hash) IN (VALUES {', '.join(['(?, ?)'] * len(chunk))})",
                [value for pair in chunk for value in pair],
            )
            present.update(row[0] for row in rows)
        return present

    def content_hashes(self, ids: Sequence[str]) -> dict[str, str]:
        """id -> content hash of its latest stored version, for the stored records among ``ids``."""
        return {record_id: stored.content_hash for record_id, stored in self.get(ids).items()}

    def items(self, batch_size: int = 1000) -> Iterator[tuple[str, StoredMatrix]]:
        """Every record's latest version, in id order (read in batches)."""
        last, first = "", True
        while True:
            rows = self._db.execute(
                "SELECT r.id, r.content_hash, r.tokens, r.data FROM records r "
                "WHERE r.rowid = (SELECT MAX(rowid) FROM records WHERE id = r.id) AND (r.id > ? OR ?) "
                "ORDER BY r.id LIMIT ?",
                (last, first, batch_size),
            ).fetchall()
            if not rows:
                return
            for record_id, digest, tokens, data in rows:
                yield record_id, StoredMatrix(digest, self._matrix(tokens, data))
            last, first = rows[-1][0], False

    def ids(self) -> list[str]:
        return [row[0] for row in self._db.execute("SELECT DISTINCT id FROM records ORDER BY id")]

    def __len__(self) -> int:
        """The number of records (not versions)."""
        return int(self._db.execute("SELECT COUNT(DISTINCT id) FROM records").fetchone()[0])

    def __contains__(self, record_id: object) -> bool:
        return self._db.execute("SELECT 1 FROM records WHERE id = ?", (record_id,)).fetchone() is not None

    def versions(self) -> int:
        """The number of stored versions (records being replaced hold two until pruned)."""
        return int(self._db.execute("SELECT COUNT(*) FROM records").fetchone()[0])

    def disk_bytes(self) -> int:
        """The size of the store's files on disk."""
        return sum(os.path.getsize(p) for p in (self.path, self.path + "-journal", self.path + "-wal") if os.path.exists(p))


def _chunks(values: list[Any]) -> Iterator[list[Any]]:
    for start in range(0, len(values), _CHUNK):
        yield values[start : start + _CHUNK]


def _marks(chunk: list[Any]) -> str:
    return ", ".join("?" * len(chunk))
