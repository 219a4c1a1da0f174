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

from dataclasses import asdict, dataclass, fields
from typing import Any, NamedTuple, Sequence

import numpy as np

from modalbridge.inputs import Preparer, check_finite_rows, model_modalities, validate
from modalbridge.loading import MODEL_CACHE, LoadSettings
from modalbridge.media import FETCH_MAX_BYTES, FETCH_TIMEOUT_S, FetchPolicy
from modalbridge.media.fetch import check_fetch_settings


class RankedItem(NamedTuple):
    """One ranked document: its index in the input list and its score."""

    index: int
    score: float


@dataclass
class RerankSettings:
    """Scoring-time settings (not part of the model's cache key)."""

    batch_size: int = 32
    show_progress_bar: bool = False
    allow_fetch: bool = False
    """Fetch http(s) media URLs. Off by default."""
    prompt_name: str | None = None
    prompt: str | None = None
    decode_workers: int = 8
    fetch_timeout_s: float = FETCH_TIMEOUT_S
    """Total deadline of one fetch in seconds (see :class:`~modalbridge.EncodeSettings`)."""
    fetch_max_bytes: int = FETCH_MAX_BYTES
    """Largest fetched body in bytes."""
    fetch_allowed_hosts: list[str] | None = None
    """Fetch only from these hosts (``None``: any public host)."""
    fetch_allow_private: bool = False
    """Also fetch from loopback, private and link-local addresses."""

    def __post_init__(self) -> None:
        for name in ("batch_size", "decode_workers"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be at least 1 (an integer), got {value!r}")
        check_fetch_settings(self.fetch_timeout_s, self.fetch_max_bytes, self.fetch_allowed_hosts, self.fetch_allow_private)

    def fetch_policy(self) -> FetchPolicy:
        """The bounds of every fetch (see :mod:`modalbridge.media.fetch`)."""
        return FetchPolicy(
            timeout_s=self.fetch_timeout_s,
            max_bytes=self.fetch_max_bytes,
            allowed_hosts=None if self.fetch_allowed_hosts is None else tuple(self.fetch_allowed_hosts),
            allow_private=self.fetch_allow_private,
        )


class Reranker:
    """Scores (query, document) pairs of any supported modalities with a sentence-transformers CrossEncoder.

    Load settings are those of :class:`~modalbridge.Embedder` plus ``max_length``; the model is shared
    through the process-wide cache and loaded on first use.
    """

    kind = "reranker"

    def __init__(
        self,
        model_name_or_path: str,
        *,
        revision: str | None = None,
        device: str | Sequence[str] = "auto",
        dtype: str | None = None,
        backend: str = "torch",
        trust_remote_code: bool = False,
        model_kwargs: dict[str, Any] | None = None,
        processor_kwargs: dict[str, Any] | None = None,
        config_kwargs: dict[str, Any] | None = None,
        cache_folder: str | None = None,
        local_files_only: bool = False,
        max_length: int | None = None,
        **rerank_settings: Any,
    ) -> None:
        self.load_settings = LoadSettings(
            model_name_or_path,
            revision=revision,
            device=device,
            dtype=dtype,
            backend=backend,
            trust_remote_code=trust_remote_code,
            model_kwargs=dict(model_kwargs or {}),
            processor_kwargs=dict(processor_kwargs or {}),
            config_kwargs=dict(config_kwargs or {}),
            cache_folder=cache_folder,
            local_files_only=local_files_only,
            max_length=max_length,
        )
        unknown = set(rerank_settings) - {f.name for f in fields(RerankSettings)}
        if unknown:
            raise TypeError(f"Reranker got unknown settings: {', '.join(sorted(unknown))}")
        self.rerank_settings = RerankSettings(**rerank_settings)

    def config(self) -> dict[str, Any]:
        """Every setting, JSON-serializable; ``Reranker.from_config(r.config())`` rebuilds an equal one."""
        return {**self.load_settings.to_dict(), **asdict(self.rerank_settings)}

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
        preparer = Preparer(model, settings.allow_fetch, settings.decode_workers, settings.fetch_policy())
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
