"""Chroma adapter: a persistent multimodal embedding function, a media data loader, and reranking.

Needs the ``[chroma]`` extra (``pip install 'modalbridge[chroma]'``)::

    import chromadb
    from modalbridge import Reranker
    from modalbridge.chroma import MultimodalDataLoader, MultimodalEmbeddingFunction, rerank_query_result

    client = chromadb.PersistentClient("db")
    collection = client.create_collection(
        "media",
        embedding_function=MultimodalEmbeddingFunction("sentence-transformers/clip-ViT-B-32"),
        data_loader=MultimodalDataLoader(),
    )
    collection.add(ids=["d1"], documents=["a dog on a beach"])        # text (always text)
    collection.add(ids=["i1"], images=[photo_array])                    # (H, W, 3) arrays
    collection.add(ids=["u1", "u2"], uris=["cat.jpg", "dog.png"])       # files, by extension
    hits = collection.query(query_texts=["a dog"], n_results=10, include=["documents", "uris", "distances"])
    best = rerank_query_result(hits, "a dog", Reranker("Qwen/Qwen3-VL-Reranker-2B"), top_n=3)

How it maps onto Chroma:

* :class:`MultimodalEmbeddingFunction` wraps one :class:`~modalbridge.Embedder`. Chroma stores its name
  (``"modalbridge"``) and :meth:`~MultimodalEmbeddingFunction.get_config` with the collection, and
  rebuilds it with :meth:`~MultimodalEmbeddingFunction.build_from_config` when the collection is opened
  without a function (``client.get_collection(name)``); this module must be imported first so the name
  is registered. Rebuilding is cheap: models come from the core's process-wide cache.
* ``add``/``upsert`` embed with the document prompt (``__call__``), ``query`` with the query prompt
  (``embed_query``). A ``str`` is always text; a numpy array (Chroma's image type) is an image; the
  tagged items :class:`MultimodalDataLoader` makes from URIs are embedded as what they are.
* A collection's distance space defaults to the model's similarity function (cosine -> ``"cosine"``,
  dot -> ``"ip"``, euclidean -> ``"l2"``), see :meth:`~MultimodalEmbeddingFunction.default_space`.
* ``trust_remote_code=True`` is never switched on by reading a stored configuration alone: see
  :func:`allow_remote_code`.
"""

from __future__ import annotations

import os
import re
import warnings
from dataclasses import dataclass, fields
from typing import Any, Literal, Sequence

import numpy as np

try:
    from chromadb.api.types import Embeddable, EmbeddingFunction, Embeddings, Space
    from chromadb.utils.embedding_functions import register_embedding_function
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError("modalbridge.chroma needs chromadb: pip install 'modalbridge[chroma]'") from exc

from modalbridge.embedder import Embedder, EncodeSettings
from modalbridge.items import Audio, Combined, Image, MediaItem, Video, describe_item, renamed_item_error
from modalbridge.loading import LoadSettings
from modalbridge.media import MediaError, decode_image, map_parallel, read_audio, read_video, tag_uri
from modalbridge.reranker import Reranker

try:
    from PIL.Image import Image as PILImage
except ImportError:  # pragma: no cover
    PILImage = None  # type: ignore[assignment,misc]

__all__ = [
    "ENV_TRUST_REMOTE_CODE",
    "EMBEDDING_FUNCTION_NAME",
    "UPDATABLE_SETTINGS",
    "LoadedMedia",
    "MultimodalDataLoader",
    "MultimodalEmbeddingFunction",
    "RemoteCodeNotAllowedError",
    "RerankedResult",
    "allow_remote_code",
    "remote_code_allowed",
    "rerank_query_result",
    "rerank_query_results",
    "update_embedding_function",
]

EMBEDDING_FUNCTION_NAME = "modalbridge"
"""The name Chroma stores with a collection, and looks up in its registry when reopening it."""

ENV_TRUST_REMOTE_CODE = "MODALBRIDGE_TRUST_REMOTE_CODE"
"""Set to ``1`` to let stored configurations with ``trust_remote_code=True`` be rebuilt (see
:func:`allow_remote_code`)."""

