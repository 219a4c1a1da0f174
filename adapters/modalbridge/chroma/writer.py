"""Writes into a Chroma collection that survive big batches, re-runs and a restarting server.

Used by ``modalbridge index`` (single-process and ``--ray``) and by :mod:`modalbridge.ray`::

    import chromadb
    from modalbridge.chroma import ChromaWriter, MultimodalEmbeddingFunction

    client = chromadb.HttpClient(host="127.0.0.1", port=8000)
    writer = ChromaWriter.open(client, "photos", MultimodalEmbeddingFunction("sentence-transformers/clip-ViT-B-32"))
    refused = writer.try_upsert(ids=paths, embeddings=vectors, uris=paths, metadatas=metas)
    # refused: {id: reason} for the records the store would not take; everything else is stored

What it guarantees:

* **Never above the store's limit.** Every write is cut into calls of at most
  ``client.get_max_batch_size()`` records (and at most ``max_batch_size`` when given), so a job of any
  size never trips Chroma's "batch size exceeded" error (a too-large call fails whole).
* **Idempotent by id.** Records are upserted: writing the same ids again (a re-run job, a retried
  Ray task) replaces them and never stores anything twice. Ids repeated inside one call are an error.
* **Retried on transient errors.** A refused connection, a dropped or timed-out request, a rate limit or
  a 5xx answer (a server restarting, a proxy in between) is retried with exponential backoff until
  :class:`RetryPolicy` gives up, then :class:`ChromaUnavailableError` says what was and was not stored.
  Anything else (a wrong dimension, a bad metadata value) is not retried.
* **Reopenable by any client.** :meth:`ChromaWriter.open` creates the collection with its embedding
  function, whose name and configuration Chroma stores; ``client.get_collection(name)`` in any process
  (after ``import modalbridge.chroma``) rebuilds the same function.
* **Nothing silently dropped.** :meth:`ChromaWriter.try_upsert` refuses records with non-finite vectors
  up front and, when the store rejects a call, isolates the records it rejects one by one; each comes
  back with its reason. :meth:`ChromaWriter.upsert` raises instead.
"""

from __future__ import annotations

import logging
import random
import time
from dataclasses import dataclass
from typing import Any, Callable, Sequence, TypeVar

import numpy as np

__all__ = ["ChromaUnavailableError", "ChromaWriter", "RetryPolicy", "is_transient"]

logger = logging.getLogger(__name__)

T = TypeVar("T")

_RETRY_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})


class ChromaUnavailableError(RuntimeError):
    """The Chroma store kept failing with transient errors until the retry policy gave up. The message
    says what was being written; records written before it are stored (writes are upserts, so running
    the job again completes it)."""


@dataclass(frozen=True)
class RetryPolicy:
    """How long to keep trying a write that fails for a transient reason.

    The n-th retry waits ``min(max_delay_s, initial_delay_s * 2**n)`` seconds, jittered by up to 25%;
    it gives up after ``attempts`` tries or once ``deadline_s`` seconds have passed since the first.
    The defaults ride out a server restart of about a minute."""

    attempts: int = 12
    initial_delay_s: float = 0.25
    max_delay_s: float = 8.0
    deadline_s: float = 90.0

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError(f"attempts must be at least 1, got {self.attempts}")
        if self.initial_delay_s < 0 or self.max_delay_s < 0 or self.deadline_s < 0:
            raise ValueError("delays and the deadline must not be negative")

    def delay(self, retry: int) -> float:
        base = min(self.max_delay_s, self.initial_delay_s * (2**retry))
        return base * (1.0 + 0.25 * random.random())

    def call(self, action: Callable[[], T], what: str) -> T:
        """``action()``, retried on :func:`is_transient` errors; ``what`` names it in messages."""
        started = time.monotonic()
        for attempt in range(self.attempts):
            try:
                return action()
            except Exception as exc:
                if not is_transient(exc):
                    raise
                elapsed = time.monotonic() - started
                wait = self.delay(attempt)
                if attempt + 1 >= self.attempts or elapsed + wait > self.deadline_s:
                    raise ChromaUnavailableError(
                        f"Chroma did not accept {what} after {attempt + 1} attempts over {elapsed:.0f} s "
                        f"({_describe(exc)}); what was written before is stored, run the job again to finish"
                    ) from exc
                logger.warning("Chroma %s failed (%s); retrying in %.1f s", what, _describe(exc), wait)
                time.sleep(wait)
        raise AssertionError("unreachable")  # pragma: no cover


def _describe(exc: BaseException) -> str:
    text = str(exc).strip() or "no message"
    return f"{type(exc).__name__}: {text[:200]}"


