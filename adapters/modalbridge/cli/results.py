"""What indexing and searching report: :class:`IndexReport` (file by file: added, updated, unchanged,
failed, skipped), :class:`Hit` and :class:`SearchResult` (ranked records with their scores and notes),
:func:`format_hits` (the plain-text table the command prints), and the progress bar shown while
embedding::

    from modalbridge.cli.results import format_hits

    print(report.summary())       # an IndexReport from MediaIndex.index
    print(format_hits(result))    # a SearchResult from MediaIndex.search
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from typing import Any

from modalbridge.items import modality_of

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


def without_path(reason: str, path: str) -> str:
    """``"/x.jpg: cannot decode image (...)"`` -> ``"cannot decode image (...)"`` (the path is shown anyway)."""
    for prefix in (f"Image({path}): ", f"Audio({path}): ", f"Video({path}): ", f"{path}: "):
        if reason.startswith(prefix):
            return reason[len(prefix):]
    return reason


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


class _NoBar:
    def update(self, n: int) -> None:
        pass

    def close(self) -> None:
        pass


def progress_bar(total: int, desc: str, enabled: bool):
    if not enabled:
        return _NoBar()
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="file", file=sys.stderr, leave=True, dynamic_ncols=True)
