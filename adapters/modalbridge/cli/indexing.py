"""Index folders of images, sounds, videos and text files into Chroma, and search them.

This is what the ``modalbridge`` command runs, usable from Python too::

    from modalbridge.cli.indexing import MediaIndex, open_client

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
"""

from __future__ import annotations

import hashlib
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

import numpy as np

from modalbridge.chroma.writer import ChromaUnavailableError, ChromaWriter, RetryPolicy
from modalbridge.embedder import Embedder
from modalbridge.inputs import is_supported
from modalbridge.items import PdfPage, modality_of, page_uri
from modalbridge.media import MediaError, modality_from_extension, pdf_pages, tag_uri
from modalbridge.reranker import Reranker

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

DEFAULT_DB = "modalbridge-db"
DEFAULT_COLLECTION = "modalbridge"
AUDIO_SUFFIX = "-audio"
"""The audio model's collection is named ``<collection>-audio``."""
TEXT_EXTENSIONS = (".txt", ".md")
PDF_EXTENSION = ".pdf"
DEFAULT_VIDEO_FRAMES = 8


class MediaIndexError(Exception):
    """A problem with the index itself (not with one file): no such collection, a model that does not
    match the one a collection was built with, no model for a query's modality, an unreachable server.
    The message says what to do."""


# -- files -----------------------------------------------------------------------------------------------


def file_modality(path: str) -> str | None:
    """``"image"``, ``"audio"``, ``"video"`` (by the core's extension lists), ``"text"`` for ``.txt`` /
    ``.md``, ``"pdf"`` for a PDF file (its pages are images), or ``None`` for any other file."""
    if path.lower().endswith(TEXT_EXTENSIONS):
        return "text"
    if path.lower().endswith(PDF_EXTENSION):
        return "pdf"
    return modality_from_extension(path)


def file_id(path: str | os.PathLike) -> str:
    """A file's record id (and URI): its absolute path with symlinks resolved."""
    return str(Path(path).expanduser().resolve())


@dataclass
class FileSet:
    files: list[tuple[str, str]] = field(default_factory=list)
    """(absolute path, modality), sorted, without duplicates."""
    missing: list[tuple[str, str]] = field(default_factory=list)
    """(path, reason) for arguments that do not exist."""
    unsupported: list[tuple[str, str]] = field(default_factory=list)
    """(path, reason) for files named explicitly whose type is unknown."""
    ignored: int = 0
    """Files of other types found inside folders."""


def collect_files(paths: Iterable[str | os.PathLike], exclude: Iterable[str | os.PathLike] = ()) -> FileSet:
    """The files to index under ``paths`` (files and folders, recursively; hidden entries inside folders
    and everything under ``exclude`` — e.g. the database folder — are skipped)."""
    excluded = {file_id(p) for p in exclude}
    found: dict[str, str] = {}
    result = FileSet()
    for raw in paths:
        path = Path(os.fspath(raw)).expanduser()
        if path.is_file():
            absolute = file_id(path)
            modality = file_modality(absolute)
            if modality is None:
                result.unsupported.append(
                    (absolute, "not an image, audio, video, PDF or text (.txt/.md) file, judging by its extension")
                )
            else:
                found[absolute] = modality
            continue
        if not path.is_dir():
            result.missing.append((str(path), "no such file or directory"))
            continue
        for root, dirs, names in os.walk(file_id(path)):
            dirs[:] = sorted(d for d in dirs if not d.startswith(".") and os.path.join(root, d) not in excluded)
            for name in sorted(names):
                if name.startswith("."):
                    continue
                # Resolved like explicitly named files: a symlink and its target are one file, one id.
                absolute = file_id(os.path.join(root, name))
                modality = file_modality(absolute)
                if modality is None:
                    result.ignored += 1
                else:
                    found[absolute] = modality
    result.files = sorted(found.items())
    return result


