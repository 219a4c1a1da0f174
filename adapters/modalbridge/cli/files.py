"""Files on disk as index entries: which files a path argument names, what each one is, and its identity.

:func:`collect_files` walks the arguments (folders recursively, hidden entries and excluded folders
skipped), :func:`file_modality` tells a file's kind by its extension (``.txt`` / ``.md`` text, ``.pdf``
pages, else the core's image/audio/video lists), :func:`file_id` is a record's id (the absolute,
symlink-resolved path, so a link and its target are one record), :func:`sha256_of` its content hash, and
:func:`file_item` / :func:`query_item` turn a file (or a query) into the core item the embedder takes::

    from modalbridge.cli.files import collect_files

    found = collect_files(["~/Pictures", "notes.md"], exclude=["modalbridge-db"])
    for path, modality in found.files:
        print(modality, path)
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from modalbridge.media import MediaError, modality_from_extension, tag_uri

TEXT_EXTENSIONS = (".txt", ".md")
PDF_EXTENSION = ".pdf"


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


def embedded_as(modality: str) -> str:
    """What the model takes for a file of this kind: a PDF's pages are images."""
    return "image" if modality == "pdf" else modality


def file_item(path: str, modality: str) -> Any:
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
