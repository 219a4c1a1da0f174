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
"""

from __future__ import annotations

import argparse
import json
import os
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Literal, Mapping

from pydantic import (
    AfterValidator,
    AliasChoices,
    Strict,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    create_model,
    model_validator,
)
from typing_extensions import Annotated

from modalbridge.media.fetch import FETCH_MAX_BYTES, FETCH_TIMEOUT_S, check_fetch_settings
from modalbridge.media.pdf import check_pdf_dpi

ModelKind = Literal["embedder", "reranker", "multivector"]
DTYPES = ("float32", "float16", "bfloat16")
BACKENDS = ("torch", "onnx", "openvino")
PRECISIONS = ("float32", "int8", "uint8", "binary", "ubinary")

EMBEDDER: frozenset[ModelKind] = frozenset({"embedder"})
MULTIVECTOR: frozenset[ModelKind] = frozenset({"multivector"})  # late interaction (modalbridge.multivector)
EMBEDDERS = EMBEDDER | MULTIVECTOR
RERANKER: frozenset[ModelKind] = frozenset({"reranker"})
BOTH: frozenset[ModelKind] = EMBEDDERS | RERANKER
"""Every kind of model."""
VISUAL = frozenset({"image", "video"})
"""The inputs of a setting that is only about pictures: images, video frames, PDF pages (images to a model)."""


# -- checks (their messages name the setting as the caller spelled it) --------------------------------


def _name(info: ValidationInfo) -> str:
    return info.field_name or "value"


def number(phrase: str, minimum: float, *, integer: bool = True, allow_none: bool = False) -> BeforeValidator:
    """A number of at least ``minimum`` (an int unless ``integer=False``; never a bool), or ``None`` where
    allowed. Checked before pydantic's own type check, so every class gives the one message
    ``"<setting> must be <phrase>, got <value>"``."""
    kinds = (int,) if integer else (int, float)

    def check(value: Any, info: ValidationInfo) -> Any:
        if value is None and allow_none:
            return value
        if isinstance(value, bool) or not isinstance(value, kinds) or not value >= minimum:
            raise ValueError(f"{_name(info)} must be {phrase}, got {value!r}")
        return value

    return BeforeValidator(check)


def one_of(choices: Iterable[str], allow_none: bool = False) -> AfterValidator:
    choices = tuple(choices)

    def check(value: Any, info: ValidationInfo) -> Any:
        if value is None and allow_none:
            return value
        if value not in choices:
            listed = ", ".join(choices) + (" or None" if allow_none else "")
            raise ValueError(f"{_name(info)} must be one of {listed}, got {value!r}")
        return value

    return AfterValidator(check)


def _non_empty(value: Any, info: ValidationInfo) -> Any:
    if not value:
        raise ValueError(f"{_name(info)} must be a non-empty string (a hub name or a local folder)")
    return value


def _device(value: Any, info: ValidationInfo) -> Any:
    """One device name, or a non-empty list of them (a pool: kept as a tuple, so settings stay hashable)."""
    if not isinstance(value, (str, list, tuple, type(None))):
        raise ValueError(
            f"{_name(info)} must be a device name such as 'cpu' or 'cuda:0', or a list of them, got {value!r}"
        )
    if isinstance(value, (list, tuple)):
        if not all(isinstance(d, str) for d in value):
            raise ValueError(f"{_name(info)} must be a list of device names, got {list(value)!r}")
        if not value or not all(d and d != "auto" for d in value):
            raise ValueError(
                f"{_name(info)} must be a device name or a non-empty list of device names (not 'auto'), got {list(value)!r}"
            )
        return tuple(value)
    if value == "":
        raise ValueError(f"{_name(info)} must be a device name such as 'cpu' or 'cuda:0', or a list of them, got ''")
    return value


def _fspath(value: Any) -> Any:
    return os.fspath(value) if isinstance(value, os.PathLike) else value


def _none_is_empty(value: Any) -> Any:
    return {} if value is None else value


# Scalars are strict: True is not a batch size, "8" is not a number of frames (the command line converts
# its strings first).
Int = Annotated[int, Strict()]
Float = Annotated[float, Strict()]  # an int is accepted
Bool = Annotated[bool, Strict()]
Str = Annotated[str, Strict()]
PathStr = Annotated[str, BeforeValidator(_fspath), Strict()]
Kwargs = Annotated[dict[str, Any], BeforeValidator(_none_is_empty)]
PositiveInt = Annotated[Int, number("at least 1 (an integer)", 1)]
OptionalPositiveInt = Annotated[Int | None, number("a positive integer or None", 1, allow_none=True)]


def _checked_by(check: Callable[[Any], None]) -> AfterValidator:
    """A check that lives with the code it protects (e.g. :func:`modalbridge.media.fetch.check_fetch_settings`)."""

    def run(value: Any) -> Any:
        check(value)
        return value

    return AfterValidator(run)


def _fetch_check(name: str) -> AfterValidator:
    values = {"timeout_s": FETCH_TIMEOUT_S, "max_bytes": FETCH_MAX_BYTES, "allowed_hosts": None, "allow_private": False}
    return _checked_by(lambda value: check_fetch_settings(**{**values, name: value}))


# -- the declaration ----------------------------------------------------------------------------------

REQUIRED = ...
"""The default of a setting that has none (the model)."""


@dataclass(frozen=True)
class Setting:
    """One setting. ``load``: it changes the loaded model (so it is part of the model cache key).
    ``stored``: a Chroma collection stores it with its embedding function (settings that are about this
    machine — device, cache folder, workers — or that must be opted into per process — fetching — are
    not stored). ``cli``: its command-line flag, if it has one."""

    name: str
    annotation: Any
    default: Any
    doc: str
    applies_to: frozenset[ModelKind]
    load: bool = False
    stored: bool = True
    default_factory: Callable[[], Any] | None = None
    """Computes the default when the process starts using it (e.g. the number of CPUs)."""
    cli: str | None = None
    cli_doc: str | None = None
    """The flag's help where it differs from ``doc`` (e.g. one device, not a list)."""
    inputs: frozenset[str] | None = None
    """The inputs it is about when only some (:data:`VISUAL`); ``None``: every input. ``modalbridge index``
    gives an audio model's collection only the settings that can concern it."""

    def field(self, *, default: Any = REQUIRED, field_name: str | None = None, alias: str | None = None) -> tuple[Any, Any]:
        """``(annotation, FieldInfo)`` for ``pydantic.create_model``; ``default`` overrides the declared
        one (an adapter matching an incumbent's default); ``alias`` is another accepted name for the
        field (named ``field_name``, by default the setting's name)."""
        value = self.default if default is REQUIRED else default
        extra: dict[str, Any] = {"description": self.doc}
        if alias is not None:
            extra["validation_alias"] = AliasChoices(field_name or self.name, alias)
        if self.default_factory is not None and default is REQUIRED:
            return self.annotation, Field(default_factory=self.default_factory, **extra)
        if isinstance(value, dict):
            return self.annotation, Field(default_factory=dict, **extra)
        return self.annotation, Field(value, **extra)