UPDATABLE_SETTINGS = frozenset(
    {"device", "batch_size", "show_progress_bar", "decode_workers", "allow_fetch", "cache_folder", "local_files_only"}
)
"""Settings a collection's embedding function may change (``collection.modify(configuration=...)``):
they change where and how fast vectors are computed, never the vectors. Every other setting (model,
revision, dtype, backend, remote code, model/processor/config kwargs, normalize, truncate_dim,
precision, prompts, video_frames) is refused by :meth:`MultimodalEmbeddingFunction.validate_config_update`."""

_SETTING_NAMES = frozenset(
    {f.name for f in fields(LoadSettings)} - {"max_length"} | {f.name for f in fields(EncodeSettings)}
)

_SPACE_OF_SIMILARITY: dict[str, Space] = {"cosine": "cosine", "dot": "ip", "euclidean": "l2", "manhattan": "l2"}
_ALL_SPACES: list[Space] = ["cosine", "ip", "l2"]


# -- remote code -------------------------------------------------------------------------------------

_remote_code_switch = False
_remote_code_consents: set[tuple[str, str | None]] = set()


class RemoteCodeNotAllowedError(PermissionError):
    """A stored configuration asks for ``trust_remote_code=True`` and this process has not opted in."""


def allow_remote_code(allow: bool = True) -> None:
    """Let :meth:`MultimodalEmbeddingFunction.build_from_config` rebuild functions whose stored
    configuration has ``trust_remote_code=True`` (process-wide; the same as ``MODALBRIDGE_TRUST_REMOTE_CODE=1``).

    Without this, such a configuration is rebuilt only for a model (and revision) that this process
    itself constructed a ``MultimodalEmbeddingFunction(..., trust_remote_code=True)`` for: a collection
    created by someone else can never make this process run a model's code just by being opened."""
    global _remote_code_switch
    _remote_code_switch = bool(allow)


def _model_key(model_name_or_path: str, revision: str | None) -> tuple[str, str | None]:
    path = os.fspath(model_name_or_path)
    return (os.path.abspath(path) if os.path.isdir(path) else path, revision)


def remote_code_allowed(model_name_or_path: str, revision: str | None = None) -> bool:
    """Whether a stored configuration with ``trust_remote_code=True`` for this model may be rebuilt."""
    return (
        _remote_code_switch
        or os.environ.get(ENV_TRUST_REMOTE_CODE) == "1"
        or _model_key(model_name_or_path, revision) in _remote_code_consents
    )


# -- embedding function -------------------------------------------------------------------------------

def _as_item(value: Any, name: str) -> Any:
    """What Chroma hands over, as a core item: str -> text, numpy array -> image, tagged items as is."""
    if isinstance(value, (str, MediaItem, Combined)):
        return value
    if isinstance(value, np.ndarray):  # Chroma's Image type (add(images=...), query_images=...)
        return Image(value)
    if PILImage is not None and isinstance(value, PILImage):
        return value
    if value is None:
        raise TypeError(f"{name}: None is not an input (a record without a URI or document?)")
    raise TypeError(
        f"{name}: {describe_item(value)} is not an input: expected a str (text), a numpy image array, "
        "or a modalbridge Image/Audio/Video/Combined"
    )


def _json_problem(value: Any, where: str) -> str | None:
    """Where in ``value`` something is not JSON (Chroma stores the configuration as JSON)."""
    if isinstance(value, dict):
        for key, inner in value.items():
            if not isinstance(key, str):
                return f"{where}: key {key!r} is not a string"
            problem = _json_problem(inner, f"{where}[{key!r}]")
            if problem:
                return problem
        return None
    if isinstance(value, (list, tuple)):
        for i, inner in enumerate(value):
            problem = _json_problem(inner, f"{where}[{i}]")
            if problem:
                return problem
        return None
    if value is None or isinstance(value, (str, bool, int, float)):
        return None
    return f"{where} is a {type(value).__name__}"


