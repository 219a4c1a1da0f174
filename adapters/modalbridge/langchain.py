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

PDFs, page by page (:class:`PdfPageLoader`: one ``Document`` per page, searched by what the page looks like)::

    pages = PdfPageLoader("report.pdf").load()      # page_content "report.pdf#page=N", metadata source/page/image
    store = Chroma.from_documents(pages, MultimodalEmbeddings(model_name=..., document_modality="image"))
    best = MultimodalRerank(model_name=...).compress_documents(store.similarity_search("revenue", k=10), "revenue")

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
from typing import Any, ClassVar, Literal

from collections.abc import Iterator

from langchain_core.callbacks import CallbackManagerForRetrieverRun, Callbacks
from langchain_core.document_loaders import BaseLoader
from langchain_core.documents import BaseDocumentCompressor, Document
from langchain_core.embeddings import Embeddings
from langchain_core.retrievers import BaseRetriever
from langchain_core.runnables.config import run_in_executor
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, create_model, field_validator, model_validator

from modalbridge import settings
from modalbridge.embedder import Embedder
from modalbridge.items import Image, as_media, as_media_list, page_uri
from modalbridge.loading import default_pool_devices
from modalbridge.reranker import Reranker

__all__ = ["LateInteractionRetriever", "MaxSimRerank", "MultimodalEmbeddings", "MultimodalRerank", "PdfPageLoader"]

_RENAME = {"model_name_or_path": "model_name"}
_ALIASES = {"model_name_or_path": "model", "show_progress_bar": "show_progress"}  # langchain-huggingface's names


class _Adapter(BaseModel):
    """What both classes share: the core's settings as fields (derived from :mod:`modalbridge.settings`),
    checked on construction and on assignment, and the core object built from them."""

    model_config = ConfigDict(extra="forbid", protected_namespaces=(), validate_assignment=True, populate_by_name=True)

    _core: Any = PrivateAttr(default=None)
    _core_settings: Any = PrivateAttr(default=None)
    _kind: ClassVar[str]

    def __init__(self, model_name: str | os.PathLike | None = None, /, **data: Any) -> None:
        """``model_name`` may be given positionally, like the core's ``Embedder(path)``."""
        if model_name is not None:
            if "model_name" in data or "model" in data:
                raise TypeError("model_name given twice (positionally and as a keyword)")
            data["model_name"] = model_name
        super().__init__(**data)

    @model_validator(mode="after")
    def _check_core_settings(self) -> Any:
        self._current_core()  # combined settings are checked by building the core (cheap: nothing is loaded)
        return self

    def _given(self) -> list[tuple[str, dict[str, Any]]]:
        """The settings the caller gave, by where they were given (for :func:`settings.merge`)."""
        fields = settings.core_kwargs(self, self._kind, rename=_RENAME, exclude=("model_kwargs",))
        explicit = {name: fields[name] for name in fields if _RENAME.get(name, name) in self.model_fields_set}
        return [
            ("fields", explicit),
            ("model_kwargs", settings.from_sentence_transformers_kwargs(self.model_kwargs, "model_kwargs")),
        ]

    def _core_kwargs(self) -> dict[str, Any]:
        """The core's settings: the fields, with what ``model_kwargs`` (and the other incumbent arguments)
        hold merged in; a setting given twice with different values is an error."""
        fields = settings.core_kwargs(self, self._kind, rename=_RENAME, exclude=("model_kwargs",))
        return {**fields, **settings.merge(self._given())}

    def _current_core(self) -> Any:
        """The core object for the current field values (rebuilt if a field changed since; that is cheap,
        and the loaded model still comes from the shared cache)."""
        kwargs = self._core_kwargs()
        if self._core is None or self._core_settings != kwargs:
            self._core = self._build_core(copy.deepcopy(kwargs))
            self._core_settings = copy.deepcopy(kwargs)
        return self._core

    def _build_core(self, kwargs: dict[str, Any]) -> Any:
        return (Embedder if self._kind == "embedder" else Reranker)(**kwargs)


def _fields(kind: str, constructor: str) -> dict[str, Any]:
    fields = settings.pydantic_fields(kind, rename=_RENAME, aliases=_ALIASES, exclude=("model_kwargs",))
    fields["model_kwargs"] = (
        dict[str, Any],
        Field(
            default_factory=dict,
            description=f"Keyword arguments for the {constructor} constructor, as in langchain-huggingface "
            "(device, revision, trust_remote_code, backend, model_kwargs for the transformers model, ...). "
            "Each becomes the modalbridge setting of the same name.",
        ),
    )
    return fields


_EmbeddingsFields = create_model(
    "_EmbeddingsFields", __base__=_Adapter, __module__=__name__, **_fields("embedder", "SentenceTransformer")
)
_RerankFields = create_model("_RerankFields", __base__=_Adapter, __module__=__name__, **_fields("reranker", "CrossEncoder"))


