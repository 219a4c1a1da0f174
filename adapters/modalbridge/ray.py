"""Ray Data: embed a column of texts or media on a cluster (CPU workers decode, model actors embed).

Needs the ``[ray]`` extra (``pip install 'modalbridge[ray]'``)::

    import ray
    from modalbridge.ray import DecodeColumn, EmbedColumn, embed_dataset

    ds = ray.data.from_items([{"id": p, "item": p} for p in photo_paths])        # or read_images, read_binary_files ...
    ds = embed_dataset(ds, "sentence-transformers/clip-ViT-B-32", modality="image", actors=4, normalize=True)
    for batch in ds.iter_batches(batch_size=1000):
        batch["id"], batch["embedding"], batch["error"]   # (rows, dim) float32; "" or the reason a row failed

    # the same stages by hand:
    ds = ds.map_batches(DecodeColumn(modality="image"), batch_size=64)              # CPU tasks
    ds = ds.map_batches(
        EmbedColumn, fn_constructor_kwargs={"model_name_or_path": "sentence-transformers/clip-ViT-B-32", "modality": "image"},
        batch_size=64, num_gpus=1, compute=ray.data.ActorPoolStrategy(size=4),
    )

How rows become items (one rule, as everywhere in modalbridge: a ``str`` is text unless declared media):

* ``modality`` (for every row) or the ``modality`` column (per row) says what the ``item`` column
  holds: ``"text"`` (a str), or ``"image"`` / ``"audio"`` / ``"video"``: a path or URL (fetched only with
  ``allow_fetch=True``), encoded bytes, or for images an (H, W, C) array (what ``ray.data.read_images``
  gives). Already-tagged items (:class:`~modalbridge.Image`, ...) pass through.
* An error names its row: by the item when it is a path or URL, else by the row's ``path`` column
  (what ``read_binary_files(include_paths=True)`` adds) or ``id`` column.
* The result keeps every input row and column, in the rows' order within a batch, and adds
  ``embedding`` (a float32 vector; NaN for a row that failed) and ``error`` (``""``, or the reason
  naming the item). Both keep one Arrow type in every block. One bad file never fails the job: its row
  carries the error.

Stages (infinity's pre-process / compute split):

* :class:`DecodeColumn`, a plain function-like callable run as CPU tasks: reads and decodes image files
  to RGB arrays and audio files to waveforms at their own rate (the model's rate is applied in the
  actor), so decoding scales with CPU workers anywhere in the cluster while GPU actors only compute.
  Videos and texts pass through (a video model's processor decodes only the frames it samples).
  :func:`embed_dataset` adds it where it pays: in front of GPU actors (on a CPU-only cluster the
  actors decode themselves; the split only adds copies there, see ``examples/benchmark_ray_ingest.py``).
* :class:`EmbedColumn`, a callable class run as an actor pool: one model per actor, loaded once through
  the core's cache (on the actor's GPU when it has one: ``device="auto"``), embedding with
  :meth:`modalbridge.Embedder.try_embed_documents`. It takes the same settings as
  :class:`~modalbridge.Embedder` (``EmbedColumn(model, **settings)`` or ``EmbedColumn(config=embedder.config())``).

Fault tolerance: Ray restarts a killed actor and retries its batch (Ray Data's defaults,
``max_restarts=-1``, ``max_task_retries=-1``); rows are only emitted once a batch completes.
:class:`RayEmbedding` is the backend of ``modalbridge index --ray``.
"""

from __future__ import annotations

import os
import pickle
from typing import Any, Iterator, Sequence

import numpy as np

try:
    import ray
    import ray.data
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError("modalbridge.ray needs Ray Data: pip install 'modalbridge[ray]'") from exc

from modalbridge.embedder import Embedder
from modalbridge.items import MEDIA_TAGS, Combined, Image, MediaItem, as_media
from modalbridge.media import decode_image, is_pdf_page, tag_uri
from modalbridge.media.audio import load_audio

__all__ = [
    "EMBEDDING_COLUMN",
    "ERROR_COLUMN",
    "ITEM_COLUMN",
    "MODALITY_COLUMN",
    "DECODED_COLUMN",
    "DecodeColumn",
    "EmbedColumn",
    "ChromaDatasink",
    "RayEmbedding",
    "embed_dataset",
    "init_cluster",
]