SETTINGS: dict[str, Setting] = {
    s.name: s
    for s in [
        # -- load settings: they decide which weights are loaded, and how -----------------------------
        Setting(
            "model_name_or_path",
            Annotated[PathStr, AfterValidator(_non_empty)],
            REQUIRED,
            "Hugging Face Hub name (e.g. 'sentence-transformers/clip-ViT-B-32') or local folder of a "
            "sentence-transformers model.",
            BOTH,
            load=True,
        ),
        Setting("revision", Str | None, None, "Hub revision (branch, tag or commit) to load.", BOTH, load=True),
        Setting(
            "device",
            Annotated[Str | list[Str] | tuple[Str, ...] | None, BeforeValidator(_device)],
            "auto",
            "'auto' or None (cuda, then mps, then cpu), 'cpu', 'cuda:1', 'mps', ...; a list of devices runs "
            "a multi-process pool over them.",
            BOTH,
            load=True,
            stored=False,
            cli="--device",
            cli_doc="cpu, cuda, cuda:1, mps, or auto (cuda, then mps, then cpu)",
        ),
        Setting(
            "dtype",
            Annotated[Str | None, one_of(DTYPES, allow_none=True)],
            None,
            "Weights dtype: 'float32', 'float16', 'bfloat16', or None for the model's default.",
            BOTH,
            load=True,
            cli="--dtype",
        ),
        Setting(
            "backend",
            Annotated[Str, one_of(BACKENDS)],
            "torch",
            "Inference backend: 'torch', 'onnx' or 'openvino'.",
            BOTH,
            load=True,
            cli="--backend",
        ),
        Setting(
            "trust_remote_code",
            Bool,
            False,
            "Run code shipped with the model repository (only for models you trust).",
            BOTH,
            load=True,
            cli="--trust-remote-code",
        ),
        Setting("model_kwargs", Kwargs, {}, "Keyword arguments for the transformers model "
                "(from_pretrained), e.g. {'attn_implementation': 'sdpa'}.", BOTH, load=True),
        Setting("processor_kwargs", Kwargs, {}, "Keyword arguments for the processor / tokenizer.", BOTH, load=True),
        Setting("config_kwargs", Kwargs, {}, "Keyword arguments for the model config.", BOTH, load=True),
        Setting(
            "max_pixels",
            OptionalPositiveInt,
            None,
            "Vision-language models with a pixel budget (Qwen2-VL, Qwen2.5-VL, Qwen3-VL): the most pixels an "
            "image is resized to. Each (patch_size x merge_size)^2 pixels become one visual token (Qwen3-VL: "
            "32x32, so 1024*1024 pixels = 1,024 tokens), and a batch's memory grows with batch_size x tokens "
            "per image (see modalbridge.batching). None keeps the model's own (Qwen3-VL: 16,384 tokens).",
            BOTH,
            load=True,
            cli="--max-pixels",
            inputs=VISUAL,
        ),
        Setting(
            "cache_folder",
            PathStr | None,
            None,
            "Where downloaded models are stored (default: the Hugging Face cache).",
            BOTH,
            load=True,
            stored=False,
        ),
        Setting(
            "local_files_only",
            Bool,
            False,
            "Never look the model up on the Hub; use files on disk only.",
            BOTH,
            load=True,
            stored=False,
        ),
        Setting(
            "max_length",
            OptionalPositiveInt,
            None,
            "The longest input in tokens (longer inputs are truncated); None keeps the model's own.",
            BOTH,
            load=True,
            cli="--max-length",
        ),
        # -- run settings: how inputs are encoded or scored ------------------------------------------
        Setting(
            "batch_size",
            PositiveInt,
            32,
            "Inputs per forward pass.",
            BOTH,
            stored=False,
            cli="--batch-size",
        ),
        Setting("normalize", Bool, False, "Scale every embedding to unit length.", EMBEDDERS, cli="--normalize"),
        Setting(
            "truncate_dim",
            OptionalPositiveInt,
            None,
            "Keep the first N dimensions (Matryoshka models); None keeps all.",
            EMBEDDER,
            cli="--truncate-dim",
        ),
        Setting(
            "precision",
            Annotated[Str, one_of(PRECISIONS)],
            "float32",
            "Embedding precision: 'float32', or quantized 'int8', 'uint8', 'binary', 'ubinary'.",
            EMBEDDER,
        ),
        Setting(
            "query_prompt_name",
            Str | None,
            None,
            "Name of a prompt saved with the model for queries; None: its 'query' prompt, if it has one.",
            EMBEDDERS,
        ),
        Setting(
            "document_prompt_name",
            Str | None,
            None,
            "Name of a saved prompt for documents; None: the model's 'document' prompt, if it has one.",
            EMBEDDERS,
        ),
        Setting("query_prompt", Str | None, None, "A literal query prompt (overrides query_prompt_name).", EMBEDDERS),
        Setting(
            "document_prompt", Str | None, None, "A literal document prompt (overrides document_prompt_name).", EMBEDDERS
        ),
        Setting("prompt_name", Str | None, None, "Name of a prompt saved with the reranker.", RERANKER),
        Setting("prompt", Str | None, None, "A literal reranker prompt (overrides prompt_name).", RERANKER),
        Setting(
            "video_frames",
            OptionalPositiveInt,
            None,
            "For image models without video support: embed a video as the mean of this many evenly spaced "
            "frames (normalized when the embeddings are). None refuses videos on such models.",
            EMBEDDER,
            cli="--video-frames",
            cli_doc="embed videos as the mean of N frames when the model takes images only",
            inputs=VISUAL,
        ),
        Setting(
            "token_pool_factor",
            Annotated[Float | None, number("at least 1 (or None)", 1, integer=False, allow_none=True)],
            None,
            "Multi-vector (late-interaction) models only: shrink each document to about 1/token_pool_factor of "
            "its token vectors by hierarchical clustering (sentence-transformers' HierarchicalTokenPooling); "
            "queries are never pooled. None keeps every token.",
            MULTIVECTOR,
        ),
        Setting(
            "show_progress_bar", Bool, False, "Show a progress bar while encoding.", BOTH, stored=False
        ),
        Setting(
            "allow_fetch",
            Bool,
            False,
            "Fetch http(s) media URLs. Off by default: nothing is fetched unless this process asks (a stored "
            "collection configuration never turns it on).",
            BOTH,
            stored=False,
            cli="--allow-fetch",
        ),
        Setting(
            "decode_workers",
            PositiveInt,
            None,
            "Threads that decode and preprocess media ahead of the model; default: the CPUs this process may "
            "use (its affinity mask).",
            BOTH,
            stored=False,
            default_factory=lambda: _default_workers(),
            cli="--decode-workers",
        ),
        Setting(
            "reduced_jpeg_decode",
            Bool,
            False,
            "Decode JPEGs at 1/2, 1/4 or 1/8 size (the decoder's DCT scaling) when the model's processor "
            "shrinks them to a fixed size anyway: several times less decoding work, approximate vectors "
            "(README: cosine to the exact path on real photos). Off: exactly what sentence-transformers gives.",
            EMBEDDER,
            cli="--reduced-jpeg-decode",
            inputs=VISUAL,
        ),
        Setting(
            "image_decode",
            Annotated[Str, one_of(("cpu", "gpu", "auto"))],
            "cpu",
            "How images reach CLIP-like models: 'cpu' (Pillow and the model's processor: exactly what "
            "sentence-transformers gives), 'gpu' (JPEGs decoded in batches on the model's device, resized and "
            "normalized there; see modalbridge.device_images), or 'auto' ('gpu' on CUDA when the model qualifies).",
            EMBEDDER,
            stored=False,  # this machine's hardware; vectors agree with the exact path (see device_images)
            cli="--image-decode",
            inputs=VISUAL,
        ),
        Setting(
            "pdf_dpi",
            Annotated[Float | None, _checked_by(check_pdf_dpi)],
            None,
            "Render PDF pages at this many dots per inch (10 to 1200). None renders each page about as large as "
            "the model looks at it, from its image processor: CLIP-like, the shorter side at its resize size; "
            "Qwen-VL-like, about max_pixels (see modalbridge.inputs.page_resolution).",
            BOTH,
            cli="--pdf-dpi",
            cli_doc="render PDF pages at this many dots per inch, 10 to 1200 (default: about as large as the "
            "model looks at them)",
            inputs=VISUAL,
        ),
        # -- fetching bounds (modalbridge.media.fetch): this process's choice, never stored ------------
        Setting(
            "fetch_timeout_s",
            Annotated[Float, _fetch_check("timeout_s")],
            FETCH_TIMEOUT_S,
            "Total deadline of one fetch in seconds, redirects included (0 < x <= 3600).",
            BOTH,
            stored=False,
        ),
        Setting(
            "fetch_max_bytes",
            Annotated[Int, _fetch_check("max_bytes")],
            FETCH_MAX_BYTES,
            "Largest fetched body in bytes (1 <= x <= 2**34; default 64 MiB).",
            BOTH,
            stored=False,
        ),
        Setting(
            "fetch_allowed_hosts",
            Annotated[list[Str] | None, _fetch_check("allowed_hosts")],
            None,
            "Fetch only from these hosts ('cdn.example.com', '.example.com' for subdomains too); redirects to "
            "another host are followed only to these. None: any public host, same-host redirects.",
            BOTH,
            stored=False,
        ),
        Setting(
            "fetch_allow_private",
            Bool,
            False,
            "Also fetch from loopback, private and link-local addresses (refused by default, before connecting).",
            BOTH,
            stored=False,
        ),
        # -- quantization (after the settings it depends on: precision, truncate_dim) -----------------
        Setting(
            "quantization_ranges",
            list[list[Float]] | None,
            None,
            "For precision 'int8'/'uint8' (and required there): [[min, ...], [max, ...]], the per-dimension range "
            "of the float embeddings (after truncation), e.g. from modalbridge.calibration_ranges over a sample of "
            "the corpus, so that no vector depends on its batch neighbours.",
            EMBEDDER,
        ),
    ]
}
"""Every setting, in order: load settings first, then run settings."""

