"""Late interaction (ColBERT, ColPali, ColQwen2, ColModernVBert): one vector per token, scored by MaxSim.

A :class:`MultiVectorEmbedder` is an :class:`~modalbridge.Embedder` over a sentence-transformers
``MultiVectorEncoder``: the same explicit modalities, decoding, per-item errors and shared model cache
(under its own kind, ``"multivector"``), but every item becomes a ``(tokens, dim)`` float32 matrix::

    from modalbridge import Image
    from modalbridge.multivector import MultiVectorEmbedder

    colqwen = MultiVectorEmbedder("vidore/colqwen2-v1.0-hf", device="auto")
    pages = colqwen.embed_documents([Image("page1.png"), Image("page2.png")])  # [(n1, 128), (n2, 128)]
    query = colqwen.embed_query("revenue in 2023")                              # (m, 128)
    scores = colqwen.score(query, pages)                                        # MaxSim, shape (2,)
    best = colqwen.rank("revenue in 2023", [Image("page1.png"), Image("page2.png")], top_n=1)

``embed_documents`` / ``embed_queries`` equal ``model.encode_document`` / ``model.encode_query`` (with
``convert_to_numpy=True`` and the same settings, per modality: retrieval processors refuse mixed text +
image batches, so each modality is encoded in its own call), and :meth:`MultiVectorEmbedder.score`
equals ``model.similarity`` (MaxSim, or MeanMaxSim for models saved with it). ``stream(items)`` (the
core's streaming path: decoding a few batches ahead, items produced lazily, e.g. PDF pages) yields
``Embedded(index, vector=matrix, error)`` in input order.

Storing them next to a single-vector store and searching in two stages is in
:mod:`modalbridge.late_interaction`; the fixed-size first-stage vectors in :mod:`modalbridge.fixed_encoding`.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from modalbridge.embedder import Embedder
from modalbridge.reranker import RankedItem

__all__ = ["MultiVectorEmbedder", "maxsim"]


def maxsim(
    query: np.ndarray, documents: Sequence[np.ndarray], *, length_normalize: bool = False
) -> np.ndarray:
    """MaxSim of one query matrix ``(m, d)`` against each document matrix ``(n_i, d)``: for every query
    token the best dot product with any document token, summed (averaged with ``length_normalize``, which
    is MeanMaxSim). sentence-transformers' own implementation, so it equals ``model.similarity``."""
    from sentence_transformers.util.similarity import maxsim as st_maxsim

    if len(documents) == 0:
        return np.empty((0,), dtype=np.float32)
    scores = st_maxsim(
        [np.asarray(query, dtype=np.float32)],
        [np.asarray(d, dtype=np.float32) for d in documents],
        length_normalize=length_normalize,
    )
    return scores[0].cpu().numpy().astype(np.float32, copy=False)


class MultiVectorEmbedder(Embedder):
    """Embeds text, images (and PDF pages) into token-vector matrices with a late-interaction model.

    Takes the load and encode settings of :class:`~modalbridge.Embedder` (``batch_size``, ``normalize``,
    prompts, ``allow_fetch``, ``decode_workers``, ...), plus ``token_pool_factor`` (pool document tokens,
    see :class:`~modalbridge.embedder.EncodeSettings`). ``truncate_dim``, ``precision``,
    ``video_frames`` and ``image_decode`` do not apply to token matrices and are refused.
    """

    kind = "multivector"
    unsupported_settings = {
        "truncate_dim": "multi-vector models have no truncate_dim",
        "precision": "multi-vector embeddings are float32",
        "video_frames": "videos are not averaged into token matrices",
        "image_decode": "token matrices come from the model's own processor",
    }

    def __repr__(self) -> str:
        return f"MultiVectorEmbedder({self.load_settings.model_name_or_path!r}, device={self.load_settings.device!r})"

    @property
    def dimension(self) -> int:
        """The size of each token vector."""
        return int(self.model.get_embedding_dimension())

    @property
    def similarity_fn_name(self) -> str:
        """``"maxsim"`` or ``"meanmaxsim"``: how the model scores a query against a document."""
        return str(self.model.similarity_fn_name)

    @property
    def normalizes(self) -> bool:
        """Whether token vectors come out unit-length (``normalize=True``; retrieval models such as
        ColQwen2 normalise inside the model too)."""
        return self.encode_settings.normalize

    def token_pooling(self) -> Any:
        """The sentence-transformers token pooling applied to documents, or ``None``."""
        factor = self.encode_settings.token_pool_factor
        if factor is None:
            return None
        from sentence_transformers.multi_vector_encoder.modules import HierarchicalTokenPooling

        return HierarchicalTokenPooling(pool_factor=factor)

    # -- embedding: Embedder's validation, decoding and per-item errors; token matrices out ----------

    def embed_documents(self, items: Sequence[Any]) -> list[np.ndarray]:  # type: ignore[override]
        """One ``(tokens_i, dimension)`` float32 matrix per item, in input order."""
        return self._embed(items, "document")

    def embed_queries(self, items: Sequence[Any]) -> list[np.ndarray]:  # type: ignore[override]
        """One ``(tokens_i, dimension)`` float32 matrix per query, in input order."""
        return self._embed(items, "query")

    def _collect(self, rows: dict[int, Any], count: int) -> list[np.ndarray]:
        return [rows[i] for i in range(count)]

    def _encode(self, inputs: list[Any], role: str) -> list[np.ndarray]:
        settings = self.encode_settings
        prompt = settings.query_prompt if role == "query" else settings.document_prompt
        prompt_name = settings.query_prompt_name if role == "query" else settings.document_prompt_name
        if self.load_settings.uses_pool:  # device=[...]: the model's long-lived pool, as Embedder does
            from functools import partial

            from modalbridge.pool import get_pool

            encode = partial(get_pool(self.kind, self.load_settings).encode, role=role)
        else:
            encode = self.model.encode_query if role == "query" else self.model.encode_document
        matrices = encode(
            inputs,
            prompt_name=None if prompt is not None else prompt_name,
            prompt=prompt,
            batch_size=settings.batch_size,
            show_progress_bar=settings.show_progress_bar,
            convert_to_numpy=True,
            normalize_embeddings=settings.normalize,
            token_pooling=self.token_pooling() if role == "document" else None,
        )
        return [np.asarray(m, dtype=np.float32) for m in matrices]

    # -- scoring ----------------------------------------------------------------------------------------

    def score(self, query: np.ndarray, documents: Sequence[np.ndarray]) -> np.ndarray:
        """The model's late-interaction score (``model.similarity``: MaxSim or MeanMaxSim) of one query
        matrix against each document matrix: float32, shape ``(len(documents),)``."""
        return maxsim(query, documents, length_normalize=self.similarity_fn_name == "meanmaxsim")

    def rank(self, query: Any, documents: Sequence[Any], top_n: int | None = None) -> list[RankedItem]:
        """Embed ``query`` and ``documents`` (items of any modality the model takes) and order the
        documents by score, best first (ties keep input order): a reranking stage after any first-stage
        retriever, with the interface of :meth:`modalbridge.Reranker.rank`."""
        if top_n is not None and top_n < 0:
            raise ValueError(f"top_n must be at least 0, got {top_n}")
        query_matrix = self._embed([query], "query")[0] if documents else None
        if query_matrix is None:
            return []
        scores = self.score(query_matrix, self.embed_documents(documents))
        order = np.argsort(-scores, kind="stable")[: top_n if top_n is not None else None]
        return [RankedItem(int(i), float(scores[i])) for i in order]
