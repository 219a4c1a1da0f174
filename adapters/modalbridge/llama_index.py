"""LlamaIndex adapter: a multimodal embedding model and a multimodal reranker (extra ``[llama-index]``).

::

    from llama_index.core import StorageContext
    from llama_index.core.indices import MultiModalVectorStoreIndex
    from modalbridge.llama_index import MultimodalEmbedding, MultimodalRerank

    embed = MultimodalEmbedding("sentence-transformers/clip-ViT-B-32", normalize=True)
    index = MultiModalVectorStoreIndex(nodes, embed_model=embed, image_embed_model=embed)  # one model
    rerank = MultimodalRerank("Qwen/Qwen3-VL-Reranker-2B", top_n=5)
    engine = index.as_query_engine(llm=llm, node_postprocessors=[rerank])

    pages = PdfPageReader().load_data("report.pdf")   # one ImageNode per page: image_path "report.pdf#page=N"
    index = MultiModalVectorStoreIndex(pages, embed_model=embed, image_embed_model=embed)

What each node is, for :class:`MultimodalRerank` and for :meth:`MultimodalEmbedding.get_node_embedding_batch`
(see :func:`node_to_item`):

* ``ImageNode`` (and ``ImageDocument``): its image — the base64 ``image``, else ``image_path``, else
  ``image_url`` (fetched only with ``allow_fetch=True``); never its text.
* a ``Node`` / ``Document`` with an ``image_resource``, ``audio_resource`` or ``video_resource``
  (LlamaIndex's own :class:`~llama_index.core.schema.MediaResource`): that media, read from its ``data``,
  ``path`` or ``url``. A node may carry one media resource; its ``text_resource`` is not scored.
* any other node (``TextNode``, text ``Document``): ``node.get_content(MetadataMode.EMBED)``, as text.

Late-interaction models (ColPali, ColQwen2): :class:`LateInteractionRetriever` searches a
:class:`modalbridge.chroma.LateInteractionCollection`, and :class:`MaxSimRerank` reranks any retriever's
nodes by MaxSim (a :class:`modalbridge.multivector.MultiVectorEmbedder` in place of the Reranker).

The embedding and reranking classes keep one core object (:class:`modalbridge.Embedder` / :class:`modalbridge.Reranker`) whose
model comes from the process-wide cache, so every adapter of any framework built with the same load
settings shares one loaded model.
"""

from __future__ import annotations

import asyncio
import os
from io import BytesIO
from typing import Any, Dict, List, Literal, Optional, Sequence, Union

import numpy as np

try:
    from llama_index.core.base.embeddings.base import EmbeddingEndEvent, EmbeddingStartEvent
    from llama_index.core.bridge.pydantic import ConfigDict, Field, PrivateAttr, create_model
    from llama_index.core.callbacks import CBEventType, EventPayload
    from llama_index.core.embeddings import MultiModalEmbedding
    from llama_index.core.instrumentation import get_dispatcher
    from llama_index.core.instrumentation.events.rerank import ReRankEndEvent, ReRankStartEvent
    from llama_index.core.base.base_retriever import BaseRetriever
    from llama_index.core.postprocessor.types import BaseNodePostprocessor
    from llama_index.core.readers.base import BaseReader
    from llama_index.core.schema import (
        BaseNode,
        ImageNode,
        MediaResource,
        MetadataMode,
        Node,
        NodeWithScore,
        QueryBundle,
        TextNode,
    )
    from llama_index.core.utils import get_tqdm_iterable
except ImportError as exc:  # pragma: no cover
    raise ImportError("modalbridge.llama_index needs llama-index-core: pip install 'modalbridge[llama-index]'") from exc

from modalbridge import settings
from modalbridge.embedder import Embedder
from modalbridge.items import MEDIA_TAGS, Combined, Image, MediaItem, as_media_list, modality_of, page_uri, renamed_item_error
from modalbridge.loading import default_pool_devices
from modalbridge.reranker import Reranker

__all__ = [
    "LateInteractionRetriever",
    "MaxSimRerank",
    "MultimodalEmbedding",
    "MultimodalRerank",
    "MediaType",
    "PdfPageReader",
    "node_to_item",
    "query_to_item",
]

dispatcher = get_dispatcher(__name__)

Embedding = List[float]

MediaType = Union[str, os.PathLike, BytesIO, bytes, MediaItem]
"""A media input: a file path, an http(s) URL (fetched only with ``allow_fetch=True``), a ``data:`` URI,
a ``BytesIO`` or encoded bytes, or an already tagged :class:`modalbridge.Image` / ``Audio`` / ``Video``.
(LlamaIndex's ``ImageType`` is ``str | BytesIO``.)"""