ITEM_COLUMN = "item"
MODALITY_COLUMN = "modality"
EMBEDDING_COLUMN = "embedding"
ERROR_COLUMN = "error"
DECODED_COLUMN = "_modalbridge_decoded"
"""Where :class:`DecodeColumn` leaves decoded items for :class:`EmbedColumn` (dropped from its output)."""
MODALITIES = ("text", "image", "audio", "video")
NAME_COLUMNS = ("path", "id")
"""Columns that name a row in its error when its item is not a path (bytes, an array), first found wins."""
DECODE_CALLS_PER_WORKER = 200
DECODE_CHOICES = ("auto", "cpu", "actor")


# -- rows -> items ---------------------------------------------------------------------------------------


class _Columns:
    """Which columns hold the items, their modality, and the outputs."""

    def __init__(self, column: str, modality: str | None, modality_column: str, error_column: str) -> None:
        if modality is not None and modality not in MODALITIES:
            raise ValueError(f"modality must be one of {', '.join(MODALITIES)} or None, got {modality!r}")
        self.column = column
        self.modality = modality
        self.modality_column = modality_column
        self.error_column = error_column

    def modalities(self, batch: dict[str, np.ndarray], rows: int) -> list[Any]:
        if self.modality is not None:
            return [self.modality] * rows
        if self.modality_column not in batch:
            raise KeyError(
                f"no modality: pass modality='image' (or text/audio/video) for every row, or add a "
                f"{self.modality_column!r} column (the batch has {', '.join(batch)})"
            )
        return list(batch[self.modality_column])

    def names(self, batch: dict[str, np.ndarray], rows: int) -> list[Any]:
        """What names each row in an error when its item is not a path or URL (bytes, an array): the
        first of the ``path`` and ``id`` columns the batch has (``read_binary_files`` gives ``path``)."""
        for name in NAME_COLUMNS:
            if name in batch and name != self.column:
                return [str(value) for value in batch[name]]
        return [None] * rows

    def read(self, batch: dict[str, np.ndarray]) -> tuple[int, list[Any], np.ndarray, list[Any]]:
        """``(rows, modalities, errors, names)`` of a batch: what every stage reads before its rows."""
        rows = _rows(batch, self.column)
        return rows, self.modalities(batch, rows), self.errors(batch, rows), self.names(batch, rows)

    def errors(self, batch: dict[str, np.ndarray], rows: int) -> np.ndarray:
        """The incoming error column (rows an earlier stage already failed: a non-empty str), else ``""``."""
        errors = np.full(rows, "", dtype=object)
        if self.error_column in batch:
            errors[:] = [e if isinstance(e, str) else "" for e in batch[self.error_column]]
        return errors


def _rows(batch: dict[str, np.ndarray], column: str) -> int:
    if column not in batch:
        raise KeyError(f"no {column!r} column in the batch (it has {', '.join(batch)}); pass column=...")
    return len(batch[column])


def row_item(value: Any, modality: Any) -> Any:
    """The core item for one row: ``value`` declared as ``modality`` (see the module doc). Raises
    ``TypeError``/``ValueError`` with the reason."""
    if isinstance(value, (MediaItem, Combined)):
        return value  # tagged by the caller
    if modality not in MODALITIES:
        raise ValueError(f"unknown modality {modality!r} (expected one of {', '.join(MODALITIES)})")
    if modality == "text":
        if not isinstance(value, str):
            raise TypeError(f"a text row must hold a str, got {type(value).__name__}")
        return value
    if isinstance(value, str):
        return tag_uri(value, modality)
    if modality == "image" and isinstance(value, np.ndarray):
        return Image(value)  # what ray.data.read_images gives
    return as_media(modality, value)


def _row_error(value: Any, modality: Any, error: BaseException, row_name: str | None = None) -> str:
    """The reason a row failed, naming the row: by its path or URI (a str item), else by its ``path``
    or ``id`` column; a text by its start."""
    reason = getattr(error, "item_reason", None) or str(error)
    if isinstance(value, str):
        name = repr(value[:60] + ("..." if len(value) > 60 else "")) if modality == "text" else value
    elif row_name is not None:
        name = row_name
    else:
        return reason  # the reason describes the source itself ("19 bytes: cannot decode image ...")
    return reason if reason.startswith(name) or f"({name})" in reason else f"{name}: {reason}"


