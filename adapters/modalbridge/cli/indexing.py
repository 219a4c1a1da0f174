"""Index folders of images, sounds, videos and text files into Chroma, and search them.

This is what the ``modalbridge`` command runs, usable from Python too::

    from modalbridge.cli.indexing import MediaIndex, format_hits, open_client

    index = MediaIndex(open_client("modalbridge-db"), "photos", model="sentence-transformers/clip-ViT-B-32")
    report = index.index(["~/Pictures", "notes.md"])
    print(report.summary())
    result = index.search("a dog on a beach", k=10)
    print(format_hits(result))

How files become records:

* Files are found by extension (:func:`modalbridge.media.modality_from_extension`; ``.txt`` and
  ``.md`` are text documents, read as UTF-8; ``.pdf`` files are documents of pages). Hidden files and
  folders are skipped inside folders.
* A record's id and URI are the file's absolute (symlink-resolved) path, so indexing again updates
  instead of duplicating. Its metadata is ``{path, modality, size, mtime_ns, sha256}``: a file whose
  size and mtime are unchanged is skipped without reading it; one whose content hash is unchanged is
  skipped too (only its mtime is updated).
* A PDF becomes one record per page, each an image to the model (rendered at the resolution the model
  looks at): id, URI and ``path`` are ``<file>.pdf#page=N``, and the metadata adds ``source`` (the
  file), ``page`` (1-based) and ``pages`` (the file's page count). The whole file is skipped when it is
  unchanged, re-embedded when it changed (records of pages it no longer has are deleted), and fails
  alone, with the reason, when it cannot be read (encrypted, corrupt, empty).
* Embedding runs through the core :class:`~modalbridge.Embedder`, in batches of one modality. A file
  that cannot be read fails alone: the core names the failing item, it is set aside with its reason,
  and the rest of the batch is embedded.
* One model rarely takes every modality. Each index is a set of Chroma collections, one per model:
  ``NAME`` for the main model (``--model``; videos as the mean of sampled frames when it only takes
  images), and ``NAME-audio`` for an audio model (``--audio-model``) when the main model takes no
  audio. Each collection stores its model's settings (via
  :class:`~modalbridge.chroma.MultimodalEmbeddingFunction`), so searching needs no ``--model``.

This module holds :class:`MediaIndex` (routing files to collections, deciding what to embed again,
storing and searching). Its parts live beside it, by role: :mod:`.files` (finding files, ids, hashes,
modality by extension), :mod:`.store` (Chroma clients and collections), :mod:`.backends` (where files are
embedded: in process or on Ray), :mod:`.results` (reports, hits, the printed table) and
:mod:`.late_interaction` (``--multi-vector`` indexes). Their public names are importable from here too.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np

from modalbridge.chroma.writer import ChromaUnavailableError, ChromaWriter, RetryPolicy
from modalbridge.cli.backends import FileRecord, InProcessEmbedding
from modalbridge.cli.files import TEXT_EXTENSIONS, collect_files, embedded_as, file_id, file_modality, query_item, sha256_of
from modalbridge.cli.results import Hit, IndexReport, SearchResult, format_hits, progress_bar, without_path
from modalbridge.cli.store import (
    DEFAULT_COLLECTION,
    DEFAULT_DB,
    MediaIndexError,
    collection_space,
    get_collection,
    open_client,
    similarity_score,
    stored_function,
)
from modalbridge.embedder import Embedder
from modalbridge.inputs import is_supported
from modalbridge.items import modality_of, page_uri
from modalbridge.media import MediaError, pdf_pages
from modalbridge.reranker import Reranker
from modalbridge.cli.model_settings import about_audio, given_settings, machine_local, setting_label
from modalbridge.settings import SETTINGS

# Importable from here as before the split (``from modalbridge.cli.indexing import read_file_item``, ...).
from modalbridge.cli.backends import embed_each_or_fail, read_file_item  # noqa: F401
from modalbridge.cli.files import PDF_EXTENSION, FileSet, file_item  # noqa: F401
from modalbridge.cli.late_interaction import (  # noqa: F401
    index_late_interaction,
    open_late_interaction,
    search_late_interaction,
)

__all__ = [
    "AUDIO_SUFFIX",
    "DEFAULT_COLLECTION",
    "DEFAULT_DB",
    "TEXT_EXTENSIONS",
    "Hit",
    "MediaIndexError",
    "IndexReport",
    "MediaIndex",
    "SearchResult",
    "collect_files",
    "file_modality",
    "format_hits",
    "open_client",
    "query_item",
]

AUDIO_SUFFIX = "-audio"
"""The audio model's collection is named ``<collection>-audio``."""
DEFAULT_VIDEO_FRAMES = 8