STORED = frozenset(name for name, s in SETTINGS.items() if s.stored)
"""Settings a Chroma collection stores with its embedding function: those that decide the vectors."""
MACHINE_LOCAL = frozenset(name for name, s in SETTINGS.items() if not s.stored)
"""Settings about this machine or this process (device, cache folder, workers, fetching): never stored."""


def refuse_vector_changes(stored: Mapping[str, Any], overrides: Mapping[str, Any], where: str) -> None:
    """Refuse ``overrides`` of a stored configuration that would change its vectors: the model, or a
    setting the declaration marks ``stored``, given a value other than the stored one (or, when not
    stored, than its default). Machine-local settings (device, batch size, workers) pass::

        refuse_vector_changes(config, {"device": "cuda"}, "collection 'pages'")      # fine
        refuse_vector_changes(config, {"max_length": 16}, "collection 'pages'")      # SettingsError
    """
    changed = []
    for name, value in overrides.items():
        setting = SETTINGS.get(name)
        if setting is not None and not setting.stored:
            continue
        before = stored.get(name, setting.default if setting is not None else None)
        if value != before:
            changed.append(f"{name} ({before!r} -> {value!r})")
    if changed:
        model = stored.get("model_name_or_path")
        raise SettingsError(f"{where} holds vectors of {model!r}; {', '.join(changed)} would change them")