# -- the CPU stage ------------------------------------------------------------------------------------


class DecodeColumn:
    """Decode a batch's image and audio rows on CPU workers, ahead of :class:`EmbedColumn`: images to
    RGB ``(H, W, 3)`` uint8 arrays (EXIF orientation applied, as the core decodes them), audio to mono
    float32 waveforms at their own sampling rate. Texts and videos pass through. The decoded items go
    to a column of their own (:data:`DECODED_COLUMN`, which :class:`EmbedColumn` consumes and drops), so
    the item column is kept as given; a row that cannot be read gets its reason in the error column.
    URLs are fetched only with ``allow_fetch``, within ``fetch_policy`` (the embedder's
    :meth:`EncodeSettings.fetch_policy() <modalbridge.EncodeSettings.fetch_policy>`, as
    :func:`embed_dataset` passes it).

    An instance is a function: ``ds.map_batches(DecodeColumn(modality="image"), batch_size=64)`` runs it
    as stateless Ray tasks. The columns are those of :class:`EmbedColumn`.
    """

    def __init__(
        self,
        *,
        column: str = ITEM_COLUMN,
        modality: str | None = None,
        modality_column: str = MODALITY_COLUMN,
        error_column: str = ERROR_COLUMN,
        allow_fetch: bool = False,
        fetch_policy: Any = None,
    ) -> None:
        self.columns = _Columns(column, modality, modality_column, error_column)
        self.allow_fetch = allow_fetch
        self.fetch_policy = fetch_policy

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        columns = self.columns
        rows, modalities, errors, names = columns.read(batch)
        decoded = np.empty(rows, dtype=object)
        for index, (value, modality) in enumerate(zip(batch[columns.column], modalities)):
            if errors[index]:
                continue
            try:
                decoded[index] = self._decode(row_item(value, modality))
            except (TypeError, ValueError) as exc:  # MediaError is a ValueError
                errors[index] = _row_error(value, modality, exc, names[index])
        # Pickled by this stage for the next one (Arrow has no column type for tagged items); protocol 4
        # unpickles arrays as writable copies, which the model's processor wants.
        packed = np.array([b"" if item is None else pickle.dumps(item, protocol=4) for item in decoded], dtype=object)
        return {**batch, DECODED_COLUMN: packed, columns.error_column: errors}

    def _decode(self, item: Any) -> Any:
        if is_pdf_page(item):  # rendered in the actor, at the resolution its model looks at
            return item
        if isinstance(item, Image) and not isinstance(item.source, np.ndarray):
            return Image(np.asarray(decode_image(item, self.allow_fetch, self.fetch_policy)))
        if isinstance(item, MEDIA_TAGS["audio"]) and not hasattr(item.source, "shape"):
            return load_audio(item, self.allow_fetch, self.fetch_policy)  # embeds exactly like the file
        return item


# -- the model stage ----------------------------------------------------------------------------------