_RESOURCES = (("image", "image_resource"), ("audio", "audio_resource"), ("video", "video_resource"))


# -- from LlamaIndex values to core items -------------------------------------------------------------


def _describe_node(node: BaseNode) -> str:
    return f"node {node.node_id!r}"


def _from_resource(modality: str, resource: MediaResource, node: BaseNode, field: str) -> MediaItem:
    tag = MEDIA_TAGS[modality]
    if resource.data is not None:
        # MediaResource keeps data base64-encoded (it encodes raw bytes on assignment).
        return tag.from_base64(resource.data)
    if resource.path is not None:
        return tag(str(resource.path))
    if resource.url is not None:
        return tag(str(resource.url))
    raise ValueError(f"{_describe_node(node)}: its {field} has no data, path or url")


def node_to_item(node: BaseNode) -> Any:
    """What a node is, as a core item: an ``ImageNode`` is its image, a ``Node`` with an image/audio/video
    resource is that media, anything else is its text (``get_content(MetadataMode.EMBED)``).

    Raises ``ValueError`` naming the node id when an image node has no image or a node carries several
    media resources."""
    if isinstance(node, ImageNode):
        if node.image:
            try:
                return Image.from_base64(node.image)
            except ValueError as exc:
                raise ValueError(f"{_describe_node(node)}: its image field is {exc}") from None
        if node.image_path:
            return Image(node.image_path)
        if node.image_url:
            return Image(str(node.image_url))
        raise ValueError(
            f"{_describe_node(node)}: an ImageNode needs an image to be embedded or scored, "
            "but its image, image_path and image_url are all empty"
        )
    if isinstance(node, Node):
        found = [(m, f, getattr(node, f)) for m, f in _RESOURCES if getattr(node, f, None) is not None]
        if len(found) > 1:
            names = ", ".join(f for _, f, _ in found)
            raise ValueError(
                f"{_describe_node(node)}: carries several media ({names}); a node is embedded or scored "
                "as one item, so give each medium its own node"
            )
        if found:
            modality, field, resource = found[0]
            return _from_resource(modality, resource, node, field)
    return node.get_content(metadata_mode=MetadataMode.EMBED)


def query_to_item(query_bundle: QueryBundle) -> Any:
    """The query of a ``QueryBundle``: its text, its image (``image_path``: a path, URL or data: URI), or
    both as one :class:`modalbridge.Combined` item when it has both (for models that take combined inputs)."""
    text = query_bundle.query_str
    image_path = query_bundle.image_path
    if image_path:
        image = Image(image_path)
        return Combined(text=text, image=image) if text else image
    return text


def _embedding_rows(vectors: np.ndarray) -> List[Embedding]:
    return np.asarray(vectors, dtype=np.float32).tolist()


# -- embeddings --------------------------------------------------------------------------------------


_EMBEDDING_RENAME = {"model_name_or_path": "model_name", "batch_size": "embed_batch_size"}
_RERANK_RENAME = {"model_name_or_path": "model"}

_EmbeddingFields = create_model(
    "_EmbeddingFields",
    __base__=MultiModalEmbedding,
    __module__=__name__,
    **settings.pydantic_fields(
        "embedder",
        rename=_EMBEDDING_RENAME,
        # llama-index-embeddings-huggingface's HuggingFaceEmbedding: its names and its normalize default
        defaults={"normalize": True},
        aliases={"query_prompt": "query_instruction", "document_prompt": "text_instruction"},
    ),
)


