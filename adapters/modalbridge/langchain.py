"""LangChain adapter: multimodal embeddings and a multimodal reranker (``pip install 'modalbridge[langchain]'``).

Example::

    from langchain_chroma import Chroma
    from modalbridge.langchain import MultimodalEmbeddings, MultimodalRerank

    embeddings = MultimodalEmbeddings(model_name="sentence-transformers/clip-ViT-B-32", normalize=True)
    store = Chroma(collection_name="photos", embedding_function=embeddings)
    store.add_images(uris=["photos/cat.jpg", "photos/dog.jpg"])          # calls embeddings.embed_image(uris=...)
    hits = store.similarity_search("a sleeping cat", k=4)                  # text -> image
    same = store.similarity_search_by_image(uri="photos/cat.jpg", k=1)     # image -> image

    reranker = MultimodalRerank(model_name="Qwen/Qwen3-VL-Reranker-2B", page_content_modality="image_base64")
    best = reranker.compress_documents(hits, "a sleeping cat")             # metadata["relevance_score"]

Late-interaction models (ColPali, ColQwen2): :class:`LateInteractionRetriever` searches a
:class:`modalbridge.chroma.LateInteractionCollection` (first stage in Chroma, exact MaxSim from the stored
token vectors), and :class:`MaxSimRerank` reranks any retriever's documents by MaxSim.

All classes only translate between LangChain and the core (:class:`~modalbridge.Embedder`,
:class:`~modalbridge.Reranker`): models are loaded lazily from the process-wide cache, so an embeddings
object and any other adapter built with the same load settings share one model.

What a string is, is never guessed:

* ``embed_documents`` / ``embed_query`` take text (a string that looks like a path stays text), unless
  ``document_modality`` says the documents are image/audio/video paths or URIs.
* ``embed_image(uris=...)``, ``embed_audio(uris=...)``, ``embed_video(uris=...)`` take paths or URIs of
  that modality (``embed_image`` is the convention LangChain vector stores look for).
* :class:`MultimodalRerank` reads a document as media only when its metadata names a source under
  ``image_key`` / ``audio_key`` / ``video_key`` (``"image"``, ``"audio"``, ``"video"`` by default), or
  when ``page_content_modality`` says what every ``page_content`` is (``"image_base64"`` for documents
  stored by ``Chroma.add_images``).
"""

from __future__ import annotations

import copy
import os
from collections.abc import Sequence
from typing import Any, Literal

from langchain_core.callbacks import CallbackManagerForRetrieverRun, Callbacks
from langchain_core.documents import BaseDocumentCompressor, Document
from langchain_core.embeddings import Embeddings
from langchain_core.retrievers import BaseRetriever
from langchain_core.runnables.config import run_in_executor
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator, model_validator

from modalbridge.embedder import Embedder
from modalbridge.media import FETCH_MAX_BYTES, FETCH_TIMEOUT_S
from modalbridge.items import Image, as_media, as_media_list
from modalbridge.reranker import Reranker

__all__ = ["LateInteractionRetriever", "MaxSimRerank", "MultimodalEmbeddings", "MultimodalRerank"]

