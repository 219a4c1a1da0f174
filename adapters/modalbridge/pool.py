"""Many devices, one long-lived pool per model.

Give any core class or adapter a list of devices and its model runs in one sentence-transformers
multi-process pool (one worker process per entry), started on first use and reused by every later call
and by every adapter built with the same load settings::

    from modalbridge import Embedder

    embedder = Embedder("sentence-transformers/clip-ViT-B-32", device=["cuda:0", "cuda:1"])
    embedder.embed_documents(images)     # starts the pool (once: ~10 s per worker to import and load)
    embedder.embed_documents(more)       # reuses it
    embedder.release()                   # stops it (also stopped at interpreter exit)

``device=["cpu", "cpu"]`` runs two CPU worker processes. Vectors equal the single-process path: each
worker runs the same ``encode`` / ``predict`` on its chunk. Incumbent wrappers (langchain-huggingface's
``multi_process=True``) start and stop a pool on every call, which costs seconds per call.

Workers are started with the ``spawn`` method, so a script that uses a pool needs the usual
``if __name__ == "__main__":`` guard. While a pool runs, the parent's copy of the model stays on the CPU
(sentence-transformers moves it there to share its weights with the workers).
"""

from __future__ import annotations

import atexit
import threading
from typing import Any, Sequence


class ModelPool:
    """One sentence-transformers multi-process pool over ``devices`` for one loaded model.

    Calls are serialized: the pool's queues carry one call's chunks at a time, so concurrent callers
    (threads) wait for each other instead of mixing results.
    """

    def __init__(self, model: Any, devices: Sequence[str]) -> None:
        self.model = model
        self.devices = list(devices)
        self._pool: dict[str, Any] | None = None
        self._lock = threading.Lock()
        self.starts = 0
        """How many times this pool's workers were started (once, unless it was stopped in between)."""

    @property
    def running(self) -> bool:
        return self._pool is not None

    def _started(self) -> dict[str, Any]:
        if self._pool is None:
            self._pool = self.model.start_multi_process_pool(self.devices)
            self.starts += 1
        return self._pool

    def encode(self, inputs: list[Any], role: str = "document", **kwargs: Any) -> Any:
        """``model.encode_query`` / ``encode_document`` on the pool (``role`` picks which)."""
        encode = self.model.encode_query if role == "query" else self.model.encode_document
        with self._lock:
            return encode(inputs, pool=self._started(), **kwargs)

    def predict(self, pairs: list[Any], **kwargs: Any) -> Any:
        """``CrossEncoder.predict`` on the pool."""
        with self._lock:
            return self.model.predict(pairs, pool=self._started(), **kwargs)

    def stop(self) -> bool:
        """Stop the workers; True if they were running. A later call starts them again."""
        with self._lock:
            if self._pool is None:
                return False
            pool, self._pool = self._pool, None
            self.model.stop_multi_process_pool(pool)
            return True


class PoolRegistry:
    """Pools by model cache key (which includes the device list): one pool per loaded model."""

    def __init__(self) -> None:
        self._pools: dict[str, ModelPool] = {}
        self._lock = threading.Lock()

    def get(self, key: str, model: Any, devices: Sequence[str]) -> ModelPool:
        with self._lock:
            pool = self._pools.get(key)
            if pool is None or pool.model is not model:  # a released and reloaded model gets a new pool
                if pool is not None:
                    pool.stop()
                pool = self._pools[key] = ModelPool(model, devices)
            return pool

    def stop(self, key: str) -> bool:
        with self._lock:
            pool = self._pools.pop(key, None)
        return pool.stop() if pool is not None else False

    def stop_all(self) -> int:
        with self._lock:
            pools, self._pools = list(self._pools.values()), {}
        return sum(pool.stop() for pool in pools)

    def __contains__(self, key: str) -> bool:
        return key in self._pools


POOLS = PoolRegistry()
"""The process-wide pools, next to :data:`modalbridge.loading.MODEL_CACHE` (released with their model)."""

atexit.register(POOLS.stop_all)


def get_pool(kind: str, settings: Any) -> ModelPool:
    """The pool for the model these load settings name (``settings.device`` must be a list)."""
    from modalbridge.loading import MODEL_CACHE

    if not settings.uses_pool:
        raise ValueError(f"a pool needs a list of devices, got device={settings.device!r}")
    model = MODEL_CACHE.get(kind, settings)
    return POOLS.get(settings.key(kind), model, settings.device)
