"""The ``modalbridge`` command line and what it is built from: :mod:`.main` (the commands),
:mod:`.indexing` (:class:`~modalbridge.cli.indexing.MediaIndex`, files into a Chroma collection) and
:mod:`.report` (the self-contained HTML results page)."""

from modalbridge.cli.main import main

__all__ = ["main"]