class _ModelSettings(BaseModel):
    """Fields shared by the embeddings and the reranker: the core's load settings and common run settings."""

    model_config = ConfigDict(extra="forbid", protected_namespaces=(), validate_assignment=True)

    model_name: str = Field(
        description="Hugging Face Hub name (e.g. 'sentence-transformers/clip-ViT-B-32') or local folder of a "
        "sentence-transformers model."
    )
    revision: str | None = Field(default=None, description="Hub revision (branch, tag or commit) to load.")
    device: str | list[str] = Field(
        default="auto",
        description="'auto' (cuda, then mps, then cpu), 'cpu', 'cuda:0', ...; a list (['cuda:0', 'cuda:1']) runs one long-lived pool",
    )
    dtype: Literal["float32", "float16", "bfloat16"] | None = Field(
        default=None, description="Weights dtype; None keeps the model's default."
    )
    backend: Literal["torch", "onnx", "openvino"] = Field(default="torch", description="Inference backend.")
    trust_remote_code: bool = Field(default=False, description="Allow custom code from the model repository.")
    model_kwargs: dict[str, Any] = Field(default_factory=dict, description="Passed to the transformers model.")
    processor_kwargs: dict[str, Any] = Field(default_factory=dict, description="Passed to the processor.")
    config_kwargs: dict[str, Any] = Field(default_factory=dict, description="Passed to the model config.")
    cache_folder: str | None = Field(default=None, description="Where downloaded models are stored.")
    local_files_only: bool = Field(default=False, description="Never look the model up on the Hub.")
    batch_size: int = Field(default=32, ge=1, description="Inputs per forward pass.")
    show_progress_bar: bool = Field(default=False, description="Show a progress bar while encoding.")
    allow_fetch: bool = Field(
        default=False, description="Fetch http(s) media URLs. Off by default: nothing is fetched unless asked."
    )
    decode_workers: int = Field(default=8, ge=1, description="Threads that decode media files in parallel.")
    fetch_timeout_s: float = Field(default=FETCH_TIMEOUT_S, gt=0, le=3600, description="Total deadline of one fetch, in seconds.")
    fetch_max_bytes: int = Field(default=FETCH_MAX_BYTES, ge=1, le=2**34, description="Largest fetched body, in bytes.")
    fetch_allowed_hosts: list[str] | None = Field(
        default=None, description="Fetch only from these hosts ('.example.com' for subdomains too); None: any public host."
    )
    fetch_allow_private: bool = Field(
        default=False, description="Also fetch from loopback, private and link-local addresses (refused by default)."
    )

    _core: Any = PrivateAttr(default=None)
    _core_settings: Any = PrivateAttr(default=None)

    def __init__(self, model_name: str | os.PathLike | None = None, /, **data: Any) -> None:
        """``model_name`` may be given positionally, like the core's ``Embedder(path)``."""
        if model_name is not None:
            if "model_name" in data:
                raise TypeError("model_name given twice (positionally and as a keyword)")
            data["model_name"] = model_name
        super().__init__(**data)

    @field_validator("model_name", "cache_folder", mode="before")
    @classmethod
    def _fspath(cls, value: Any) -> Any:
        return os.fspath(value) if isinstance(value, os.PathLike) else value

    @model_validator(mode="after")
    def _check_core_settings(self) -> Any:
        self._build_core()  # the core validates its settings (cheap: nothing is loaded)
        return self

    def _core_kwargs(self) -> dict[str, Any]:
        """The core settings among the fields (subclasses add theirs)."""
        names = _ModelSettings.model_fields.keys() - {"model_name"}
        return {name: getattr(self, name) for name in sorted(names)}

    def _build_core(self) -> Any:  # pragma: no cover - overridden
        raise NotImplementedError

    def _current_core(self) -> Any:
        """The core object for the current field values (rebuilt if a field changed since; that is cheap,
        and the loaded model still comes from the shared cache)."""
        settings = (self.model_name, self._core_kwargs())
        if self._core is None or self._core_settings != settings:
            self._core = self._build_core()
            self._core_settings = copy.deepcopy(settings)
        return self._core