def is_transient(exc: BaseException) -> bool:
    """Whether a failed Chroma call may succeed if simply tried again: no connection (refused, reset,
    timed out), a rate limit, or a 5xx/408/425/429 HTTP answer. Errors about the request itself (bad
    dimension, bad metadata, too large a batch, not found) are not."""
    try:
        import httpx
    except ImportError:  # pragma: no cover - chromadb depends on httpx
        httpx = None  # type: ignore[assignment]
    from chromadb.errors import InternalError, RateLimitError

    if isinstance(exc, (RateLimitError, InternalError, ConnectionError, TimeoutError)):
        return True
    if httpx is not None:
        if isinstance(exc, httpx.TransportError):  # connect/read/write errors and timeouts
            return True
        if isinstance(exc, httpx.HTTPStatusError):
            return exc.response.status_code in _RETRY_STATUS
        # chromadb re-raises an HTTP error it cannot map as a plain Exception(response text), raised
        # while handling the HTTPStatusError: its status is on the context.
        context = exc.__context__
        if type(exc) is Exception and isinstance(context, httpx.HTTPStatusError):
            return context.response.status_code in _RETRY_STATUS
    # The client's constructor (and some older clients) turn a refused connection into ValueError.
    return type(exc) is ValueError and "Could not connect to a Chroma server" in str(exc)


def nonfinite_rows(embeddings: np.ndarray) -> list[int]:
    """Positions of vectors holding NaN or infinity (Chroma refuses a whole call for one of them)."""
    array = np.asarray(embeddings, dtype=np.float32)
    return [int(i) for i in np.flatnonzero(~np.isfinite(array).all(axis=1))]


class ChromaWriter:
    """Batched, idempotent, retried writes into one collection (see the module doc).

    Args:
        collection: a ``chromadb`` collection (from any client: persistent, HTTP, cloud).
        max_batch_size: write at most this many records per call (the store's own limit still applies).
        retry: the :class:`RetryPolicy` for transient errors.
    """

    def __init__(self, collection: Any, *, max_batch_size: int | None = None, retry: RetryPolicy | None = None) -> None:
        if max_batch_size is not None and max_batch_size < 1:
            raise ValueError(f"max_batch_size must be at least 1, got {max_batch_size}")
        self.collection = collection
        self.retry = retry or RetryPolicy()
        self._requested_batch_size = max_batch_size
        self._store_batch_size: int | None = None

    @classmethod
    def open(
        cls,
        client: Any,
        name: str,
        embedding_function: Any = None,
        *,
        create: bool = True,
        max_batch_size: int | None = None,
        retry: RetryPolicy | None = None,
        **collection_kwargs: Any,
    ) -> "ChromaWriter":
        """A writer for collection ``name``: created with ``embedding_function`` (stored with it, so any
        client reopens it) when missing and ``create`` is on, else opened. Retried like writes."""
        retry = retry or RetryPolicy()
        if create:
            action = lambda: client.get_or_create_collection(  # noqa: E731
                name, embedding_function=embedding_function, **collection_kwargs
            )
        else:  # None: no function at all (writes carry vectors), nothing rebuilt from the stored configuration
            action = lambda: client.get_collection(name, embedding_function=embedding_function)  # noqa: E731
        collection = retry.call(action, f"opening collection {name!r}")
        return cls(collection, max_batch_size=max_batch_size, retry=retry)

    @property
    def name(self) -> str:
        return self.collection.name

    @property
    def max_batch_size(self) -> int:
        """Records per call: the store's ``get_max_batch_size()``, capped by ``max_batch_size`` if given."""
        if self._store_batch_size is None:
            client = self.collection._client  # the API object every chromadb collection holds
            self._store_batch_size = int(self.retry.call(client.get_max_batch_size, "get_max_batch_size"))
        limit = self._store_batch_size
        if self._requested_batch_size is not None:
            limit = min(limit, self._requested_batch_size)
        return max(1, limit)

    def _chunks(self, count: int) -> list[slice]:
        size = self.max_batch_size
        return [slice(start, min(start + size, count)) for start in range(0, count, size)]

    # -- writes ---------------------------------------------------------------------------------------

    def upsert(
        self,
        ids: Sequence[str],
        embeddings: Any,
        *,
        metadatas: Sequence[dict[str, Any] | None] | None = None,
        documents: Sequence[str | None] | None = None,
        uris: Sequence[str | None] | None = None,
    ) -> int:
        """Upsert the records in calls of at most :attr:`max_batch_size`, each retried on transient
        errors; returns how many were written. Raises ``ValueError`` naming the id of a non-finite
        vector or a repeated id before anything is written, and the store's error for a rejected call."""
        records = _Records.build(ids, embeddings, metadatas, documents, uris)
        bad = nonfinite_rows(records.embeddings)
        if bad:
            raise ValueError(f"record {records.ids[bad[0]]!r}: its embedding holds NaN or infinity (nothing was written)")
        for part in self._chunks(len(records)):
            self._upsert_part(records, part)
        return len(records)

    def try_upsert(
        self,
        ids: Sequence[str],
        embeddings: Any,
        *,
        metadatas: Sequence[dict[str, Any] | None] | None = None,
        documents: Sequence[str | None] | None = None,
        uris: Sequence[str | None] | None = None,
    ) -> dict[str, str]:
        """Upsert every record the store takes and say why the others were not stored: returns
        id -> reason. Non-finite vectors are refused without being sent; a call the store rejects for
        a non-transient reason is retried record by record so only the culprits are left out.
        :class:`ChromaUnavailableError` (the store is down) is raised."""
        records = _Records.build(ids, embeddings, metadatas, documents, uris)
        refused = {records.ids[i]: "its embedding holds NaN or infinity" for i in nonfinite_rows(records.embeddings)}
        if refused:
            records = records.select([i for i, record_id in enumerate(records.ids) if record_id not in refused])
        for part in self._chunks(len(records)):
            try:
                self._upsert_part(records, part)
            except ChromaUnavailableError:
                raise
            except Exception as exc:  # noqa: BLE001 - isolate the records the store rejects
                if part.stop - part.start == 1:
                    refused[records.ids[part.start]] = f"Chroma refused it ({_describe(exc)})"
                    continue
                for index in range(part.start, part.stop):
                    try:
                        self._upsert_part(records, slice(index, index + 1))
                    except ChromaUnavailableError:
                        raise
                    except Exception as one:  # noqa: BLE001
                        refused[records.ids[index]] = f"Chroma refused it ({_describe(one)})"
        return refused

    def _upsert_part(self, records: "_Records", part: slice) -> None:
        kwargs = records.kwargs(part)
        self.retry.call(
            lambda: self.collection.upsert(**kwargs),
            f"an upsert of {part.stop - part.start} records into {self.name!r} (first id {records.ids[part.start]!r})",
        )

    def update_metadatas(self, ids: Sequence[str], metadatas: Sequence[dict[str, Any]]) -> None:
        """Replace the metadata of existing records (batched, retried)."""
        ids, metadatas = list(ids), list(metadatas)
        for part in self._chunks(len(ids)):
            self.retry.call(
                lambda: self.collection.update(ids=ids[part], metadatas=metadatas[part]),
                f"a metadata update of {part.stop - part.start} records in {self.name!r}",
            )

    def delete(self, ids: Sequence[str]) -> None:
        """Delete records by id (batched, retried; deleting a missing id is not an error)."""
        ids = list(ids)
        for part in self._chunks(len(ids)):
            self.retry.call(lambda: self.collection.delete(ids=ids[part]), f"a delete of {part.stop - part.start} records from {self.name!r}")

    # -- reads ----------------------------------------------------------------------------------------

    def get(self, ids: Sequence[str], include: Sequence[str] = ("metadatas",)) -> dict[str, Any]:
        """``collection.get(ids=..., include=...)`` in batches, retried; the parts merged into one result
        (only the records that exist)."""
        ids = list(ids)
        merged: dict[str, list[Any]] = {"ids": [], **{key: [] for key in include}}
        for part in self._chunks(len(ids)):
            got = self.retry.call(
                lambda: self.collection.get(ids=ids[part], include=list(include)), f"a read of {part.stop - part.start} records from {self.name!r}"
            )
            merged["ids"].extend(got["ids"])
            for key in include:
                values = got.get(key)
                merged[key].extend(list(values) if values is not None else [None] * len(got["ids"]))
        return merged

    def count(self) -> int:
        return int(self.retry.call(self.collection.count, f"counting {self.name!r}"))