@register_embedding_function
class MultimodalEmbeddingFunction(EmbeddingFunction[Embeddable]):
    """A Chroma embedding function for text, images, audio and video, persisted with the collection.

    Args:
        model_name_or_path: a hub name or a local folder of a sentence-transformers model.
        **settings: the load and encode settings of :class:`~modalbridge.Embedder` (``revision``,
            ``device``, ``dtype``, ``backend``, ``trust_remote_code``, ``model_kwargs``,
            ``processor_kwargs``, ``config_kwargs``, ``cache_folder``, ``local_files_only``,
            ``batch_size``, ``normalize``, ``truncate_dim``, ``precision``, ``query_prompt_name``,
            ``document_prompt_name``, ``query_prompt``, ``document_prompt``, ``show_progress_bar``,
            ``allow_fetch``, ``video_frames``, ``decode_workers``). They are stored with the collection,
            so they must be JSON values (``dtype="float16"``, not ``torch.float16``).

    Constructing loads nothing; the model is loaded on first use and shared (``ef.embedder.model is
    Embedder(same settings).model``). Vectors are float32 (Chroma stores float32; quantized
    ``precision`` values are cast).
    """

    def __init__(self, model_name_or_path: str, **settings: Any) -> None:
        self._setup(model_name_or_path, settings, consent=True)

    def _setup(self, model_name_or_path: str, settings: dict[str, Any], consent: bool) -> None:
        self._embedder = Embedder(model_name_or_path, **settings)
        problem = _json_problem(self._embedder.config(), "settings")
        if problem:
            raise TypeError(
                f"MultimodalEmbeddingFunction: {problem}, which cannot be stored with a Chroma collection; "
                "use JSON values (e.g. dtype='float16' instead of torch.float16)"
            )
        load = self._embedder.load_settings
        if consent and load.trust_remote_code:  # constructed by the caller in this process: consent for this model
            _remote_code_consents.add(_model_key(load.model_name_or_path, load.revision))

    @classmethod
    def from_embedder(cls, embedder: Embedder) -> "MultimodalEmbeddingFunction":
        """A function with the settings (and so the shared model) of an existing :class:`Embedder`."""
        return cls(**embedder.config())

    @property
    def embedder(self) -> Embedder:
        """The wrapped core :class:`~modalbridge.Embedder`."""
        return self._embedder

    def __repr__(self) -> str:
        load = self._embedder.load_settings
        return f"MultimodalEmbeddingFunction({load.model_name_or_path!r}, device={load.device!r})"

    # -- embedding ------------------------------------------------------------------------------------

    def __call__(self, input: Embeddable) -> Embeddings:
        """Embed documents (``add``/``upsert``/``update``): texts, image arrays, or loaded media."""
        return self._embed(input, "document")

    def embed_query(self, input: Embeddable) -> Embeddings:
        """Embed queries (``query(query_texts=/query_images=/query_uris=)``) with the query prompt."""
        return self._embed(input, "query")

    def _embed(self, input: Any, role: Literal["query", "document"]) -> Embeddings:
        if isinstance(input, (str, bytes, np.ndarray)) or not isinstance(input, Sequence):
            raise TypeError(f"expected a list of inputs, got {type(input).__name__}")
        uris = getattr(input, "uris", None)
        names = [None if uri is None else f"uri {uri!r}" for uri in uris] if uris is not None else None
        try:
            items = [_as_item(value, f"item {index}") for index, value in enumerate(input)]
            if role == "query":
                vectors = self._embedder.embed_queries(items)
            else:
                vectors = self._embedder.embed_documents(items)
        except (ValueError, TypeError) as exc:
            raise renamed_item_error(exc, names) from None
        return [np.asarray(vector, dtype=np.float32) for vector in vectors]

    # -- configuration --------------------------------------------------------------------------------

    @staticmethod
    def name() -> str:
        return EMBEDDING_FUNCTION_NAME

    def get_config(self) -> dict[str, Any]:
        """Every setting of the wrapped :class:`Embedder` (JSON). A relative local model folder is stored
        as an absolute path, so the collection can be reopened from another working directory."""
        config = self._embedder.config()
        path = config["model_name_or_path"]
        if os.path.isdir(path):
            config["model_name_or_path"] = os.path.abspath(path)
        return config

    @staticmethod
    def build_from_config(config: dict[str, Any]) -> "MultimodalEmbeddingFunction":
        """Rebuild from a stored configuration (cheap: nothing is loaded).

        Raises :class:`RemoteCodeNotAllowedError` for ``trust_remote_code=True`` unless this process
        opted in (:func:`allow_remote_code`, ``MODALBRIDGE_TRUST_REMOTE_CODE=1``) or itself constructed a
        function with ``trust_remote_code=True`` for the same model and revision."""
        MultimodalEmbeddingFunction.validate_config(config)
        model, revision = config["model_name_or_path"], config.get("revision")
        if config.get("trust_remote_code") and not remote_code_allowed(model, revision):
            raise RemoteCodeNotAllowedError(
                f"the stored embedding function for model {model!r} (revision {revision!r}) has "
                "trust_remote_code=True, and modalbridge never runs a model's code because a stored "
                "configuration asks for it. If you trust this model's code, call "
                f"modalbridge.chroma.allow_remote_code() or set {ENV_TRUST_REMOTE_CODE}=1, or pass "
                "embedding_function=MultimodalEmbeddingFunction(..., trust_remote_code=True) yourself"
            )
        function = MultimodalEmbeddingFunction.__new__(MultimodalEmbeddingFunction)
        settings = dict(config)
        # Not through __init__: a stored configuration is no consent to run remote code later on.
        function._setup(settings.pop("model_name_or_path"), settings, consent=False)
        return function

    @staticmethod
    def validate_config(config: dict[str, Any]) -> None:
        """Check a configuration's shape and values without loading anything."""
        if not isinstance(config, dict):
            raise ValueError(f"a {EMBEDDING_FUNCTION_NAME} configuration must be a dict, got {type(config).__name__}")
        model = config.get("model_name_or_path")
        if not isinstance(model, str) or not model:
            raise ValueError(f"a {EMBEDDING_FUNCTION_NAME} configuration needs model_name_or_path (a non-empty str)")
        unknown = set(config) - _SETTING_NAMES
        if unknown:
            raise ValueError(
                f"unknown {EMBEDDING_FUNCTION_NAME} settings: {', '.join(sorted(unknown))} "
                "(stored by another modalbridge version?)"
            )
        try:
            Embedder(**config)  # validates every value; loads nothing
        except (TypeError, ValueError) as exc:
            raise ValueError(f"invalid {EMBEDDING_FUNCTION_NAME} configuration: {exc}") from None

    def validate_config_update(self, old_config: dict[str, Any], new_config: dict[str, Any]) -> None:
        """Refuse updates that would change the vectors (so stored and new embeddings would not match);
        allow :data:`UPDATABLE_SETTINGS` (device, batch size, progress bar, decoding, fetching, cache)."""
        defaults = Embedder("defaults").config()
        changed = []
        for key in sorted((set(old_config) | set(new_config)) - UPDATABLE_SETTINGS):
            old, new = old_config.get(key, defaults.get(key)), new_config.get(key, defaults.get(key))
            if key == "model_name_or_path":
                old, new = _model_key(old, None)[0], _model_key(new, None)[0]
            if old != new:
                changed.append(f"{key} ({old!r} -> {new!r})")
        if changed:
            raise ValueError(
                f"cannot change {', '.join(changed)} of this collection's embedding function: it would embed "
                "new items and queries differently from the stored vectors. Create a new collection and "
                f"re-embed instead. Settings that may change: {', '.join(sorted(UPDATABLE_SETTINGS))}"
            )

    # -- distance spaces ------------------------------------------------------------------------------

    def default_space(self) -> Space:
        """The space of the model's similarity function: cosine -> ``"cosine"``, dot -> ``"ip"``,
        euclidean -> ``"l2"`` (manhattan, which Chroma lacks, -> ``"l2"``).

        This loads the model (once per process, shared): Chroma asks when a collection is created
        without an explicit space, and the model is the only source of truth. Chroma turns any error
        here into a silent "legacy" configuration (the function is then not stored), so a load error is
        also reported as a warning before it is raised."""
        return self._spaces()[0]

    def supported_spaces(self) -> list[Space]:
        """The default space first; all of cosine, ip and l2 when embeddings are unit-length (then they
        rank alike), else only the default."""
        return self._spaces()

    def _spaces(self) -> list[Space]:
        try:
            similarity = self._embedder.similarity_fn_name
            normalizes = self._embedder.normalizes
        except Exception as exc:
            warnings.warn(
                f"modalbridge: could not load {self._embedder.load_settings.model_name_or_path!r} to choose the "
                f"distance space ({exc}); Chroma will create this collection WITHOUT storing its embedding function",
                UserWarning,
                stacklevel=3,
            )
            raise
        default = _SPACE_OF_SIMILARITY.get(similarity, "cosine")
        if not normalizes:
            return [default]
        return [default] + [space for space in _ALL_SPACES if space != default]


