"""Late interaction on a single-vector store: a fixed-size first stage, then exact MaxSim on candidates.

A :class:`LateInteractionIndex` ties a :class:`~modalbridge.multivector.MultiVectorEmbedder`, a
:class:`~modalbridge.fixed_encoding.FixedEncoding` (MUVERA or mean) and a
:class:`~modalbridge.multivector_store.MultiVectorStore` together. It does all the work; a vector store
adapter (:class:`modalbridge.chroma.LateInteractionCollection`) only moves its output in and out::

    from modalbridge.late_interaction import LateInteractionIndex
    from modalbridge.multivector import MultiVectorEmbedder

    index = LateInteractionIndex.create(MultiVectorEmbedder("vidore/colqwen2-v1.0-hf"), "pages.mv.sqlite")
    batch = index.prepare_documents(["p1", "p2"], [Image("p1.png"), Image("p2.png")])
    # ... store batch.ids / batch.vectors (first-stage) / batch.hashes in the single-vector store ...
    query = index.encode_query("revenue in 2023")
    # ... ids = the single-vector store's nearest neighbours of query.vector ...
    hits = index.rescore(query, ids, top_n=10)       # [(id, MaxSim score)], best first

``prepare_documents`` embeds only records whose content changed (by content hash), writes their token
matrices to the store, and returns every record's first-stage vector. ``rescore`` scores candidates
exactly (``model.similarity``) from the stored matrices: given the hashes the single-vector store holds,
exactly those versions (a record being replaced keeps its old matrix until :meth:`~LateInteractionIndex.commit`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from modalbridge.fixed_encoding import FixedEncoding, MeanEncoding, MuveraEncoding, encoding_from_config
from modalbridge.multivector import MultiVectorEmbedder
from modalbridge.multivector_store import MultiVectorStore, MultiVectorStoreError, content_hash
from modalbridge.settings import refuse_vector_changes

__all__ = ["LateInteractionIndex", "PreparedDocuments", "EncodedQuery", "first_stage_encoding"]


def first_stage_encoding(name: str, token_dim: int, **options: Any) -> FixedEncoding:
    """``"muvera"`` (options: bits, repetitions, projection_dim, seed, fill_empty) or ``"mean"``.

    MUVERA keeps token vectors of up to 32 dimensions as they are and by default projects larger ones
    to 16 (a 128-d ColQwen2 gives ``8 repetitions x 8 buckets x 16 = 1024``-d first-stage vectors)."""
    if name == "muvera":
        options.setdefault("projection_dim", None if token_dim <= 32 else 16)
        return MuveraEncoding(token_dim, **options)
    if name == "mean":
        if options:
            raise ValueError(f"the mean encoding takes no options, got {', '.join(sorted(options))}")
        return MeanEncoding(token_dim)
    raise ValueError(f"first_stage must be 'muvera' or 'mean', got {name!r}")


@dataclass
class PreparedDocuments:
    """What :meth:`LateInteractionIndex.prepare_documents` produced, for the records that worked."""

    ids: list[str]
    vectors: np.ndarray
    """First-stage vectors, ``(len(ids), encoding.dimension)`` float32, in ``ids`` order."""
    hashes: list[str]
    positions: list[int]
    """Each record's position in the call's input."""
    embedded: list[str] = field(default_factory=list)
    """Ids whose content was new or changed (embedded now)."""
    unchanged: list[str] = field(default_factory=list)
    """Ids whose stored matrix already matched their content (not embedded again)."""
    errors: dict[int, Exception] = field(default_factory=dict)
    """Input position -> why that record could not be embedded (only with ``collect_errors``)."""


@dataclass
class EncodedQuery:
    matrix: np.ndarray
    """The query's token matrix (for MaxSim)."""
    vector: np.ndarray
    """Its first-stage vector (for the single-vector search)."""


