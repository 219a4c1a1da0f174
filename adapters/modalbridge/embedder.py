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

from functools import partial
from typing import Any, Iterable, Iterator, Literal, Sequence

import numpy as np

from modalbridge.inputs import is_supported, model_modalities, validate
from modalbridge.loading import MODEL_CACHE
from modalbridge.pipeline import Embedded, stream_embeddings
from modalbridge.settings import SETTINGS, EncodeSettings, LoadSettings, names, split

__all__ = ["Embedder", "EncodeSettings", "LoadSettings"]


class Embedder:
    """Embeds text, images, audio, video and combined items with a sentence-transformers model.

    Args:
        model_name_or_path: a hub name (e.g. ``"Qwen/Qwen3-VL-Embedding-2B"``) or a local folder.
        **settings: any embedder setting of :mod:`modalbridge.settings` — load settings (``revision``,
            ``device``, ``dtype``, ``backend``, ``trust_remote_code``, ``model_kwargs``, ...; see
            :class:`~modalbridge.settings.LoadSettings`) and encode settings (``batch_size``,
            ``normalize``, prompts, ...; see :class:`~modalbridge.settings.EncodeSettings`). An unknown
            name is a ``TypeError``; a bad value a ``ValueError`` naming the setting.
    """

    kind = "embedder"
    unsupported_settings = {"token_pool_factor": "it pools the token vectors of multi-vector models (MultiVectorEmbedder)"}
    """Encode settings this class refuses (name -> why), so that none is silently ignored."""

    def __init__(self, model_name_or_path: str, **settings: Any) -> None:
        for name, reason in self.unsupported_settings.items():
            default = SETTINGS[name].default
            if settings.pop(name, default) != default:
                raise ValueError(f"{type(self).__name__} does not take {name}: {reason}")
        owner = type(self).__name__
        self.load_settings, self.encode_settings = split(self.kind, model_name_or_path, settings, owner)

    # -- configuration -------------------------------------------------------------------------------

    def config(self) -> dict[str, Any]:
        """Every setting, JSON-serializable; ``Embedder.from_config(e.config())`` rebuilds an equal one."""
        run = {name: value for name, value in self.encode_settings.to_dict().items() if name in names(self.kind)}
        return {**self.load_settings.to_dict(), **run}

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
        """The length of the vectors this embedder returns: the model's dimension, or ``truncate_dim``
        (checked against it), in bytes (``ceil(d / 8)``) for the packed ``binary``/``ubinary`` precisions."""
        dim = self._float_dimension(self.model)
        return -(-dim // 8) if self.encode_settings.precision in ("binary", "ubinary") else dim

    def _float_dimension(self, model: Any) -> int:
        """The float embedding length; refuses a ``truncate_dim`` larger than the model's dimension."""
        full = model.get_embedding_dimension()
        truncate = self.encode_settings.truncate_dim
        if truncate is None:
            return int(full)
        if full is not None and truncate > full:
            raise ValueError(
                f"truncate_dim={truncate} is larger than the model's embedding dimension {full}; "
                f"use a value from 1 to {full}"
            )
        return int(truncate)

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

    def batch_order(self, texts: Sequence[str]) -> list[int]:
        """The order sentence-transformers' ``encode`` batches ``texts`` in: longest first. For callers that
        cut a long list into batches of their own (LlamaIndex's ``embed_batch_size``): batches of texts of
        similar length pad little, as inside one ``encode`` call::

            order = embedder.batch_order(texts)
            rows = embed_in_batches([texts[i] for i in order])  # then put row k back at order[k]
        """
        length = getattr(self.model, "_input_length", None) or getattr(self.model, "_text_length", None)
        if length is None:  # a model that does not sort (kept in the caller's order)
            return list(range(len(texts)))
        return [int(i) for i in np.argsort([-length(text) for text in texts], kind="stable")]

    def stream(self, items: Iterable[Any], *, role: Literal["query", "document"] = "document") -> Iterator[Embedded]:
        """Embed any iterable of items (a list, a generator, a folder walk), read lazily, and yield one
        :class:`~modalbridge.pipeline.Embedded` per item in input order: ``index``, and ``vector`` or
        ``error`` (its message names the item and the reason, as :meth:`try_embed_documents` does).

        Decoding and the model's preprocessing run in workers a few batches ahead of the model, so
        memory does not grow with the number of items::

            for result in embedder.stream(Image(p) for p in Path("photos").rglob("*.jpg")):
                if result.error is None:
                    vectors[result.index] = result.vector

        Vectors equal ``model.encode_document`` (``role="query"``: ``encode_query``). Model loading and
        setting errors are raised."""
        if role not in ("query", "document"):
            raise ValueError(f"role must be 'query' or 'document', got {role!r}")
        return stream_embeddings(self, items, role)

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
        block the rest. Model loading errors are raised. (:meth:`stream` gives the same one at a time.)"""
        if isinstance(items, (str, bytes)) or not isinstance(items, Sequence):
            raise TypeError(f"expected a list of items, got {type(items).__name__}")
        vectors: dict[int, np.ndarray] = {}
        errors: dict[int, Exception] = {}
        for result in stream_embeddings(self, items, "document"):
            if result.error is None:
                vectors[result.index] = result.vector
            else:
                errors[result.index] = result.error
        return vectors, errors

    def _embed(self, items: Sequence[Any], role: Literal["query", "document"]) -> Any:
        """``(len(items), dim)``: every item is validated before any decoding or compute, then streamed;
        the first failure is raised, naming the item."""
        if isinstance(items, (str, bytes)) or not isinstance(items, Sequence):
            raise TypeError(f"expected a list of items, got {type(items).__name__}")
        model = self.model
        self._check_dimensions(model)
        modalities = model_modalities(model)
        accepted = modalities + ["video"] if self._video_as_frames(modalities) else modalities
        item_modalities = validate(items, accepted, hints=self._hints(modalities))
        results = stream_embeddings(self, items, role, True, item_modalities) if items else []
        return self._collect({result.index: result.vector for result in results}, len(items))

    def _collect(self, rows: dict[int, Any], count: int) -> Any:
        """The result of a call from its rows (position -> vector): one ``(count, dimension)`` array.
        (:class:`~modalbridge.multivector.MultiVectorEmbedder` returns a list of token matrices.)"""
        if count == 0:
            return np.empty((0, self.dimension), dtype=np.float32)
        return np.stack([rows[i] for i in range(count)])

    def _check_dimensions(self, model: Any) -> None:
        dim = self._float_dimension(model)
        ranges = self.encode_settings.quantization_ranges
        if ranges is not None and len(ranges[0]) != dim:
            raise ValueError(
                f"quantization_ranges has {len(ranges[0])} dimensions but the embeddings have {dim}; "
                "compute them with modalbridge.calibration_ranges for this model and truncate_dim"
            )

    def quantize(self, vectors: np.ndarray) -> np.ndarray:
        """Float32 embeddings to this embedder's ``precision`` (as sentence-transformers'
        ``quantize_embeddings``; int8/uint8 with the fixed ``quantization_ranges``, values clipped to them)."""
        settings = self.encode_settings
        vectors = np.asarray(vectors, dtype=np.float32)
        if settings.precision == "float32":
            return vectors
        from sentence_transformers.util.quantization import quantize_embeddings

        ranges = None
        if settings.quantization_ranges is not None:
            ranges = np.asarray(settings.quantization_ranges, dtype=np.float32)
            # Outside the calibration range sentence-transformers' integer cast wraps around (129 -> -127):
            # clip first, so an unusual item saturates instead of flipping sign.
            vectors = np.clip(vectors, ranges[0], ranges[1])
        return quantize_embeddings(vectors, precision=settings.precision, ranges=ranges)

    @staticmethod
    def _hints(modalities: list) -> dict[str, str]:
        if is_supported("image", modalities):
            return {"video": "to embed videos as the mean of sampled frames, set video_frames=8"}
        return {}

    def _encode(self, inputs: list[Any], role: str) -> Any:
        """Float vectors for decoded inputs in one ``encode_document`` / ``encode_query`` call, or the
        model's pool (finite checks and precision are applied by the pipeline). The streaming path splits
        this call into preprocess (in a worker) and forward; a subclass that overrides it
        (:class:`~modalbridge.multivector.MultiVectorEmbedder`) is called as is, once per batch."""
        settings = self.encode_settings
        prompt = settings.query_prompt if role == "query" else settings.document_prompt
        prompt_name = settings.query_prompt_name if role == "query" else settings.document_prompt_name
        if self.load_settings.uses_pool:  # device=[...]: the model's long-lived pool
            from modalbridge.pool import get_pool

            encode = partial(get_pool(self.kind, self.load_settings).encode, role=role)
        else:
            encode = self.model.encode_query if role == "query" else self.model.encode_document
        vectors = encode(
            inputs,
            prompt_name=None if prompt is not None else prompt_name,
            prompt=prompt,
            batch_size=settings.batch_size,
            show_progress_bar=False,  # the pipeline shows one bar for the whole call
            precision="float32",  # quantized by the pipeline, with fixed ranges and after frame means
            convert_to_numpy=True,
            normalize_embeddings=settings.normalize,
            truncate_dim=settings.truncate_dim,
        )
        return np.asarray(vectors, dtype=np.float32)


def calibration_ranges(embedder: Embedder, items: Sequence[Any]) -> list[list[float]]:
    """``[[min, ...], [max, ...]]`` of the float embeddings of ``items`` (documents, with ``embedder``'s
    model, prompts, normalization and ``truncate_dim``): the ``quantization_ranges`` for
    ``precision="int8"``/``"uint8"``. Use a few hundred items representative of the corpus; store the
    result with the settings, so that every vector is quantized with the same ranges::

        ranges = calibration_ranges(Embedder("clip"), sample)
        int8 = Embedder("clip", precision="int8", quantization_ranges=ranges)
    """
    config = embedder.config()
    config.update(precision="float32", quantization_ranges=None)
    vectors = Embedder.from_config(config).embed_documents(items)
    if len(vectors) < 2:
        raise ValueError("calibration_ranges needs at least 2 items (a range from one embedding is empty)")
    return [vectors.min(axis=0).tolist(), vectors.max(axis=0).tolist()]
