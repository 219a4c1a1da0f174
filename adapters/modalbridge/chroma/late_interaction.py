"""Late-interaction search on Chroma: first stage from the collection, exact MaxSim from a matrix store.

Chroma keeps one vector per record. A :class:`LateInteractionCollection` keeps, per record, a fixed-size
first-stage vector in a Chroma collection (MUVERA or mean, inner-product space) and the record's token
matrix in a :class:`~modalbridge.multivector_store.MultiVectorStore` beside it; a query retrieves
candidates from Chroma and rescores them exactly by MaxSim::

    import chromadb
    from modalbridge import Image
    from modalbridge.chroma import LateInteractionCollection
    from modalbridge.multivector import MultiVectorEmbedder
from modalbridge.settings import refuse_vector_changes

    client = chromadb.PersistentClient("db")
    pages = LateInteractionCollection.create(client, "pages", MultiVectorEmbedder("vidore/colqwen2-v1.0-hf"))
    pages.upsert(ids=["p1", "p2"], items=[Image("p1.png"), Image("p2.png")], metadatas=[{"doc": "a"}, {"doc": "a"}])
    hits = pages.query("revenue in 2023", n_results=5)          # hits.ids, hits.scores (MaxSim), ...
    pages.delete(ids=["p2"])                                      # from the collection and the store
    LateInteractionCollection.delete_collection(client, "pages")  # the collection and its store

    pages = LateInteractionCollection.open(client, "pages")      # any later process

The collection's metadata holds the model settings and the encoding (so :meth:`open` needs no model
name); each record's metadata holds its content hash (``"modalbridge_content_hash"``), checked against
the store when rescoring. With a persistent client the store lives in the database folder
(``<db>/modalbridge-late-interaction/<collection id>.sqlite``); with a server give ``store_path``.
The work is done by the core :class:`~modalbridge.late_interaction.LateInteractionIndex`.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any, Iterable, Iterator, Mapping, Sequence

import numpy as np

from modalbridge.items import MediaItem
from modalbridge.late_interaction import EncodedQuery, LateInteractionIndex, PreparedDocuments
from modalbridge.multivector import MultiVectorEmbedder
from modalbridge.settings import refuse_vector_changes

__all__ = ["LateInteractionCollection", "LateInteractionResult", "CONFIG_KEY", "HASH_KEY", "is_late_interaction"]

CONFIG_KEY = "modalbridge:late_interaction"
"""Collection metadata key holding the index configuration (JSON)."""
HASH_KEY = "modalbridge_content_hash"
"""Record metadata key holding the content hash of the record's token matrix."""
STORE_FOLDER = "modalbridge-late-interaction"
HNSW_DEFAULTS = {"ef_construction": 400, "ef_search": 800, "max_neighbors": 32}
"""Chroma HNSW settings of a new late-interaction collection (Chroma's own: 100, 100, 16)."""
_BATCH = 256  # records per embedding call and upsert (well under any Chroma batch limit)


def is_late_interaction(collection: Any) -> bool:
    """Whether a Chroma collection was created by :class:`LateInteractionCollection`."""
    return CONFIG_KEY in (collection.metadata or {})


@dataclass
class LateInteractionResult:
    """One query's hits, best MaxSim first."""

    ids: list[str]
    scores: list[float]
    """The model's late-interaction scores (higher is better)."""
    documents: list[str | None]
    uris: list[str | None]
    metadatas: list[dict[str, Any]]
    """Record metadata as given to ``upsert`` (without the content hash)."""
    first_stage_ranks: list[int]
    """Each hit's position among the first-stage candidates (0-based)."""
    first_stage_distances: list[float | None]
    """Each hit's Chroma distance in the first stage (``1 - dot`` of the fixed-size vectors), when known."""
    candidates: int
    """How many candidates the first stage returned."""

    def __len__(self) -> int:
        return len(self.ids)