class MultimodalEmbedding(_EmbeddingFields):
    """A LlamaIndex ``MultiModalEmbedding`` over any sentence-transformers model: text, images, audio
    and video.

    Use one instance as both ``embed_model`` and ``image_embed_model`` of ``MultiModalVectorStoreIndex``
    (one loaded model), or as the ``embed_model`` of ``VectorStoreIndex``. Texts are embedded as documents
    (the document prompt), queries with the query prompt; images, audio and video as documents.
    Batches go to the model in one call per ``embed_batch_size`` items; async methods run in a worker
    thread so the event loop keeps running.

    A drop-in for llama-index's ``HuggingFaceEmbedding``: it takes the same arguments
    (``query_instruction`` / ``text_instruction`` are the query / document prompts, ``normalize`` is on by
    default as there, ``parallel_process`` / ``target_devices`` run a pool over several devices). Every
    field is a setting of :mod:`modalbridge.settings`, checked on construction and on assignment;
    an unknown argument is an error.

    Nodes: calling the instance on nodes (an ingestion-pipeline transformation) and
    :meth:`get_node_embedding_batch` embed each node by what it is (see :func:`node_to_item`): an
    ``ImageNode`` by its image, a ``Node``/``Document`` with an ``audio_resource`` by its audio, etc.
    """

    model_config = ConfigDict(extra="forbid", validate_assignment=True, populate_by_name=True)

    parallel_process: bool = Field(
        default=False,
        description="Encode on several devices (target_devices, else every CUDA device or 4 CPU processes): "
        "the same as device=[...].",
    )
    target_devices: Optional[List[str]] = Field(
        default=None, description="The devices of the pool when parallel_process is on."
    )

    _embedder: Optional[Embedder] = PrivateAttr(default=None)
    _embedder_kwargs: Optional[Dict[str, Any]] = PrivateAttr(default=None)

    def __init__(self, model_name: Optional[str] = None, **data: Any) -> None:
        if model_name is not None:
            data["model_name"] = model_name
        super().__init__(**data)
        _ = self.embedder  # validate the combined settings now; the model loads on first use

    @classmethod
    def class_name(cls) -> str:
        return "ModalbridgeMultimodalEmbedding"

    # HuggingFaceEmbedding's names for the prompts, readable and assignable as there
    @property
    def query_instruction(self) -> Optional[str]:
        """The literal query prompt (``query_prompt``), as llama-index's ``HuggingFaceEmbedding`` names it."""
        return self.query_prompt

    @query_instruction.setter
    def query_instruction(self, value: Optional[str]) -> None:
        self.query_prompt = value

    @property
    def text_instruction(self) -> Optional[str]:
        """The literal document prompt (``document_prompt``), as ``HuggingFaceEmbedding`` names it."""
        return self.document_prompt

    @text_instruction.setter
    def text_instruction(self, value: Optional[str]) -> None:
        self.document_prompt = value

    @classmethod
    def from_embedder(cls, embedder: Embedder, **data: Any) -> "MultimodalEmbedding":
        """An adapter with the settings of a core :class:`~modalbridge.Embedder` (and so its model)."""
        config = {_EMBEDDING_RENAME.get(k, k): v for k, v in embedder.config().items()}
        return cls(**{**config, **data})

    def _core_kwargs(self) -> Dict[str, Any]:
        kwargs = settings.core_kwargs(self, "embedder", rename=_EMBEDDING_RENAME)
        if self.target_devices is not None and not self.parallel_process:
            raise ValueError("target_devices is set but parallel_process is off: set parallel_process=True to use them")
        if self.parallel_process:
            pool = list(self.target_devices) if self.target_devices else default_pool_devices()
            device_given = "device" in self.model_fields_set and self.device not in (None, "auto")
            kwargs["device"] = settings.merge([("device", {"device": kwargs["device"]} if device_given else {}), ("parallel_process", {"device": pool})])["device"]
        return kwargs

    @property
    def embedder(self) -> Embedder:
        """The core :class:`~modalbridge.Embedder` (rebuilt, cheaply, if a field was changed since)."""
        kwargs = self._core_kwargs()
        if self._embedder is None or self._embedder_kwargs != kwargs:
            self._embedder = Embedder(**kwargs)
            self._embedder_kwargs = kwargs
        return self._embedder

    @property
    def model(self):
        """The shared ``SentenceTransformer`` (loaded on first access)."""
        return self.embedder.model

    @property
    def dimension(self) -> int:
        return self.embedder.dimension

    def to_payload(self) -> Dict[str, Any]:
        return {**super().to_payload(), "device": self.device}

    # -- text --------------------------------------------------------------------------------------

    def _get_query_embedding(self, query: str) -> Embedding:
        return _embedding_rows(self.embedder.embed_queries([query]))[0]

    async def _aget_query_embedding(self, query: str) -> Embedding:
        return await asyncio.to_thread(self._get_query_embedding, query)

    def _get_text_embedding(self, text: str) -> Embedding:
        return self._get_text_embeddings([text])[0]

    async def _aget_text_embedding(self, text: str) -> Embedding:
        return await asyncio.to_thread(self._get_text_embedding, text)

    def _get_text_embeddings(self, texts: List[str]) -> List[Embedding]:
        return _embedding_rows(self.embedder.embed_documents(list(texts)))

    # LlamaIndex cuts a long list into embed_batch_size batches in the caller's order, so every batch pads
    # to its longest text (a 2,000-text call ran at 0.82x one direct encode). Handing its batching the
    # texts longest first, as encode orders them, keeps its events, cache and rate limiter, and the padding
    # of one encode call; rows go back to the caller's order.
    @dispatcher.span
    def get_text_embedding_batch(self, texts: List[str], show_progress: bool = False, **kwargs: Any) -> List[Embedding]:
        """LlamaIndex's own batched text embedding (events, embeddings cache, rate limiter), over the texts
        in sentence-transformers' length order; vectors in the order of ``texts``."""
        if len(texts) <= self.embed_batch_size:
            return super().get_text_embedding_batch(texts, show_progress=show_progress, **kwargs)
        order = self.embedder.batch_order(texts)
        rows = super().get_text_embedding_batch([texts[i] for i in order], show_progress=show_progress, **kwargs)
        return _in_caller_order(rows, order)

    @dispatcher.span
    async def aget_text_embedding_batch(
        self, texts: List[str], show_progress: bool = False, **kwargs: Any
    ) -> List[Embedding]:
        if len(texts) <= self.embed_batch_size:
            return await super().aget_text_embedding_batch(texts, show_progress=show_progress, **kwargs)
        order = self.embedder.batch_order(texts)
        rows = await super().aget_text_embedding_batch([texts[i] for i in order], show_progress=show_progress, **kwargs)
        return _in_caller_order(rows, order)

    async def _aget_text_embeddings(self, texts: List[str]) -> List[Embedding]:
        return await asyncio.to_thread(self._get_text_embeddings, texts)

    # -- images (LlamaIndex's MultiModalEmbedding API) ---------------------------------------------

    def _get_image_embedding(self, img_file_path: MediaType) -> Embedding:
        return self._get_image_embeddings([img_file_path])[0]

    async def _aget_image_embedding(self, img_file_path: MediaType) -> Embedding:
        return await asyncio.to_thread(self._get_image_embedding, img_file_path)

    def _get_image_embeddings(self, img_file_paths: List[MediaType]) -> List[Embedding]:
        return self._get_media_embeddings("image", img_file_paths)

    async def _aget_image_embeddings(self, img_file_paths: List[MediaType]) -> List[Embedding]:
        return await asyncio.to_thread(self._get_image_embeddings, img_file_paths)

    @dispatcher.span
    def get_image_embedding_batch(
        self, img_file_paths: List[MediaType], show_progress: bool = False
    ) -> List[Embedding]:
        """Embed images, ``embed_batch_size`` per model call (errors number items within the whole list)."""
        return self._in_batches("image", img_file_paths, show_progress)

    async def aget_image_embedding_batch(
        self, img_file_paths: List[MediaType], show_progress: bool = False
    ) -> List[Embedding]:
        return await asyncio.to_thread(self.get_image_embedding_batch, img_file_paths, show_progress)

    # -- audio and video -----------------------------------------------------------------------------

    def _get_media_embeddings(self, modality: str, sources: Sequence[MediaType]) -> List[Embedding]:
        return _embedding_rows(self.embedder.embed_documents(as_media_list(modality, sources, "item")))

    def _embed_media_batch(self, modality: str, batch: List[MediaType], offset: int) -> List[Embedding]:
        try:
            if modality == "image":  # LlamaIndex's hook for image batches
                return self._get_image_embeddings(batch)
            return self._get_media_embeddings(modality, batch)
        except (TypeError, ValueError) as exc:  # number items within the whole list, not the batch
            raise renamed_item_error(exc, offset=offset) from None

    def _in_batches(self, kind: str, values: Sequence[Any], show_progress: bool) -> List[Embedding]:
        """Embed ``values`` in batches of ``embed_batch_size`` (one core call each), with LlamaIndex's
        embedding events (instrumentation and callbacks) around every batch, like its text batches."""
        if isinstance(values, (str, bytes)):
            raise TypeError(f"expected a list of {kind} inputs, got a {type(values).__name__}")
        values = list(values)
        results: List[Embedding] = []
        payload = self.to_payload()
        starts = range(0, len(values), self.embed_batch_size)
        for start in get_tqdm_iterable(starts, show_progress, f"Generating {kind} embeddings"):
            batch = values[start : start + self.embed_batch_size]
            dispatcher.event(EmbeddingStartEvent(model_dict=payload))
            with self.callback_manager.event(
                CBEventType.EMBEDDING, payload={EventPayload.SERIALIZED: payload}
            ) as event:
                embeddings = self._embed_media_batch(kind, batch, start)
                chunks = [_describe_source(value) for value in batch]
                results.extend(embeddings)
                event.on_end(payload={EventPayload.CHUNKS: chunks, EventPayload.EMBEDDINGS: embeddings})
            dispatcher.event(EmbeddingEndEvent(chunks=chunks, embeddings=embeddings))
        return results

    def get_audio_embedding(self, audio: MediaType) -> Embedding:
        """Embed one sound (a path, URL, data: URI, BytesIO, bytes, or ``modalbridge.Audio``)."""
        return self._in_batches("audio", [audio], False)[0]

    @dispatcher.span
    def get_audio_embedding_batch(self, audios: Sequence[MediaType], show_progress: bool = False) -> List[Embedding]:
        """Embed sounds, ``embed_batch_size`` per model call."""
        return self._in_batches("audio", audios, show_progress)

    async def aget_audio_embedding(self, audio: MediaType) -> Embedding:
        return await asyncio.to_thread(self.get_audio_embedding, audio)

    async def aget_audio_embedding_batch(
        self, audios: Sequence[MediaType], show_progress: bool = False
    ) -> List[Embedding]:
        return await asyncio.to_thread(self.get_audio_embedding_batch, audios, show_progress)

    def get_video_embedding(self, video: MediaType) -> Embedding:
        """Embed one video (a path, URL, data: URI, BytesIO, bytes, or ``modalbridge.Video``)."""
        return self._in_batches("video", [video], False)[0]

    @dispatcher.span
    def get_video_embedding_batch(self, videos: Sequence[MediaType], show_progress: bool = False) -> List[Embedding]:
        """Embed videos, ``embed_batch_size`` per model call."""
        return self._in_batches("video", videos, show_progress)

    async def aget_video_embedding(self, video: MediaType) -> Embedding:
        return await asyncio.to_thread(self.get_video_embedding, video)

    async def aget_video_embedding_batch(
        self, videos: Sequence[MediaType], show_progress: bool = False
    ) -> List[Embedding]:
        return await asyncio.to_thread(self.get_video_embedding_batch, videos, show_progress)

    # -- nodes ---------------------------------------------------------------------------------------

    @dispatcher.span
    def get_node_embedding_batch(self, nodes: Sequence[BaseNode], show_progress: bool = False) -> List[Embedding]:
        """Embed nodes by what they are (see :func:`node_to_item`): text nodes through LlamaIndex's own
        :meth:`get_text_embedding_batch` (its batching, embeddings cache, rate limiter and spans), images
        through :meth:`get_image_embedding_batch`, audio and video through theirs; one core call per batch
        of each. Vectors come back in node order; errors name the node id."""
        nodes = list(nodes)
        items = [node_to_item(node) for node in nodes]  # errors name the node id
        groups: Dict[str, List[int]] = {}
        for index, item in enumerate(items):
            groups.setdefault("text" if isinstance(item, str) else modality_of(item), []).append(index)
        batches = {
            "text": self.get_text_embedding_batch,
            "image": self.get_image_embedding_batch,
            "audio": self.get_audio_embedding_batch,
            "video": self.get_video_embedding_batch,
        }
        rows: List[Embedding] = [[] for _ in nodes]
        for kind, indices in groups.items():
            try:
                vectors = batches[kind]([items[i] for i in indices], show_progress=show_progress)
            except (TypeError, ValueError) as exc:
                raise _node_error(exc, kind, indices, nodes, self.embed_batch_size) from None
            for index, vector in zip(indices, vectors, strict=True):
                rows[index] = vector
        return rows

    async def aget_node_embedding_batch(
        self, nodes: Sequence[BaseNode], show_progress: bool = False
    ) -> List[Embedding]:
        return await asyncio.to_thread(self.get_node_embedding_batch, nodes, show_progress)

    def __call__(self, nodes: Sequence[BaseNode], **kwargs: Any) -> Sequence[BaseNode]:
        """As a transformation (e.g. in an ``IngestionPipeline``): set every node's ``embedding`` from
        :meth:`get_node_embedding_batch` (an ``ImageNode`` is embedded by its image, not its text)."""
        embeddings = self.get_node_embedding_batch(nodes, show_progress=kwargs.get("show_progress", False))
        for node, embedding in zip(nodes, embeddings, strict=True):
            node.embedding = embedding
        return nodes

    async def acall(self, nodes: Sequence[BaseNode], **kwargs: Any) -> Sequence[BaseNode]:
        return await asyncio.to_thread(self.__call__, nodes, **kwargs)


