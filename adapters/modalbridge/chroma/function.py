"""The registered Chroma embedding function (config round trip, remote-code consent)."""

from __future__ import annotations

import contextlib
import contextvars
import os
import warnings
from typing import Any, Iterator, Literal, Sequence

import numpy as np

try:
    from chromadb.api.types import Embeddable, EmbeddingFunction, Embeddings, Space
    from chromadb.utils.embedding_functions import register_embedding_function
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError("modalbridge.chroma needs chromadb: pip install 'modalbridge[chroma]'") from exc

from modalbridge import settings
from modalbridge.embedder import Embedder
from modalbridge.items import (
    Combined,
    Image,
    MediaItem,
    describe_item,
    renamed_item_error,
)

try:
    from PIL.Image import Image as PILImage
except ImportError:  # pragma: no cover
    PILImage = None  # type: ignore[assignment,misc]

EMBEDDING_FUNCTION_NAME = "modalbridge"
"""The name Chroma stores with a collection, and looks up in its registry when reopening it."""

ENV_TRUST_REMOTE_CODE = "MODALBRIDGE_TRUST_REMOTE_CODE"
"""Set to ``1`` to let stored configurations with ``trust_remote_code=True`` be rebuilt (see
:func:`allow_remote_code`)."""

UPDATABLE_SETTINGS = settings.MACHINE_LOCAL
"""Settings that are not stored with a collection (:data:`modalbridge.settings.MACHINE_LOCAL`: device,
batch size, progress bar, decoding workers, fetching, cache folder, local files only): they say where and
how fast vectors are computed on this machine, never what the vectors are. Each process chooses them
(``client.get_collection(name, embedding_function=MultimodalEmbeddingFunction(..., device="cuda"))``);
a collection opened without a function gets the defaults, so fetching stays off unless asked.
Every stored setting is fixed for the life of a collection (see
:meth:`MultimodalEmbeddingFunction.validate_config_update`)."""

_SETTING_NAMES = frozenset(settings.names("embedder"))
_STORED = _SETTING_NAMES & settings.STORED

_SPACE_OF_SIMILARITY: dict[str, Space] = {"cosine": "cosine", "dot": "ip", "euclidean": "l2", "manhattan": "l2"}
_ALL_SPACES: list[Space] = ["cosine", "ip", "l2"]

# -- remote code -------------------------------------------------------------------------------------

_remote_code_switch = False
_remote_code_consents: set[tuple[str, str | None]] = set()


class RemoteCodeNotAllowedError(PermissionError):
    """A stored configuration asks for ``trust_remote_code=True`` and this process has not opted in."""


def allow_remote_code(allow: bool = True) -> None:
    """Let :meth:`MultimodalEmbeddingFunction.build_from_config` rebuild functions whose stored
    configuration has ``trust_remote_code=True`` (process-wide; the same as ``MODALBRIDGE_TRUST_REMOTE_CODE=1``).

    Without this, such a configuration is rebuilt only for a model (and revision) that this process
    itself constructed a ``MultimodalEmbeddingFunction(..., trust_remote_code=True)`` for: a collection
    created by someone else can never make this process run a model's code just by being opened."""
    global _remote_code_switch
    _remote_code_switch = bool(allow)


_remote_code_scope: contextvars.ContextVar[bool] = contextvars.ContextVar("modalbridge_remote_code_scope", default=False)


@contextlib.contextmanager
def allowing_remote_code(allow: bool = True) -> Iterator[None]:
    """Within this block only (this thread or task), let stored configurations with
    ``trust_remote_code=True`` be rebuilt: for a caller that was itself asked to trust remote code
    (``modalbridge search --trust-remote-code``), without turning it on for the rest of the process::

        with allowing_remote_code():
            function = MultimodalEmbeddingFunction.build_from_config(stored)
    """
    token = _remote_code_scope.set(bool(allow) or _remote_code_scope.get())
    try:
        yield
    finally:
        _remote_code_scope.reset(token)


def _model_key(model_name_or_path: str, revision: str | None) -> tuple[str, str | None]:
    path = os.fspath(model_name_or_path)
    return (os.path.abspath(path) if os.path.isdir(path) else path, revision)