class LateInteractionCollection:
    """A Chroma collection searched by late interaction (see the module doc)."""

    def __init__(self, collection: Any, index: LateInteractionIndex) -> None:
        from modalbridge.chroma.writer import ChromaWriter

        self.collection = collection
        self.index = index
        self.writer = ChromaWriter(collection)
        """Writes in calls under the store's batch limit, retried on transient errors."""

    def __repr__(self) -> str:
        return f"LateInteractionCollection({self.collection.name!r}, {self.index.embedder!r}, {self.index.encoding!r})"

    @property
    def embedder(self) -> MultiVectorEmbedder:
        return self.index.embedder

    # -- creating and opening ------------------------------------------------------------------------

    @staticmethod
    def default_store_path(client: Any, collection_id: Any) -> str:
        """``<persistent client's folder>/modalbridge-late-interaction/<collection id>.sqlite``."""
        settings = client.get_settings()
        if not getattr(settings, "is_persistent", False) or not settings.persist_directory:
            raise ValueError(
                "this Chroma client keeps no local folder (a server or an in-memory client): "
                "give store_path, a local file for the token vectors"
            )
        return os.path.join(settings.persist_directory, STORE_FOLDER, f"{collection_id}.sqlite")

    @classmethod
    def create(
        cls,
        client: Any,
        name: str,
        embedder: MultiVectorEmbedder,
        *,
        first_stage: str = "muvera",
        store_path: str | os.PathLike | None = None,
        store_dtype: str = "float32",
        metadata: Mapping[str, Any] | None = None,
        hnsw: Mapping[str, Any] | None = None,
        **first_stage_options: Any,
    ) -> "LateInteractionCollection":
        """Create the collection (an inner-product HNSW space for the first-stage vectors) and its store.

        ``first_stage``: ``"muvera"`` (options ``bits``, ``repetitions``, ``projection_dim``, ``seed``) or
        ``"mean"``. ``hnsw``: Chroma HNSW settings over :data:`HNSW_DEFAULTS` (inner-product search over
        these vectors needs a wider graph than Chroma's defaults: with them, 10-30% of the exact
        first-stage neighbours were missed in ``examples/benchmark_late_interaction.py``).
        Loads the model (to read its token size)."""
        if not isinstance(embedder, MultiVectorEmbedder):
            raise TypeError(f"embedder must be a modalbridge MultiVectorEmbedder, got {type(embedder).__name__}")
        from modalbridge.late_interaction import first_stage_encoding

        first_stage_encoding(first_stage, embedder.dimension, **first_stage_options)  # check before creating
        if hnsw is not None and "space" in hnsw:
            raise ValueError("the first-stage vectors are compared by inner product: hnsw cannot set 'space'")
        collection = client.create_collection(
            name,
            embedding_function=None,
            configuration={"hnsw": {**HNSW_DEFAULTS, **dict(hnsw or {}), "space": "ip"}},
            metadata=dict(metadata or {}) | {CONFIG_KEY: "{}"},
        )
        try:
            path = os.fspath(store_path) if store_path is not None else cls.default_store_path(client, collection.id)
            index = LateInteractionIndex.create(
                embedder, path, first_stage=first_stage, owner=str(collection.id), store_dtype=store_dtype, **first_stage_options
            )
            config = index.config()
            collection.modify(metadata={**(collection.metadata or {}), CONFIG_KEY: json.dumps(config, sort_keys=True)})
        except Exception:
            client.delete_collection(name)
            raise
        return cls(collection, index)

    @classmethod
    def open(
        cls, client: Any, name: str, *, store_path: str | os.PathLike | None = None, **embedder_overrides: Any
    ) -> "LateInteractionCollection":
        """Open an existing late-interaction collection (model and encoding from its metadata);
        ``embedder_overrides`` may set ``device``, ``batch_size`` and other settings that do not change vectors."""
        collection = client.get_collection(name)
        raw = (collection.metadata or {}).get(CONFIG_KEY)
        if not raw or raw == "{}":
            raise ValueError(f"collection {name!r} was not created by LateInteractionCollection.create")
        config = json.loads(raw)
        refuse_vector_changes(config["embedder"], embedder_overrides, f"collection {name!r}")
        path = os.fspath(store_path) if store_path is not None else cls.default_store_path(client, collection.id)
        index = LateInteractionIndex.from_config(config, path, owner=str(collection.id), **embedder_overrides)
        return cls(collection, index)

    @classmethod
    def delete_collection(cls, client: Any, name: str, *, store_path: str | os.PathLike | None = None) -> None:
        """Delete a late-interaction collection and its token-vector store (``client.delete_collection``
        alone would leave the store's file behind)."""
        collection = client.get_collection(name)
        if not is_late_interaction(collection):
            raise ValueError(f"collection {name!r} was not created by LateInteractionCollection.create")
        path = os.fspath(store_path) if store_path is not None else cls.default_store_path(client, collection.id)
        client.delete_collection(name)
        for leftover in (path, path + "-journal", path + "-wal", path + "-shm"):
            if os.path.exists(leftover):
                os.remove(leftover)

    # -- writing -------------------------------------------------------------------------------------

    def upsert(
        self,
        ids: Sequence[str],
        items: Sequence[Any],
        *,
        documents: Sequence[str | None] | None = None,
        uris: Sequence[str | None] | None = None,
        metadatas: Sequence[Mapping[str, Any] | None] | None = None,
        matrices: Sequence[np.ndarray] | None = None,
        collect_errors: bool = False,
    ) -> PreparedDocuments:
        """Embed (only what changed), store the token matrices, and upsert the first-stage vectors.

        ``items`` are what is embedded (a ``str`` is text; tag files ``Image("page.png")``). Unless given,
        a text item is stored as the record's document and a tagged file path as its URI. ``matrices``:
        token matrices embedded already by this model (stored instead of embedding the items). With
        ``collect_errors`` bad items are skipped and reported in the result's ``errors``; otherwise the
        first one raises, naming it (records are written in batches of 256: earlier batches stay)."""
        ids = [str(i) for i in ids]
        if len(set(ids)) != len(ids):
            twice = sorted({i for i in ids if ids.count(i) > 1})
            raise ValueError(f"ids given twice: {', '.join(map(repr, twice[:5]))}")
        if len(items) != len(ids):
            raise ValueError(f"got {len(ids)} ids for {len(items)} items")
        for label, values in (("documents", documents), ("uris", uris), ("metadatas", metadatas), ("matrices", matrices)):
            if values is not None and len(values) != len(ids):
                raise ValueError(f"got {len(values)} {label} for {len(ids)} ids")
        total = PreparedDocuments(ids=[], vectors=np.empty((0, self.index.dimension), np.float32), hashes=[], positions=[])
        for start in range(0, len(ids), _BATCH):
            prepared = self.index.prepare_documents(
                ids[start : start + _BATCH],
                items[start : start + _BATCH],
                matrices=None if matrices is None else matrices[start : start + _BATCH],
                collect_errors=collect_errors,
                offset=start,
            )
            if prepared.ids:
                positions = [start + p for p in prepared.positions]
                records = dict(
                    ids=prepared.ids,
                    embeddings=prepared.vectors,
                    documents=[documents[p] if documents is not None else _default_document(items[p]) for p in positions],
                    uris=[uris[p] if uris is not None else _default_uri(items[p]) for p in positions],
                    metadatas=[
                        {**dict((metadatas[p] if metadatas is not None else None) or {}), HASH_KEY: digest}
                        for p, digest in zip(positions, prepared.hashes)
                    ],
                )
                if collect_errors:  # records Chroma refuses are reported, the rest stored
                    refused = self.writer.try_upsert(**records)
                    _drop_refused(prepared, refused, start)
                else:
                    self.writer.upsert(**records)
                self.index.commit(prepared.ids, prepared.hashes)  # only now: the old versions were in use
            _merge(total, prepared, start)
        return total

    def upsert_stream(self, records: Iterable[Mapping[str, Any]], *, collect_errors: bool = True) -> PreparedDocuments:
        """:meth:`upsert` for records produced lazily (a folder walk, the pages of PDFs), 256 at a time, so
        memory stays flat however many there are. Each record is a mapping with ``"id"`` and ``"item"``,
        and optionally ``"document"``, ``"uri"``, ``"metadata"``. Returns what was stored (without the
        first-stage vectors); errors are keyed by the record's position in the stream."""
        total = PreparedDocuments(ids=[], vectors=np.empty((0, self.index.dimension), np.float32), hashes=[], positions=[])
        start = 0
        for chunk in _batched(records, _BATCH):
            for position, record in enumerate(chunk):
                if not isinstance(record, Mapping) or "id" not in record or "item" not in record:
                    raise TypeError(f"record {start + position}: expected a mapping with 'id' and 'item', got {record!r:.80}")
            part = self.upsert(
                [r["id"] for r in chunk],
                [r["item"] for r in chunk],
                documents=[r.get("document", _default_document(r["item"])) for r in chunk],
                uris=[r.get("uri", _default_uri(r["item"])) for r in chunk],
                metadatas=[r.get("metadata") for r in chunk],
                collect_errors=collect_errors,
            )
            part.vectors = part.vectors[:0]  # not kept: a stream may be longer than memory
            _merge(total, part, start)
            start += len(chunk)
        return total

    def delete(self, ids: Sequence[str]) -> None:
        """Delete records from the collection, then their token matrices."""
        ids = [str(i) for i in ids]
        if ids:
            self.writer.delete(ids)
            self.index.delete(ids)

    def count(self) -> int:
        return self.collection.count()

    # -- searching -----------------------------------------------------------------------------------

    def query(
        self,
        query: Any,
        *,
        n_results: int = 10,
        candidates: int | None = None,
        where: Mapping[str, Any] | None = None,
        where_document: Mapping[str, Any] | None = None,
    ) -> LateInteractionResult:
        """The ``n_results`` best records by exact MaxSim among ``candidates`` first-stage neighbours
        (default ``max(100, 10 * n_results)``; all records when that is more than there are).
        ``query`` is an item (a ``str`` is text), or an ``EncodedQuery`` from ``index.encode_query``."""
        if n_results < 1:
            raise ValueError(f"n_results must be at least 1, got {n_results}")
        if candidates is not None and candidates < n_results:
            raise ValueError(f"candidates ({candidates}) must be at least n_results ({n_results})")
        count = self.collection.count()
        encoded = query if isinstance(query, EncodedQuery) else self.index.encode_query(query)
        if count == 0:
            return LateInteractionResult([], [], [], [], [], [], [], 0)
        result = self.collection.query(
            query_embeddings=[encoded.vector],
            n_results=min(count, candidates or max(100, 10 * n_results)),
            where=dict(where) if where else None,
            where_document=dict(where_document) if where_document else None,
            include=["metadatas", "documents", "uris", "distances"],
        )
        return self._rescore(result, encoded, 0, n_results)

    def rescore_query_result(self, result: Mapping[str, Any], query: Any, *, row: int = 0, top_n: int | None = None) -> LateInteractionResult:
        """Rescore the hits of a ``collection.query(...)`` of this collection (with ``include`` holding
        ``"metadatas"``) by exact MaxSim against ``query``."""
        return self._rescore(result, self.index.encode_query(query), row, top_n)

    def _rescore(self, result: Mapping[str, Any], encoded: Any, row: int, top_n: int | None) -> LateInteractionResult:
        ids = list(result["ids"][row])

        def column(key: str) -> list[Any]:
            values = result.get(key)
            return list(values[row]) if values is not None else [None] * len(ids)

        metadatas = [dict(m or {}) for m in column("metadatas")]
        documents, uris, distances = column("documents"), column("uris"), column("distances")
        hashes = [m.pop(HASH_KEY, None) for m in metadatas]
        ranked = self.index.rescore(encoded, ids, expected_hashes=hashes, top_n=top_n)
        position = {record_id: j for j, record_id in enumerate(ids)}
        order = [position[record_id] for record_id, _ in ranked]
        return LateInteractionResult(
            ids=[ids[j] for j in order],
            scores=[score for _, score in ranked],
            documents=[documents[j] for j in order],
            uris=[uris[j] for j in order],
            metadatas=[metadatas[j] for j in order],
            first_stage_ranks=order,
            first_stage_distances=[None if distances[j] is None else float(distances[j]) for j in order],
            candidates=len(ids),
        )