def update_embedding_function(collection: Any, function: MultimodalEmbeddingFunction) -> None:
    """``collection.modify(configuration={"embedding_function": function})``, checked FIRST.

    Chroma (1.5) sends a configuration update to the server before it calls
    :meth:`~MultimodalEmbeddingFunction.validate_config_update`, so a refused update raises but is already
    stored. This checks the update against the stored configuration before anything is sent."""
    stored = (collection.configuration_json or {}).get("embedding_function") or {}
    if stored.get("type") != "known" or stored.get("name") != EMBEDDING_FUNCTION_NAME:
        raise ValueError(
            f"collection {collection.name!r} has no stored {EMBEDDING_FUNCTION_NAME} embedding function "
            f"(it has {stored.get('name') or stored.get('type') or 'none'}); Chroma cannot update it to one"
        )
    function.validate_config_update(stored.get("config") or {}, function.get_config())
    collection.modify(configuration={"embedding_function": function})


# -- data loader ----------------------------------------------------------------------------------------


class LoadedMedia(list):
    """What :class:`MultimodalDataLoader` returns: a plain list of loaded items (``None`` for a record
    without a URI), with the ``uris`` they came from, so embedding errors can name the URI."""

    def __init__(self, items: Sequence[Any], uris: Sequence[str | None]) -> None:
        super().__init__(items)
        self.uris = list(uris)


