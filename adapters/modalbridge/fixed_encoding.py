"""One fixed-size vector per multi-vector set, so a single-vector store (Chroma) can serve the first stage.

Two encodings, both plain functions of the token matrices (no model needed), compared in
``examples/benchmark_late_interaction.py``:

* :class:`MuveraEncoding` — MUVERA's fixed-dimensional encoding (Dhulipala et al., Google, 2024): each
  of ``repetitions`` random SimHash partitions cuts token space into ``2 ** bits`` buckets; a
  document puts the mean of its tokens in each bucket (an empty bucket takes the token nearest to it),
  a query the sum. The dot product of the two encodings approximates MaxSim (Chamfer similarity).
* :class:`MeanEncoding` — the mean of the token vectors (the dot product is the mean token similarity).

Example::

    from modalbridge.fixed_encoding import MuveraEncoding, encoding_from_config

    muvera = MuveraEncoding(token_dim=128, bits=4, repetitions=10, seed=0)
    rows = muvera.encode_documents(page_matrices)       # (n, muvera.dimension) float32
    q = muvera.encode_query(query_matrix)               # (muvera.dimension,)
    approx = rows @ q                                   # ~ MaxSim, for candidate retrieval
    same = encoding_from_config(muvera.config())        # equal random partitions (seeded)

Both are meant for inner-product search (Chroma space ``"ip"``).
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

__all__ = ["FixedEncoding", "MeanEncoding", "MuveraEncoding", "encoding_from_config", "ENCODINGS"]


class FixedEncoding:
    """Base class: ``encode_documents``, ``encode_query``, ``dimension`` and a JSON config round trip."""

    name = ""
    token_dim: int

    @property
    def dimension(self) -> int:  # pragma: no cover - overridden
        raise NotImplementedError

    def encode_document(self, matrix: np.ndarray) -> np.ndarray:  # pragma: no cover - overridden
        raise NotImplementedError

    def encode_query(self, matrix: np.ndarray) -> np.ndarray:  # pragma: no cover - overridden
        raise NotImplementedError

    def encode_documents(self, matrices: Sequence[np.ndarray]) -> np.ndarray:
        """``(len(matrices), dimension)`` float32."""
        if len(matrices) == 0:
            return np.empty((0, self.dimension), dtype=np.float32)
        return np.stack([self.encode_document(self._check(m)) for m in matrices])

    def config(self) -> dict[str, Any]:  # pragma: no cover - overridden
        raise NotImplementedError

    def _check(self, matrix: np.ndarray) -> np.ndarray:
        matrix = np.asarray(matrix, dtype=np.float32)
        if matrix.ndim != 2 or matrix.shape[1] != self.token_dim or len(matrix) == 0:
            raise ValueError(
                f"expected a (tokens, {self.token_dim}) matrix with at least one token, got shape {matrix.shape}"
            )
        return matrix

    def __eq__(self, other: object) -> bool:
        return isinstance(other, FixedEncoding) and self.config() == other.config()

    def __repr__(self) -> str:
        settings = ", ".join(f"{k}={v!r}" for k, v in self.config().items() if k != "name")
        return f"{type(self).__name__}({settings})"


class MeanEncoding(FixedEncoding):
    """The mean of the token vectors, for documents and queries alike (``dimension == token_dim``)."""

    name = "mean"

    def __init__(self, token_dim: int) -> None:
        if token_dim < 1:
            raise ValueError(f"token_dim must be at least 1, got {token_dim}")
        self.token_dim = int(token_dim)

    @property
    def dimension(self) -> int:
        return self.token_dim

    def encode_document(self, matrix: np.ndarray) -> np.ndarray:
        return self._check(matrix).mean(axis=0)

    def encode_query(self, matrix: np.ndarray) -> np.ndarray:
        return self._check(matrix).mean(axis=0)

    def config(self) -> dict[str, Any]:
        return {"name": self.name, "token_dim": self.token_dim}


class MuveraEncoding(FixedEncoding):
    """MUVERA fixed-dimensional encoding (``dimension = repetitions * 2**bits * projection_dim``).

    Args:
        token_dim: the size of each token vector.
        bits: SimHash bits per partition (``2 ** bits`` buckets).
        repetitions: independent partitions, concatenated (more: closer to MaxSim, larger vectors).
        projection_dim: each bucket's vector is projected to this size with a random +-1 (AMS) sketch;
            ``None`` keeps the token vectors as they are (best on small token dimensions).
        seed: the random partitions and projections; equal configs give equal encodings.
        fill_empty: a document bucket that no token falls in takes the token whose SimHash is nearest
            (in Hamming distance) to the bucket, as in the paper, so no query token meets an empty bucket.
    """

    name = "muvera"

    def __init__(
        self,
        token_dim: int,
        *,
        bits: int = 3,
        repetitions: int = 8,
        projection_dim: int | None = None,
        seed: int = 0,
        fill_empty: bool = True,
    ) -> None:
        for label, value, low in (("token_dim", token_dim, 1), ("bits", bits, 0), ("repetitions", repetitions, 1)):
            if int(value) != value or value < low:
                raise ValueError(f"{label} must be an integer of at least {low}, got {value!r}")
        if bits > 12:
            raise ValueError(f"bits must be at most 12 (2**bits buckets per repetition), got {bits}")
        if projection_dim is not None and projection_dim < 1:
            raise ValueError(f"projection_dim must be at least 1 (or None), got {projection_dim}")
        self.token_dim, self.bits, self.repetitions = int(token_dim), int(bits), int(repetitions)
        self.projection_dim = None if projection_dim is None else int(projection_dim)
        self.seed, self.fill_empty = int(seed), bool(fill_empty)
        rng = np.random.default_rng(self.seed)
        self._hyperplanes = rng.standard_normal((self.token_dim, self.repetitions * self.bits)).astype(np.float32)
        if self.projection_dim is None:
            self._projection = None
        else:
            signs = rng.choice(np.array([-1.0, 1.0], dtype=np.float32), size=(self.token_dim, self.repetitions * self.projection_dim))
            self._projection = signs / np.float32(np.sqrt(self.projection_dim))
        self._bit_weights = (1 << np.arange(self.bits)).astype(np.int64)
        # every bucket's bit pattern, for the Hamming distances of fill_empty: (buckets, bits)
        self._bucket_bits = ((np.arange(self.buckets)[:, None] >> np.arange(self.bits)) & 1).astype(np.int8)

    @property
    def buckets(self) -> int:
        return 1 << self.bits

    @property
    def _width(self) -> int:
        return self.projection_dim or self.token_dim

    @property
    def dimension(self) -> int:
        return self.repetitions * self.buckets * self._width

    def config(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "token_dim": self.token_dim,
            "bits": self.bits,
            "repetitions": self.repetitions,
            "projection_dim": self.projection_dim,
            "seed": self.seed,
            "fill_empty": self.fill_empty,
        }

    def _partition(self, matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(bits (n, R, bits), bucket ids (n, R), projected tokens (n, R, width))."""
        n = len(matrix)
        bits = (matrix @ self._hyperplanes > 0).reshape(n, self.repetitions, self.bits)
        ids = (bits.astype(np.int64) * self._bit_weights).sum(axis=2)
        if self._projection is None:
            projected = np.broadcast_to(matrix[:, None, :], (n, self.repetitions, self.token_dim))
        else:
            projected = (matrix @ self._projection).reshape(n, self.repetitions, self.projection_dim)
        return bits, ids, projected

    def _bucket_sums(self, ids: np.ndarray, projected: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per repetition and bucket: the sum of the projected tokens (R, B, width) and the count (R, B)."""
        flat = (ids + np.arange(self.repetitions) * self.buckets).reshape(-1)  # (n * R,)
        sums = np.zeros((self.repetitions * self.buckets, self._width), dtype=np.float32)
        np.add.at(sums, flat, projected.reshape(-1, self._width))
        counts = np.bincount(flat, minlength=self.repetitions * self.buckets)
        return sums.reshape(self.repetitions, self.buckets, self._width), counts.reshape(self.repetitions, self.buckets)

    def encode_query(self, matrix: np.ndarray) -> np.ndarray:
        """Per bucket, the sum of the query's tokens in it."""
        _, ids, projected = self._partition(self._check(matrix))
        sums, _ = self._bucket_sums(ids, projected)
        return sums.reshape(-1)

    def encode_document(self, matrix: np.ndarray) -> np.ndarray:
        """Per bucket, the mean of the document's tokens in it (an empty one: the nearest token)."""
        bits, ids, projected = self._partition(self._check(matrix))
        sums, counts = self._bucket_sums(ids, projected)
        means = sums / np.maximum(counts, 1)[:, :, None]
        if self.fill_empty:
            for r, b in zip(*np.nonzero(counts == 0)):
                distances = (bits[:, r, :] != self._bucket_bits[b]).sum(axis=1)
                means[r, b] = projected[int(np.argmin(distances)), r]
        return means.reshape(-1).astype(np.float32, copy=False)


ENCODINGS: dict[str, type[FixedEncoding]] = {"muvera": MuveraEncoding, "mean": MeanEncoding}
"""Encoding name -> class (the ``"name"`` in a config)."""


def encoding_from_config(config: dict[str, Any]) -> FixedEncoding:
    """Rebuild an encoding from its :meth:`~FixedEncoding.config` (unknown names and keys are errors)."""
    config = dict(config)
    name = config.pop("name", None)
    if name not in ENCODINGS:
        raise ValueError(f"unknown fixed encoding {name!r}; known: {', '.join(ENCODINGS)}")
    try:
        return ENCODINGS[name](**config)
    except TypeError as exc:
        raise ValueError(f"invalid {name} encoding config {config}: {exc}") from None
