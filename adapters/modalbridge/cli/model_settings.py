"""The model settings of ``modalbridge index`` and ``search``: which flags they take, and the settings a
caller gave, by name.

The flags come from the one declaration (:data:`modalbridge.settings.SETTINGS`): every embedder setting
that has one (:func:`command_settings`). :func:`given_settings` merges a settings mapping with the
keyword arguments :class:`~modalbridge.cli.indexing.MediaIndex` has always taken; messages name a
setting with its flag (:func:`setting_label`)::

    from modalbridge.cli.model_settings import given_settings

    given_settings({"normalize": True}, device="cpu", batch_size=None)   # {'normalize': True, 'device': 'cpu'}
"""

from __future__ import annotations

from typing import Any, Mapping

from modalbridge.settings import MACHINE_LOCAL, SETTINGS, merge, names

NOT_ON_THE_COMMAND_LINE = {
    "allow_fetch": "both commands read local files only: index walks paths on this machine, a search query is "
    "text or a local file and the records are local paths, so there is never anything to fetch",
}
"""Embedder settings with a flag that ``index`` and ``search`` do not offer, and why."""


def command_settings() -> list[str]:
    """The settings ``index`` and ``search`` take as flags, in declaration order: every embedder setting
    declared with a flag, but those in :data:`NOT_ON_THE_COMMAND_LINE`."""
    return [
        n for n, s in SETTINGS.items() if s.cli and "embedder" in s.applies_to and n not in NOT_ON_THE_COMMAND_LINE
    ]


def given_settings(settings: Mapping[str, Any] | None = None, *, owner: str = "MediaIndex", **keywords: Any) -> dict[str, Any]:
    """The embedder settings a caller gave, by name: ``settings`` and the keyword arguments that are set
    (not ``None`` or ``False``), which must agree where both name one. A name that is no embedder's
    setting (single- or multi-vector) is a ``TypeError`` naming it (``owner``: what the caller called);
    one that the model at hand does not take is refused where it is known which model that is."""
    given = dict(settings or {})
    known = (set(names("embedder")) | set(names("multivector"))) - {"model_name_or_path"}  # the model: model=
    unknown = sorted(set(given) - known)
    if unknown:
        hint = " (pass the model as model=...)" if "model_name_or_path" in unknown else ""
        raise TypeError(f"{owner} got unknown settings: {', '.join(unknown)}{hint}")
    set_keywords = {k: v for k, v in keywords.items() if v is not None and v is not False}
    try:
        return merge([("settings", given), ("keyword arguments", set_keywords)])
    except ValueError as exc:
        raise TypeError(f"{owner}: {exc}") from None


def machine_local(settings: Mapping[str, Any]) -> dict[str, Any]:
    """The settings about this machine and this run (never stored with a collection)."""
    return {k: v for k, v in settings.items() if k in MACHINE_LOCAL}


def about_audio(settings: Mapping[str, Any]) -> dict[str, Any]:
    """The settings that can concern an audio model: all but those about pictures only (video frames,
    PDF pages, pixel budgets, image decoding; :data:`modalbridge.settings.VISUAL`)."""
    return {k: v for k, v in settings.items() if SETTINGS[k].inputs is None or "audio" in SETTINGS[k].inputs}


def reranker_settings(settings: Mapping[str, Any]) -> dict[str, Any]:
    """What a search's reranker takes of the command's model settings: the machine-local ones that
    apply to rerankers (device, batch size, decode workers). The others describe the collection's
    embedding model (checked against its stored configuration), not the reranker."""
    return {k: v for k, v in machine_local(settings).items() if "reranker" in SETTINGS[k].applies_to}


def setting_label(name: str, *, flag_only: bool = False) -> str:
    """How a message names a setting: with its command-line flag, e.g. ``truncate_dim (--truncate-dim)``
    (``flag_only``: the flag alone, or the name when it has none)."""
    flag = SETTINGS[name].cli
    if flag_only:
        return flag or name
    return f"{name} ({flag})" if flag else name
