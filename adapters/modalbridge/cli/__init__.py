"""The ``modalbridge`` command line and what it is built from: :mod:`.main` (the commands),
:mod:`.indexing` (:class:`~modalbridge.cli.indexing.MediaIndex`, files into Chroma collections and
search over them), and its parts by role: :mod:`.files` (finding files, ids, hashes, modality by
extension), :mod:`.store` (Chroma clients and collections), :mod:`.backends` (in-process or Ray
embedding), :mod:`.results` (reports, hits, the printed table), :mod:`.late_interaction`
(``--multi-vector`` indexes); and :mod:`.report` (the self-contained HTML results page)."""

from modalbridge.cli.main import main

__all__ = ["main"]