def remote_code_allowed(model_name_or_path: str, revision: str | None = None) -> bool:
    """Whether a stored configuration with ``trust_remote_code=True`` for this model may be rebuilt."""
    return (
        _remote_code_switch
        or _remote_code_scope.get()
        or os.environ.get(ENV_TRUST_REMOTE_CODE) == "1"
        or _model_key(model_name_or_path, revision) in _remote_code_consents
    )


# -- embedding function -------------------------------------------------------------------------------

def _as_item(value: Any, name: str) -> Any:
    """What Chroma hands over, as a core item: str -> text, numpy array -> image, tagged items as is."""
    if isinstance(value, (str, MediaItem, Combined)):
        return value
    if isinstance(value, np.ndarray):  # Chroma's Image type (add(images=...), query_images=...)
        return Image(value)
    if PILImage is not None and isinstance(value, PILImage):
        return value
    if value is None:
        raise TypeError(f"{name}: None is not an input (a record without a URI or document?)")
    raise TypeError(
        f"{name}: {describe_item(value)} is not an input: expected a str (text), a numpy image array, "
        "or a modalbridge Image/Audio/Video/Combined"
    )


def _json_problem(value: Any, where: str) -> str | None:
    """Where in ``value`` something is not JSON (Chroma stores the configuration as JSON)."""
    if isinstance(value, dict):
        for key, inner in value.items():
            if not isinstance(key, str):
                return f"{where}: key {key!r} is not a string"
            problem = _json_problem(inner, f"{where}[{key!r}]")
            if problem:
                return problem
        return None
    if isinstance(value, (list, tuple)):
        for i, inner in enumerate(value):
            problem = _json_problem(inner, f"{where}[{i}]")
            if problem:
                return problem
        return None
    if value is None or isinstance(value, (str, bool, int, float)):
        return None
    return f"{where} is a {type(value).__name__}"


