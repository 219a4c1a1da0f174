"""The declaration: :data:`SETTINGS`, one :class:`Setting` per load or encode setting, and what is
derived from it directly (:data:`STORED`, :data:`MACHINE_LOCAL`, :func:`names`,
:func:`refuse_vector_changes`). To add a setting, add one :class:`Setting` here."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Literal, Mapping

from pydantic import AfterValidator, AliasChoices, BeforeValidator, Field
from typing_extensions import Annotated

from modalbridge.media.fetch import FETCH_MAX_BYTES, FETCH_TIMEOUT_S
from modalbridge.media.pdf import check_pdf_dpi
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
    checked_by,
    device_names,
    fetch_check,
    non_empty,
    number,
    one_of,
)

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
            Annotated[PathStr, AfterValidator(non_empty)],
            REQUIRED,
            "Hugging Face Hub name (e.g. 'sentence-transformers/clip-ViT-B-32') or local folder of a "
            "sentence-transformers model.",
            BOTH,
            load=True,
        ),
        Setting("revision", Str | None, None, "Hub revision (branch, tag or commit) to load.", BOTH, load=True),
        Setting(
            "device",
            Annotated[Str | list[Str] | tuple[Str, ...] | None, BeforeValidator(device_names)],
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
            "How images reach CLIP-like models: 'cpu' (the exact path: exactly what sentence-transformers gives; "
            "a torchvision processor's own calls run batched on the CPU, else Pillow and the processor), "
            "'gpu' (JPEGs decoded in batches on the model's device, resized and "
            "normalized there; see modalbridge.device_images), or 'auto' ('gpu' on CUDA when the model qualifies).",
            EMBEDDER,
            stored=False,  # this machine's hardware; vectors agree with the exact path (see device_images)
            cli="--image-decode",
            inputs=VISUAL,
        ),
        Setting(
            "pdf_dpi",
            Annotated[Float | None, checked_by(check_pdf_dpi)],
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
            Annotated[Float, fetch_check("timeout_s")],
            FETCH_TIMEOUT_S,
            "Total deadline of one fetch in seconds, redirects included (0 < x <= 3600).",
            BOTH,
            stored=False,
        ),
        Setting(
            "fetch_max_bytes",
            Annotated[Int, fetch_check("max_bytes")],
            FETCH_MAX_BYTES,
            "Largest fetched body in bytes (1 <= x <= 2**34; default 64 MiB).",
            BOTH,
            stored=False,
        ),
        Setting(
            "fetch_allowed_hosts",
            Annotated[list[Str] | None, fetch_check("allowed_hosts")],
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


def vector_changes(stored: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, tuple[Any, Any]]:
    """The ``overrides`` of a stored configuration that would change its vectors, as ``name: (stored,
    given)``: the model, or a setting the declaration marks ``stored``, given a value other than the
    stored one (or, when not stored, than its default). Machine-local settings (device, batch size,
    workers) never do."""
    changed = {}
    for name, value in overrides.items():
        setting = SETTINGS.get(name)
        if setting is not None and not setting.stored:
            continue
        before = stored.get(name, setting.default if setting is not None else None)
        if value != before:
            changed[name] = (before, value)
    return changed


def refuse_vector_changes(stored: Mapping[str, Any], overrides: Mapping[str, Any], where: str) -> None:
    """Refuse ``overrides`` of a stored configuration that would change its vectors (:func:`vector_changes`)::

        refuse_vector_changes(config, {"device": "cuda"}, "collection 'pages'")      # fine
        refuse_vector_changes(config, {"max_length": 16}, "collection 'pages'")      # SettingsError
    """
    changed = vector_changes(stored, overrides)
    if changed:
        model = stored.get("model_name_or_path")
        listed = ", ".join(f"{name} ({before!r} -> {value!r})" for name, (before, value) in changed.items())
        raise SettingsError(f"{where} holds vectors of {model!r}; {listed} would change them")


def _default_workers() -> int:
    from modalbridge.pipeline import default_workers

    return default_workers()


def names(kind: ModelKind, *, load: bool | None = None) -> list[str]:
    """The settings of an embedder or a reranker (``load=True``: load settings only; ``False``: run only)."""
    return [n for n, s in SETTINGS.items() if kind in s.applies_to and (load is None or s.load == load)]
