"""One loaded model per full set of load settings, shared by every adapter in the process.

:class:`LoadSettings` holds everything that changes which weights are loaded and how (model, revision,
device, dtype, backend, remote code, kwargs, ...). Its :meth:`LoadSettings.key` is the cache key:
any two adapters — of any framework — built with equal settings get the very same model object, and
different settings never share. Encode-time settings (batch size, prompts, normalization) are not part of
the key: they do not change the loaded model.

Loading is lazy and thread-safe (N threads asking for the same key cause one load)::

    from modalbridge.loading import LoadSettings, get_model, release_model

    settings = LoadSettings("sentence-transformers/clip-ViT-B-32", device="auto")
    model = get_model("embedder", settings)       # loads once
    assert get_model("embedder", settings) is model
    release_model("embedder", settings)           # frees it (and the GPU cache)

``device`` may be a list (``["cuda:0", "cuda:1"]``, ``["cpu", "cpu"]``): the model then runs in one
long-lived multi-process pool per model (:mod:`modalbridge.pool`), stopped when the model is released.
"""

from __future__ import annotations

import os
import threading
from typing import Any

from modalbridge.settings import BACKENDS, DTYPES, LoadSettings, ModelKind

__all__ = [
    "BACKENDS",
    "DTYPES",
    "LoadSettings",
    "MODEL_CACHE",
    "ModelCache",
    "ModelLoadError",
    "clear_model_cache",
    "get_model",
    "release_model",
    "resolve_device",
]


def resolve_device(device: str | list[str] | tuple[str, ...] | None) -> str | list[str]:
    """``"auto"`` (or ``None``) becomes ``"cuda"``, then ``"mps"``, then ``"cpu"``, whichever is available.
    A list of devices (a pool) is returned as a list."""
    if isinstance(device, (list, tuple)):
        return list(device)
    if device not in (None, "auto"):
        return device
    import torch

    if torch.cuda.is_available():
        return "cuda"
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return "mps"
    return "cpu"