def _default_workers() -> int:
    from modalbridge.pipeline import default_workers

    return default_workers()


def names(kind: ModelKind, *, load: bool | None = None) -> list[str]:
    """The settings of an embedder or a reranker (``load=True``: load settings only; ``False``: run only)."""
    return [n for n, s in SETTINGS.items() if kind in s.applies_to and (load is None or s.load == load)]


# -- the core's settings classes -----------------------------------------------------------------------


class _SettingsModel(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True, protected_namespaces=())

    def to_dict(self) -> dict[str, Any]:
        """Every setting as a plain dict (copies of the kwargs dicts)."""
        return self.model_dump()


class _LoadSettingsBase(_SettingsModel):
    model_config = ConfigDict(frozen=True)

    def __init__(self, model_name_or_path: Any = None, /, **settings: Any) -> None:
        if model_name_or_path is not None:
            if "model_name_or_path" in settings:
                raise TypeError("model_name_or_path given twice (positionally and as a keyword)")
            settings["model_name_or_path"] = model_name_or_path
        super().__init__(**settings)

    @property
    def uses_pool(self) -> bool:
        """Whether the model runs in a multi-process pool (``device`` is a list)."""
        return isinstance(self.device, tuple)

    def to_dict(self) -> dict[str, Any]:
        settings = super().to_dict()
        if self.uses_pool:
            settings["device"] = list(self.device)
        return settings

    def key(self, kind: ModelKind) -> str:
        """The model cache key: the kind, every load setting, and the resolved device (so "auto" and the
        device it resolves to share). Local folders are keyed by their absolute path."""
        from modalbridge.loading import resolve_device

        settings = self.to_dict()
        settings["device"] = resolve_device(self.device)
        if os.path.isdir(self.model_name_or_path):
            settings["model_name_or_path"] = os.path.abspath(self.model_name_or_path)
        return json.dumps({"kind": kind, **settings}, sort_keys=True, default=repr)


