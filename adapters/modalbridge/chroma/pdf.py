"""Adding a PDF to a Chroma collection: one record per page, in one call."""

from __future__ import annotations

import os
from typing import Any, Mapping

from modalbridge.chroma.writer import ChromaWriter
from modalbridge.items import page_uri
from modalbridge.media import pdf_pages

__all__ = ["add_pdf"]


def add_pdf(
    collection: Any,
    path: str | os.PathLike,
    *,
    metadata: Mapping[str, Any] | None = None,
    batch_size: int = 32,
) -> list[str]:
    """Upsert every page of the PDF at ``path`` into ``collection``: one record per page, whose id and
    URI are ``"<path>#page=N"`` (1-based) and whose metadata is ``{"source": path, "page": N}`` plus
    ``metadata``. Returns the ids, in page order.

    The pages are embedded by the collection's own embedding function (a
    :class:`~modalbridge.chroma.MultimodalEmbeddingFunction` whose model takes images), ``batch_size``
    pages per call, so only that many are ever rendered at once; give the collection a
    :class:`~modalbridge.chroma.MultimodalDataLoader` too, so ``include=["data"]`` and reranking read the
    page URIs. Adding the same file again updates its records (same ids), and records of pages the file
    no longer has are deleted. A missing, encrypted, corrupt or empty PDF raises
    :class:`~modalbridge.MediaError` naming it before anything is written::

        collection = client.create_collection(
            "pages", embedding_function=MultimodalEmbeddingFunction(model), data_loader=MultimodalDataLoader()
        )
        add_pdf(collection, "reports/q3.pdf")
        hits = collection.query(query_texts=["revenue by region"], n_results=3, include=["uris", "metadatas"])
        hits["uris"][0][0]   # 'reports/q3.pdf#page=7'
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    extra = dict(metadata or {})
    if {"source", "page"} & extra.keys():
        raise ValueError("metadata must not set 'source' or 'page': add_pdf sets them for each page")
    # Chroma's upsert does not read URIs through the data loader (only add does), so the pages, as the
    # loader would hand them over, go to the collection's embedding function here.
    function = (getattr(collection, "configuration", None) or {}).get("embedding_function")
    if function is None:
        raise ValueError(f"collection {collection.name!r} has no embedding function to embed the pages with")
    source = os.fspath(path)
    pages = pdf_pages(source)  # opens the file once: a bad PDF fails here, before any write
    writer = ChromaWriter(collection)  # batched to the store's limit, retried on transient errors
    ids: list[str] = []
    for start in range(0, len(pages), batch_size):
        chunk = pages[start : start + batch_size]
        uris = [page_uri(source, page.page) for page in chunk]
        writer.upsert(
            uris,
            function(list(chunk)),
            uris=uris,
            metadatas=[{**extra, "source": source, "page": page.page} for page in chunk],
        )
        ids.extend(uris)
    # a shorter new version of the file: its old last pages no longer exist
    gone = collection.get(where={"$and": [{"source": source}, {"page": {"$gt": len(pages)}}]}, include=[])["ids"]
    if gone:
        writer.delete(gone)
    return ids