def sha256_of(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def query_item(text: str | None = None, *, image: str | None = None, audio: str | None = None, video: str | None = None) -> Any:
    """The core item for one query: ``text`` as text (never read as a path), or a tagged media file."""
    given = [(m, v) for m, v in (("text", text), ("image", image), ("audio", audio), ("video", video)) if v is not None]
    if len(given) != 1:
        raise ValueError("give exactly one query: a text, an image, an audio file or a video file")
    modality, value = given[0]
    if modality == "text":
        return value
    path = os.path.expanduser(os.fspath(value))
    if not os.path.isfile(path):
        raise MediaError(f"{path}: no such file")
    return tag_uri(path, modality)


# -- Chroma ------------------------------------------------------------------------------------------------


def open_client(db: str | os.PathLike | None = DEFAULT_DB, host: str | None = None, port: int | None = None, *, create: bool = True):
    """An embedded ``chromadb.PersistentClient`` at ``db``, or an ``HttpClient`` for a Chroma server when
    ``host`` or ``port`` is given. With ``create=False`` a missing ``db`` folder is an error instead of
    a new, empty database."""
    import chromadb

    settings = chromadb.Settings(anonymized_telemetry=False)
    if host is not None or port is not None:
        host, port = host or "localhost", int(port or 8000)
        try:
            return chromadb.HttpClient(host=host, port=port, settings=settings)
        except Exception as exc:
            raise MediaIndexError(f"cannot reach a Chroma server at http://{host}:{port} ({exc})") from None
    db = os.path.expanduser(os.fspath(db or DEFAULT_DB))
    if not create and not os.path.isdir(db):
        raise MediaIndexError(f"no index at {db!r}: run `modalbridge index PATH...` first (or pass --db)")
    return chromadb.PersistentClient(path=db, settings=settings)


def _get_collection(client, name: str):
    from chromadb.errors import NotFoundError

    try:
        return client.get_collection(name)
    except NotFoundError:
        return None
    except ValueError as exc:  # older chromadb: "Collection x does not exist."
        if "does not exist" in str(exc):
            return None
        raise


def _stored_function(collection, trust_remote_code: bool = False):
    """The MultimodalEmbeddingFunction a collection was created with, rebuilt from its stored
    configuration. A configuration asking for remote code is rebuilt only when this caller was asked to
    trust it (``trust_remote_code``), and only for this call: never process-wide."""
    from modalbridge.chroma import (
        EMBEDDING_FUNCTION_NAME,
        MultimodalEmbeddingFunction,
        RemoteCodeNotAllowedError,
        allowing_remote_code,
    )

    stored = (collection.configuration_json or {}).get("embedding_function") or {}
    if stored.get("type") != "known" or stored.get("name") != EMBEDDING_FUNCTION_NAME:
        found = stored.get("name") or stored.get("type") or "none"
        raise MediaIndexError(
            f"collection {collection.name!r} was not created by modalbridge (its embedding function: {found}); "
            "pick another --collection"
        )
    config = stored.get("config") or {}
    try:
        with allowing_remote_code(trust_remote_code):
            return MultimodalEmbeddingFunction.build_from_config(config)
    except RemoteCodeNotAllowedError:
        raise MediaIndexError(
            f"collection {collection.name!r} was built with model {config.get('model_name_or_path')!r} and "
            "trust_remote_code=True: that model runs its own code, which modalbridge never does because a "
            "database asks. If you trust this model, pass --trust-remote-code (MediaIndex(trust_remote_code=True))"
        ) from None
    except ValueError as exc:
        raise MediaIndexError(f"collection {collection.name!r}: {exc}") from None


def _space(collection) -> str:
    configuration = collection.configuration_json or {}
    for key in ("hnsw", "spann"):
        section = configuration.get(key)
        if section and section.get("space"):
            return section["space"]
    return "l2"


def _score(distance: float, space: str) -> float:
    """Higher is better: the similarity for cosine (1 - d) and ip (1 - d = dot), -d for l2."""
    return float(1.0 - distance) if space in ("cosine", "ip") else float(-distance)


# -- the index ---------------------------------------------------------------------------------------------


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


@dataclass
class IndexReport:
    """What :meth:`MediaIndex.index` did, file by file."""

    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    """(path, reason): files that could not be read or embedded (nothing stored for them)."""
    skipped: list[tuple[str, str]] = field(default_factory=list)
    """(path, reason): files no model of this index takes, or of an unknown type."""
    ignored: int = 0
    """Files of other types inside the folders (not counted anywhere else)."""
    collections: dict[str, int] = field(default_factory=dict)
    """Collection name -> number of records after indexing."""

    @property
    def ok(self) -> bool:
        return not self.failed

    def summary(self) -> str:
        counts = (
            f"{len(self.added)} added, {len(self.updated)} updated, {len(self.unchanged)} unchanged, "
            f"{len(self.failed)} failed"
        )
        if self.skipped:
            counts += f", {len(self.skipped)} skipped"
        lines = [counts]
        if self.ignored:
            lines.append(f"({self.ignored} other files in those folders are not images, audio, video or text)")
        if self.collections:
            lines.append("collections: " + ", ".join(f"{name} ({count} records)" for name, count in self.collections.items()))
        for title, problems in (("skipped", self.skipped), ("failed", self.failed)):
            if problems:
                lines.append(f"{title}:")
                lines.extend(f"  {path}: {reason}" for path, reason in problems)
        return "\n".join(lines)


@dataclass
class Hit:
    """One search result."""

    rank: int
    score: float
    """Reranker score when reranked, else the retrieval similarity (higher is better)."""
    modality: str
    path: str
    id: str
    collection: str
    distance: float
    retrieval_rank: int
    retrieval_score: float
    document: str | None = None
    """The text of a text file."""
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass
class SearchResult:
    query: Any
    """The core item searched for (a str for text, a tagged Image/Audio/Video)."""
    hits: list[Hit]
    reranked: bool = False
    notes: list[str] = field(default_factory=list)
    """Things worth telling the reader (candidates the reranker could not score, ...)."""

    @property
    def query_modality(self) -> str:
        return modality_of(self.query)




class MediaIndex:
    """A searchable index of files in Chroma: one collection per embedding model (see the module doc).

    Args:
        client: a chromadb client (:func:`open_client`).
        name: the collection name (the audio model's collection is ``name + "-audio"``).
        model, audio_model: hub names or local folders. ``None``: the model an existing collection was
            built with, else (when ``use_demo_models``) the demo models. A model that differs from an
            existing collection's is an error (its vectors would not be comparable).
        device, batch_size, video_frames, trust_remote_code: embedder settings (``video_frames``: embed
            videos as the mean of this many frames when the main model takes images but no video).
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
        device: str = "auto",
        batch_size: int = 32,
        video_frames: int | None = None,
        trust_remote_code: bool = False,
        use_demo_models: bool = True,
        progress: bool = False,
        embedding: Any = None,
        retry: RetryPolicy | None = None,
    ) -> None:
        import modalbridge.chroma  # noqa: F401  (registers the embedding function Chroma stores)

        self.trust_remote_code = trust_remote_code
        """Whether this index may rebuild stored configurations that ask for remote code (its own only)."""
        self.client = client
        self.name = name
        self.batch_size = batch_size
        self.progress = progress
        self.embedding = embedding if embedding is not None else InProcessEmbedding(batch_size)
        self.retry = retry or RetryPolicy()
        main_collection = _get_collection(client, name)
        audio_collection = _get_collection(client, name + AUDIO_SUFFIX)
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
                    _stored_function(main_collection, trust_remote_code).get_config() if main_collection is not None else None
                )
                if stored_main is None or file_id(stored_main["model_name_or_path"]) == file_id(demo_main):
                    default_main, default_audio = demo_main, demo_audio

        settings = dict(device=device, batch_size=batch_size)
        explicit = {"trust_remote_code": True} if trust_remote_code else {}
        main_explicit = dict(explicit, **({"video_frames": video_frames} if video_frames is not None else {}))
        self.main = self._route(
            name, main_collection, model or default_main,
            dict(settings, trust_remote_code=trust_remote_code, video_frames=video_frames or DEFAULT_VIDEO_FRAMES),
            main_explicit,
        )
        self.audio = self._route(
            name + AUDIO_SUFFIX, audio_collection, audio_model or default_audio,
            dict(settings, trust_remote_code=trust_remote_code), explicit,
        )
        if not self.routes:
            raise MediaIndexError(f"no collection {name!r} in this database and no --model given")

    def _route(
        self, name: str, collection: Any, model: str | None, settings: dict[str, Any], explicit: dict[str, Any]
    ) -> Route | None:
        """The route of one collection: a new one for ``model``, or the existing collection with the
        model it was built with (``model``, if given, and ``explicit`` settings must match it)."""
        if collection is None:
            return None if model is None else Route(name, Embedder(model, **settings))
        function = _stored_function(collection, self.trust_remote_code)
        stored = function.get_config()
        # device and batch size follow this run; everything that changes vectors must match the stored.
        current = {**stored, "device": settings["device"], "batch_size": settings["batch_size"]}
        requested = {**current, **explicit}
        if model is not None:
            requested["model_name_or_path"] = model
        try:
            function.validate_config_update(stored, requested)
        except ValueError as exc:
            raise MediaIndexError(
                f"collection {name!r} holds vectors of model {stored['model_name_or_path']!r}: {exc} "
                "(with the modalbridge command: use another --collection or --db, or leave out --model)"
            ) from None
        return Route(name, Embedder.from_config(current), collection)

    @property
    def routes(self) -> list[Route]:
        return [r for r in (self.main, self.audio) if r is not None]

    def route_for(self, modality: str) -> Route | None:
        """The collection a file of this modality goes to: the main model's if it takes it, else the
        audio model's (loads the models it asks). PDF pages go where images go."""
        for route in self.routes:
            if route.supports(_embedded_as(modality)):
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
        return f"no model of this index takes {_embedded_as(modality)}: {models}{hint}"

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
        bar = _progress(len(todo), f"embedding into {route.name}", self.progress)
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
            report.failed.append((path, _strip_path(str(exc), path)))
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
            report.failed.append((record.path, _strip_path(record.error, record.path) + suffix))

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
            space = _space(route.collection)
            for j, record_id in enumerate(result["ids"][0]):
                meta = result["metadatas"][0][j] or {}
                distance = float(result["distances"][0][j])
                hits.append(
                    Hit(
                        rank=0,
                        score=_score(distance, space),
                        modality=str(meta.get("modality", "")),
                        path=str(meta.get("path") or result["uris"][0][j] or record_id),
                        id=record_id,
                        collection=route.name,
                        distance=distance,
                        retrieval_rank=0,
                        retrieval_score=_score(distance, space),
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


# -- helpers -------------------------------------------------------------------------------------------


def _embedded_as(modality: str) -> str:
    """What the model takes for a file of this kind: a PDF's pages are images."""
    return "image" if modality == "pdf" else modality


def _modalities(embedder: Embedder) -> list[str]:
    names = [m for m in ("text", "image", "audio", "video") if embedder.supports(m)]
    if "video" in names and not is_supported("video", embedder.modalities):
        names[names.index("video")] = f"video (as {embedder.encode_settings.video_frames} frames)"
    return names


def _file_item(path: str, modality: str) -> Any:
    """The core item for one file: a text file's content (UTF-8), else the path tagged by modality."""
    if modality != "text":
        return tag_uri(path, modality)
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except UnicodeDecodeError as exc:
        raise ValueError(f"not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    if not text.strip():
        raise ValueError("the text file is empty")
    return text


def _strip_path(reason: str, path: str) -> str:
    """``"/x.jpg: cannot decode image (...)"`` -> ``"cannot decode image (...)"`` (the path is shown anyway)."""
    for prefix in (f"Image({path}): ", f"Audio({path}): ", f"Video({path}): ", f"{path}: "):
        if reason.startswith(prefix):
            return reason[len(prefix):]
    return reason


def embed_each_or_fail(embedder: Embedder, items: Sequence[Any]) -> tuple[dict[int, np.ndarray], dict[int, str]]:
    """Embed ``items`` as documents, setting aside the ones that fail (the core's
    :meth:`~modalbridge.Embedder.try_embed_documents`): position -> vector, and position -> reason."""
    vectors, errors = embedder.try_embed_documents(items)
    return vectors, {index: getattr(error, "item_reason", str(error)) for index, error in errors.items()}


@dataclass
class FileRecord:
    """One file on its way into a collection: filled in by an embedding backend (``item`` and
    ``vector``, or ``error``), then stored."""

    path: str
    modality: str
    meta: dict[str, Any]
    """The record's metadata: path, modality, size, mtime_ns, sha256."""
    item: Any = None
    """The core item: a text file's content, else the tagged path (see :func:`read_file_item`)."""
    vector: np.ndarray | None = None
    error: str | None = None
    """Why the file cannot be stored (set instead of ``vector``)."""

    @property
    def document(self) -> str | None:
        """The stored document: a text file's content."""
        return self.item if self.modality == "text" else None


def read_file_item(record: FileRecord) -> bool:
    """Set ``record.item`` (a text file is read here; media stay paths, decoded by the embedder), or
    ``record.error`` when the file cannot be read; returns whether it can be embedded."""
    try:
        record.item = _file_item(record.path, record.modality)
        return True
    except (OSError, ValueError) as exc:
        record.error = str(exc)
        return False


class InProcessEmbedding:
    """The default embedding backend of :class:`MediaIndex`: the core embedder in this process, through
    its streaming path (:meth:`~modalbridge.Embedder.stream`: files are read and decoded a few batches
    ahead of the model, never all at once), handing records back in chunks of ``batch_size`` in order.
    A file that cannot be read or embedded fails alone.

    A backend is anything with ``embed(embedder, records)`` yielding the records in chunks once each
    has its ``vector`` or ``error`` (see :class:`modalbridge.ray.RayEmbedding` for a cluster)."""

    def __init__(self, batch_size: int = 32) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        self.batch_size = batch_size

    def embed(self, embedder: Embedder, records: Sequence[FileRecord]) -> Iterator[list[FileRecord]]:
        streamed: list[FileRecord] = []  # the readable records, in the order their items are streamed
        finished: list[FileRecord] = []

        def items() -> Iterator[Any]:
            for record in records:  # read lazily: a text file is opened when the stream gets to it
                if read_file_item(record):
                    streamed.append(record)
                    yield record.item
                else:
                    finished.append(record)

        for result in embedder.stream(items()):
            record = streamed[result.index]
            if result.error is None:
                record.vector = result.vector
            else:
                record.error = getattr(result.error, "item_reason", str(result.error))
            finished.append(record)
            if len(finished) >= self.batch_size:
                yield finished[: self.batch_size]
                del finished[: self.batch_size]
        while finished:
            yield finished[: self.batch_size]
            del finished[: self.batch_size]


class _NoBar:
    def update(self, n: int) -> None:
        pass

    def close(self) -> None:
        pass


def _progress(total: int, desc: str, enabled: bool):
    if not enabled:
        return _NoBar()
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="file", file=sys.stderr, leave=True, dynamic_ncols=True)


def format_hits(result: SearchResult, relative_to: str | os.PathLike | None = None) -> str:
    """The results as a plain-text table: rank, score, modality, path (and the retrieval rank when
    reranked; paths relative to ``relative_to`` when given); notes follow."""
    header = ["rank", "score", "modality", "path"]
    if result.reranked:
        header.insert(2, "was")
    rows = []
    for hit in result.hits:
        path = os.path.relpath(hit.path, relative_to) if relative_to is not None else hit.path
        row = [str(hit.rank), f"{hit.score:.4f}", hit.modality, path]
        if result.reranked:
            row.insert(2, str(hit.retrieval_rank))
        rows.append(row)
    if not rows:
        lines = ["no results"]
    else:
        widths = [max(len(r[i]) for r in [header] + rows) for i in range(len(header))]
        right = {0, 1, 2} if result.reranked else {0, 1}

        def line(cells: list[str]) -> str:
            return "  ".join(c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(cells, widths))).rstrip()

        lines = [line(header)] + [line(r) for r in rows]
    lines += [f"note: {note}" for note in result.notes]
    return "\n".join(lines)



# -- late interaction (``--multi-vector``) -------------------------------------------------------------


def open_late_interaction(
    client: Any,
    name: str,
    *,
    model: str | None = None,
    device: str = "auto",
    batch_size: int = 32,
    first_stage: str = "muvera",
    create: bool = True,
):
    """The late-interaction collection ``name`` (:class:`modalbridge.chroma.LateInteractionCollection`):
    opened when it exists (``model``, if given, must be the one it was built with), else created for
    ``model`` (a multi-vector model such as ColQwen2) when ``create``."""
    from modalbridge.chroma import LateInteractionCollection, is_late_interaction
    from modalbridge.multivector import MultiVectorEmbedder

    collection = _get_collection(client, name)
    if collection is not None:
        if not is_late_interaction(collection):
            raise MediaIndexError(
                f"collection {name!r} is a single-vector index, not a late-interaction one: pick another --collection"
            )
        opened = LateInteractionCollection.open(client, name, device=device, batch_size=batch_size)
        stored = opened.embedder.load_settings.model_name_or_path
        if model is not None and file_id(model) != file_id(stored) and model != stored:
            raise MediaIndexError(
                f"collection {name!r} holds token vectors of {stored!r}, not {model!r}: use another --collection or --db"
            )
        return opened
    if not create or model is None:
        raise MediaIndexError(f"no collection {name!r} in this database: index some files first (modalbridge index PATH...)")
    embedder = MultiVectorEmbedder(model, device=device, batch_size=batch_size)
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
                report.failed.append((path, _strip_path(str(exc), path)))
            continue
        if modality not in takes:
            report.skipped.append((path, f"the late-interaction model {model!r} takes {', '.join(takes)}, not {modality}"))
            continue
        try:
            files.append((path, modality, _file_item(path, modality)))
        except (OSError, ValueError) as exc:
            report.failed.append((path, str(exc)))
    known = set(pages.writer.get([p for p, _, _ in files], include=[])["ids"]) if files else set()
    bar = _progress(len(files), f"embedding into {pages.collection.name}", progress)
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
                report.failed.append((path, _strip_path(getattr(error, "item_reason", str(error)), path)))
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
