"""``modalbridge index/search --multi-vector``: files in a late-interaction collection.

:func:`open_late_interaction` opens (or creates, for a multi-vector model such as ColQwen2) a
:class:`modalbridge.chroma.LateInteractionCollection`; :func:`index_late_interaction` embeds files into it
(ids are absolute paths, a PDF is one record per page, unchanged content is not embedded again, a bad
file fails alone); :func:`search_late_interaction` ranks by exact MaxSim among the first-stage
candidates::

    from modalbridge.cli.late_interaction import index_late_interaction, open_late_interaction

    pages = open_late_interaction(client, "slides", model="vidore/colqwen2-v1.0")
    print(index_late_interaction(pages, ["decks/"]).summary())
"""

from __future__ import annotations

import os
from typing import Any, Mapping, Sequence

from modalbridge.cli.files import collect_files, file_id, file_item
from modalbridge.cli.model_settings import given_settings, machine_local, setting_label
from modalbridge.cli.results import Hit, IndexReport, SearchResult, progress_bar, without_path
from modalbridge.cli.store import MediaIndexError, get_collection
from modalbridge.items import PdfPage
from modalbridge.media import MediaError, pdf_pages
from modalbridge.settings import names, vector_changes

def open_late_interaction(
    client: Any,
    name: str,
    *,
    model: str | None = None,
    settings: Mapping[str, Any] | None = None,
    device: str | None = None,
    batch_size: int | None = None,
    first_stage: str = "muvera",
    create: bool = True,
):
    """The late-interaction collection ``name`` (:class:`modalbridge.chroma.LateInteractionCollection`):
    opened when it exists (``model``, if given, must be the one it was built with), else created for
    ``model`` (a multi-vector model such as ColQwen2) when ``create``.

    ``settings`` (and ``device``, ``batch_size``): the model settings given, by name, as
    :class:`~modalbridge.cli.indexing.MediaIndex` takes them. A new collection's model gets them; on an
    existing one, those that decide vectors must equal the stored ones and the machine-local ones apply
    to this run. Settings that multi-vector models do not take (``truncate_dim``, ``video_frames``,
    ``image_decode``, ``reduced_jpeg_decode``) are refused, naming them, never dropped."""
    from modalbridge.chroma import LateInteractionCollection, is_late_interaction
    from modalbridge.multivector import MultiVectorEmbedder

    given = given_settings(settings, owner="open_late_interaction", device=device, batch_size=batch_size)
    takes = set(names("multivector"))
    refused = [k for k in given if k not in takes]
    if refused:
        reasons = "; ".join(
            f"{setting_label(k)}: {MultiVectorEmbedder.unsupported_settings.get(k, 'multi-vector models do not take it')}"
            for k in refused
        )
        raise MediaIndexError(f"a late-interaction index (--multi-vector) does not take {reasons}: leave them out")
    local = machine_local(given)
    collection = get_collection(client, name)
    if collection is not None:
        if not is_late_interaction(collection):
            raise MediaIndexError(
                f"collection {name!r} is a single-vector index, not a late-interaction one: pick another --collection"
            )
        opened = LateInteractionCollection.open(client, name, **local)
        stored = opened.embedder.load_settings.model_name_or_path
        if model is not None and file_id(model) != file_id(stored) and model != stored:
            raise MediaIndexError(
                f"collection {name!r} holds token vectors of {stored!r}, not {model!r}: use another --collection or --db"
            )
        differ = vector_changes(opened.embedder.config(), given)
        if differ:
            changes = ", ".join(
                f"{setting_label(k)} ({before!r} -> {value!r})" for k, (before, value) in differ.items()
            )
            raise MediaIndexError(
                f"collection {name!r} holds token vectors of {stored!r} made with other settings: cannot change "
                f"{changes}: use another --collection or --db, or leave out "
                f"{', '.join(setting_label(k, flag_only=True) for k in differ)}"
            )
        return opened
    if not create or model is None:
        raise MediaIndexError(f"no collection {name!r} in this database: index some files first (modalbridge index PATH...)")
    embedder = MultiVectorEmbedder(model, **given)
    return LateInteractionCollection.create(client, name, embedder, first_stage=first_stage)


