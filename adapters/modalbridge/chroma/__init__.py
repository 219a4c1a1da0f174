"""Chroma adapter: a persistent multimodal embedding function, a media data loader, and reranking.

Needs the ``[chroma]`` extra (``pip install 'modalbridge[chroma]'``)::

    import chromadb
    from modalbridge import Reranker
    from modalbridge.chroma import MultimodalDataLoader, MultimodalEmbeddingFunction, add_pdf, rerank_query_result

    client = chromadb.PersistentClient("db")
    collection = client.create_collection(
        "media",
        embedding_function=MultimodalEmbeddingFunction("sentence-transformers/clip-ViT-B-32"),
        data_loader=MultimodalDataLoader(),
    )
    collection.add(ids=["d1"], documents=["a dog on a beach"])        # text (always text)
    collection.add(ids=["i1"], images=[photo_array])                    # (H, W, 3) arrays
    collection.add(ids=["u1", "u2"], uris=["cat.jpg", "dog.png"])       # files, by extension
    add_pdf(collection, "report.pdf")                                   # one record per page: report.pdf#page=N
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

* :class:`ChromaWriter` writes precomputed vectors (bulk ingest, ``modalbridge index``, Ray): calls never
  above the store's ``max_batch_size``, upserts (idempotent by id), retried while a server restarts.
* Late-interaction models (ColPali, ColQwen2): :class:`LateInteractionCollection` keeps a first-stage vector
  per record in a collection and the token matrices beside it, and rescores candidates by exact MaxSim.
  A :class:`~modalbridge.multivector.MultiVectorEmbedder` also reranks any query result:
  ``rerank_query_result(hits, query, MultiVectorEmbedder(...))``.

* PDFs: :func:`add_pdf` stores one record per page (``file.pdf#page=N``), embedded as an image.

Modules: :mod:`.function` (the embedding function), :mod:`.loader` (the data loader), :mod:`.pdf`
(:func:`add_pdf`), :mod:`.rerank`, :mod:`.writer` (bulk writes), :mod:`.late_interaction`.
"""

from modalbridge.chroma.function import (
    EMBEDDING_FUNCTION_NAME,
    ENV_TRUST_REMOTE_CODE,
    UPDATABLE_SETTINGS,
    MultimodalEmbeddingFunction,
    RemoteCodeNotAllowedError,
    allow_remote_code,
    allowing_remote_code,
    remote_code_allowed,
    update_embedding_function,
)
from modalbridge.chroma.late_interaction import LateInteractionCollection, LateInteractionResult, is_late_interaction
from modalbridge.chroma.loader import LoadedMedia, MultimodalDataLoader
from modalbridge.chroma.pdf import add_pdf
from modalbridge.chroma.rerank import (
    RerankedResult,
    rerank_query_result,
    rerank_query_results,
)
from modalbridge.chroma.writer import ChromaUnavailableError, ChromaWriter, RetryPolicy

__all__ = [
    "ChromaUnavailableError",
    "ChromaWriter",
    "ENV_TRUST_REMOTE_CODE",
    "EMBEDDING_FUNCTION_NAME",
    "UPDATABLE_SETTINGS",
    "LateInteractionCollection",
    "LateInteractionResult",
    "LoadedMedia",
    "MultimodalDataLoader",
    "MultimodalEmbeddingFunction",
    "RemoteCodeNotAllowedError",
    "RerankedResult",
    "RetryPolicy",
    "add_pdf",
    "allow_remote_code",
    "allowing_remote_code",
    "is_late_interaction",
    "remote_code_allowed",
    "rerank_query_result",
    "rerank_query_results",
    "update_embedding_function",
]