class _RunSettingsBase(_SettingsModel):
    def fetch_policy(self) -> Any:
        """The bounds of every fetch (see :mod:`modalbridge.media.fetch`)."""
        from modalbridge.media.fetch import FetchPolicy

        return FetchPolicy(
            timeout_s=self.fetch_timeout_s,
            max_bytes=self.fetch_max_bytes,
            allowed_hosts=None if self.fetch_allowed_hosts is None else tuple(self.fetch_allowed_hosts),
            allow_private=self.fetch_allow_private,
        )


class _EncodeSettingsBase(_RunSettingsBase):
    @model_validator(mode="after")
    def _check_quantization(self) -> Any:
        ranges = self.quantization_ranges
        if self.precision in ("int8", "uint8"):
            if ranges is None:
                raise ValueError(
                    f"precision={self.precision!r} needs quantization_ranges: int8/uint8 map each dimension's "
                    "range onto 256 levels, and ranges computed per call would make a vector depend on its "
                    "batch neighbours (and a single query has none). Compute them once with "
                    "modalbridge.calibration_ranges(embedder, sample_items), or use precision='binary'/'float32'"
                )
            import numpy as np

            array = np.asarray(ranges, dtype=np.float64) if all(len(r) == len(ranges[0]) for r in ranges) else None
            if array is None or array.ndim != 2 or array.shape[0] != 2 or array.shape[1] < 1 or not np.isfinite(array).all():
                shape = "ragged" if array is None else array.shape
                raise ValueError(
                    "quantization_ranges must be [[min, ...], [max, ...]] of finite numbers (one per dimension), "
                    f"got an array of shape {shape}"
                )
            if (array[1] < array[0]).any():
                raise ValueError("quantization_ranges: every max must be at least its min")
        elif ranges is not None:
            raise ValueError(f"quantization_ranges is only for precision 'int8' or 'uint8', not {self.precision!r}")
        return self


