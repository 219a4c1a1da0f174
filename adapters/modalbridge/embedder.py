"""The embedding core every adapter uses: a SentenceTransformer behind explicit modalities.

Example::

    from modalbridge import Embedder, Image

    embedder = Embedder("sentence-transformers/clip-ViT-B-32", device="auto", normalize=True)
    docs = embedder.embed_documents(["a dog on a beach", Image("photos/dog.jpg")])   # (2, 512) float32
    query = embedder.embed_query("dog")                                              # (512,)

Constructing an Embedder loads nothing; the model is loaded on first use from the process-wide cache
(:mod:`modalbridge.loading`), so every adapter built with the same load settings shares one model.
``embed_documents`` / ``embed_queries`` equal ``model.encode_document`` / ``model.encode_query`` with the
same settings; mixed batches are encoded one modality at a time and returned in input order.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any, Literal, Sequence

import numpy as np

from modalbridge.inputs import Preparer, is_supported, model_modalities, validate
from modalbridge.items import Video, item_error, renamed_item_error
from modalbridge.loading import MODEL_CACHE, LoadSettings
from modalbridge.media import MediaError, sample_video_frames

Precision = Literal["float32", "int8", "uint8", "binary", "ubinary"]


@dataclass
class EncodeSettings:
    """Encode-time settings: they do not change the loaded model, so they are not part of its cache key."""

    batch_size: int = 32
    normalize: bool = False
    truncate_dim: int | None = None
    precision: Precision = "float32"
    query_prompt_name: str | None = None
    """Defaults to the model's own "query" prompt when it has one."""
    document_prompt_name: str | None = None
    """Defaults to the model's own "document" prompt when it has one."""
    query_prompt: str | None = None
    """A literal prompt for queries; overrides ``query_prompt_name``."""
    document_prompt: str | None = None
    show_progress_bar: bool = False
    allow_fetch: bool = False
    """Fetch http(s) media URLs. Off by default: nothing is fetched unless asked."""
    video_frames: int | None = None
    """For models without video support (CLIP-like image models): embed a video as the mean of this many
    evenly spaced frames (normalized when ``normalize`` is on or the model ends in a Normalize module).
    ``None`` (default) refuses videos on such models."""
    decode_workers: int = 8
    token_pool_factor: float | None = None
    """Multi-vector (late-interaction) models only: shrink each document to about ``1 / token_pool_factor``
    of its token vectors by hierarchical clustering (sentence-transformers' ``HierarchicalTokenPooling``);
    queries are never pooled. ``None`` (default) keeps every token."""

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {self.batch_size}")
        if self.token_pool_factor is not None and not self.token_pool_factor >= 1:
            raise ValueError(f"token_pool_factor must be at least 1 (or None), got {self.token_pool_factor}")
        if self.video_frames is not None and self.video_frames < 1:
            raise ValueError(f"video_frames must be at least 1, got {self.video_frames}")