class MultimodalDataLoader:
    """A Chroma ``data_loader`` for image, audio and video files (or URLs, with ``allow_fetch=True``).

    Each URI is tagged by its extension (or as ``modality``) with :func:`modalbridge.media.tag_uri` and
    decoded in parallel:

    * image -> a ``numpy`` (H, W, 3) uint8 RGB array (EXIF-oriented): Chroma's own image type, as
      ``add(images=...)`` and Chroma's ``ImageLoader`` use;
    * audio -> ``Audio(waveform, sampling_rate=rate)``: mono float32 at the file's own rate (the
      embedding function resamples to the model's rate);
    * video -> ``Video(frames, fps=fps)`` with all (T, H, W, 3) uint8 frames; with ``decode_video=False``
      the tag ``Video(uri)`` itself (the model's processor then decodes only the frames it samples, which
      saves memory on long videos; an unreadable file is then reported when it is embedded).

    ``None`` URIs (records added without one) load as ``None``. An unreadable or missing URI raises
    :class:`~modalbridge.MediaError` naming it. ``include=["data"]`` returns these same values.
    """

    def __init__(
        self,
        modality: Literal["image", "audio", "video"] | None = None,
        *,
        max_workers: int = 8,
        allow_fetch: bool = False,
        decode_video: bool = True,
    ) -> None:
        if modality not in (None, "image", "audio", "video"):
            raise ValueError(f"modality must be 'image', 'audio', 'video' or None, got {modality!r}")
        self.modality = modality
        self.max_workers = max_workers
        self.allow_fetch = allow_fetch
        self.decode_video = decode_video

    def __repr__(self) -> str:
        return f"MultimodalDataLoader(modality={self.modality!r}, decode_video={self.decode_video})"

    def __call__(self, uris: Sequence[str | None]) -> LoadedMedia:
        if isinstance(uris, str) or not isinstance(uris, Sequence):
            raise TypeError(f"expected a list of URIs, got {type(uris).__name__}")
        indexed = list(enumerate(uris))
        return LoadedMedia(map_parallel(self._load, indexed, self.max_workers), uris)

    def _load(self, indexed: tuple[int, str | None]) -> Any:
        index, uri = indexed
        if uri is None:
            return None
        if not isinstance(uri, str):
            raise TypeError(f"uri {index}: expected a str, got {type(uri).__name__}")
        try:
            item = tag_uri(uri, self.modality)
            if isinstance(item, Image):
                return np.array(decode_image(item, self.allow_fetch))  # writable: torch warns on read-only arrays
            if isinstance(item, Audio):
                waveform, rate = read_audio(item, self.allow_fetch)
                return Audio(waveform, sampling_rate=rate)
            if not self.decode_video:
                return item
            frames, fps = read_video(item, self.allow_fetch)
            return Video(frames, fps=fps)
        except MediaError as exc:
            raise MediaError(f"uri {index}: {exc}") from None


