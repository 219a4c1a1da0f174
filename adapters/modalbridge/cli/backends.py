"""Embedding backends: where the files of an index run are embedded.

A :class:`FileRecord` is one file on its way into a collection; a backend is anything with
``embed(embedder, records)`` that yields the records in chunks once each has its ``vector`` or ``error``.
:class:`InProcessEmbedding` (the default) streams them through the core embedder in this process;
:class:`modalbridge.ray.RayEmbedding` embeds them on a Ray cluster (both read files with
:func:`read_file_item`)::

    from modalbridge.cli.indexing import MediaIndex
    from modalbridge.cli.backends import InProcessEmbedding

    index = MediaIndex(client, "photos", model=model, embedding=InProcessEmbedding(batch_size=64))
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterator, Sequence

import numpy as np

from modalbridge.cli.files import file_item
from modalbridge.embedder import Embedder

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
        record.item = file_item(record.path, record.modality)
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


def embed_each_or_fail(embedder: Embedder, items: Sequence[Any]) -> tuple[dict[int, np.ndarray], dict[int, str]]:
    """Embed ``items`` as documents, setting aside the ones that fail (the core's
    :meth:`~modalbridge.Embedder.try_embed_documents`): position -> vector, and position -> reason."""
    vectors, errors = embedder.try_embed_documents(items)
    return vectors, {index: getattr(error, "item_reason", str(error)) for index, error in errors.items()}