class MultimodalEmbeddings(_ModelSettings, Embeddings):
    """LangChain ``Embeddings`` for any sentence-transformers model: text, images, audio, video.

    ``embed_documents`` / ``embed_query`` embed text with the model's document / query prompts;
    ``embed_image(uris=...)`` (used by ``Chroma.add_images`` and ``similarity_search_by_image``),
    ``embed_audio(uris=...)`` and ``embed_video(uris=...)`` embed media files as documents;
    ``embed_items`` embeds tagged core items (``Image``, ``Audio``, ``Video``, ``Combined``, PIL images).
    The async methods run in a worker thread, so the event loop keeps running.

    Example::

        embeddings = MultimodalEmbeddings(model_name="sentence-transformers/clip-ViT-B-32")
        vectors = embeddings.embed_image(uris=["cat.jpg"])
        query = embeddings.embed_query("a cat")
    """

    normalize: bool = Field(default=False, description="Scale every embedding to unit length.")
    truncate_dim: int | None = Field(default=None, ge=1, description="Keep the first N dimensions (Matryoshka).")
    query_prompt_name: str | None = Field(
        default=None, description="Name of a prompt saved with the model for queries; default: its 'query' prompt."
    )
    document_prompt_name: str | None = Field(
        default=None, description="Name of a saved prompt for documents; default: the model's 'document' prompt."
    )
    query_prompt: str | None = Field(default=None, description="A literal query prompt (overrides the name).")
    document_prompt: str | None = Field(default=None, description="A literal document prompt (overrides the name).")
    video_frames: int | None = Field(
        default=None,
        ge=1,
        description="For image models without video support: embed a video as the mean of this many frames.",
    )
    image_decode: Literal["cpu", "gpu", "auto"] = Field(
        default="cpu",
        description="How images reach CLIP-like models: 'cpu' (exact), 'gpu' (decoded and preprocessed on the "
        "model's device), 'auto' ('gpu' on CUDA when the model qualifies).",
    )
    document_modality: Literal["text", "image", "audio", "video"] = Field(
        default="text",
        description="What the strings given to embed_documents are: 'text' (default), or paths/URIs of "
        "'image', 'audio' or 'video' files (e.g. a vector store whose page_content is the image path). "
        "Queries are always text.",
    )

    def _core_kwargs(self) -> dict[str, Any]:
        names = MultimodalEmbeddings.model_fields.keys() - {"model_name", "document_modality"}
        return {name: getattr(self, name) for name in sorted(names)}

    def _build_core(self) -> Embedder:
        return Embedder(self.model_name, **copy.deepcopy(self._core_kwargs()))

    @property
    def _embedder(self) -> Embedder:
        return self._current_core()

    @property
    def embedder(self) -> Embedder:
        """The core :class:`~modalbridge.Embedder` built from these fields (its ``.model`` is shared)."""
        return self._current_core()

    @classmethod
    def from_embedder(cls, embedder: Embedder, **fields: Any) -> "MultimodalEmbeddings":
        """Embeddings with the settings of a core ``Embedder`` (so they share its model); ``fields``
        (e.g. ``document_modality``) are added."""
        settings = {**embedder.load_settings.to_dict(), **vars(embedder.encode_settings)}
        if settings.pop("max_length", None) is not None:  # pragma: no cover - embedders have no max_length
            raise ValueError("an Embedder has no max_length")
        settings.pop("quantization_ranges", None)
        settings.pop("token_pool_factor", None)  # multi-vector only: a plain Embedder refuses any other value
        if settings.pop("precision") != "float32":
            raise ValueError("LangChain vector stores take float vectors: build the Embedder with precision='float32'")
        return cls(model_name=settings.pop("model_name_or_path"), **settings, **fields)

    # -- the LangChain Embeddings interface --------------------------------------------------------

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        """Embed documents with the document prompt. Strings are text (or, when ``document_modality`` is
        a media modality, paths/URIs of that modality); tagged core items are accepted as they are."""
        if isinstance(texts, (str, bytes)):
            raise TypeError(f"embed_documents takes a list of texts, got {type(texts).__name__}; use embed_query")
        if self.document_modality == "text":
            items = list(texts)
        else:
            items = as_media_list(self.document_modality, list(texts), "texts")
        return self._embedder.embed_documents(items).tolist()

    def embed_query(self, text: str) -> list[float]:
        """Embed one query with the query prompt. A string is always text."""
        return self._embedder.embed_query(text).tolist()

    async def aembed_documents(self, texts: list[str]) -> list[list[float]]:
        """``embed_documents`` in a worker thread (the event loop is not blocked)."""
        return await run_in_executor(None, self.embed_documents, texts)

    async def aembed_query(self, text: str) -> list[float]:
        """``embed_query`` in a worker thread (the event loop is not blocked)."""
        return await run_in_executor(None, self.embed_query, text)

    # -- media ---------------------------------------------------------------------------------------

    def embed_image(self, uris: list[str]) -> list[list[float]]:
        """Embed image files (paths, http(s) URLs if ``allow_fetch``, data: URIs) as documents.

        This is the method LangChain vector stores look for (``Chroma.add_images``,
        ``similarity_search_by_image``); an image used as a query is embedded the same way."""
        return self._embedder.embed_documents(as_media_list("image", uris, "uris")).tolist()

    def embed_audio(self, uris: list[str]) -> list[list[float]]:
        """Embed audio files (paths, URLs if ``allow_fetch``) as documents."""
        return self._embedder.embed_documents(as_media_list("audio", uris, "uris")).tolist()

    def embed_video(self, uris: list[str]) -> list[list[float]]:
        """Embed video files (paths, URLs if ``allow_fetch``) as documents."""
        return self._embedder.embed_documents(as_media_list("video", uris, "uris")).tolist()

    def embed_items(self, items: Sequence[Any], *, as_query: bool = False) -> list[list[float]]:
        """Embed core items of any modality (``str`` text, PIL images, ``Image``/``Audio``/``Video``/
        ``Combined``), as documents or, with ``as_query=True``, as queries."""
        embed = self._embedder.embed_queries if as_query else self._embedder.embed_documents
        return embed(items).tolist()

    async def aembed_image(self, uris: list[str]) -> list[list[float]]:
        return await run_in_executor(None, self.embed_image, uris)

    async def aembed_audio(self, uris: list[str]) -> list[list[float]]:
        return await run_in_executor(None, self.embed_audio, uris)

    async def aembed_video(self, uris: list[str]) -> list[list[float]]:
        return await run_in_executor(None, self.embed_video, uris)

    async def aembed_items(self, items: Sequence[Any], *, as_query: bool = False) -> list[list[float]]:
        return await run_in_executor(None, lambda: self.embed_items(items, as_query=as_query))