def _settings_class(name: str, base: type, setting_names: list[str], doc: str) -> type:
    fields = {n: SETTINGS[n].field() for n in setting_names}
    cls = create_model(name, __base__=base, __module__=__name__, **fields)
    cls.__doc__ = doc + "\n\n" + "\n".join(f"* ``{n}``: {SETTINGS[n].doc}" for n in setting_names)
    return cls


LoadSettings = _settings_class(
    "LoadSettings",
    _LoadSettingsBase,
    [n for n, s in SETTINGS.items() if s.load],
    "Everything that determines a loaded model; equal settings share one model object "
    "(:mod:`modalbridge.loading`). ``LoadSettings('model', device='cpu')``; immutable.",
)
EncodeSettings = _settings_class(
    "EncodeSettings",
    _EncodeSettingsBase,
    [n for n, s in SETTINGS.items() if not s.load and s.applies_to & EMBEDDERS],
    "An :class:`~modalbridge.Embedder`'s encode-time settings (not part of the model cache key).",
)
RerankSettings = _settings_class(
    "RerankSettings",
    _RunSettingsBase,
    names("reranker", load=False),
    "A :class:`~modalbridge.Reranker`'s scoring-time settings (not part of the model cache key).",
)


def split(kind: ModelKind, model_name_or_path: Any, settings: dict[str, Any], owner: str) -> tuple[Any, Any]:
    """``(LoadSettings, EncodeSettings | RerankSettings)`` from keyword arguments; an unknown name is a
    ``TypeError`` naming it (``owner`` is the class the caller built)."""
    known = set(names(kind))
    unknown = sorted(set(settings) - known)
    if unknown:
        raise TypeError(f"{owner} got unknown settings: {', '.join(unknown)}")
    run_class = RerankSettings if kind == "reranker" else EncodeSettings
    try:
        load = LoadSettings(model_name_or_path, **{k: v for k, v in settings.items() if SETTINGS[k].load})
        run = run_class(**{k: v for k, v in settings.items() if not SETTINGS[k].load})
    except ValidationError as exc:
        raise SettingsError(describe(exc)) from None
    return load, run