@register_embedding_function
class MultimodalEmbeddingFunction(EmbeddingFunction[Embeddable]):
    """A Chroma embedding function for text, images, audio and video, persisted with the collection.

    Args:
        model_name_or_path: a hub name or a local folder of a sentence-transformers model (``model_name``,
            as Chroma's ``SentenceTransformerEmbeddingFunction`` calls it, is accepted too).
        **settings: the settings of :class:`~modalbridge.Embedder` (:mod:`modalbridge.settings`).
            The collection stores those in :data:`modalbridge.settings.STORED` (they decide the vectors;
            they must be JSON values: ``dtype="float16"``, not ``torch.float16``); machine-local ones
            (device, cache folder, batch size, workers, fetching) are not stored.

    A drop-in for Chroma's ``SentenceTransformerEmbeddingFunction``: its arguments (``model_name``,
    ``device``, ``normalize_embeddings`` and sentence-transformers constructor arguments such as
    ``trust_remote_code``, ``revision``, ``backend``, ``truncate_dim``) are accepted with the same meaning.

    Constructing loads nothing; the model is loaded on first use and shared (``ef.embedder.model is
    Embedder(same settings).model``). Vectors are float32 (Chroma stores float32; quantized
    ``precision`` values are cast).
    """

    def __init__(self, model_name_or_path: str | None = None, **values: Any) -> None:
        if "model_name" in values:  # SentenceTransformerEmbeddingFunction's name for it
            if model_name_or_path is not None:
                raise TypeError("model_name_or_path given twice (as model_name_or_path and model_name)")
            model_name_or_path = values.pop("model_name")
        if "normalize_embeddings" in values:
            if "normalize" in values:
                raise TypeError("normalize given twice (as normalize and normalize_embeddings)")
            values["normalize"] = values.pop("normalize_embeddings")
        if model_name_or_path is None:
            raise TypeError("MultimodalEmbeddingFunction needs a model: model_name_or_path (or model_name)")
        self._setup(model_name_or_path, values, consent=True)

    def _setup(self, model_name_or_path: str, values: dict[str, Any], consent: bool) -> None:
        self._embedder = Embedder(model_name_or_path, **values)
        problem = _json_problem(self._embedder.config(), "settings")
        if problem:
            raise TypeError(
                f"MultimodalEmbeddingFunction: {problem}, which cannot be stored with a Chroma collection; "
                "use JSON values (e.g. dtype='float16' instead of torch.float16)"
            )
        load = self._embedder.load_settings
        if consent and load.trust_remote_code:  # constructed by the caller in this process: consent for this model
            _remote_code_consents.add(_model_key(load.model_name_or_path, load.revision))

    @classmethod
    def from_embedder(cls, embedder: Embedder) -> "MultimodalEmbeddingFunction":
        """A function with the settings (and so the shared model) of an existing :class:`Embedder`."""
        return cls(**embedder.config())

    @property
    def embedder(self) -> Embedder:
        """The wrapped core :class:`~modalbridge.Embedder`."""
        return self._embedder

    def __repr__(self) -> str:
        load = self._embedder.load_settings
        return f"MultimodalEmbeddingFunction({load.model_name_or_path!r}, device={load.device!r})"

    # -- embedding ------------------------------------------------------------------------------------

    def __call__(self, input: Embeddable) -> Embeddings:
        """Embed documents (``add``/``upsert``/``update``): texts, image arrays, or loaded media."""
        return self._embed(input, "document")

    def embed_query(self, input: Embeddable) -> Embeddings:
        """Embed queries (``query(query_texts=/query_images=/query_uris=)``) with the query prompt."""
        return self._embed(input, "query")

    def _embed(self, input: Any, role: Literal["query", "document"]) -> Embeddings:
        if isinstance(input, (str, bytes, np.ndarray)) or not isinstance(input, Sequence):
            raise TypeError(f"expected a list of inputs, got {type(input).__name__}")
        uris = getattr(input, "uris", None)
        names = [None if uri is None else f"uri {uri!r}" for uri in uris] if uris is not None else None
        try:
            items = [_as_item(value, f"item {index}") for index, value in enumerate(input)]
            if role == "query":
                vectors = self._embedder.embed_queries(items)
            else:
                vectors = self._embedder.embed_documents(items)
        except (ValueError, TypeError) as exc:
            raise renamed_item_error(exc, names) from None
        return [np.asarray(vector, dtype=np.float32) for vector in vectors]

    # -- configuration --------------------------------------------------------------------------------

    @staticmethod
    def name() -> str:
        return EMBEDDING_FUNCTION_NAME

    def get_config(self) -> dict[str, Any]:
        """The stored settings (:data:`modalbridge.settings.STORED`, JSON) of the wrapped :class:`Embedder`:
        what decides the vectors, not where they are computed. A relative local model folder is stored as
        an absolute path, so the collection can be reopened from another working directory."""
        config = {key: value for key, value in self._embedder.config().items() if key in _STORED}
        path = config["model_name_or_path"]
        if os.path.isdir(path):
            config["model_name_or_path"] = os.path.abspath(path)
        return config

    @staticmethod
    def build_from_config(config: dict[str, Any]) -> "MultimodalEmbeddingFunction":
        """Rebuild from a stored configuration (cheap: nothing is loaded).

        Raises :class:`RemoteCodeNotAllowedError` for ``trust_remote_code=True`` unless this process
        opted in (:func:`allow_remote_code`, ``MODALBRIDGE_TRUST_REMOTE_CODE=1``) or itself constructed a
        function with ``trust_remote_code=True`` for the same model and revision."""
        MultimodalEmbeddingFunction.validate_config(config)
        model, revision = config["model_name_or_path"], config.get("revision")
        if config.get("trust_remote_code") and not remote_code_allowed(model, revision):
            raise RemoteCodeNotAllowedError(
                f"the stored embedding function for model {model!r} (revision {revision!r}) has "
                "trust_remote_code=True, and modalbridge never runs a model's code because a stored "
                "configuration asks for it. If you trust this model's code, call "
                f"modalbridge.chroma.allow_remote_code() or set {ENV_TRUST_REMOTE_CODE}=1, or pass "
                "embedding_function=MultimodalEmbeddingFunction(..., trust_remote_code=True) yourself"
            )
        function = MultimodalEmbeddingFunction.__new__(MultimodalEmbeddingFunction)
        # Only stored settings are read: machine-local ones that an older modalbridge stored (device,
        # cache folder, workers, allow_fetch) are this process's choice, so fetching is never switched on
        # by opening a collection.
        stored = {key: value for key, value in config.items() if key in _STORED}
        # Not through __init__: a stored configuration is no consent to run remote code later on.
        function._setup(stored.pop("model_name_or_path"), stored, consent=False)
        return function

    @staticmethod
    def validate_config(config: dict[str, Any]) -> None:
        """Check a configuration's shape and values without loading anything."""
        if not isinstance(config, dict):
            raise ValueError(f"a {EMBEDDING_FUNCTION_NAME} configuration must be a dict, got {type(config).__name__}")
        model = config.get("model_name_or_path")
        if not isinstance(model, str) or not model:
            raise ValueError(f"a {EMBEDDING_FUNCTION_NAME} configuration needs model_name_or_path (a non-empty str)")
        unknown = set(config) - _SETTING_NAMES
        if unknown:
            raise ValueError(
                f"unknown {EMBEDDING_FUNCTION_NAME} settings: {', '.join(sorted(unknown))} "
                "(stored by another modalbridge version?)"
            )
        try:
            Embedder(**config)  # validates every value; loads nothing
        except (TypeError, ValueError) as exc:
            raise ValueError(f"invalid {EMBEDDING_FUNCTION_NAME} configuration: {exc}") from None

    def validate_config_update(self, old_config: dict[str, Any], new_config: dict[str, Any]) -> None:
        """Refuse updates that would change the vectors (so stored and new embeddings would not match);
        :data:`UPDATABLE_SETTINGS` (machine-local: device, batch size, workers, fetching, cache) are not
        stored, so they never conflict."""
        defaults = Embedder("defaults").config()
        changed = []
        for key in sorted((set(old_config) | set(new_config)) - UPDATABLE_SETTINGS):
            old, new = old_config.get(key, defaults.get(key)), new_config.get(key, defaults.get(key))
            if key == "model_name_or_path":
                old, new = _model_key(old, None)[0], _model_key(new, None)[0]
            if old != new:
                changed.append(f"{key} ({old!r} -> {new!r})")
        if changed:
            raise ValueError(
                f"cannot change {', '.join(changed)} of this collection's embedding function: it would embed "
                "new items and queries differently from the stored vectors. Create a new collection and "
                f"re-embed instead. Settings that may change: {', '.join(sorted(UPDATABLE_SETTINGS))}"
            )

    # -- distance spaces ------------------------------------------------------------------------------

    def default_space(self) -> Space:
        """The space of the model's similarity function: cosine -> ``"cosine"``, dot -> ``"ip"``,
        euclidean -> ``"l2"`` (manhattan, which Chroma lacks, -> ``"l2"``).

        This loads the model (once per process, shared): Chroma asks when a collection is created
        without an explicit space, and the model is the only source of truth. Chroma turns any error
        here into a silent "legacy" configuration (the function is then not stored), so a load error is
        also reported as a warning before it is raised."""
        return self._spaces()[0]

    def supported_spaces(self) -> list[Space]:
        """The default space first; all of cosine, ip and l2 when embeddings are unit-length (then they
        rank alike), else only the default."""
        return self._spaces()

    def _spaces(self) -> list[Space]:
        try:
            similarity = self._embedder.similarity_fn_name
            normalizes = self._embedder.normalizes
        except Exception as exc:
            warnings.warn(
                f"modalbridge: could not load {self._embedder.load_settings.model_name_or_path!r} to choose the "
                f"distance space ({exc}); Chroma will create this collection WITHOUT storing its embedding function",
                UserWarning,
                stacklevel=3,
            )
            raise
        default = _SPACE_OF_SIMILARITY.get(similarity, "cosine")
        if not normalizes:
            return [default]
        return [default] + [space for space in _ALL_SPACES if space != default]


def update_embedding_function(collection: Any, function: MultimodalEmbeddingFunction) -> None:
    """``collection.modify(configuration={"embedding_function": function})``, checked FIRST.

    Chroma (1.5) sends a configuration update to the server before it calls
    :meth:`~MultimodalEmbeddingFunction.validate_config_update`, so a refused update raises but is already
    stored. This checks the update against the stored configuration before anything is sent."""
    stored = (collection.configuration_json or {}).get("embedding_function") or {}
    if stored.get("type") != "known" or stored.get("name") != EMBEDDING_FUNCTION_NAME:
        raise ValueError(
            f"collection {collection.name!r} has no stored {EMBEDDING_FUNCTION_NAME} embedding function "
            f"(it has {stored.get('name') or stored.get('type') or 'none'}); Chroma cannot update it to one"
        )
    function.validate_config_update(stored.get("config") or {}, function.get_config())
    collection.modify(configuration={"embedding_function": function})