def _in_caller_order(rows: List[Embedding], order: List[int]) -> List[Embedding]:
    """Rows computed for ``[texts[i] for i in order]``, back in the order of ``texts``."""
    result: List[Embedding] = [[] for _ in rows]
    for position, index in enumerate(order):
        result[index] = rows[position]
    return result


def _node_error(exc: Exception, kind: str, indices: List[int], nodes: List[BaseNode], batch_size: int) -> Exception:
    """An item error from one modality's batch call, renumbered over all the nodes and named by node id.
    (Text goes through LlamaIndex's own batching, which numbers items within a batch: beyond one batch
    the position is unknown, so the error is left as the core raised it rather than misnamed.)"""
    position = getattr(exc, "item_index", None)
    if position is None or (kind == "text" and len(indices) > batch_size) or position >= len(indices):
        return exc
    return renamed_item_error(exc, [_describe_node(node) for node in nodes], offset=indices[position] - position)


def _describe_source(source: Any) -> str:
    if isinstance(source, MediaItem):
        return source.describe()
    if isinstance(source, (str, os.PathLike)):
        return os.fspath(source)
    return f"a {type(source).__name__}"


# -- reranking ---------------------------------------------------------------------------------------


_RerankFields = create_model(
    "_RerankFields",
    __base__=BaseNodePostprocessor,
    __module__=__name__,
    **settings.pydantic_fields("reranker", rename=_RERANK_RENAME),
)