class EmbedColumn:
    """Embed a batch's items as documents with one model per actor (a callable class for
    ``Dataset.map_batches``): adds ``embedding`` (float32 vectors, NaN for failed rows) and ``error``
    (``""``, or the reason naming the item). Rows an earlier stage failed keep their error.

    Args:
        model_name_or_path, **settings: as for :class:`~modalbridge.Embedder` (load and encode settings:
            ``device="auto"`` uses the GPU Ray gave the actor, ``batch_size``, ``normalize``, ...).
        config: instead, an :meth:`Embedder.config() <modalbridge.Embedder.config>` dict.
        column, modality, modality_column: where the items are and what they are (module doc).
        embedding_column, error_column: the output columns.
    """

    def __init__(
        self,
        model_name_or_path: str | None = None,
        *,
        config: dict[str, Any] | None = None,
        column: str = ITEM_COLUMN,
        modality: str | None = None,
        modality_column: str = MODALITY_COLUMN,
        embedding_column: str = EMBEDDING_COLUMN,
        error_column: str = ERROR_COLUMN,
        **settings: Any,
    ) -> None:
        self.embedder = _embedder(model_name_or_path, config, settings)
        self.columns = _Columns(column, modality, modality_column, error_column)
        self.embedding_column = embedding_column
        self.embedder.model  # load once per actor (the core's cache), not on the first batch  # noqa: B018

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        columns = self.columns
        rows, modalities, errors, names = columns.read(batch)
        decoded = batch.get(DECODED_COLUMN)  # pickled items from DecodeColumn (written by this module)
        positions, items = [], []
        for index, (value, modality) in enumerate(zip(batch[columns.column], modalities)):
            if errors[index]:
                continue
            try:
                items.append(pickle.loads(decoded[index]) if decoded is not None else row_item(value, modality))
                positions.append(index)
            except (TypeError, ValueError) as exc:
                errors[index] = _row_error(value, modality, exc, names[index])
        embedded, failed = self.embedder.try_embed_documents(items)
        width = len(next(iter(embedded.values()))) if embedded else self.embedder.dimension
        # One fixed-shape float32 tensor column (Arrow-native in every block); failed rows are NaN,
        # which no store accepts (ChromaWriter refuses them), and their error says why.
        vectors = np.full((rows, width), np.nan, dtype=np.float32)
        for position, index in enumerate(positions):
            if position in failed:
                value = batch[columns.column][index]
                errors[index] = _row_error(value, modalities[index], failed[position], names[index])
            else:
                vectors[index] = embedded[position]
        out = {name: values for name, values in batch.items() if name != DECODED_COLUMN}
        out[self.embedding_column] = vectors
        out[columns.error_column] = errors
        return out


def _embedder(model_name_or_path: str | None, config: dict[str, Any] | None, settings: dict[str, Any]) -> Embedder:
    if (model_name_or_path is None) == (config is None):
        raise TypeError("give a model (and its settings) or config=embedder.config(), not both")
    if config is not None:
        if settings:
            raise TypeError(f"settings go in config, not beside it: {', '.join(sorted(settings))}")
        return Embedder.from_config(config)
    return Embedder(model_name_or_path, **settings)


# -- pipelines ----------------------------------------------------------------------------------------


def init_cluster(address: str | None = None, **init_kwargs: Any) -> bool:
    """Connect to the Ray cluster at ``address`` (else ``RAY_ADDRESS``), or start a local one; returns
    whether this call started Ray (so the caller shuts it down). Already connected: nothing to do.
    Never joins some other local cluster found on the machine by accident."""
    if ray.is_initialized():
        return False
    import logging

    address = address or os.environ.get("RAY_ADDRESS") or "local"
    init_kwargs.setdefault("logging_level", logging.WARNING)
    init_kwargs.setdefault("include_dashboard", False)
    ray.init(address=address, **init_kwargs)
    return True


def cluster_gpus() -> int:
    return int(ray.cluster_resources().get("GPU", 0))