def _late_metadata(path: str, modality: str, item: Any) -> dict[str, Any]:
    """A late-interaction record's metadata; a PDF page's adds its file and page number."""
    if isinstance(item, PdfPage):
        return {"path": path, "modality": modality, "source": item.source, "page": item.page}
    return {"path": path, "modality": modality}


def index_late_interaction(
    pages: Any, paths: Sequence[str | os.PathLike], exclude: Sequence[str | os.PathLike] = (), *, progress: bool = False
) -> IndexReport:
    """Index files into a late-interaction collection: ids and URIs are absolute paths, unchanged content
    (by hash) is not embedded again, a file that cannot be read or embedded fails alone."""
    report = IndexReport()
    found = collect_files(paths, exclude)
    report.failed.extend(found.missing)
    report.skipped.extend(found.unsupported)
    report.ignored = found.ignored
    embedder = pages.embedder
    model = embedder.load_settings.model_name_or_path
    takes = [m for m in ("text", "image", "audio", "video") if embedder.supports(m)]
    files: list[tuple[str, str, Any]] = []
    for path, modality in found.files:
        if modality == "pdf" and "image" in takes:  # a record per page, each an image (hashed with its page)
            try:
                files.extend((page.uri, "image", page) for page in pdf_pages(path))
            except MediaError as exc:
                report.failed.append((path, without_path(str(exc), path)))
            continue
        if modality not in takes:
            report.skipped.append((path, f"the late-interaction model {model!r} takes {', '.join(takes)}, not {modality}"))
            continue
        try:
            files.append((path, modality, file_item(path, modality)))
        except (OSError, ValueError) as exc:
            report.failed.append((path, str(exc)))
    known = set(pages.writer.get([p for p, _, _ in files], include=[])["ids"]) if files else set()
    bar = progress_bar(len(files), f"embedding into {pages.collection.name}", progress)
    try:
        for start in range(0, len(files), embedder.encode_settings.batch_size):
            batch = files[start : start + embedder.encode_settings.batch_size]
            result = pages.upsert(
                [p for p, _, _ in batch],
                [item for _, _, item in batch],
                uris=[p for p, _, _ in batch],
                documents=[item if modality == "text" else None for _, modality, item in batch],
                metadatas=[_late_metadata(p, modality, item) for p, modality, item in batch],
                collect_errors=True,
            )
            for position, error in result.errors.items():
                path = batch[position][0]
                report.failed.append((path, without_path(getattr(error, "item_reason", str(error)), path)))
            unchanged = set(result.unchanged)
            for record_id in result.ids:
                if record_id in unchanged:
                    report.unchanged.append(record_id)
                else:
                    (report.updated if record_id in known else report.added).append(record_id)
            bar.update(len(batch))
    finally:
        bar.close()
    report.collections[pages.collection.name] = pages.count()
    report.failed.sort()
    return report


def search_late_interaction(pages: Any, query: Any, *, k: int = 10, candidates: int | None = None, modality: str | None = None) -> SearchResult:
    """The ``k`` best files by exact MaxSim among the first-stage candidates (see
    :meth:`modalbridge.chroma.LateInteractionCollection.query`)."""
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    if pages.count() == 0:
        return SearchResult(query, [], reranked=True)
    result = pages.query(query, n_results=k, candidates=candidates, where={"modality": modality} if modality else None)
    hits = []
    for rank, (record_id, score, text, uri, metadata, first_rank, distance) in enumerate(
        zip(result.ids, result.scores, result.documents, result.uris, result.metadatas, result.first_stage_ranks, result.first_stage_distances),
        1,
    ):
        hits.append(
            Hit(
                rank=rank,
                score=score,
                modality=str(metadata.get("modality", "")),
                path=str(metadata.get("path") or uri or record_id),
                id=record_id,
                collection=pages.collection.name,
                distance=float("nan") if distance is None else distance,
                retrieval_rank=first_rank + 1,
                retrieval_score=float("nan") if distance is None else 1.0 - distance,
                document=text,
                metadata=dict(metadata),
            )
        )
    note = (
        f"ranked by exact late-interaction (MaxSim) scores among {result.candidates} first-stage candidates "
        f"({pages.index.encoding.name}); 'was' is the first-stage rank"
    )
    return SearchResult(query, hits, reranked=True, notes=[note])