class MultimodalRerank(_RerankFields):
    """Reranks text, image, audio and video nodes against a text or image query with a
    sentence-transformers ``CrossEncoder`` (e.g. ``Qwen/Qwen3-VL-Reranker-2B``, or any text cross-encoder).

    Each node is scored on what it is (see :func:`node_to_item`): an ``ImageNode`` on its image, not its
    text. The query is ``QueryBundle.query_str``, or the image at ``QueryBundle.image_path``, or both as
    one combined query. All nodes are scored in one model call. Like LlamaIndex's
    ``SentenceTransformerRerank`` it emits ``ReRankStartEvent`` / ``ReRankEndEvent`` and a
    ``CBEventType.RERANKING`` callback event.
    """

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    top_n: Optional[int] = Field(
        default=2, ge=0, description="How many nodes to keep (None: all, reordered); 2 as SentenceTransformerRerank."
    )
    keep_retrieval_score: bool = Field(
        default=False, description='Keep the retrieval score in node.metadata["retrieval_score"].'
    )
    score_threshold: Optional[float] = Field(
        default=None, description="Drop nodes that score below this (after reranking)."
    )
    cross_encoder_kwargs: Dict[str, Any] = Field(
        default_factory=dict,
        description="CrossEncoder constructor arguments, as SentenceTransformerRerank takes them (max_length, "
        "trust_remote_code, revision, ...); each becomes the modalbridge setting of the same name.",
    )

    _reranker: Optional[Reranker] = PrivateAttr(default=None)
    _reranker_kwargs: Optional[Dict[str, Any]] = PrivateAttr(default=None)

    def __init__(self, model: Optional[str] = None, **data: Any) -> None:
        if model is not None:
            data["model"] = model
        super().__init__(**data)
        _ = self.reranker  # validate the settings now; the model loads on first use

    @classmethod
    def class_name(cls) -> str:
        return "ModalbridgeMultimodalRerank"

    @classmethod
    def from_reranker(cls, reranker: Reranker, **data: Any) -> "MultimodalRerank":
        """A postprocessor with the settings of a core :class:`~modalbridge.Reranker` (and so its model)."""
        config = {_RERANK_RENAME.get(k, k): v for k, v in reranker.config().items()}
        return cls(**{**config, **data})

    def _core_kwargs(self) -> Dict[str, Any]:
        kwargs = settings.core_kwargs(self, "reranker", rename=_RERANK_RENAME)
        explicit = {k: v for k, v in kwargs.items() if _RERANK_RENAME.get(k, k) in self.model_fields_set}
        from_kwargs = settings.from_sentence_transformers_kwargs(self.cross_encoder_kwargs, "cross_encoder_kwargs")
        return {**kwargs, **settings.merge([("fields", explicit), ("cross_encoder_kwargs", from_kwargs)])}

    @property
    def reranker(self) -> Reranker:
        """The core :class:`~modalbridge.Reranker` (rebuilt, cheaply, if a field was changed since)."""
        kwargs = self._core_kwargs()
        if self._reranker is None or self._reranker_kwargs != kwargs:
            self._reranker = Reranker(**kwargs)
            self._reranker_kwargs = kwargs
        return self._reranker

    def _output_node(self, original: NodeWithScore) -> BaseNode:
        """The node to return: itself, or with ``keep_retrieval_score`` a shallow copy whose metadata holds
        the retrieval score (excluded from what embedders, rerankers and LLMs read, and the input node is
        left as it was, so reranking twice scores the same content)."""
        node = original.node
        if not self.keep_retrieval_score:
            return node
        key = "retrieval_score"
        return node.model_copy(
            update={
                "metadata": {**node.metadata, key: original.score},
                "excluded_embed_metadata_keys": [*node.excluded_embed_metadata_keys, key],
                "excluded_llm_metadata_keys": [*node.excluded_llm_metadata_keys, key],
            }
        )

    def _postprocess_nodes(
        self, nodes: List[NodeWithScore], query_bundle: Optional[QueryBundle] = None
    ) -> List[NodeWithScore]:
        dispatcher.event(
            ReRankStartEvent(
                query=query_bundle,
                nodes=nodes,
                top_n=len(nodes) if self.top_n is None else self.top_n,
                model_name=self.model,
            )
        )
        if query_bundle is None:
            raise ValueError("MultimodalRerank needs a query: pass query_bundle or query_str")
        query = query_to_item(query_bundle)
        items = [node_to_item(n.node) for n in nodes]  # errors name the node id

        with self.callback_manager.event(
            CBEventType.RERANKING,
            payload={
                EventPayload.NODES: nodes,
                EventPayload.MODEL_NAME: self.model,
                EventPayload.QUERY_STR: query_bundle.query_str,
                EventPayload.TOP_K: self.top_n,
            },
        ) as event:
            try:  # one core call for all the nodes, whatever their modalities
                ranked = self.reranker.rank(query, items, top_n=self.top_n) if items else []
            except (TypeError, ValueError) as exc:  # "node 'id' (document i): reason" (MediaError included)
                raise renamed_item_error(exc, [_describe_node(n.node) for n in nodes]) from None
            if self.score_threshold is not None:  # best first: keep the head that reaches the threshold
                ranked = [hit for hit in ranked if hit.score >= self.score_threshold]
            new_nodes = [NodeWithScore(node=self._output_node(nodes[hit.index]), score=hit.score) for hit in ranked]
            event.on_end(payload={EventPayload.NODES: new_nodes})

        dispatcher.event(ReRankEndEvent(nodes=new_nodes))
        return new_nodes