# -- reranking --------------------------------------------------------------------------------------------

RerankSource = Literal["auto", "documents", "uris", "data"]


@dataclass
class RerankedResult:
    """One query's hits in reranked order (best first). A field is ``None`` when the query result did
    not include it (as in Chroma's own results)."""

    ids: list[str]
    scores: list[float]
    """The reranker's scores (higher is better)."""
    distances: list[float] | None
    documents: list[str | None] | None
    uris: list[str | None] | None
    metadatas: list[Any] | None
    data: list[Any] | None
    positions: list[int]
    """Each hit's position in the original (retrieval) order."""
    sources: list[str]
    """What was scored for each hit: ``"data"``, ``"uri"`` or ``"document"``."""

    def __len__(self) -> int:
        return len(self.ids)


def _row_field(result: Any, key: str, row: int) -> list[Any] | None:
    values = result.get(key)
    if values is None:
        return None
    return list(values[row])


def _query_item(query: Any) -> Any:
    """A query as a core item: str -> text (never a path), numpy array -> image, tagged items as is."""
    return _as_item(query, "query")


def _hit_item(
    hit_id: str,
    source: RerankSource,
    document: Any,
    uri: Any,
    data: Any,
    uri_modality: str | None,
) -> tuple[Any, str]:
    if source in ("auto", "data") and data is not None:
        return _as_item(data, f"id {hit_id!r} (data)"), "data"
    if source in ("auto", "uris") and uri is not None:
        try:
            return tag_uri(uri, uri_modality), "uri"
        except MediaError as exc:
            raise MediaError(f"id {hit_id!r}: {exc}") from None
    if source in ("auto", "documents") and document is not None:
        return document, "document"
    wanted = {"auto": "data, uri or document", "data": "data", "uris": "uri", "documents": "document"}[source]
    raise ValueError(
        f"id {hit_id!r}: the query result has no {wanted} for this hit to rerank "
        "(was it included, e.g. include=['documents', 'uris', 'distances']?)"
    )