class Embedder:
    """Embeds text, images, audio, video and combined items with a sentence-transformers model.

    Args:
        model_name_or_path: a hub name (e.g. ``"Qwen/Qwen3-VL-Embedding-2B"``) or a local folder.
        revision, device (``"auto"``: cuda, then mps, then cpu), dtype (``"float32"``/``"float16"``/
        ``"bfloat16"``), backend (``"torch"``/``"onnx"``/``"openvino"``), trust_remote_code (off unless
        asked), model_kwargs, processor_kwargs, config_kwargs, cache_folder, local_files_only: load
        settings (see :class:`~modalbridge.loading.LoadSettings`).
        Everything else: encode settings (see :class:`EncodeSettings`).
    """

    kind = "embedder"
    unsupported_settings = {"token_pool_factor": "it pools the token vectors of multi-vector models (MultiVectorEmbedder)"}
    """Encode settings this class refuses (name -> why), so that none is silently ignored."""

    def __init__(
        self,
        model_name_or_path: str,
        *,
        revision: str | None = None,
        device: str = "auto",
        dtype: str | None = None,
        backend: str = "torch",
        trust_remote_code: bool = False,
        model_kwargs: dict[str, Any] | None = None,
        processor_kwargs: dict[str, Any] | None = None,
        config_kwargs: dict[str, Any] | None = None,
        cache_folder: str | None = None,
        local_files_only: bool = False,
        **encode_settings: Any,
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
        )
        unknown = set(encode_settings) - {f.name for f in fields(EncodeSettings)}
        if unknown:
            raise TypeError(f"Embedder got unknown settings: {', '.join(sorted(unknown))}")
        self.encode_settings = EncodeSettings(**encode_settings)
        defaults = EncodeSettings()
        for name, reason in self.unsupported_settings.items():
            if getattr(self.encode_settings, name) != getattr(defaults, name):
                raise ValueError(f"{type(self).__name__} does not take {name}: {reason}")

    # -- configuration -------------------------------------------------------------------------------

    def config(self) -> dict[str, Any]:
        """Every setting, JSON-serializable; ``Embedder.from_config(e.config())`` rebuilds an equal one."""
        load = self.load_settings.to_dict()
        load.pop("max_length", None)  # a reranker-only load setting: Embedder() does not take it
        return {**load, **asdict(self.encode_settings)}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> "Embedder":
        config = dict(config)
        return cls(config.pop("model_name_or_path"), **config)

    def __repr__(self) -> str:
        return f"Embedder({self.load_settings.model_name_or_path!r}, device={self.load_settings.device!r})"

    # -- the model ------------------------------------------------------------------------------------

    @property
    def model(self):
        """The shared ``SentenceTransformer`` (loaded on first access)."""
        return MODEL_CACHE.get(self.kind, self.load_settings)

    @property
    def is_loaded(self) -> bool:
        return MODEL_CACHE.is_loaded(self.kind, self.load_settings)

    def release(self) -> bool:
        """Release the shared model for these load settings (for every adapter that shares it)."""
        return MODEL_CACHE.release(self.kind, self.load_settings)

    @property
    def modalities(self) -> list:
        return model_modalities(self.model)

    def supports(self, modality) -> bool:
        """Whether items of ``modality`` can be embedded (videos also via ``video_frames`` on image models)."""
        if modality == "video" and self._video_as_frames(self.modalities):
            return True
        return is_supported(modality, self.modalities)

    @property
    def dimension(self) -> int:
        model = self.model
        dim = self.encode_settings.truncate_dim or model.get_embedding_dimension()
        return int(dim)

    @property
    def similarity_fn_name(self) -> str:
        """The model's similarity function: ``"cosine"``, ``"dot"``, ``"euclidean"`` or ``"manhattan"``."""
        return str(self.model.similarity_fn_name or "cosine")

    @property
    def normalizes(self) -> bool:
        """Whether embeddings come out unit-length (``normalize=True`` or a Normalize module)."""
        from sentence_transformers.sentence_transformer.modules import Normalize

        return self.encode_settings.normalize or any(isinstance(m, Normalize) for m in self.model)

    # -- embedding ------------------------------------------------------------------------------------

    def embed_documents(self, items: Sequence[Any]) -> np.ndarray:
        """Embed items as documents (the document prompt): ``(len(items), dimension)``."""
        return self._embed(items, "document")

    def embed_queries(self, items: Sequence[Any]) -> np.ndarray:
        """Embed items as queries (the query prompt): ``(len(items), dimension)``."""
        return self._embed(items, "query")

    def embed_query(self, item: Any) -> np.ndarray:
        """Embed one query: ``(dimension,)``."""
        return self._embed([item], "query")[0]

    def embed_document(self, item: Any) -> np.ndarray:
        """Embed one document: ``(dimension,)``."""
        return self._embed([item], "document")[0]

    def _video_as_frames(self, modalities: list) -> bool:
        return (
            self.encode_settings.video_frames is not None
            and not is_supported("video", modalities)
            and is_supported("image", modalities)
        )

    def try_embed_documents(self, items: Sequence[Any]) -> tuple[dict[int, np.ndarray], dict[int, Exception]]:
        """Embed every item that can be embedded and say why the others cannot, instead of failing the
        whole call: returns ``(vectors, errors)``, position -> vector and position -> the error (its
        message names the item and the reason). For bulk indexing, where one unreadable file must not
        block the rest. Model loading errors are raised."""
        errors: dict[int, Exception] = {}
        vectors = self._embed(items, "document", errors)
        return vectors, errors

    def _embed(
        self, items: Sequence[Any], role: Literal["query", "document"], errors: dict[int, Exception] | None = None
    ) -> Any:
        """``(len(items), dim)``; or, when ``errors`` is given, position -> vector for the items that
        worked, with the failures recorded in ``errors`` rather than raised."""
        if isinstance(items, (str, bytes)) or not isinstance(items, Sequence):
            raise TypeError(f"expected a list of items, got {type(items).__name__}")
        model = self.model
        modalities = model_modalities(model)
        as_frames = self._video_as_frames(modalities)
        accepted = modalities + ["video"] if as_frames else modalities
        hints = self._hints(modalities)
        # Validate everything before any decoding or compute.
        if errors is None:
            item_modalities = dict(enumerate(validate(items, accepted, hints=hints)))
        else:
            item_modalities = {}
            for index, item in enumerate(items):
                try:
                    (item_modalities[index],) = validate([item], accepted, hints=hints)
                except (TypeError, ValueError) as exc:
                    errors[index] = renamed_item_error(exc, offset=index)
        if not items and errors is None:
            return self._collect({}, 0)

        groups: dict[Any, list[int]] = {}
        for index, modality in item_modalities.items():
            groups.setdefault(modality, []).append(index)
        preparer = Preparer(model, self.encode_settings.allow_fetch, self.encode_settings.decode_workers)
        rows: dict[int, np.ndarray] = {}
        for modality, indices in groups.items():
            group = [items[i] for i in indices]
            if modality == "video" and as_frames:
                rows.update(self._embed_videos_as_frames(group, indices, role, errors))
                continue
            decoded = preparer.many(group, indices=indices, errors=errors)
            inputs = decoded if errors is not None else dict(zip(indices, decoded))
            rows.update(self._encode_group(inputs, role, errors))
        if errors is not None:
            return rows
        return self._collect(rows, len(items))

    def _collect(self, rows: dict[int, Any], count: int) -> Any:
        """The result of a call from its rows (position -> vector): one ``(count, dimension)`` array.
        (:class:`~modalbridge.multivector.MultiVectorEmbedder` returns a list of token matrices.)"""
        if count == 0:
            return np.empty((0, self.dimension), dtype=np.float32)
        return np.stack([rows[i] for i in range(count)])

    def _encode_group(self, inputs: dict[int, Any], role: str, errors: dict[int, Exception] | None) -> dict[int, Any]:
        """Encode one modality's decoded inputs in one call. When collecting errors and the model fails on
        the batch, the inputs are encoded one by one so that only the culprit is set aside."""
        indices = list(inputs)
        if not indices:
            return {}
        try:
            vectors = self._encode([inputs[i] for i in indices], role)
        except Exception as exc:
            if errors is None:
                raise
            if len(indices) == 1:
                errors[indices[0]] = item_error(ValueError, "item", indices[0], f"{type(exc).__name__}: {exc}")
                return {}
            rows: dict[int, Any] = {}
            for index in indices:
                rows.update(self._encode_group({index: inputs[index]}, role, errors))
            return rows
        if len(vectors) != len(indices):  # a model that dropped inputs must never pass silently
            raise RuntimeError(f"the model returned {len(vectors)} embeddings for {len(indices)} inputs")
        return dict(zip(indices, vectors))

    @staticmethod
    def _hints(modalities: list) -> dict[str, str]:
        if is_supported("image", modalities):
            return {"video": "to embed videos as the mean of sampled frames, set video_frames=8"}
        return {}

    def _encode(self, inputs: list[Any], role: str) -> np.ndarray:
        settings = self.encode_settings
        prompt = settings.query_prompt if role == "query" else settings.document_prompt
        prompt_name = settings.query_prompt_name if role == "query" else settings.document_prompt_name
        encode = self.model.encode_query if role == "query" else self.model.encode_document
        vectors = encode(
            inputs,
            prompt_name=None if prompt is not None else prompt_name,
            prompt=prompt,
            batch_size=settings.batch_size,
            show_progress_bar=settings.show_progress_bar,
            precision=settings.precision,
            convert_to_numpy=True,
            normalize_embeddings=settings.normalize,
            truncate_dim=settings.truncate_dim,
        )
        vectors = np.asarray(vectors)
        return vectors.astype(np.float32, copy=False) if settings.precision == "float32" else vectors

    def _embed_videos_as_frames(
        self, videos: list[Video], indices: list[int], role: str, errors: dict[int, Exception] | None = None
    ) -> dict[int, np.ndarray]:
        settings = self.encode_settings
        frame_lists: dict[int, list[Any]] = {}
        for video, index in zip(videos, indices):
            try:
                frame_lists[index] = sample_video_frames(video, settings.video_frames, settings.allow_fetch)
            except MediaError as exc:
                error = item_error(MediaError, "item", index, str(exc))
                if errors is None:
                    raise error from None
                errors[index] = error
        flat = [frame for frames in frame_lists.values() for frame in frames]
        vectors = self._encode(flat, role).astype(np.float32) if flat else np.empty((0, 0), dtype=np.float32)
        out, start = {}, 0
        normalize = self.normalizes
        for index, frames in frame_lists.items():
            mean = vectors[start : start + len(frames)].mean(axis=0)
            start += len(frames)
            if normalize:
                mean = mean / max(np.linalg.norm(mean), 1e-12)
            out[index] = mean.astype(np.float32)
        return out