# -- late interaction (ColPali / ColQwen2 multi-vector models) -------------------------------------------


_TokenPoolFactor = settings.SETTINGS["token_pool_factor"].annotation


class MaxSimRerank(MultimodalRerank):
    """Reranks nodes by late interaction (MaxSim) with a multi-vector model such as ColQwen2: the second
    stage after any single-vector retriever. Nodes and the query are read like :class:`MultimodalRerank`
    reads them and scored exactly as ``model.similarity`` does (the core's
    :meth:`~modalbridge.multivector.MultiVectorEmbedder.rank`); same events and callbacks::

        rerank = MaxSimRerank("vidore/colqwen2-v1.0-hf", top_n=5)
        engine = clip_index.as_query_engine(llm=llm, node_postprocessors=[rerank])

    ``max_length``, ``prompt_name`` and ``prompt`` are CrossEncoder settings and are refused here.
    """

    token_pool_factor: _TokenPoolFactor = settings.SETTINGS["token_pool_factor"].field()[1]

    @classmethod
    def class_name(cls) -> str:
        return "ModalbridgeMaxSimRerank"

    def _core_kwargs(self) -> Dict[str, Any]:
        given = [name for name in ("max_length", "prompt_name", "prompt") if getattr(self, name) is not None]
        if given:
            raise ValueError(f"MaxSimRerank does not take {', '.join(given)} (CrossEncoder settings)")
        kwargs = super()._core_kwargs()
        for name in ("max_length", "prompt_name", "prompt"):
            kwargs.pop(name)
        return {**kwargs, "token_pool_factor": self.token_pool_factor}

    @property
    def reranker(self) -> Any:
        """The core :class:`~modalbridge.multivector.MultiVectorEmbedder` (rebuilt, cheaply, if a field changed)."""
        from modalbridge.multivector import MultiVectorEmbedder

        kwargs = self._core_kwargs()
        if self._reranker is None or self._reranker_kwargs != kwargs:
            self._reranker = MultiVectorEmbedder(**kwargs)
            self._reranker_kwargs = kwargs
        return self._reranker