def rerank_query_result(
    result: Any,
    query: Any,
    reranker: Reranker,
    *,
    top_n: int | None = None,
    row: int = 0,
    source: RerankSource = "auto",
    uri_modality: Literal["image", "audio", "video"] | None = None,
) -> RerankedResult:
    """Rerank the hits of one query of a ``collection.query(...)`` result with a core :class:`Reranker`.

    Args:
        result: what ``collection.query`` returned.
        query: the query to score against: a ``str`` (always text), a numpy image array, a PIL image, or a
            tagged ``Image``/``Audio``/``Video``/``Combined`` (tag a file path: ``Image("q.jpg")``).
        reranker: the core reranker (its model is shared through the core's cache).
        top_n: keep at most this many hits (default: all).
        row: which query of the result (``query_texts=[q0, q1]`` -> rows 0 and 1).
        source: what each hit is scored as. ``"documents"``: its document text. ``"uris"``: its URI,
            tagged by extension (or ``uri_modality``) and decoded by the reranker. ``"data"``: what the
            collection's data loader returned for it (``include=["data"]``): arrays are images, tagged
            items as they are. ``"auto"`` (default), per hit: data if included and not ``None``, else the
            URI if included and not ``None``, else the document; a hit with none of them is an error
            naming its id. ``sources`` in the result says what was used for each hit.
        uri_modality: the modality of every URI, for URIs without a telling extension.

    Returns:
        a :class:`RerankedResult`: ids, documents, uris, metadatas, distances, data, scores, the original
        positions and the sources, best score first (ties keep retrieval order).
    """
    if source not in ("auto", "documents", "uris", "data"):
        raise ValueError(f"source must be 'auto', 'documents', 'uris' or 'data', got {source!r}")
    all_ids = result.get("ids") if hasattr(result, "get") else None
    if all_ids is None:
        raise TypeError("result must be what collection.query(...) returned (a dict with 'ids')")
    if not 0 <= row < len(all_ids):
        raise IndexError(f"row {row} is out of range: the result has {len(all_ids)} queries")
    ids = list(all_ids[row])
    documents = _row_field(result, "documents", row)
    uris = _row_field(result, "uris", row)
    data = _row_field(result, "data", row)
    metadatas = _row_field(result, "metadatas", row)
    distances = _row_field(result, "distances", row)

    query_item = _query_item(query)
    items, sources = [], []
    for j, hit_id in enumerate(ids):
        item, used = _hit_item(
            hit_id,
            source,
            documents[j] if documents is not None else None,
            uris[j] if uris is not None else None,
            data[j] if data is not None else None,
            uri_modality,
        )
        items.append(item)
        sources.append(used)
    try:
        ranked = reranker.rank(query_item, items, top_n=top_n)
    except (ValueError, TypeError) as exc:
        raise renamed_item_error(exc, [f"id {hit_id!r}" for hit_id in ids]) from None
    order = [hit.index for hit in ranked]

    def pick(values: list[Any] | None) -> list[Any] | None:
        return None if values is None else [values[i] for i in order]

    return RerankedResult(
        ids=[ids[i] for i in order],
        scores=[hit.score for hit in ranked],
        distances=pick(distances),
        documents=pick(documents),
        uris=pick(uris),
        metadatas=pick(metadatas),
        data=pick(data),
        positions=order,
        sources=[sources[i] for i in order],
    )


def rerank_query_results(
    result: Any,
    queries: Sequence[Any],
    reranker: Reranker,
    *,
    top_n: int | None = None,
    source: RerankSource = "auto",
    uri_modality: Literal["image", "audio", "video"] | None = None,
) -> list[RerankedResult]:
    """Rerank every query of a ``collection.query(...)`` result: ``queries[i]`` reranks row ``i``
    (pass the same queries the collection was queried with). See :func:`rerank_query_result`."""
    all_ids = result.get("ids") if hasattr(result, "get") else None
    if all_ids is None:
        raise TypeError("result must be what collection.query(...) returned (a dict with 'ids')")
    if isinstance(queries, str) or len(queries) != len(all_ids):
        count = 1 if isinstance(queries, str) else len(queries)
        raise ValueError(f"got {count} queries for a result of {len(all_ids)} queries: pass one query per row")
    return [
        rerank_query_result(
            result, query, reranker, top_n=top_n, row=row, source=source, uri_modality=uri_modality
        )
        for row, query in enumerate(queries)
    ]