class MultimodalRerank(BaseDocumentCompressor, _ModelSettings):
    """A LangChain document compressor that reranks documents of any modality against a query with a
    sentence-transformers CrossEncoder (e.g. a Qwen3-VL reranker), for ``ContextualCompressionRetriever``.

    What a document stands for is read explicitly, in this order:

    1. ``metadata[image_key]`` / ``metadata[audio_key]`` / ``metadata[video_key]`` (``"image"``,
       ``"audio"``, ``"video"`` by default; ``None`` turns a key off): a path or URI (or a tagged item)
       of the media the document stands for. At most one of them per document.
    2. Otherwise ``page_content``, read as ``page_content_modality`` says: ``"text"`` (default);
       ``"image_base64"`` (documents stored by ``Chroma.add_images``); or ``"image"`` / ``"audio"`` /
       ``"video"`` for paths/URIs.

    The best ``top_n`` documents with a score of at least ``score_threshold`` are returned, best first,
    as copies with ``metadata["relevance_score"]`` set; the caller's documents are not changed.
    """

    max_length: int | None = Field(default=None, ge=1, description="The longest input in tokens.")
    prompt_name: str | None = Field(default=None, description="Name of a prompt saved with the reranker.")
    prompt: str | None = Field(default=None, description="A literal prompt (overrides prompt_name).")
    top_n: int | None = Field(default=3, ge=0, description="How many documents to keep; None keeps all.")
    score_threshold: float | None = Field(
        default=None, description="Drop documents that score below this (raw model scores)."
    )
    page_content_modality: Literal["text", "image_base64", "image", "audio", "video"] = Field(
        default="text",
        description="What page_content is for documents whose metadata names no media: 'text', "
        "'image_base64' (Chroma.add_images), or a path/URI of an 'image', 'audio' or 'video'.",
    )
    image_key: str | None = Field(default="image", description="Metadata key naming an image the document stands for.")
    audio_key: str | None = Field(default="audio", description="Metadata key naming a sound the document stands for.")
    video_key: str | None = Field(default="video", description="Metadata key naming a video the document stands for.")
    score_key: str = Field(default="relevance_score", description="Metadata key the score is written to.")

    def _core_kwargs(self) -> dict[str, Any]:
        extra = {"max_length": self.max_length, "prompt_name": self.prompt_name, "prompt": self.prompt}
        return {**super()._core_kwargs(), **extra}

    def _build_core(self) -> Reranker:
        return Reranker(self.model_name, **copy.deepcopy(self._core_kwargs()))

    @property
    def _reranker(self) -> Reranker:
        return self._current_core()

    @property
    def reranker(self) -> Reranker:
        """The core :class:`~modalbridge.Reranker` built from these fields (its ``.model`` is shared)."""
        return self._current_core()

    def document_item(self, document: Document, index: int = 0) -> Any:
        """The core item a document stands for (see the class docstring); errors name the document."""
        metadata = document.metadata or {}
        keys = [(m, k) for m, k in (("image", self.image_key), ("audio", self.audio_key), ("video", self.video_key))]
        named = [(modality, key) for modality, key in keys if key is not None and metadata.get(key) is not None]
        where = f"document {index}" + (f" (id {document.id!r})" if document.id else "")
        if len(named) > 1:
            listed = ", ".join(f"metadata[{key!r}]" for _, key in named)
            raise ValueError(f"{where}: {listed} each name a media source; a document can stand for one")
        if named:
            modality, key = named[0]
            try:
                return as_media(modality, metadata[key])
            except TypeError as exc:
                raise TypeError(f"{where}: metadata[{key!r}]: {exc}") from None
        content = document.page_content
        if self.page_content_modality == "text":
            return content
        if self.page_content_modality == "image_base64":
            try:
                return Image.from_base64(content)
            except ValueError as exc:
                raise ValueError(f"{where}: page_content: {exc}") from None
        return as_media(self.page_content_modality, content)

    def compress_documents(
        self,
        documents: Sequence[Document],
        query: str,
        callbacks: Callbacks | None = None,
    ) -> Sequence[Document]:
        """Rerank ``documents`` against ``query`` (text); the best first, with their score in metadata."""
        documents = list(documents)
        if not documents or self.top_n == 0:
            return []
        items = [self.document_item(document, index) for index, document in enumerate(documents)]
        ranked = self._reranker.rank(query, items, top_n=self.top_n)
        results = []
        for hit in ranked:
            if self.score_threshold is not None and hit.score < self.score_threshold:
                break  # ranked best first: the rest score lower
            document = documents[hit.index]
            metadata = {**(document.metadata or {}), self.score_key: hit.score}
            results.append(document.model_copy(update={"metadata": metadata}))
        return results

    async def acompress_documents(
        self,
        documents: Sequence[Document],
        query: str,
        callbacks: Callbacks | None = None,
    ) -> Sequence[Document]:
        """``compress_documents`` in a worker thread (the event loop is not blocked)."""
        return await run_in_executor(None, self.compress_documents, documents, query, callbacks)