def default_pool_devices() -> list[str]:
    """The devices of a multi-process pool when none are named (what sentence-transformers'
    ``start_multi_process_pool()`` uses): every CUDA device, else four CPU processes."""
    import torch

    if torch.cuda.is_available():
        return [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    return ["cpu"] * 4


def _load(kind: ModelKind, settings: LoadSettings):
    model_kwargs = dict(settings.model_kwargs)
    if settings.dtype is not None:
        import torch

        model_kwargs.setdefault("dtype", getattr(torch, settings.dtype))
    processor_kwargs = dict(settings.processor_kwargs)
    common = dict(
        # A pool's workers place their own copies; the parent's copy stays on the CPU.
        device="cpu" if settings.uses_pool else resolve_device(settings.device),
        cache_folder=settings.cache_folder,
        trust_remote_code=settings.trust_remote_code,
        revision=settings.revision,
        local_files_only=settings.local_files_only,
        model_kwargs=model_kwargs or None,
        processor_kwargs=processor_kwargs or None,
        config_kwargs=dict(settings.config_kwargs) or None,
        backend=settings.backend,
    )
    try:
        if kind == "embedder":
            from sentence_transformers import SentenceTransformer

            model = SentenceTransformer(settings.model_name_or_path, **common)
        elif kind == "multivector":  # late interaction (ColBERT / ColPali / ColQwen2): one vector per token
            from sentence_transformers import MultiVectorEncoder

            model = MultiVectorEncoder(settings.model_name_or_path, **common)
        else:
            from sentence_transformers import CrossEncoder

            model = CrossEncoder(settings.model_name_or_path, max_length=settings.max_length, **common)
        if settings.max_length is not None and kind != "reranker":
            model.max_seq_length = settings.max_length
    except Exception as exc:
        raise ModelLoadError(settings.model_name_or_path, exc) from exc
    if settings.max_pixels is not None:
        _set_pixel_budget(model, settings.max_pixels)
    return model


def _set_pixel_budget(model: Any, max_pixels: int) -> None:
    """Make ``max_pixels`` the image processor's pixel budget (``size["longest_edge"]``, what a Qwen-VL
    processor reads as ``max_pixels``). A processor without one (CLIP's fixed size) would ignore it, so
    that is an error, as is a budget below the processor's own minimum."""
    from modalbridge.batching import pixel_budget

    first = model[0] if hasattr(model, "__getitem__") and len(model) else None
    image_processor = getattr(getattr(first, "processor", None), "image_processor", None)
    budget = pixel_budget(image_processor)
    if budget is None:
        name = type(image_processor).__name__ if image_processor is not None else "no image processor"
        raise ValueError(
            f"max_pixels applies to vision-language models whose image processor has a pixel budget "
            f"(Qwen2-VL, Qwen2.5-VL, Qwen3-VL); this model has {name}, which would ignore it"
        )
    _, min_pixels, _ = budget
    if max_pixels < min_pixels:
        raise ValueError(f"max_pixels must be at least the model's minimum of {min_pixels} pixels, got {max_pixels}")
    image_processor.size = {"shortest_edge": min_pixels, "longest_edge": max_pixels}


class ModelLoadError(RuntimeError):
    """A model could not be loaded; the message names it, the cause, and what to check."""

    def __init__(self, model: str, cause: Exception) -> None:
        hint = ""
        if not os.path.isdir(model):
            offline = os.environ.get("HF_HUB_OFFLINE") == "1"
            hint = (
                " It is not a local folder, so it was looked up on the Hugging Face Hub"
                + (" but HF_HUB_OFFLINE=1 is set" if offline else "")
                + ": check the name and your network, or pass the path of a downloaded model folder."
            )
        reason = str(cause).rstrip(". ")
        super().__init__(f"could not load model {model!r}: {type(cause).__name__}: {reason}.{hint}")


class ModelCache:
    """A thread-safe map from settings key to loaded model; one load per key even under concurrency."""

    def __init__(self) -> None:
        self._models: dict[str, Any] = {}
        self._key_locks: dict[str, threading.Lock] = {}
        self._lock = threading.Lock()
        self.loads = 0
        """How many models this cache has loaded (for tests and diagnostics)."""

    def get(self, kind: ModelKind, settings: LoadSettings) -> Any:
        key = settings.key(kind)
        model = self._models.get(key)
        if model is not None:
            return model
        with self._lock:
            key_lock = self._key_locks.setdefault(key, threading.Lock())
        with key_lock:  # others asking for the same key wait here for the one load
            model = self._models.get(key)
            if model is None:
                model = _load(kind, settings)
                with self._lock:
                    self._models[key] = model
                    self.loads += 1
        return model

    def is_loaded(self, kind: ModelKind, settings: LoadSettings) -> bool:
        return settings.key(kind) in self._models

    def release(self, kind: ModelKind, settings: LoadSettings) -> bool:
        """Drop the cached model for these settings (and stop its pool); True if one was loaded.
        Adapters that still hold the object keep it alive; later calls load a fresh one."""
        from modalbridge.pool import POOLS

        key = settings.key(kind)
        POOLS.stop(key)
        with self._lock:
            released = self._models.pop(key, None) is not None
        if released:
            _free_accelerator_memory()
        return released

    def clear(self) -> int:
        """Drop every cached model (and stop every pool); returns how many were dropped."""
        from modalbridge.pool import POOLS

        POOLS.stop_all()
        with self._lock:
            count = len(self._models)
            self._models.clear()
        if count:
            _free_accelerator_memory()
        return count

    def keys(self) -> list[str]:
        return list(self._models)


def _free_accelerator_memory() -> None:
    import gc

    gc.collect()
    try:
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    except ImportError:  # pragma: no cover
        pass


MODEL_CACHE = ModelCache()
"""The process-wide cache every adapter uses."""


def get_model(kind: ModelKind, settings: LoadSettings) -> Any:
    """The shared loaded model for ``settings`` (loaded on first use)."""
    return MODEL_CACHE.get(kind, settings)


def release_model(kind: ModelKind, settings: LoadSettings) -> bool:
    """Release the shared model for ``settings``; True if one was loaded."""
    return MODEL_CACHE.release(kind, settings)


def clear_model_cache() -> int:
    """Release every shared model; returns how many were released."""
    return MODEL_CACHE.clear()