def default_models() -> tuple[str, str]:
    """The demo models (a text+image embedder and a text+audio embedder), used when no model is given."""
    try:
        from modalbridge.demo import demo_audio_embedder_path, demo_embedder_path
    except ImportError as exc:
        raise MediaIndexError(f"no --model given and the demo models are not available ({exc}); pass --model") from None
    return str(demo_embedder_path()), str(demo_audio_embedder_path())


def default_reranker() -> str:
    """The demo (text, image) reranker."""
    try:
        from modalbridge.demo import demo_reranker_path
    except ImportError as exc:
        raise MediaIndexError(f"the demo reranker is not available ({exc}); pass a --reranker model") from None
    return str(demo_reranker_path())


@dataclass
class Route:
    """One collection and the embedder whose vectors it holds."""

    name: str
    embedder: Embedder
    collection: Any = None
    """The Chroma collection, or ``None`` until something is stored in it."""

    @property
    def model(self) -> str:
        return self.embedder.load_settings.model_name_or_path

    def supports(self, modality: str) -> bool:
        return self.embedder.supports(modality)


class MediaIndex:
    """A searchable index of files in Chroma: one collection per embedding model (see the module doc).

    Args:
        client: a chromadb client (:func:`open_client`).
        name: the collection name (the audio model's collection is ``name + "-audio"``).
        model, audio_model: hub names or local folders. ``None``: the model an existing collection was
            built with, else (when ``use_demo_models``) the demo models. A model that differs from an
            existing collection's is an error (its vectors would not be comparable).
        settings: embedder settings given for this index, by name (:mod:`modalbridge.settings`), e.g.
            ``{"normalize": True, "truncate_dim": 64, "decode_workers": 2}``. A new collection's
            :class:`~modalbridge.Embedder` gets them (so the collection stores those that decide vectors).
            On an existing collection, those that decide vectors must equal its stored ones (else a
            :class:`MediaIndexError` naming them) and the machine-local ones (device, batch size, decode
            workers, image decoding, ...) apply to this run. Settings about pictures only
            (``video_frames``, ``pdf_dpi``, ...) go to the main model's collection, not the audio one.
        device, batch_size, video_frames, trust_remote_code: the same as ``settings`` entries (a name given
            both ways must agree). ``video_frames``: embed videos as the mean of this many frames when the
            main model takes images but no video (default for a new collection: 8).
        use_demo_models: fall back to the demo models when no model is given and no collection exists
            (the audio demo model only when ``model`` is not given either).
        progress: show tqdm progress bars on stderr while embedding.
        embedding: where files are embedded: :class:`InProcessEmbedding` (default, ``batch_size`` files
            per batch) or :class:`modalbridge.ray.RayEmbedding` (a Ray cluster).
        retry: how long writes are retried while the Chroma store is unreachable
            (:class:`~modalbridge.chroma.RetryPolicy`; the default rides out a server restart).
    """

    def __init__(
        self,
        client: Any,
        name: str = DEFAULT_COLLECTION,
        *,
        model: str | None = None,
        audio_model: str | None = None,
        settings: Mapping[str, Any] | None = None,
        device: str | None = None,
        batch_size: int | None = None,
        video_frames: int | None = None,
        trust_remote_code: bool = False,
        use_demo_models: bool = True,
        progress: bool = False,
        embedding: Any = None,
        retry: RetryPolicy | None = None,
    ) -> None:
        import modalbridge.chroma  # noqa: F401  (registers the embedding function Chroma stores)

        given = given_settings(
            settings, device=device, batch_size=batch_size, video_frames=video_frames, trust_remote_code=trust_remote_code
        )
        self.trust_remote_code = bool(given.get("trust_remote_code", False))
        """Whether this index may rebuild stored configurations that ask for remote code (its own only)."""
        self.client = client
        self.name = name
        self.batch_size = given.get("batch_size", SETTINGS["batch_size"].default)
        self.progress = progress
        self.embedding = embedding if embedding is not None else InProcessEmbedding(self.batch_size)
        self.retry = retry or RetryPolicy()
        main_collection = get_collection(client, name)
        audio_collection = get_collection(client, name + AUDIO_SUFFIX)
        if main_collection is None and audio_collection is None and not use_demo_models and model is None:
            raise MediaIndexError(
                f"no collection {name!r} in this database: index some files first (modalbridge index PATH...), "
                "or check --db / --host / --collection"
            )

        default_main = default_audio = None
        if use_demo_models and model is None:
            try:
                demo_main, demo_audio = default_models()
            except MediaIndexError:
                if main_collection is None:
                    raise
            else:  # a fresh index, or one built with the demo model: the demo models are the defaults
                stored_main = (
                    stored_function(main_collection, self.trust_remote_code).get_config() if main_collection is not None else None
                )
                if stored_main is None or file_id(stored_main["model_name_or_path"]) == file_id(demo_main):
                    default_main, default_audio = demo_main, demo_audio

        self.main = self._route(
            name, main_collection, model or default_main, given, new={"video_frames": DEFAULT_VIDEO_FRAMES}
        )
        # The audio model's collection gets what can concern an audio model: not the settings about
        # pictures (video frames, PDF pages, pixel budgets, JPEG decoding), which would only be stored
        # there and make a later run's flags "differ" from what that collection never used.
        self.audio = self._route(name + AUDIO_SUFFIX, audio_collection, audio_model or default_audio, about_audio(given))
        if not self.routes:
            raise MediaIndexError(f"no collection {name!r} in this database and no --model given")
        visual = [k for k in given if k not in about_audio(given)]
        if self.main is None and visual:  # nothing to apply them to: said, not dropped
            raise MediaIndexError(
                f"{', '.join(map(setting_label, visual))}: about images and videos, but this index has no "
                f"collection {name!r} for them (only {name + AUDIO_SUFFIX!r}, of an audio model): leave "
                f"{'it' if len(visual) == 1 else 'them'} out"
            )

    def _route(
        self, name: str, collection: Any, model: str | None, given: dict[str, Any], new: dict[str, Any] | None = None
    ) -> Route | None:
        """The route of one collection: a new one for ``model`` (with ``new`` defaults under the ``given``
        settings), or the existing collection with the model and the vector-deciding settings it was
        built with (``model`` and ``given`` ones, if given, must match them; machine-local ones apply)."""
        if collection is None:
            return None if model is None else Route(name, Embedder(model, **{**(new or {}), **given}))
        function = stored_function(collection, self.trust_remote_code)
        stored = function.get_config()
        local = machine_local(given)  # this machine, this run
        requested = {**stored, **{k: v for k, v in given.items() if k not in local}}
        if model is not None:
            requested["model_name_or_path"] = model
        try:
            function.validate_config_update(stored, requested)
        except ValueError as exc:
            # Name what to leave out: the model and the flags whose values differ from the stored ones.
            differ = [k for k in requested if (k in given or k == "model_name_or_path") and _changes(function, stored, k, requested[k])]
            flags = ", ".join("--model" if k == "model_name_or_path" else setting_label(k, flag_only=True) for k in differ)
            raise MediaIndexError(
                f"collection {name!r} holds vectors of model {stored['model_name_or_path']!r}: {exc} "
                f"(with the modalbridge command: use another --collection or --db, or leave out {flags or '--model'})"
            ) from None
        return Route(name, Embedder.from_config({**stored, **local}), collection)

    @property
    def routes(self) -> list[Route]:
        return [r for r in (self.main, self.audio) if r is not None]

    def route_for(self, modality: str) -> Route | None:
        """The collection a file of this modality goes to: the main model's if it takes it, else the
        audio model's (loads the models it asks). PDF pages go where images go."""
        for route in self.routes:
            if route.supports(embedded_as(modality)):
                return route
        return None

    def _writer(self, route: Route) -> ChromaWriter:
        """The writer of a route's collection, created (with its embedding function stored, so that any
        client reopens it) on first use."""
        if route.collection is None:
            from modalbridge.chroma import MultimodalEmbeddingFunction, allowing_remote_code

            # Stored with the collection. Built from the config (not the constructor, which records a
            # process-wide consent for the model): remote code stays with this index.
            config = route.embedder.config()
            if os.path.isdir(config["model_name_or_path"]):  # as get_config stores it: reopenable from anywhere
                config["model_name_or_path"] = os.path.abspath(config["model_name_or_path"])
            with allowing_remote_code(self.trust_remote_code):
                function = MultimodalEmbeddingFunction.build_from_config(config)
                writer = ChromaWriter.open(self.client, route.name, function, retry=self.retry)
            route.collection = writer.collection
            return writer
        return ChromaWriter(route.collection, retry=self.retry)

    # -- indexing ------------------------------------------------------------------------------------

    def index(self, paths: Sequence[str | os.PathLike], exclude: Sequence[str | os.PathLike] = ()) -> IndexReport:
        """Embed and upsert the files under ``paths`` (see the module doc); never raises for one bad
        file: it is in ``report.failed`` with its reason."""
        report = IndexReport()
        found = collect_files(paths, exclude)
        report.failed.extend(found.missing)
        report.skipped.extend(found.unsupported)
        report.ignored = found.ignored

        by_route: dict[str, list[tuple[str, str]]] = {}
        routes: dict[str, Route] = {}
        supported: dict[str, Route | None] = {}
        for path, modality in found.files:
            if modality not in supported:
                supported[modality] = self.route_for(modality)
            route = supported[modality]
            if route is None:
                report.skipped.append((path, self._unsupported_reason(modality)))
                continue
            routes[route.name] = route
            by_route.setdefault(route.name, []).append((path, modality))

        try:
            for name, files in by_route.items():
                self._index_route(routes[name], files, report)
            for route in self.routes:
                if route.collection is not None:
                    report.collections[route.name] = ChromaWriter(route.collection, retry=self.retry).count()
        except ChromaUnavailableError as exc:
            stored = len(report.added) + len(report.updated)
            raise MediaIndexError(f"{exc} ({stored} files were stored in this run; indexing again skips them)") from None
        report.failed.sort()
        return report

    def _unsupported_reason(self, modality: str) -> str:
        models = "; ".join(f"{r.model!r} takes {', '.join(_modalities(r.embedder))}" for r in self.routes)
        hint = " (pass --audio-model, e.g. a CLAP model)" if modality == "audio" else ""
        if modality == "pdf":
            hint = " (PDF pages are embedded as images)"
        return f"no model of this index takes {embedded_as(modality)}: {models}{hint}"

    def _index_route(self, route: Route, files: list[tuple[str, str]], report: IndexReport) -> None:
        writer = self._writer(route)
        ids = [page_uri(path, 1) if modality == "pdf" else path for path, modality in files]  # a PDF: its first page
        got = writer.get(ids, include=["metadatas"])
        stored: dict[str, dict[str, Any]] = {i: (m or {}) for i, m in zip(got["ids"], got["metadatas"])}

        todo: list[FileRecord] = []
        touched: list[FileRecord] = []
        for path, modality in files:
            if modality == "pdf":
                todo.extend(self._plan_pdf(writer, path, stored, report))
                continue
            try:
                st = os.stat(path)
                meta = {"path": path, "modality": modality, "size": st.st_size, "mtime_ns": st.st_mtime_ns}
                old = stored.get(path)
                if old and old.get("size") == st.st_size and old.get("mtime_ns") == st.st_mtime_ns and old.get("modality") == modality:
                    report.unchanged.append(path)
                    continue
                meta["sha256"] = sha256_of(path)
            except OSError as exc:
                report.failed.append((path, f"cannot read the file ({exc.strerror or exc})"))
                continue
            if old and old.get("sha256") == meta["sha256"] and old.get("modality") == modality:
                report.unchanged.append(path)  # same content, new mtime: remember the mtime only
                touched.append(FileRecord(path, modality, meta))
                continue
            todo.append(FileRecord(path, modality, meta))
        if touched:
            writer.update_metadatas([r.path for r in touched], [r.meta for r in touched])
        if not todo:
            return

        route.embedder.model  # load once, up front: a model error is not a file's error  # noqa: B018
        todo.sort(key=lambda r: (r.modality, r.path))  # batches of one modality
        bar = progress_bar(len(todo), f"embedding into {route.name}", self.progress)
        try:
            for chunk in self.embedding.embed(route.embedder, todo):
                self._store(writer, chunk, stored, report)
                bar.update(len(chunk))
        finally:
            bar.close()

    def _plan_pdf(self, writer: ChromaWriter, path: str, stored: dict[str, dict[str, Any]], report: IndexReport) -> list[FileRecord]:
        """The pages of one PDF to embed (none when the file is unchanged); ``stored`` gains the file's
        existing page records, and records of pages it no longer has are deleted."""
        first = page_uri(path, 1)
        try:
            st = os.stat(path)
            old = stored.get(first)
            meta = {"source": path, "modality": "image", "size": st.st_size, "mtime_ns": st.st_mtime_ns}
            if old and old.get("size") == st.st_size and old.get("mtime_ns") == st.st_mtime_ns:
                report.unchanged.extend(page_uri(path, n) for n in range(1, int(old.get("pages", 1)) + 1))
                return []
            meta["sha256"] = sha256_of(path)
        except OSError as exc:
            report.failed.append((path, f"cannot read the file ({exc.strerror or exc})"))
            return []
        previous = (
            writer.collection.get(where={"source": path}, include=["metadatas"]) if old else {"ids": [], "metadatas": []}
        )
        stored.update({i: (m or {}) for i, m in zip(previous["ids"], previous["metadatas"])})
        if old and old.get("sha256") == meta["sha256"]:  # same content, new mtime: remember the mtime only
            writer.update_metadatas(previous["ids"], [{**(m or {}), "mtime_ns": st.st_mtime_ns} for m in previous["metadatas"]])
            report.unchanged.extend(previous["ids"])
            return []
        try:
            pages = pdf_pages(path)  # counts the pages; renders none
        except MediaError as exc:
            report.failed.append((path, without_path(str(exc), path)))
            if previous["ids"]:  # the file changed and can no longer be read: its old pages are gone
                writer.delete(previous["ids"])
                report.failed[-1] = (path, report.failed[-1][1] + " (its previous entries were removed)")
            return []
        gone = [i for i, m in zip(previous["ids"], previous["metadatas"]) if int((m or {}).get("page", 0)) > len(pages)]
        if gone:
            writer.delete(gone)
        meta["pages"] = len(pages)
        return [FileRecord(page.uri, "image", {**meta, "path": page.uri, "page": page.page}) for page in pages]

    def _store(self, writer: ChromaWriter, chunk: list[FileRecord], stored: dict[str, Any], report: IndexReport) -> None:
        """Upsert the embedded files of one chunk; files that failed (to read, embed or store) are
        reported, and their stale entries from an earlier run removed."""
        good = [r for r in chunk if r.error is None]
        if good:
            refused = writer.try_upsert(
                ids=[r.path for r in good],
                embeddings=np.stack([r.vector for r in good]),
                uris=[r.path for r in good],
                documents=[r.document for r in good],
                metadatas=[r.meta for r in good],
            )
            for record in good:
                if record.path in refused:
                    record.error = refused[record.path]
                else:
                    (report.updated if record.path in stored else report.added).append(record.path)
        failed = [r for r in chunk if r.error is not None]
        stale = [r.path for r in failed if r.path in stored]
        if stale:  # the file changed and can no longer be read: its old vector no longer describes it
            writer.delete(stale)
        for record in failed:
            suffix = " (its previous entry was removed)" if record.path in stale else ""
            report.failed.append((record.path, without_path(record.error, record.path) + suffix))

    # -- searching -----------------------------------------------------------------------------------

    def search(
        self,
        query: Any,
        *,
        k: int = 10,
        modality: str | None = None,
        reranker: Reranker | None = None,
        top_n: int | None = None,
    ) -> SearchResult:
        """The ``k`` nearest records to ``query`` (a str is text; tag files as Image/Audio/Video, see
        :func:`query_item`) across this index's collections, merged by similarity; only records of
        ``modality`` when given. With a ``reranker``, the candidates it can score are reranked
        (best ``top_n``) with :func:`modalbridge.chroma.rerank_query_result`."""
        query_modality = modality_of(query)
        if k < 1:
            raise ValueError(f"k must be at least 1, got {k}")
        notes: list[str] = []
        hits: list[Hit] = []
        usable = [
            r for r in self.routes
            if r.collection is not None and r.supports(query_modality) and (modality is None or r.supports(modality))
        ]
        if not usable:
            have = "; ".join(
                f"{r.name!r} ({r.model!r}, takes {', '.join(_modalities(r.embedder))})" for r in self.routes if r.collection is not None
            ) or "none"
            wanted = f"a {query_modality} query" + (f" over {modality} records" if modality else "")
            raise MediaIndexError(f"no collection of this index can take {wanted}; collections: {have}")
        for route in usable:
            count = route.collection.count()
            if count == 0:
                continue
            vector = route.embedder.embed_query(query)
            result = route.collection.query(
                query_embeddings=[np.asarray(vector, dtype=np.float32)],
                n_results=min(k, count),
                where={"modality": modality} if modality else None,
                include=["metadatas", "documents", "uris", "distances"],
            )
            space = collection_space(route.collection)
            for j, record_id in enumerate(result["ids"][0]):
                meta = result["metadatas"][0][j] or {}
                distance = float(result["distances"][0][j])
                hits.append(
                    Hit(
                        rank=0,
                        score=similarity_score(distance, space),
                        modality=str(meta.get("modality", "")),
                        path=str(meta.get("path") or result["uris"][0][j] or record_id),
                        id=record_id,
                        collection=route.name,
                        distance=distance,
                        retrieval_rank=0,
                        retrieval_score=similarity_score(distance, space),
                        document=result["documents"][0][j],
                        metadata=dict(meta),
                    )
                )
        if len(usable) > 1:
            notes.append(
                "results of " + " and ".join(repr(r.name) for r in usable)
                + " are merged by similarity, which different models scale differently; use --modality to pick one kind"
            )
        hits.sort(key=lambda h: -h.score)
        hits = hits[:k]
        for rank, hit in enumerate(hits, 1):
            hit.rank = hit.retrieval_rank = rank
        if reranker is None:
            return SearchResult(query, hits, notes=notes)
        return self._rerank(query, hits, reranker, top_n, notes)

    def _rerank(self, query, hits: list[Hit], reranker: Reranker, top_n: int | None, notes: list[str]) -> SearchResult:
        from modalbridge.chroma import rerank_query_result

        modalities = reranker.modalities
        takes = ", ".join(m for m in ("text", "image", "audio", "video") if is_supported(m, modalities))
        if not is_supported(modality_of(query), modalities):
            raise MediaIndexError(
                f"the reranker {reranker.load_settings.model_name_or_path!r} cannot take a {modality_of(query)} "
                f"query (it takes {takes})"
            )
        scorable = [h for h in hits if is_supported(h.modality, modalities)]
        left_out = [h for h in hits if h not in scorable]
        if left_out:
            kinds = sorted({h.modality for h in left_out})
            notes.append(
                f"{len(left_out)} {'/'.join(kinds)} candidate(s) not reranked and not shown: the reranker takes "
                f"{takes} (use --modality to choose)"
            )
        if not scorable:
            return SearchResult(query, [], reranked=True, notes=notes)
        result = {
            "ids": [[h.id for h in scorable]],
            "uris": [[None if h.modality == "text" else h.path for h in scorable]],
            "documents": [[h.document for h in scorable]],
            "distances": [[h.distance for h in scorable]],
        }
        ranked = rerank_query_result(result, query, reranker, top_n=top_n, source="auto")
        reranked = []
        for rank, (position, score) in enumerate(zip(ranked.positions, ranked.scores), 1):
            hit = scorable[position]
            hit.rank, hit.score = rank, float(score)
            reranked.append(hit)
        return SearchResult(query, reranked, reranked=True, notes=notes)


def _changes(function: Any, stored: dict[str, Any], name: str, value: Any) -> bool:
    """Whether setting ``name`` to ``value`` would change a collection's stored configuration (compared
    as the embedding function compares: missing stored values are the declared defaults)."""
    try:
        function.validate_config_update(stored, {**stored, name: value})
    except ValueError:
        return True
    return False


def _modalities(embedder: Embedder) -> list[str]:
    names = [m for m in ("text", "image", "audio", "video") if embedder.supports(m)]
    if "video" in names and not is_supported("video", embedder.modalities):
        names[names.index("video")] = f"video (as {embedder.encode_settings.video_frames} frames)"
    return names