class LateInteractionRetriever(BaseRetriever):
    """A LlamaIndex retriever over a :class:`modalbridge.chroma.LateInteractionCollection`: candidates from
    the collection's first-stage vectors, ranked by exact MaxSim from the stored token matrices::

        pages = LateInteractionCollection.open(chromadb.PersistentClient("db"), "pages")
        retriever = LateInteractionRetriever(pages, similarity_top_k=5)
        nodes = retriever.retrieve("revenue in 2023")      # or QueryBundle(query_str, image_path=...)
        engine = RetrieverQueryEngine.from_args(retriever, llm=llm)

    A record stored with a document text becomes a ``TextNode``; one with only a URI (a page image)
    becomes an ``ImageNode`` with ``image_path``. Node ids are record ids, scores are MaxSim scores.
    The query is ``QueryBundle.query_str``, or its image (see :func:`query_to_item`).
    """

    def __init__(
        self,
        collection: Any,
        similarity_top_k: int = 4,
        candidates: Optional[int] = None,
        where: Optional[Dict[str, Any]] = None,
        **kwargs: Any,
    ) -> None:
        from modalbridge.chroma.late_interaction import LateInteractionCollection

        if not isinstance(collection, LateInteractionCollection):
            raise TypeError(f"collection must be a LateInteractionCollection, got {type(collection).__name__}")
        if similarity_top_k < 1:
            raise ValueError(f"similarity_top_k must be at least 1, got {similarity_top_k}")
        self.collection = collection
        self.similarity_top_k = similarity_top_k
        self.candidates = candidates
        self.where = where
        super().__init__(**kwargs)

    @classmethod
    def class_name(cls) -> str:
        return "ModalbridgeLateInteractionRetriever"

    def _retrieve(self, query_bundle: QueryBundle) -> List[NodeWithScore]:
        hits = self.collection.query(
            query_to_item(query_bundle), n_results=self.similarity_top_k, candidates=self.candidates, where=self.where
        )
        results = []
        for record_id, score, text, uri, metadata in zip(hits.ids, hits.scores, hits.documents, hits.uris, hits.metadatas):
            if text is None and uri is not None:
                node: BaseNode = ImageNode(id_=record_id, image_path=uri, metadata=metadata)
            else:
                node = TextNode(id_=record_id, text=text or "", metadata=metadata)
            results.append(NodeWithScore(node=node, score=score))
        return results

