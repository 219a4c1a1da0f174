"""The reranking core every adapter uses: a CrossEncoder behind explicit modalities.

Example::

    from modalbridge import Image, Reranker

    reranker = Reranker("Qwen/Qwen3-VL-Reranker-2B", device="auto")
    scores = reranker.score("a red bicycle", ["a bike by a wall", Image("photos/bike.jpg")])
    for hit in reranker.rank("a red bicycle", documents, top_n=3):
        print(hit.index, hit.score)

``score`` equals ``CrossEncoder.predict([(query, d) for d in documents])`` and ``rank`` equals
``CrossEncoder.rank``, with queries and documents of any modality the model takes. Documents are scored
one modality at a time, so a document's score never depends on what else is in the list.
"""

from __future__ import annotations

from typing import Any, NamedTuple, Sequence

import numpy as np

from modalbridge.inputs import Preparer, check_finite_rows, model_modalities, validate
from modalbridge.loading import MODEL_CACHE
from modalbridge.settings import LoadSettings, RerankSettings, split

__all__ = ["LoadSettings", "RankedItem", "RerankSettings", "Reranker"]


class RankedItem(NamedTuple):
    """One ranked document: its index in the input list and its score."""

    index: int
    score: float


class Reranker:
    """Scores (query, document) pairs of any supported modalities with a sentence-transformers CrossEncoder.

    Args:
        model_name_or_path: a hub name or a local folder of a CrossEncoder.
        **settings: any reranker setting of :mod:`modalbridge.settings`: the load settings
            (:class:`~modalbridge.settings.LoadSettings`, ``max_length`` included) and the scoring settings
            (:class:`~modalbridge.settings.RerankSettings`). The model is shared through the process-wide
            cache and loaded on first use.
    """

    kind = "reranker"

    def __init__(self, model_name_or_path: str, **settings: Any) -> None:
        self.load_settings, self.rerank_settings = split("reranker", model_name_or_path, settings, "Reranker")

    def config(self) -> dict[str, Any]:
        """Every setting, JSON-serializable; ``Reranker.from_config(r.config())`` rebuilds an equal one."""
        return {**self.load_settings.to_dict(), **self.rerank_settings.to_dict()}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> "Reranker":
        config = dict(config)
        return cls(config.pop("model_name_or_path"), **config)

    def __repr__(self) -> str:
        return f"Reranker({self.load_settings.model_name_or_path!r}, device={self.load_settings.device!r})"

    @property
    def model(self):
        """The shared ``CrossEncoder`` (loaded on first access)."""
        return MODEL_CACHE.get("reranker", self.load_settings)

    @property
    def is_loaded(self) -> bool:
        return MODEL_CACHE.is_loaded("reranker", self.load_settings)

    def release(self) -> bool:
        """Release the shared model for these load settings."""
        return MODEL_CACHE.release("reranker", self.load_settings)

    @property
    def modalities(self) -> list:
        return model_modalities(self.model)

    def score(self, query: Any, documents: Sequence[Any]) -> np.ndarray:
        """One float32 score per document, in input order."""
        if isinstance(documents, (str, bytes)) or not isinstance(documents, Sequence):
            raise TypeError(f"documents must be a list, got {type(documents).__name__}")
        model = self.model
        modalities = model_modalities(model)
        (query_modality,) = validate([query], modalities, label="query")
        document_modalities = validate(documents, modalities, label="document")
        if not documents:
            return np.empty((0,), dtype=np.float32)

        settings = self.rerank_settings
        preparer = Preparer(model, settings.allow_fetch, settings.decode_workers, settings.fetch_policy(), pdf_dpi=settings.pdf_dpi)
        prepared_query = None
        groups: dict[Any, list[int]] = {}
        for index, modality in enumerate(document_modalities):
            groups.setdefault(modality, []).append(index)
        scores = np.empty(len(documents), dtype=np.float32)
        for modality, indices in groups.items():
            text_pair = query_modality == "text" and modality == "text"
            if text_pair:  # a (str, str) pair is always read as text by sentence-transformers
                pairs = [(query, documents[i]) for i in indices]
            else:
                if prepared_query is None:  # each side of a media pair is read on its own: keep text text
                    prepared_query = preparer.many([query], in_pair=True, label="query")[0]
                prepared = preparer.many([documents[i] for i in indices], in_pair=True, label="document", indices=indices)
                pairs = [(prepared_query, document) for document in prepared]
            predict = model.predict
            if self.load_settings.uses_pool:  # device=[...]: the model's long-lived pool
                from modalbridge.pool import get_pool

                predict = get_pool(self.kind, self.load_settings).predict
            group_scores = np.asarray(
                predict(
                    pairs,
                    batch_size=settings.batch_size,
                    show_progress_bar=settings.show_progress_bar,
                    prompt_name=settings.prompt_name,
                    prompt=settings.prompt,
                    convert_to_numpy=True,
                ),
                dtype=np.float32,
            ).reshape(len(indices), -1)
            if group_scores.shape[1] != 1:
                raise ValueError(
                    f"this reranker returns {group_scores.shape[1]} scores per pair; a reranker needs one"
                )
            scores[indices] = group_scores[:, 0]
        bad = check_finite_rows(scores, list(range(len(documents))), what="score", label="document")
        if bad:  # a NaN score would silently rank last
            raise next(iter(bad.values()))
        return scores

    def rank(self, query: Any, documents: Sequence[Any], top_n: int | None = None) -> list[RankedItem]:
        """Documents ordered by score, best first (ties keep input order); at most ``top_n``."""
        if top_n is not None and top_n < 0:
            raise ValueError(f"top_n must be at least 0, got {top_n}")
        scores = self.score(query, documents)
        order = np.argsort(-scores, kind="stable")
        if top_n is not None:
            order = order[:top_n]
        return [RankedItem(int(i), float(scores[i])) for i in order]
