"""Every load and encode setting, declared once.

:data:`SETTINGS` is the one declaration: each :class:`Setting` has a name, a type, a check, a default,
a doc, which models it applies to, whether it changes the loaded model (``load``: part of the model
cache key), whether a Chroma collection stores it (``stored``), and its command-line flag. Everything
else is derived from it:

* the core's :class:`LoadSettings`, :class:`EncodeSettings` and :class:`RerankSettings` (pydantic
  models: unknown names are errors, values are checked on construction and on assignment);
* the pydantic fields of the LangChain and LlamaIndex adapters (:func:`pydantic_fields`), so a value is
  accepted or refused with the same message whichever class it is given to;
* the Chroma configuration (:data:`STORED` vs :data:`MACHINE_LOCAL`);
* the command-line options (:func:`add_cli_options`);
* the translation of the incumbent integrations' arguments (sentence-transformers constructor and
  ``encode`` keyword arguments, as ``HuggingFaceEmbeddings``, llama-index's ``HuggingFaceEmbedding``,
  ``SentenceTransformerRerank`` and Chroma's ``SentenceTransformerEmbeddingFunction`` take them) in
  :func:`from_sentence_transformers_kwargs` and :func:`from_encode_kwargs`.

To add a setting, add one :class:`Setting` to :data:`SETTINGS` and use it where it takes effect::

    from modalbridge.settings import EncodeSettings

    settings = EncodeSettings(batch_size=64, normalize=True)
    settings.batch_size = 0        # ValidationError: batch_size must be at least 1, got 0

The package, by role: :mod:`~modalbridge.settings.declaration` (the table, and what follows from it
directly), :mod:`~modalbridge.settings.checks` (value checks and their messages),
:mod:`~modalbridge.settings.classes` (the core's settings classes), :mod:`~modalbridge.settings.frameworks`
(adapters' fields, the incumbents' arguments) and :mod:`~modalbridge.settings.cli` (command-line flags).
Everything is importable from ``modalbridge.settings``.
"""

from __future__ import annotations

from modalbridge.settings.checks import (
    Bool,
    Float,
    Int,
    Kwargs,
    OptionalPositiveInt,
    PathStr,
    PositiveInt,
    SettingsError,
    Str,
    describe,
    number,
    one_of,
)
from modalbridge.settings.classes import EncodeSettings, LoadSettings, RerankSettings, split
from modalbridge.settings.cli import add_cli_options
from modalbridge.settings.declaration import (
    BACKENDS,
    BOTH,
    DTYPES,
    EMBEDDER,
    EMBEDDERS,
    MACHINE_LOCAL,
    MULTIVECTOR,
    PRECISIONS,
    REQUIRED,
    RERANKER,
    SETTINGS,
    STORED,
    VISUAL,
    ModelKind,
    Setting,
    names,
    refuse_vector_changes,
    vector_changes,
)
from modalbridge.settings.frameworks import (
    ENCODE_ARGS,
    SENTENCE_TRANSFORMERS_ARGS,
    core_kwargs,
    from_encode_kwargs,
    from_sentence_transformers_kwargs,
    merge,
    pydantic_fields,
)

__all__ = [
    "BACKENDS", "BOTH", "Bool", "DTYPES", "EMBEDDER", "EMBEDDERS", "ENCODE_ARGS", "EncodeSettings", "Float", "Int",
    "Kwargs", "LoadSettings", "MACHINE_LOCAL", "MULTIVECTOR", "ModelKind", "OptionalPositiveInt", "PRECISIONS",
    "PathStr", "PositiveInt", "REQUIRED", "RERANKER", "RerankSettings", "SENTENCE_TRANSFORMERS_ARGS", "SETTINGS",
    "STORED", "Setting", "SettingsError", "Str", "VISUAL", "add_cli_options", "core_kwargs", "describe",
    "from_encode_kwargs", "from_sentence_transformers_kwargs", "merge", "names", "number", "one_of",
    "pydantic_fields", "refuse_vector_changes", "split", "vector_changes",
]
