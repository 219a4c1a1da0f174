"""The Chroma side of an index: opening the client, finding a collection and the model it was built with.

:func:`open_client` gives an embedded ``PersistentClient`` or an ``HttpClient`` for a server,
:func:`get_collection` a collection or ``None``, :func:`stored_function` the
:class:`~modalbridge.chroma.MultimodalEmbeddingFunction` a collection stores (so searching needs no
``--model``), and :func:`collection_space` / :func:`similarity_score` turn Chroma distances into
higher-is-better scores. :class:`MediaIndexError` is the error for problems with the index itself::

    from modalbridge.cli.store import get_collection, open_client

    client = open_client("modalbridge-db", create=False)
    collection = get_collection(client, "photos")   # None when there is no such collection
"""

from __future__ import annotations

import os

DEFAULT_DB = "modalbridge-db"
DEFAULT_COLLECTION = "modalbridge"


class MediaIndexError(Exception):
    """A problem with the index itself (not with one file): no such collection, a model that does not
    match the one a collection was built with, no model for a query's modality, an unreachable server.
    The message says what to do."""


def open_client(db: str | os.PathLike | None = DEFAULT_DB, host: str | None = None, port: int | None = None, *, create: bool = True):
    """An embedded ``chromadb.PersistentClient`` at ``db``, or an ``HttpClient`` for a Chroma server when
    ``host`` or ``port`` is given. With ``create=False`` a missing ``db`` folder is an error instead of
    a new, empty database."""
    import chromadb

    settings = chromadb.Settings(anonymized_telemetry=False)
    if host is not None or port is not None:
        host, port = host or "localhost", int(port or 8000)
        try:
            return chromadb.HttpClient(host=host, port=port, settings=settings)
        except Exception as exc:
            raise MediaIndexError(f"cannot reach a Chroma server at http://{host}:{port} ({exc})") from None
    db = os.path.expanduser(os.fspath(db or DEFAULT_DB))
    if not create and not os.path.isdir(db):
        raise MediaIndexError(f"no index at {db!r}: run `modalbridge index PATH...` first (or pass --db)")
    return chromadb.PersistentClient(path=db, settings=settings)


def get_collection(client, name: str):
    from chromadb.errors import NotFoundError

    try:
        return client.get_collection(name)
    except NotFoundError:
        return None
    except ValueError as exc:  # older chromadb: "Collection x does not exist."
        if "does not exist" in str(exc):
            return None
        raise


def stored_function(collection, trust_remote_code: bool = False):
    """The MultimodalEmbeddingFunction a collection was created with, rebuilt from its stored
    configuration. A configuration asking for remote code is rebuilt only when this caller was asked to
    trust it (``trust_remote_code``), and only for this call: never process-wide."""
    from modalbridge.chroma import (
        EMBEDDING_FUNCTION_NAME,
        MultimodalEmbeddingFunction,
        RemoteCodeNotAllowedError,
        allowing_remote_code,
    )

    stored = (collection.configuration_json or {}).get("embedding_function") or {}
    if stored.get("type") != "known" or stored.get("name") != EMBEDDING_FUNCTION_NAME:
        found = stored.get("name") or stored.get("type") or "none"
        raise MediaIndexError(
            f"collection {collection.name!r} was not created by modalbridge (its embedding function: {found}); "
            "pick another --collection"
        )
    config = stored.get("config") or {}
    try:
        with allowing_remote_code(trust_remote_code):
            return MultimodalEmbeddingFunction.build_from_config(config)
    except RemoteCodeNotAllowedError:
        raise MediaIndexError(
            f"collection {collection.name!r} was built with model {config.get('model_name_or_path')!r} and "
            "trust_remote_code=True: that model runs its own code, which modalbridge never does because a "
            "database asks. If you trust this model, pass --trust-remote-code (MediaIndex(trust_remote_code=True))"
        ) from None
    except ValueError as exc:
        raise MediaIndexError(f"collection {collection.name!r}: {exc}") from None


def collection_space(collection) -> str:
    configuration = collection.configuration_json or {}
    for key in ("hnsw", "spann"):
        section = configuration.get(key)
        if section and section.get("space"):
            return section["space"]
    return "l2"


def similarity_score(distance: float, space: str) -> float:
    """Higher is better: the similarity for cosine (1 - d) and ip (1 - d = dot), -d for l2."""
    return float(1.0 - distance) if space in ("cosine", "ip") else float(-distance)
