"""The core's settings classes, built from the declaration: :class:`LoadSettings` (what decides a
loaded model: the model cache key), :class:`EncodeSettings` and :class:`RerankSettings`, and
:func:`split`, which sorts keyword arguments into them."""

from __future__ import annotations

import json
import os
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError, create_model, model_validator


from modalbridge.settings.checks import SettingsError, describe
from modalbridge.settings.declaration import EMBEDDERS, SETTINGS, ModelKind, names

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