@dataclass
class _Records:
    """Columns of one write, validated once and sliced per call."""

    ids: list[str]
    embeddings: np.ndarray
    metadatas: list[Any] | None
    documents: list[Any] | None
    uris: list[Any] | None

    @classmethod
    def build(cls, ids, embeddings, metadatas, documents, uris) -> "_Records":
        ids = [str(i) for i in ids]
        seen: set[str] = set()
        for record_id in ids:
            if record_id in seen:
                raise ValueError(f"record {record_id!r} appears twice in one write (ids must be unique)")
            seen.add(record_id)
        array = np.asarray(embeddings, dtype=np.float32)
        if array.ndim != 2 or len(array) != len(ids):
            raise ValueError(f"expected {len(ids)} embeddings as a (records, dimension) array, got shape {array.shape}")
        columns = {}
        for name, column in (("metadatas", metadatas), ("documents", documents), ("uris", uris)):
            if column is not None:
                column = list(column)
                if len(column) != len(ids):
                    raise ValueError(f"{len(ids)} ids but {len(column)} {name}")
            columns[name] = column
        return cls(ids, array, **columns)

    def __len__(self) -> int:
        return len(self.ids)

    def select(self, positions: list[int]) -> "_Records":
        pick = lambda column: None if column is None else [column[i] for i in positions]  # noqa: E731
        return _Records(
            [self.ids[i] for i in positions], self.embeddings[positions], pick(self.metadatas), pick(self.documents), pick(self.uris)
        )

    def kwargs(self, part: slice) -> dict[str, Any]:
        kwargs: dict[str, Any] = {"ids": self.ids[part], "embeddings": self.embeddings[part]}
        for name in ("metadatas", "documents", "uris"):
            column = getattr(self, name)
            # Chroma refuses a column of all None; leave it out then (None entries among values are fine).
            if column is not None and any(value is not None for value in column[part]):
                kwargs[name] = column[part]
        return kwargs