class LateInteractionIndex:
    """Embedder + first-stage encoding + matrix store (see the module doc)."""

    def __init__(self, embedder: MultiVectorEmbedder, store: MultiVectorStore, encoding: FixedEncoding) -> None:
        if not isinstance(embedder, MultiVectorEmbedder):
            raise TypeError(f"embedder must be a MultiVectorEmbedder, got {type(embedder).__name__}")
        if encoding.token_dim != store.token_dim:
            raise ValueError(f"the encoding is for {encoding.token_dim}-d tokens, the store holds {store.token_dim}-d")
        self.embedder, self.store, self.encoding = embedder, store, encoding

    @classmethod
    def create(
        cls,
        embedder: MultiVectorEmbedder,
        store_path: str,
        *,
        first_stage: str = "muvera",
        owner: str | None = None,
        store_dtype: str = "float32",
        **first_stage_options: Any,
    ) -> "LateInteractionIndex":
        """A new index (or the existing store at ``store_path``, checked against the model's token size).
        Loads the model to read its token size."""
        token_dim = embedder.dimension
        encoding = first_stage_encoding(first_stage, token_dim, **first_stage_options)
        store = MultiVectorStore(store_path, token_dim=token_dim, owner=owner, dtype=store_dtype)
        return cls(embedder, store, encoding)

    def config(self) -> dict[str, Any]:
        """JSON-serialisable: the embedder's settings and the encoding (the store path is not included:
        the adapter knows where its store lives)."""
        return {"embedder": self.embedder.config(), "encoding": self.encoding.config(), "store_dtype": self.store.dtype}

    @classmethod
    def from_config(
        cls, config: dict[str, Any], store_path: str, *, owner: str | None = None, **embedder_overrides: Any
    ) -> "LateInteractionIndex":
        """Reopen an index from :meth:`config` (in any process); ``embedder_overrides`` may change settings
        that do not change vectors (``device``, ``batch_size``, ...): one that would (a setting the
        declaration marks ``stored``, given another value than the stored one) is refused, naming it."""
        refuse_vector_changes(config["embedder"], embedder_overrides, "this index")
        embedder = MultiVectorEmbedder.from_config({**config["embedder"], **embedder_overrides})
        encoding = encoding_from_config(config["encoding"])
        store = MultiVectorStore(store_path, token_dim=encoding.token_dim, owner=owner, dtype=config.get("store_dtype", "float32"), create=False)
        return cls(embedder, store, encoding)

    @property
    def dimension(self) -> int:
        """The first-stage vector size."""
        return self.encoding.dimension

    # -- documents ----------------------------------------------------------------------------------

    def prepare_documents(
        self,
        ids: Sequence[str],
        items: Sequence[Any],
        *,
        matrices: Sequence[np.ndarray] | None = None,
        collect_errors: bool = False,
        offset: int = 0,
    ) -> PreparedDocuments:
        """Embed what changed, store its matrices, and return every record's first-stage vector.

        Records whose stored content hash equals their content's are read back, not embedded again.
        Without ``collect_errors`` the first bad item raises (naming it, ``"item 3 (id 'x'): ..."``)
        before anything is stored; with it, bad items are reported in ``errors`` and the rest stored.
        ``matrices``: the items' token matrices when they were embedded already (by this model and
        settings, e.g. in a batch job): they are stored as given instead of embedding the items.
        ``offset`` numbers the items in messages for a caller that works in batches (positions in the
        result stay relative to this call).
        """
        ids = [str(i) for i in ids]
        if len(ids) != len(items) or (matrices is not None and len(matrices) != len(ids)):
            given = "" if matrices is None else f" and {len(matrices)} matrices"
            raise ValueError(f"got {len(ids)} ids for {len(items)} items{given}")
        seen: set[str] = set()
        for position, record_id in enumerate(ids):
            if record_id in seen:
                raise ValueError(f"id {record_id!r} is given twice (item {offset + position})")
            seen.add(record_id)
        names = [f"id {i!r}" for i in ids]
        errors: dict[int, Exception] = {}
        hashes: dict[int, str] = {}
        for position, item in enumerate(items):
            try:
                hashes[position] = content_hash(item)
            except (TypeError, ValueError) as exc:
                error = _renumbered(exc, offset + position, names[position])
                if not collect_errors:
                    raise error from None
                errors[position] = error
        present = self.store.present([ids[p] for p in hashes], list(hashes.values()))
        unchanged = [p for p in hashes if ids[p] in present]
        todo = [p for p in hashes if ids[p] not in present]

        ready: dict[int, np.ndarray] = {}
        if todo:
            if matrices is not None:
                ready.update({p: self._checked(matrices[p], offset + p, names[p]) for p in todo})
            elif collect_errors:
                found, failed = self.embedder.try_embed_documents([items[p] for p in todo])
                for j, error in failed.items():
                    errors[todo[j]] = _renumbered(error, offset + todo[j], names[todo[j]])
                ready.update({todo[j]: m for j, m in found.items()})
            else:
                try:
                    embedded = self.embedder.embed_documents([items[p] for p in todo])
                except (TypeError, ValueError) as exc:  # MediaError included
                    j = getattr(exc, "item_index", None)
                    if j is None or getattr(exc, "item_label", None) != "item":
                        raise
                    raise _renumbered(exc, offset + todo[j], names[todo[j]]) from None
                ready.update(zip(todo, embedded))
            written = sorted(ready)
            self.store.put([ids[p] for p in written], [hashes[p] for p in written], [ready[p] for p in written])
        if unchanged:
            kept = self.store.get([ids[p] for p in unchanged], [hashes[p] for p in unchanged])
            ready.update({p: kept[ids[p]].matrix for p in unchanged})

        positions = sorted(ready)
        return PreparedDocuments(
            ids=[ids[p] for p in positions],
            vectors=self.encoding.encode_documents([ready[p] for p in positions]),
            hashes=[hashes[p] for p in positions],
            positions=positions,
            embedded=[ids[p] for p in todo if p in ready],
            unchanged=[ids[p] for p in unchanged],
            errors=errors,
        )

    def _checked(self, matrix: Any, position: int, name: str) -> np.ndarray:
        matrix = np.asarray(matrix, dtype=np.float32)
        if matrix.ndim != 2 or matrix.shape[1] != self.store.token_dim or len(matrix) == 0:
            raise ValueError(
                f"item {position} ({name}): expected a (tokens, {self.store.token_dim}) token matrix, got shape {matrix.shape}"
            )
        return matrix

    def commit(self, ids: Sequence[str], hashes: Sequence[str]) -> None:
        """The single-vector store now holds these versions: drop the records' older matrices."""
        self.store.prune([str(i) for i in ids], list(hashes))

    def delete(self, ids: Sequence[str]) -> int:
        """Forget these records' matrices; returns how many were stored."""
        return self.store.delete([str(i) for i in ids])

    # -- queries ------------------------------------------------------------------------------------

    def encode_query(self, query: Any) -> EncodedQuery:
        matrix = self.embedder.embed_query(query)
        return EncodedQuery(matrix, self.encoding.encode_query(matrix))

    def rescore(
        self,
        query: EncodedQuery | np.ndarray,
        candidate_ids: Sequence[str],
        *,
        expected_hashes: Sequence[str | None] | None = None,
        top_n: int | None = None,
    ) -> list[tuple[str, float]]:
        """Exact late-interaction scores of the candidates from their stored matrices: ``(id, score)``,
        best first (ties keep candidate order), at most ``top_n``. With ``expected_hashes`` (what the
        single-vector store holds for each) exactly those versions are scored; a candidate without a
        stored matrix (of that version) is an error naming it, never scored with other content's tokens."""
        if top_n is not None and top_n < 0:
            raise ValueError(f"top_n must be at least 0, got {top_n}")
        matrix = query.matrix if isinstance(query, EncodedQuery) else np.asarray(query, dtype=np.float32)
        candidate_ids = [str(i) for i in candidate_ids]
        if not candidate_ids:
            return []
        stored = self.store.get(candidate_ids, expected_hashes)
        missing = [i for i in candidate_ids if i not in stored]
        if missing:
            raise MultiVectorStoreError(
                f"no stored token vectors for id(s) {', '.join(map(repr, missing[:5]))}"
                + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
                + (" matching the record's content hash" if expected_hashes is not None else "")
                + f" in {self.store.path!r} (added or changed without the late-interaction index?): "
                "add those records again through it"
            )
        scores = self.embedder.score(matrix, [stored[i].matrix for i in candidate_ids])
        order = np.argsort(-scores, kind="stable")[: top_n if top_n is not None else None]
        return [(candidate_ids[i], float(scores[i])) for i in order]

    def exhaustive(self, query: EncodedQuery | np.ndarray, top_n: int = 10, batch_size: int = 2000) -> list[tuple[str, float]]:
        """Exact MaxSim over every stored record (the reference the two-stage search is measured against)."""
        matrix = query.matrix if isinstance(query, EncodedQuery) else np.asarray(query, dtype=np.float32)
        ids: list[str] = []
        scores: list[np.ndarray] = []
        batch_ids, batch = [], []
        for record_id, stored in self.store.items():
            batch_ids.append(record_id)
            batch.append(stored.matrix)
            if len(batch) == batch_size:
                ids += batch_ids
                scores.append(self.embedder.score(matrix, batch))
                batch_ids, batch = [], []
        if batch:
            ids += batch_ids
            scores.append(self.embedder.score(matrix, batch))
        if not ids:
            return []
        all_scores = np.concatenate(scores)
        order = np.argsort(-all_scores, kind="stable")[:top_n]
        return [(ids[i], float(all_scores[i])) for i in order]


def _renumbered(error: Exception, position: int, name: str) -> Exception:
    """An item error about the ``position``-th input of the caller, named by its id."""
    reason = getattr(error, "item_reason", str(error))
    renamed = type(error)(f"item {position} ({name}): {reason}")
    renamed.item_label, renamed.item_index, renamed.item_reason = "item", position, reason  # type: ignore[attr-defined]
    return renamed