class MultimodalEmbeddings(_EmbeddingsFields, Embeddings):
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

    document_modality: Literal["text", "image", "audio", "video"] = Field(
        default="text",
        description="What the strings given to embed_documents are: 'text' (default), or paths/URIs of "
        "'image', 'audio' or 'video' files (e.g. a vector store whose page_content is the image path). "
        "Queries are always text.",
    )

    encode_kwargs: dict[str, Any] = Field(
        default_factory=dict,
        description="encode() keyword arguments for documents, as in langchain-huggingface (batch_size, "
        "normalize_embeddings, prompt_name, prompt, precision, truncate_dim); each becomes a setting.",
    )
    query_encode_kwargs: dict[str, Any] = Field(
        default_factory=dict,
        description="encode() keyword arguments for queries (when empty, encode_kwargs apply to queries too).",
    )
    multi_process: bool = Field(
        default=False,
        description="Encode on several devices (every CUDA device, else 4 CPU processes): the same as "
        "device=[...] with those devices.",
    )

    _kind: ClassVar[str] = "embedder"

    def _given(self) -> list[tuple[str, dict[str, Any]]]:
        given = super()._given()
        given.append(("encode_kwargs", settings.from_encode_kwargs(self.encode_kwargs, "document", "encode_kwargs")))
        if self.query_encode_kwargs:
            # langchain-huggingface encodes queries with query_encode_kwargs alone: what they leave out is
            # encode()'s default there, so a normalization given only for documents must not reach queries.
            query = {"normalize_embeddings": False, "precision": "float32", "truncate_dim": None}
            query.update(self.query_encode_kwargs)
            given.append(("query_encode_kwargs", settings.from_encode_kwargs(query, "query", "query_encode_kwargs")))
        else:
            given.append(("encode_kwargs", settings.from_encode_kwargs(self.encode_kwargs, "query", "encode_kwargs")))
        if self.multi_process:
            given.append(("multi_process=True", {"device": default_pool_devices()}))
        return given

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
        config = embedder.config()
        config["model_name"] = config.pop("model_name_or_path")
        config["model_kwargs"] = {"model_kwargs": config["model_kwargs"]} if config["model_kwargs"] else {}
        return cls(**config, **fields)

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


class MultimodalRerank(BaseDocumentCompressor, _RerankFields):
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

    _kind: ClassVar[str] = "reranker"

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


_TokenPoolFactor = settings.SETTINGS["token_pool_factor"].annotation


class MaxSimRerank(MultimodalRerank):
    """Reranks documents by late interaction (MaxSim) with a multi-vector model such as ColQwen2: the
    second stage after any single-vector retriever (``ContextualCompressionRetriever``). Documents are
    read like :class:`MultimodalRerank` reads them, embedded, and scored against the query exactly as
    ``model.similarity`` does (the core's :meth:`~modalbridge.multivector.MultiVectorEmbedder.rank`)::

        rerank = MaxSimRerank(model_name="vidore/colqwen2-v1.0-hf", page_content_modality="image", top_n=5)
        retriever = ContextualCompressionRetriever(base_compressor=rerank, base_retriever=clip_store.as_retriever())

    ``max_length``, ``prompt_name`` and ``prompt`` are CrossEncoder settings and are refused here.
    """

    token_pool_factor: _TokenPoolFactor = settings.SETTINGS["token_pool_factor"].field()[1]

    @model_validator(mode="after")
    def _refuse_cross_encoder_settings(self) -> Any:
        given = [name for name in ("max_length", "prompt_name", "prompt") if getattr(self, name) is not None]
        if given:
            raise ValueError(f"MaxSimRerank does not take {', '.join(given)} (CrossEncoder settings)")
        return self

    def _core_kwargs(self) -> dict[str, Any]:
        kwargs = super()._core_kwargs()
        for name in ("max_length", "prompt_name", "prompt"):  # refused above when set
            kwargs.pop(name)
        return {**kwargs, "token_pool_factor": self.token_pool_factor}

    def _build_core(self, kwargs: dict[str, Any]) -> Any:
        from modalbridge.multivector import MultiVectorEmbedder

        return MultiVectorEmbedder(**kwargs)

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


class PdfPageLoader(BaseLoader):
    """A LangChain document loader that yields one ``Document`` per PDF page, for visual document
    retrieval: the page is searched by what it looks like (rendered as an image), not by extracted text.

    Each document's ``page_content`` is the page's address ``"<path>#page=N"`` and its metadata is
    ``{"source": path, "page": N, "image": "<path>#page=N"}``, with ``page`` 1-based as in the address
    (LangChain's text PDF loaders count pages from 0). So:

    * :class:`MultimodalEmbeddings` built with ``document_modality="image"`` embeds the documents (in a
      vector store's ``add_documents``) as their page images;
    * :class:`MultimodalRerank` scores each by its page image (``metadata["image"]``).

    Pages are rendered only when they are embedded or scored, at the resolution the model looks at;
    ``lazy_load`` opens the file once (a missing, encrypted, corrupt or empty PDF fails at once, naming
    it) and makes the documents one at a time::

        loader = PdfPageLoader("report.pdf")
        docs = loader.load()                       # [Document(page_content="report.pdf#page=1", ...), ...]
        embeddings.embed_documents([d.page_content for d in docs])
    """

    def __init__(self, file_path: str | os.PathLike, pages: Sequence[int] | None = None) -> None:
        """``pages``: the 1-based page numbers to load (default: all)."""
        self.file_path = os.fspath(file_path)
        self.pages = None if pages is None else list(pages)

    def lazy_load(self) -> Iterator[Document]:
        from modalbridge.media import pdf_pages

        for page in pdf_pages(self.file_path, self.pages):
            address = page_uri(self.file_path, page.page)
            yield Document(page_content=address, metadata={"source": self.file_path, "page": page.page, "image": address})