def _batched(values: Iterable[Any], size: int) -> Iterator[list[Any]]:
    chunk: list[Any] = []
    for value in values:
        chunk.append(value)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _default_document(item: Any) -> str | None:
    return item if isinstance(item, str) else None


def _default_uri(item: Any) -> str | None:
    if isinstance(item, MediaItem) and isinstance(item.source, (str, os.PathLike)):
        return os.fspath(item.source)
    return None


def _drop_refused(prepared: PreparedDocuments, refused: Mapping[str, str], offset: int) -> None:
    """Move the records Chroma refused from the prepared ones to the errors (their old versions stay)."""
    if not refused:
        return
    keep = [j for j, record_id in enumerate(prepared.ids) if record_id not in refused]
    for j, record_id in enumerate(prepared.ids):
        if record_id in refused:
            position = prepared.positions[j]
            error = ValueError(f"item {offset + position} (id {record_id!r}): {refused[record_id]}")
            error.item_label, error.item_index, error.item_reason = "item", offset + position, refused[record_id]  # type: ignore[attr-defined]
            prepared.errors[position] = error
    prepared.ids = [prepared.ids[j] for j in keep]
    prepared.vectors = prepared.vectors[keep]
    prepared.hashes = [prepared.hashes[j] for j in keep]
    prepared.positions = [prepared.positions[j] for j in keep]
    prepared.embedded = [i for i in prepared.embedded if i not in refused]
    prepared.unchanged = [i for i in prepared.unchanged if i not in refused]


def _merge(total: PreparedDocuments, part: PreparedDocuments, offset: int) -> None:
    total.ids += part.ids
    total.vectors = np.concatenate([total.vectors, part.vectors]) if len(part.ids) else total.vectors
    total.hashes += part.hashes
    total.positions += [offset + p for p in part.positions]
    total.embedded += part.embedded
    total.unchanged += part.unchanged
    total.errors.update({offset + p: e for p, e in part.errors.items()})
