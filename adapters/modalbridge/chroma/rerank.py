"""Reranking Chroma query results with a :class:`~modalbridge.Reranker`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, Sequence

from modalbridge.chroma.function import _as_item
from modalbridge.items import renamed_item_error
from modalbridge.media import MediaError, tag_uri
from modalbridge.reranker import Reranker

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