# -- reading PDFs ------------------------------------------------------------------------------------


class PdfPageReader(BaseReader):
    """A LlamaIndex reader that yields one ``ImageNode`` per PDF page, for visual document retrieval:
    pages are searched by what they look like (rendered as images), not by extracted text.

    Each node's ``image_path`` is the page's address ``"<path>#page=N"`` (1-based), its metadata
    ``{"source": path, "page": N}`` plus ``extra_info``, and its id ``"<path>#page=N"`` too (re-reading a
    file gives the same ids). In a ``MultiModalVectorStoreIndex`` whose ``image_embed_model`` is a
    :class:`MultimodalEmbedding`, and in :class:`MultimodalRerank`, a node is its page image, rendered
    when it is embedded or scored at the resolution the model looks at::

        nodes = PdfPageReader().load_data("report.pdf")
        index = MultiModalVectorStoreIndex(nodes, embed_model=embed, image_embed_model=embed)
        engine = index.as_query_engine(llm=llm, node_postprocessors=[MultimodalRerank(reranker, top_n=3)])

    ``lazy_load_data`` opens the file once (a missing, encrypted, corrupt or empty PDF fails at once,
    naming it) and makes the nodes one at a time.
    """

    def lazy_load_data(  # type: ignore[override]
        self, file: Union[str, os.PathLike], extra_info: Optional[Dict[str, Any]] = None, fs: Any = None
    ):
        from modalbridge.media import pdf_pages

        if fs is not None:  # SimpleDirectoryReader passes fs only for a non-local file system
            raise ValueError(f"{os.fspath(file)}: PdfPageReader reads local files only (got fs={type(fs).__name__})")
        path = os.fspath(file)
        metadata = dict(extra_info or {})
        for page in pdf_pages(path):
            address = page_uri(path, page.page)
            yield ImageNode(id_=address, image_path=address, metadata={**metadata, "source": path, "page": page.page})

    def load_data(  # type: ignore[override]
        self, file: Union[str, os.PathLike], extra_info: Optional[Dict[str, Any]] = None, fs: Any = None
    ) -> List[ImageNode]:
        """One ``ImageNode`` per page of the PDF at ``file`` (``extra_info`` is added to each node's
        metadata). Local files only: a non-local ``fs`` (from ``SimpleDirectoryReader``) is an error."""
        return list(self.lazy_load_data(file, extra_info, fs))