# -- late interaction (ColPali / ColQwen2 multi-vector models) -------------------------------------------


class MaxSimRerank(MultimodalRerank):
    """Reranks documents by late interaction (MaxSim) with a multi-vector model such as ColQwen2: the
    second stage after any single-vector retriever (``ContextualCompressionRetriever``). Documents are
    read like :class:`MultimodalRerank` reads them, embedded, and scored against the query exactly as
    ``model.similarity`` does (the core's :meth:`~modalbridge.multivector.MultiVectorEmbedder.rank`)::

        rerank = MaxSimRerank(model_name="vidore/colqwen2-v1.0-hf", page_content_modality="image", top_n=5)
        retriever = ContextualCompressionRetriever(base_compressor=rerank, base_retriever=clip_store.as_retriever())

    ``max_length``, ``prompt_name`` and ``prompt`` are CrossEncoder settings and are refused here.
    """

    token_pool_factor: float | None = Field(
        default=None, ge=1, description="Pool each document's token vectors by this factor (None keeps all)."
    )

    @model_validator(mode="after")
    def _refuse_cross_encoder_settings(self) -> Any:
        given = [name for name in ("max_length", "prompt_name", "prompt") if getattr(self, name) is not None]
        if given:
            raise ValueError(f"MaxSimRerank does not take {', '.join(given)} (CrossEncoder settings)")
        return self

    def _core_kwargs(self) -> dict[str, Any]:
        return {**_ModelSettings._core_kwargs(self), "token_pool_factor": self.token_pool_factor}

    def _build_core(self) -> Any:
        from modalbridge.multivector import MultiVectorEmbedder

        return MultiVectorEmbedder(self.model_name, **copy.deepcopy(self._core_kwargs()))

    @property
    def reranker(self) -> Any:
        """The core :class:`~modalbridge.multivector.MultiVectorEmbedder` built from these fields."""
        return self._current_core()


class LateInteractionRetriever(BaseRetriever):
    """A LangChain retriever over a :class:`modalbridge.chroma.LateInteractionCollection`: candidates from
    the collection's first-stage vectors, ranked by exact MaxSim from the stored token matrices::

        pages = LateInteractionCollection.open(chromadb.PersistentClient("db"), "pages")
        retriever = LateInteractionRetriever(collection=pages, k=5)
        docs = retriever.invoke("revenue in 2023")

    Each document has the record's id, its stored document text as ``page_content`` (the URI for media
    records stored without a text, e.g. page images), the record's metadata plus ``metadata["uri"]`` when
    it has one and the MaxSim score under ``score_key``.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    collection: Any = Field(description="A modalbridge.chroma.LateInteractionCollection.")
    k: int = Field(default=4, ge=1, description="How many documents to return.")
    candidates: int | None = Field(
        default=None, ge=1, description="First-stage candidates rescored by MaxSim (None: max(100, 10 * k))."
    )
    where: dict[str, Any] | None = Field(default=None, description="A Chroma metadata filter for the first stage.")
    score_key: str = Field(default="score", description="Metadata key the MaxSim score is written to.")

    @field_validator("collection")
    @classmethod
    def _late_interaction(cls, value: Any) -> Any:
        from modalbridge.chroma.late_interaction import LateInteractionCollection

        if not isinstance(value, LateInteractionCollection):
            raise TypeError(f"collection must be a LateInteractionCollection, got {type(value).__name__}")
        return value

    def _get_relevant_documents(self, query: str, *, run_manager: CallbackManagerForRetrieverRun) -> list[Document]:
        hits = self.collection.query(query, n_results=self.k, candidates=self.candidates, where=self.where)
        documents = []
        for record_id, score, text, uri, metadata in zip(hits.ids, hits.scores, hits.documents, hits.uris, hits.metadatas):
            extra = {"uri": uri} if uri is not None else {}
            documents.append(
                Document(
                    id=record_id,
                    page_content=text if text is not None else (uri or ""),
                    metadata={**metadata, **extra, self.score_key: score},
                )
            )
        return documents
