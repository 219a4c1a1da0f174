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

import json
import os
import threading
from dataclasses import asdict, dataclass, field
from typing import Any, Literal, Sequence

ModelKind = Literal["embedder", "reranker", "multivector"]
DTYPES = ("float32", "float16", "bfloat16")
BACKENDS = ("torch", "onnx", "openvino")


def resolve_device(device: str | Sequence[str] | None) -> str | list[str]:
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


@dataclass(frozen=True)
class LoadSettings:
    """Everything that determines a loaded model. Equal settings share one model object."""

    model_name_or_path: str
    revision: str | None = None
    device: str | tuple[str, ...] = "auto"
    """One device (``"auto"``, ``"cpu"``, ``"cuda:1"``, ...) or a list of them: one worker process per
    entry in a long-lived multi-process pool (``["cuda:0", "cuda:1"]``, ``["cpu", "cpu"]``)."""
    dtype: str | None = None
    """``"float32"``, ``"float16"``, ``"bfloat16"``, or ``None`` for the model's default."""
    backend: str = "torch"
    trust_remote_code: bool = False
    model_kwargs: dict[str, Any] = field(default_factory=dict)
    processor_kwargs: dict[str, Any] = field(default_factory=dict)
    config_kwargs: dict[str, Any] = field(default_factory=dict)
    cache_folder: str | None = None
    local_files_only: bool = False
    max_length: int | None = None
    """Rerankers only: the longest input in tokens."""

    def __post_init__(self) -> None:
        if isinstance(self.model_name_or_path, os.PathLike):
            object.__setattr__(self, "model_name_or_path", os.fspath(self.model_name_or_path))
        if not isinstance(self.model_name_or_path, str) or not self.model_name_or_path:
            raise ValueError("model_name_or_path must be a non-empty string (a hub name or a local folder)")
        if isinstance(self.device, (list, tuple)):
            devices = tuple(self.device)
            if not devices or not all(isinstance(d, str) and d and d != "auto" for d in devices):
                raise ValueError(
                    f"device must be a device name or a non-empty list of device names (not 'auto'), got {self.device!r}"
                )
            object.__setattr__(self, "device", devices)
        elif not isinstance(self.device, str) or not self.device:
            raise ValueError(f"device must be a device name such as 'cpu' or 'cuda:0', or a list of them, got {self.device!r}")
        if self.dtype is not None and self.dtype not in DTYPES:
            raise ValueError(f"dtype must be one of {', '.join(DTYPES)} or None, got {self.dtype!r}")
        if self.backend not in BACKENDS:
            raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, got {self.backend!r}")
        for name in ("model_kwargs", "processor_kwargs", "config_kwargs"):
            value = getattr(self, name)
            if value is None:
                object.__setattr__(self, name, {})
            elif not isinstance(value, dict):
                raise ValueError(f"{name} must be a dict, got {type(value).__name__}")
        if self.cache_folder is not None:
            object.__setattr__(self, "cache_folder", os.fspath(self.cache_folder))

    @property
    def uses_pool(self) -> bool:
        """Whether the model runs in a multi-process pool (``device`` is a list)."""
        return isinstance(self.device, tuple)

    def to_dict(self) -> dict[str, Any]:
        settings = asdict(self)
        if self.uses_pool:
            settings["device"] = list(self.device)
        return settings

    def key(self, kind: ModelKind) -> str:
        """The cache key: the kind, every setting, and the resolved device (so "auto" and the device it
        resolves to share). Local folders are keyed by their absolute path."""
        settings = self.to_dict()
        settings["device"] = resolve_device(self.device)
        if os.path.isdir(self.model_name_or_path):
            settings["model_name_or_path"] = os.path.abspath(self.model_name_or_path)
        return json.dumps({"kind": kind, **settings}, sort_keys=True, default=repr)


def _load(kind: ModelKind, settings: LoadSettings):
    model_kwargs = dict(settings.model_kwargs)
    if settings.dtype is not None:
        import torch

        model_kwargs.setdefault("dtype", getattr(torch, settings.dtype))
    common = dict(
        # A pool's workers place their own copies; the parent's copy stays on the CPU.
        device="cpu" if settings.uses_pool else resolve_device(settings.device),
        cache_folder=settings.cache_folder,
        trust_remote_code=settings.trust_remote_code,
        revision=settings.revision,
        local_files_only=settings.local_files_only,
        model_kwargs=model_kwargs or None,
        processor_kwargs=dict(settings.processor_kwargs) or None,
        config_kwargs=dict(settings.config_kwargs) or None,
        backend=settings.backend,
    )
    try:
        if kind == "embedder":
            from sentence_transformers import SentenceTransformer

            return SentenceTransformer(settings.model_name_or_path, **common)
        if kind == "multivector":  # late interaction (ColBERT / ColPali / ColQwen2): one vector per token
            from sentence_transformers import MultiVectorEncoder

            return MultiVectorEncoder(settings.model_name_or_path, **common)
        from sentence_transformers import CrossEncoder

        return CrossEncoder(settings.model_name_or_path, max_length=settings.max_length, **common)
    except Exception as exc:
        raise ModelLoadError(settings.model_name_or_path, exc) from exc


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