class SettingsError(ValueError):
    """A setting's value is refused by a core class; the message names the setting and says why."""


def describe(error: ValidationError) -> str:
    """One line per refused value, naming the setting (pydantic's own report, without its boilerplate)."""
    lines = []
    for item in error.errors():
        message = item["msg"].removeprefix("Value error, ")
        name = ".".join(str(part) for part in item["loc"])
        lines.append(message if not name or message.startswith(name) else f"{name}: {message}")
    return "; ".join(lines)


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


# -- command line ----------------------------------------------------------------------------------------


def _cli_type(setting: Setting) -> Callable[[str], Any]:
    """An argparse type that checks a value exactly as the settings classes do."""
    from pydantic import TypeAdapter

    adapter = TypeAdapter(setting.annotation)
    flag = setting.cli

    def convert(text: str) -> Any:
        try:
            return adapter.validate_python(_parse_number(text))  # "8" -> 8 here only: settings are strict
        except ValidationError as exc:
            message = exc.errors()[0]["msg"].removeprefix("Value error, ").replace("value ", f"{flag} ", 1)
            raise argparse.ArgumentTypeError(message) from None

    return convert


def _parse_number(text: str) -> Any:
    for parse in (int, float):
        try:
            return parse(text)
        except ValueError:
            pass
    return text


def add_cli_options(
    group: Any,
    setting_names: Iterable[str],
    *,
    defaults: dict[str, Any] | None = None,
    notes: dict[str, str] | None = None,
) -> None:
    """Add the command-line flags of ``setting_names`` to an argparse parser or group, with the declared
    docs and checks. A flag not given is ``None`` (so a stored collection configuration or the declared
    default applies; a switch is ``False``), unless ``defaults`` names another default; ``notes`` add to
    a flag's help."""
    defaults, notes = defaults or {}, notes or {}
    for name in setting_names:
        setting = SETTINGS[name]
        if setting.cli is None:
            raise ValueError(f"setting {name!r} has no command-line flag")
        default = defaults.get(name)
        help_text = setting.cli_doc or setting.doc
        if name in notes:
            help_text += f" ({notes[name]})"
        elif default is not None:
            help_text += f" (default: {default})"
        help_text = help_text.replace("%", "%%")
        if setting.annotation is Bool:
            group.add_argument(setting.cli, dest=name, action="store_true", default=bool(default), help=help_text)
            continue
        if name == "device":  # one device on the command line
            group.add_argument(setting.cli, dest=name, default=default, metavar="DEVICE", help=help_text)
            continue
        metavar = "N" if "int" in str(setting.annotation) else name.upper()
        group.add_argument(
            setting.cli, dest=name, type=_cli_type(setting), default=default, metavar=metavar, help=help_text
        )
