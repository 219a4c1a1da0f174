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

from dataclasses import asdict, dataclass, field, fields
from functools import partial
from typing import Any, Iterable, Iterator, Literal, Sequence

import numpy as np

from modalbridge.device_images import IMAGE_DECODE_MODES, ImageDecode
from modalbridge.inputs import is_supported, model_modalities, validate
from modalbridge.loading import MODEL_CACHE, LoadSettings
from modalbridge.media import FETCH_MAX_BYTES, FETCH_TIMEOUT_S, FetchPolicy
from modalbridge.media.fetch import check_fetch_settings
from modalbridge.pipeline import Embedded, default_workers, stream_embeddings

Precision = Literal["float32", "int8", "uint8", "binary", "ubinary"]
PRECISIONS = ("float32", "int8", "uint8", "binary", "ubinary")


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
    decode_workers: int = field(default_factory=default_workers)
    """Threads that decode media ahead of the model; default: the CPUs this process may use
    (``len(os.sched_getaffinity(0))``)."""
    token_pool_factor: float | None = None
    """Multi-vector (late-interaction) models only: shrink each document to about ``1 / token_pool_factor``
    of its token vectors by hierarchical clustering (sentence-transformers' ``HierarchicalTokenPooling``);
    queries are never pooled. ``None`` (default) keeps every token."""
    fetch_timeout_s: float = FETCH_TIMEOUT_S
    """Total deadline of one fetch in seconds, redirects included (0 < x <= 3600)."""
    fetch_max_bytes: int = FETCH_MAX_BYTES
    """Largest fetched body in bytes (1 <= x <= 2**34; default 64 MiB)."""
    fetch_allowed_hosts: list[str] | None = None
    """Fetch only from these hosts (``"cdn.example.com"``, ``".example.com"`` for subdomains too);
    redirects to another host are followed only to these. ``None``: any public host, same-host redirects."""
    fetch_allow_private: bool = False
    """Also fetch from loopback, private and link-local addresses (refused by default, before connecting)."""
    quantization_ranges: list[list[float]] | None = None
    """For ``precision="int8"``/``"uint8"``: ``[[min, ...], [max, ...]]``, the per-dimension range of the
    float embeddings (after truncation), e.g. from :func:`calibration_ranges` over a sample of the corpus.
    Required for those precisions: ranges computed from each batch would make an item's vector depend on
    its batch neighbours, and a single query has no range at all."""
    image_decode: ImageDecode = "cpu"
    """How images reach CLIP-like models: ``"cpu"`` (Pillow and the model's processor: exactly what
    sentence-transformers gives), ``"gpu"`` (JPEGs decoded in batches on the model's device, resized and
    normalized there; see :mod:`modalbridge.device_images`), or ``"auto"`` (``"gpu"`` on CUDA when the
    model qualifies, else ``"cpu"``)."""

    def __post_init__(self) -> None:
        for name in ("batch_size", "decode_workers"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be at least 1 (an integer), got {value!r}")
        if self.token_pool_factor is not None and not self.token_pool_factor >= 1:
            raise ValueError(f"token_pool_factor must be at least 1 (or None), got {self.token_pool_factor}")
        if self.video_frames is not None and (
            isinstance(self.video_frames, bool) or not isinstance(self.video_frames, int) or self.video_frames < 1
        ):
            raise ValueError(f"video_frames must be at least 1 (an integer), got {self.video_frames!r}")
        if self.truncate_dim is not None and (
            isinstance(self.truncate_dim, bool) or not isinstance(self.truncate_dim, int) or self.truncate_dim < 1
        ):
            raise ValueError(f"truncate_dim must be a positive integer or None, got {self.truncate_dim!r}")
        if self.image_decode not in IMAGE_DECODE_MODES:
            raise ValueError(f"image_decode must be one of {', '.join(IMAGE_DECODE_MODES)}, got {self.image_decode!r}")
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {self.precision!r}")
        check_fetch_settings(self.fetch_timeout_s, self.fetch_max_bytes, self.fetch_allowed_hosts, self.fetch_allow_private)
        if self.fetch_allowed_hosts is not None:
            self.fetch_allowed_hosts = list(self.fetch_allowed_hosts)
        if self.precision in ("int8", "uint8"):
            if self.quantization_ranges is None:
                raise ValueError(
                    f"precision={self.precision!r} needs quantization_ranges: int8/uint8 map each dimension's "
                    "range onto 256 levels, and ranges computed per call would make a vector depend on its "
                    "batch neighbours (and a single query has none). Compute them once with "
                    "modalbridge.calibration_ranges(embedder, sample_items), or use precision='binary'/'float32'"
                )
            ranges = np.asarray(self.quantization_ranges, dtype=np.float64)
            if ranges.ndim != 2 or ranges.shape[0] != 2 or ranges.shape[1] < 1 or not np.isfinite(ranges).all():
                raise ValueError(
                    "quantization_ranges must be [[min, ...], [max, ...]] of finite numbers (one per dimension), "
                    f"got an array of shape {ranges.shape}"
                )
            if (ranges[1] < ranges[0]).any():
                raise ValueError("quantization_ranges: every max must be at least its min")
            self.quantization_ranges = ranges.tolist()
        elif self.quantization_ranges is not None:
            raise ValueError(f"quantization_ranges is only for precision 'int8' or 'uint8', not {self.precision!r}")

    def fetch_policy(self) -> FetchPolicy:
        """The bounds of every fetch (see :mod:`modalbridge.media.fetch`)."""
        return FetchPolicy(
            timeout_s=self.fetch_timeout_s,
            max_bytes=self.fetch_max_bytes,
            allowed_hosts=None if self.fetch_allowed_hosts is None else tuple(self.fetch_allowed_hosts),
            allow_private=self.fetch_allow_private,
        )


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
        device: str | Sequence[str] = "auto",
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
        defaults = EncodeSettings()
        for name, reason in self.unsupported_settings.items():  # before the values' own checks
            if name in encode_settings and encode_settings[name] != getattr(defaults, name):
                raise ValueError(f"{type(self).__name__} does not take {name}: {reason}")
        self.encode_settings = EncodeSettings(**encode_settings)

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