def embed_dataset(
    ds: "ray.data.Dataset",
    model_name_or_path: str | None = None,
    *,
    config: dict[str, Any] | None = None,
    column: str = ITEM_COLUMN,
    modality: str | None = None,
    modality_column: str = MODALITY_COLUMN,
    decode: str = "auto",
    actors: int | None = None,
    gpus_per_actor: float | None = None,
    cpus_per_actor: float = 1,
    rows_per_batch: int = 64,
    **settings: Any,
) -> "ray.data.Dataset":
    """``ds`` with ``embedding`` and ``error`` columns (see the module doc).

    Args:
        model_name_or_path, config, **settings: the embedder, as for :class:`EmbedColumn`; checked here,
            on the driver, before any actor starts (nothing is loaded here).
        decode: ``"cpu"``: a :class:`DecodeColumn` task stage decodes images and audio ahead of the
            actors, on any node's CPUs (fetching URLs when the settings have ``allow_fetch=True``);
            ``"actor"``: the actors decode too; ``"auto"`` (default): ``"cpu"`` when the actors have
            GPUs (which would otherwise wait on their actor's decoding), else ``"actor"`` (on CPU-only
            clusters the split only adds copies between processes: measured by
            ``examples/benchmark_ray_ingest.py``).
        actors: model actors (default: one per GPU in the cluster, else 1).
        gpus_per_actor: default 1 when the cluster has GPUs, else 0.
        cpus_per_actor: CPUs reserved per actor (Ray sets the actor's torch threads to this).
        rows_per_batch: rows per task and per model call.
    """
    if decode not in DECODE_CHOICES:
        raise ValueError(f"decode must be one of {', '.join(DECODE_CHOICES)}, got {decode!r}")
    embedder = _embedder(model_name_or_path, config, settings)  # validates every setting, loads nothing
    config = embedder.config()
    gpus = cluster_gpus()
    if gpus_per_actor is None:
        gpus_per_actor = 1 if gpus else 0
    if actors is None:
        actors = max(1, int(gpus // gpus_per_actor)) if gpus_per_actor else 1
    if decode == "auto":
        decode = "cpu" if gpus_per_actor else "actor"
    columns = dict(column=column, modality=modality, modality_column=modality_column)
    if decode == "cpu":
        # Ray fuses a task stage into the actor stage after it when their resources match (CPU-only
        # clusters), which would put decoding back inside the actors. max_calls, a task-only setting
        # (decode workers are recycled, which also bounds what decoders fragment), keeps them apart.
        ds = ds.map_batches(
            DecodeColumn(
                **columns,
                allow_fetch=embedder.encode_settings.allow_fetch,
                fetch_policy=embedder.encode_settings.fetch_policy(),
            ),
            batch_size=rows_per_batch,
            num_cpus=1,
            max_calls=DECODE_CALLS_PER_WORKER,
        )
    return ds.map_batches(
        EmbedColumn,
        fn_constructor_kwargs={"config": config, **columns},
        batch_size=rows_per_batch,
        compute=ray.data.ActorPoolStrategy(size=actors),
        num_gpus=gpus_per_actor or None,
        num_cpus=cpus_per_actor,
    )


class ChromaDatasink(ray.data.Datasink):
    """Store a dataset's embeddings in a Chroma server from the Ray workers (``Dataset.write_datasink``),
    through :class:`~modalbridge.chroma.ChromaWriter` (calls within the server's limit, upserts,
    retried while it restarts)::

        sink = ChromaDatasink("chroma.internal", 8000, "photos", id_column="path", uri_column="path",
                              embedding_function=MultimodalEmbeddingFunction(model, **settings))
        embed_dataset(ds, model, column="bytes", modality="image", **settings).write_datasink(sink)
        sink.written, sink.failed        # rows stored; {id: reason} for rows not stored

    Rows whose ``error`` is set are not written; they are in :attr:`failed` with their reason, as are
    rows the store refuses. ``embedding_function`` (optional) creates the collection on the driver
    with it stored; without one the collection must exist. ``metadata_columns`` become each record's
    metadata, ``document_column`` its document."""

    def __init__(
        self,
        host: str,
        port: int,
        collection: str,
        *,
        id_column: str = "id",
        embedding_column: str = EMBEDDING_COLUMN,
        error_column: str = ERROR_COLUMN,
        uri_column: str | None = None,
        document_column: str | None = None,
        metadata_columns: Sequence[str] = (),
        embedding_function: Any = None,
        ssl: bool = False,
        headers: dict[str, str] | None = None,
        max_batch_size: int | None = None,
    ) -> None:
        self.host, self.port, self.ssl, self.headers = host, int(port), ssl, dict(headers or {})
        self.collection = collection
        self.id_column, self.embedding_column, self.error_column = id_column, embedding_column, error_column
        self.uri_column, self.document_column = uri_column, document_column
        self.metadata_columns = list(metadata_columns)
        self.embedding_function = embedding_function
        self.max_batch_size = max_batch_size
        self.written = 0
        self.failed: dict[str, str] = {}

    def _client(self):
        import chromadb

        from modalbridge.chroma.writer import RetryPolicy

        settings = chromadb.Settings(anonymized_telemetry=False)
        return RetryPolicy().call(
            lambda: chromadb.HttpClient(host=self.host, port=self.port, ssl=self.ssl, headers=self.headers, settings=settings),
            f"connecting to http://{self.host}:{self.port}",
        )

    def on_write_start(self, schema: Any = None) -> None:
        if self.embedding_function is not None:  # on the driver: create it with its function stored
            from modalbridge.chroma.writer import ChromaWriter

            ChromaWriter.open(self._client(), self.collection, self.embedding_function)

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "embedding_function": None}  # the workers only write vectors

    def write(self, blocks: Any, ctx: Any) -> dict[str, Any]:
        from ray.data.block import BlockAccessor

        from modalbridge.chroma.writer import ChromaWriter

        writer = ChromaWriter.open(self._client(), self.collection, create=False, max_batch_size=self.max_batch_size)
        written, failed = 0, {}
        for block in blocks:
            batch = BlockAccessor.for_block(block).to_batch_format("numpy")
            ids = [str(i) for i in batch[self.id_column]]
            errors = [e if isinstance(e, str) else "" for e in batch[self.error_column]]
            keep = [n for n, error in enumerate(errors) if not error]
            failed.update({ids[n]: errors[n] for n, error in enumerate(errors) if error})
            if not keep:
                continue
            column = lambda name: None if name is None else [_plain(batch[name][n]) for n in keep]  # noqa: E731
            metadatas = None
            if self.metadata_columns:
                metadatas = [{name: _plain(batch[name][n]) for name in self.metadata_columns} for n in keep]
            refused = writer.try_upsert(
                [ids[n] for n in keep],
                np.asarray(batch[self.embedding_column], dtype=np.float32)[keep],
                metadatas=metadatas,
                documents=column(self.document_column),
                uris=column(self.uri_column),
            )
            failed.update(refused)
            written += len(keep) - len(refused)
        return {"written": written, "failed": failed}

    def on_write_complete(self, write_result: Any) -> None:
        for result in write_result.write_returns:
            self.written += result["written"]
            self.failed.update(result["failed"])


def _plain(value: Any) -> Any:
    """numpy scalars as Python values (Chroma takes str, int, float, bool metadata)."""
    return value.item() if isinstance(value, np.generic) else value


class RayEmbedding:
    """The embedding backend of ``modalbridge index --ray`` (:class:`~modalbridge.cli.indexing.MediaIndex`
    ``embedding=RayEmbedding()``): files go through :func:`embed_dataset` on a Ray cluster (local by
    default, ``RAY_ADDRESS`` or ``address`` for an existing one), and come back in chunks of
    ``batch_size`` to be stored by the driver. Text files are read on the driver; media by the cluster,
    so every node must see the same paths (a shared file system)."""

    def __init__(
        self,
        *,
        address: str | None = None,
        actors: int | None = None,
        batch_size: int = 32,
        decode: str = "auto",
        gpus_per_actor: float | None = None,
        cpus_per_actor: float = 1,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        if decode not in DECODE_CHOICES:
            raise ValueError(f"decode must be one of {', '.join(DECODE_CHOICES)}, got {decode!r}")
        self.address = address
        self.actors = actors
        self.batch_size = batch_size
        self.decode = decode
        self.gpus_per_actor = gpus_per_actor
        self.cpus_per_actor = cpus_per_actor
        self.started_cluster = False

    def embed(self, embedder: Embedder, records: Sequence[Any]) -> Iterator[list[Any]]:
        from modalbridge.cli.backends import read_file_item

        unreadable = [r for r in records if not read_file_item(r)]
        if unreadable:
            yield unreadable
        readable = {r.path: r for r in records if r.error is None}
        if not readable:
            return
        if init_cluster(self.address):
            self.started_cluster = True
            ray.data.DataContext.get_current().enable_progress_bars = False  # the command shows its own
        rows = [
            {"id": r.path, ITEM_COLUMN: r.item if r.modality == "text" else r.path, MODALITY_COLUMN: r.modality}
            for r in readable.values()
        ]
        ds = embed_dataset(
            ray.data.from_items(rows),
            config=embedder.config(),
            decode=self.decode,
            actors=self.actors,
            gpus_per_actor=self.gpus_per_actor,
            cpus_per_actor=self.cpus_per_actor,
            rows_per_batch=self.batch_size,
        )
        for batch in ds.iter_batches(batch_size=self.batch_size, batch_format="numpy"):
            chunk = []
            for record_id, vector, error in zip(batch["id"], batch[EMBEDDING_COLUMN], batch[ERROR_COLUMN]):
                record = readable[record_id]
                if isinstance(error, str) and error:
                    record.error = error
                else:
                    record.vector = np.asarray(vector, dtype=np.float32)
                chunk.append(record)
            yield chunk

    def close(self) -> None:
        """Shut down the local cluster this backend started (a joined cluster is left running)."""
        if self.started_cluster:
            ray.shutdown()
            self.started_cluster = False
