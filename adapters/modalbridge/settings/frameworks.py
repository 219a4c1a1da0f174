"""The settings in the frameworks' terms: the LangChain and LlamaIndex adapters' pydantic fields
(:func:`pydantic_fields`, :func:`core_kwargs`), and the incumbent integrations' arguments translated
(:func:`from_sentence_transformers_kwargs`, :func:`from_encode_kwargs`, :func:`merge`)."""

from __future__ import annotations

from typing import Any, Iterable, Literal



from modalbridge.settings.declaration import REQUIRED, SETTINGS, ModelKind, names

# -- adapters' pydantic fields ----------------------------------------------------------------------------


def pydantic_fields(
    kind: ModelKind,
    *,
    rename: dict[str, str] | None = None,
    defaults: dict[str, Any] | None = None,
    aliases: dict[str, str] | None = None,
    exclude: Iterable[str] = (),
) -> dict[str, tuple[Any, Any]]:
    """The settings of ``kind`` as pydantic field definitions for ``create_model``: the same types and
    checks as the core, so adapters accept and refuse exactly what the core does (on assignment too,
    with ``validate_assignment``). ``rename`` maps a setting to the adapter's field name (e.g.
    ``batch_size`` -> LlamaIndex's ``embed_batch_size``); ``defaults`` and ``aliases`` are keyed by the
    setting's name."""
    rename, defaults, aliases = rename or {}, defaults or {}, aliases or {}
    excluded = set(exclude)
    fields = {}
    for name in names(kind):
        if name in excluded:
            continue
        field_name = rename.get(name, name)
        fields[field_name] = SETTINGS[name].field(
            default=defaults.get(name, REQUIRED), field_name=field_name, alias=aliases.get(name)
        )
    return fields


def core_kwargs(adapter: Any, kind: ModelKind, *, rename: dict[str, str] | None = None, exclude: Iterable[str] = ()) -> dict[str, Any]:
    """The core's keyword arguments from an adapter's fields (``rename`` as in :func:`pydantic_fields`);
    kwargs dicts are copied, so the core never shares them with the adapter."""
    rename = rename or {}
    excluded = set(exclude)
    out = {}
    for name in names(kind):
        if name in excluded:
            continue
        value = getattr(adapter, rename.get(name, name))
        out[name] = dict(value) if isinstance(value, dict) else list(value) if isinstance(value, list) else value
    return out


# -- the incumbents' arguments --------------------------------------------------------------------------

SENTENCE_TRANSFORMERS_ARGS = {
    "device": "device",
    "cache_folder": "cache_folder",
    "trust_remote_code": "trust_remote_code",
    "revision": "revision",
    "local_files_only": "local_files_only",
    "model_kwargs": "model_kwargs",
    "processor_kwargs": "processor_kwargs",
    "config_kwargs": "config_kwargs",
    "backend": "backend",
    "truncate_dim": "truncate_dim",
    "max_length": "max_length",  # CrossEncoder(max_length=...)
}
"""``SentenceTransformer(...)`` / ``CrossEncoder(...)`` constructor arguments and the setting each one is."""

ENCODE_ARGS = {
    "batch_size": "batch_size",
    "normalize_embeddings": "normalize",
    "precision": "precision",
    "truncate_dim": "truncate_dim",
    "show_progress_bar": "show_progress_bar",
    "prompt_name": "{role}_prompt_name",
    "prompt": "{role}_prompt",
}
"""``SentenceTransformer.encode(...)`` arguments and the setting each one is (prompts per role)."""


def from_sentence_transformers_kwargs(kwargs: dict[str, Any], where: str) -> dict[str, Any]:
    """Settings from sentence-transformers constructor keyword arguments (as ``HuggingFaceEmbeddings``'s
    ``model_kwargs`` or ``SentenceTransformerRerank``'s ``cross_encoder_kwargs`` hold them). An argument
    modalbridge has no setting for is an error naming it, never dropped."""
    out = {}
    for key, value in kwargs.items():
        if key not in SENTENCE_TRANSFORMERS_ARGS:
            raise ValueError(
                f"{where}[{key!r}]: no modalbridge setting takes this SentenceTransformer argument; the "
                f"supported ones are {', '.join(sorted(SENTENCE_TRANSFORMERS_ARGS))}"
            )
        out[SENTENCE_TRANSFORMERS_ARGS[key]] = value
    return out


def from_encode_kwargs(kwargs: dict[str, Any], role: Literal["query", "document"], where: str) -> dict[str, Any]:
    """Settings from ``encode()`` keyword arguments (as ``HuggingFaceEmbeddings``'s ``encode_kwargs``);
    prompts become the ``role``'s prompt. Unsupported arguments are errors naming them."""
    out = {}
    for key, value in kwargs.items():
        if key in ("convert_to_numpy",) and value is True:
            continue  # what modalbridge always does
        if key not in ENCODE_ARGS:
            raise ValueError(
                f"{where}[{key!r}]: no modalbridge setting takes this encode() argument; the supported ones "
                f"are {', '.join(sorted(ENCODE_ARGS))}"
            )
        out[ENCODE_ARGS[key].format(role=role)] = value
    return out


def merge(sources: list[tuple[str, dict[str, Any]]]) -> dict[str, Any]:
    """Merge settings given in several places (e.g. a field and the same value inside ``model_kwargs``);
    the same setting given twice with different values is an error naming both places."""
    merged: dict[str, Any] = {}
    origin: dict[str, str] = {}
    for where, values in sources:
        for key, value in values.items():
            if key in merged and merged[key] != value:
                raise ValueError(
                    f"{key} is given twice with different values: {merged[key]!r} ({origin[key]}) and "
                    f"{value!r} ({where})"
                )
            merged[key] = value
            origin[key] = where
    return merged
