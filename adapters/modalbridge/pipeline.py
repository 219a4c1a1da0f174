"""The streaming data path: any iterable of items in, vectors out in input order, in bounded memory.

Every embedding call of the core goes through :func:`stream_embeddings` (``Embedder.stream``,
``embed_documents``, ``embed_queries``, ``try_embed_documents``, so every adapter, Chroma bulk adds and
``modalbridge index``)::

    from modalbridge import Embedder, Image

    embedder = Embedder("sentence-transformers/clip-ViT-B-32")
    photos = (Image(path) for path in folder.rglob("*.jpg"))        # a generator is fine
    for result in embedder.stream(photos):
        if result.error is None:
            store(result.index, result.vector)
        else:
            print(result.error)                                         # "item 7: /x.jpg: cannot decode image (...)"

Three stages run at once, like a data loader in front of a model:

1. **decode** (a thread pool, one task per item): files, bytes and URLs become images, waveforms and frames;
2. **preprocess** (one thread, one task per batch): the model's own processor (``model.preprocess``)
   turns a batch of decoded items into tensors, and the decoded items are dropped;
3. **forward** (the calling thread): the model runs on one batch while the next batches are decoded
   and preprocessed.

Items are read from the iterable one *window* (a few batches) at a time and grouped by modality inside
it (CLIP-like models cannot take a text and an image in one batch); text is sorted by length inside the
window, as sentence-transformers sorts it inside ``encode``, and images for vision-language models by
their visual-token count (:mod:`modalbridge.batching`), so a batch is padded to a like-sized sequence. At most ``PREFETCH_BATCHES`` batches are
decoded ahead of the one on the model, so memory depends on the batch size, not on the number of items.

Vectors equal ``model.encode_document`` / ``model.encode_query``: the two halves of their inference loop
(``preprocess`` then ``forward``, truncation, normalization) are the same calls in the same order; the
precision is applied per row with fixed ranges, so no vector depends on its batch neighbours.

Threads, not processes: decoders (Pillow, soundfile, PyAV), the processors' resizing and torch all
release the GIL, and a process would have to pickle every decoded image back
(``examples/benchmark_pipeline_workers.py`` measures both per stage).
"""

from __future__ import annotations

import os
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Iterable, Iterator, Sequence

import numpy as np

from modalbridge.inputs import check_finite_rows
from modalbridge.items import item_error
from modalbridge.media import MediaError, is_pdf_page

if TYPE_CHECKING:  # pragma: no cover
    from modalbridge.embedder import Embedder

WINDOW_BATCHES = 8
"""Items are read from the input this many batches at a time (grouped by modality, text sorted by length)."""

PDF_PAGES = "pdf pages"
"""The batch group of PDF pages beside device-decoded images (``image_decode="gpu"``)."""

PREFETCH_BATCHES = 2
"""Batches decoded and preprocessed ahead of the one on the model: what bounds memory."""


def default_workers() -> int:
    """The CPUs this process may use (its affinity mask, so containers and ``taskset`` are respected)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - macOS and Windows have no affinity mask
        return max(1, os.cpu_count() or 1)


@dataclass(frozen=True)
class Embedded:
    """One result of :meth:`Embedder.stream`: the item's position in the input, and its vector or the
    error that names it (``"item 3: /x.jpg: no such file"``)."""

    index: int
    vector: np.ndarray | None
    error: Exception | None = None


@dataclass
class _Batch:
    """Items of one modality embedded together. ``kind``: ``"inputs"`` (the model's own processor),
    ``"frames"`` (videos as frame means on image models) or ``"device"`` (the device image path,
    ``image_decode``)."""

    entries: list[tuple[int, Any]]
    kind: str = "inputs"
    prepared: Future | None = None

    @property
    def frames(self) -> bool:
        return self.kind == "frames"


@dataclass
class _Prepared:
    """What the workers hand the model: tensors per forward chunk, whose items they belong to."""

    chunks: list[Any] = field(default_factory=list)
    owners: list[int] = field(default_factory=list)
    errors: dict[int, Exception] = field(default_factory=dict)
    failure: Exception | None = None


class _ModelCalls:
    """The compute half of ``encode_document`` / ``encode_query``, split so that ``preprocess`` can run
    in a worker while ``forward`` runs here. Models whose inference sentence-transformers distributes
    or places itself (device maps, HPU graphs), and embedders that override ``_encode`` (multi-vector),
    keep one ``Embedder._encode`` call per batch."""

    def __init__(self, embedder: "Embedder", model: Any, role: str) -> None:
        from modalbridge.embedder import Embedder

        settings = embedder.encode_settings
        self.embedder = embedder
        self.model = model
        self.task = role
        self.normalize = settings.normalize
        self.split = (
            type(embedder)._encode is Embedder._encode
            and not embedder.load_settings.uses_pool  # the pool's workers run encode themselves
            and self._can_split(model)
        )
        if self.split:
            prompt = settings.query_prompt if role == "query" else settings.document_prompt
            prompt_name = settings.query_prompt_name if role == "query" else settings.document_prompt_name
            if prompt_name is None and prompt is None:  # the defaults of encode_query / encode_document
                candidates = ["query"] if role == "query" else ["document", "passage", "corpus"]
                prompt_name = next((name for name in candidates if name in model.prompts), None)
            self.prompt = model._resolve_prompt(prompt, None if prompt is not None else prompt_name)
            self.truncate = settings.truncate_dim if settings.truncate_dim is not None else model.truncate_dim
            self.device = model._resolve_inference_device(None)
            model.eval()

    @staticmethod
    def _can_split(model: Any) -> bool:
        needed = ("preprocess", "prompts", "_resolve_prompt", "_resolve_inference_device", "truncate_dim", "_input_length")
        if not all(hasattr(model, name) for name in needed):
            return False
        if getattr(model, "_distributed_inference", None) is not None:
            return False
        try:
            return not model._placement_is_delegated and model.device.type != "hpu"
        except AttributeError:
            return False

    def order(self, inputs: list[Any]) -> list[int]:
        """sentence-transformers' batch order: longest first (interleaved for flattened attention)."""
        if not self.split:
            return list(range(len(inputs)))
        order = np.argsort([-self.model._input_length(value) for value in inputs])
        if getattr(self.model, "_can_flatten_inputs", lambda: False)():
            order = self.model._interleave_sorted_indices(order)
        return [int(i) for i in order]

    def preprocess(self, inputs: list[Any]) -> Any:
        if not self.split:
            return inputs
        return self.model.preprocess(inputs, prompt=self.prompt, task=self.task)

    def forward(self, features: Any) -> Sequence[np.ndarray]:
        """One float vector (or token matrix) per input of a preprocessed chunk, before quantization."""
        if not self.split:
            return list(self.embedder._encode(features, self.task))
        import torch
        from sentence_transformers.util.tensor import _tensor_to_numpy, batch_to_device, truncate_embeddings

        with torch.inference_mode():
            out = self.model(batch_to_device(features, self.device), task=self.task)
            embeddings = out["sentence_embedding"]
            if self.truncate is not None:
                embeddings = truncate_embeddings(embeddings, self.truncate)
            if self.normalize:
                embeddings = torch.nn.functional.normalize(embeddings, p=2, dim=1)
            return list(_tensor_to_numpy(embeddings.cpu()))


class StreamingEmbedding:
    """One streaming call: see the module docstring. Build it through ``Embedder.stream``."""

    def __init__(
        self, embedder: "Embedder", role: str, raise_errors: bool = False, validated: list | None = None
    ) -> None:
        from modalbridge.inputs import Preparer, is_supported, model_modalities, reduced_decode_edge

        self.embedder = embedder
        self.settings = embedder.encode_settings
        self.model = embedder.model
        self.raise_errors = raise_errors
        self.validated = validated
        modalities = model_modalities(self.model)
        self.as_frames = embedder._video_as_frames(modalities)
        self.accepted = modalities + ["video"] if self.as_frames else modalities
        self.hints = embedder._hints(modalities)
        self.normalizes = embedder.normalizes if self.as_frames else False
        workers = self.settings.decode_workers
        self.fetch_policy = self.settings.fetch_policy()
        jpeg_min_edge = reduced_decode_edge(self.model) if self.settings.reduced_jpeg_decode else None
        self.preparer = Preparer(
            self.model, self.settings.allow_fetch, workers, self.fetch_policy, jpeg_min_edge, pdf_dpi=self.settings.pdf_dpi
        )
        self.calls = _ModelCalls(embedder, self.model, role)
        self.workers = workers
        self.batch_size = self.settings.batch_size
        load = embedder.load_settings
        # A pool splits each call across its devices: hand it one batch per device at a time.
        self.group_size = self.batch_size * (len(load.device) if load.uses_pool else 1)
        self.on_device = None
        # single-vector embedders only: the batched image path ends in a sentence embedding, not token matrices
        if is_supported("image", modalities) and embedder.kind == "embedder":
            from modalbridge.device_images import device_image_processor

            self.on_device = device_image_processor(
                self.model, self.settings.image_decode, load.uses_pool, self.settings.reduced_jpeg_decode
            )
        self.visual_tokens = None  # Qwen-VL-style processors: an image's cost is its visual-token count
        if is_supported("image", modalities) and self.on_device is None:
            from modalbridge.batching import visual_token_counter

            self.visual_tokens = visual_token_counter(self.model)

    # -- the loop -------------------------------------------------------------------------------------

    def run(self, items: Iterable[Any]) -> Iterator[Embedded]:
        iterator = iter(items)
        done: dict[int, Embedded] = {}
        next_index = 0
        read = 0
        exhausted = False
        queued: deque[_Batch] = deque()  # formed, not yet handed to the workers
        running: deque[_Batch] = deque()  # handed to the workers, in forward order
        window = self.group_size * WINDOW_BATCHES
        decode_pool = ThreadPoolExecutor(self.workers, thread_name_prefix="modalbridge-decode")
        preprocess_pool = ThreadPoolExecutor(1, thread_name_prefix="modalbridge-preprocess")
        try:
            while True:
                while len(running) <= PREFETCH_BATCHES:
                    if not queued and not exhausted:
                        batches, count = self._read_window(iterator, read, window, done)
                        exhausted = count < window
                        read += count
                        queued.extend(batches)
                    if not queued:
                        break
                    batch = queued.popleft()
                    batch.prepared = preprocess_pool.submit(self._prepare, batch, self._decode_all(batch, decode_pool))
                    running.append(batch)
                if running:
                    batch = running.popleft()
                    done.update(self._compute(batch))
                while next_index in done:
                    result = done.pop(next_index)
                    if result.error is not None and self.raise_errors:
                        raise result.error
                    yield result
                    next_index += 1
                if exhausted and not running and not queued:
                    break
        finally:
            for batch in running:
                if batch.prepared is not None:
                    batch.prepared.cancel()
            decode_pool.shutdown(wait=True, cancel_futures=True)
            preprocess_pool.shutdown(wait=True, cancel_futures=True)
        if done:  # pragma: no cover - a bookkeeping error must never drop items silently
            raise RuntimeError(f"internal error: results {sorted(done)[:5]} were not delivered")

    # -- reading and batching -------------------------------------------------------------------------

    def _read_window(
        self, iterator: Iterator[Any], start: int, size: int, done: dict[int, Embedded]
    ) -> tuple[list[_Batch], int]:
        """Read up to ``size`` items, validate them, and form batches: by modality, text longest first
        (as ``encode`` orders it), images for vision-language models by visual tokens, most first;
        batches ordered by their first item so results flow out early."""
        from modalbridge.inputs import validate_item

        groups: dict[Any, list[tuple[int, Any]]] = {}
        count = 0
        for item in iterator:
            index = start + count
            count += 1
            if self.validated is not None:
                modality = self.validated[index]
            else:
                try:
                    modality = validate_item(index, item, self.accepted, hints=self.hints)
                except (TypeError, ValueError) as exc:
                    done[index] = Embedded(index, None, exc)
                    if count >= size:
                        break
                    continue
            if modality == "image" and self.on_device is not None and is_pdf_page(item):
                modality = PDF_PAGES  # rendered on the CPU anyway: the exact path, not the device's JPEG decoder
            groups.setdefault(modality, []).append((index, item))
            if count >= size:
                break
        batches: list[_Batch] = []
        for modality, entries in groups.items():
            size, kind = self.group_size, "inputs"
            if modality == "video" and self.as_frames:
                size, kind = max(1, self.group_size // self.settings.video_frames), "frames"
            elif modality == "image" and self.on_device is not None:
                size, kind = self.batch_size, "device"
            elif modality == "image" and self.visual_tokens is not None:  # like-sized images together
                from modalbridge.batching import order_by_cost

                order = order_by_cost([self.visual_tokens(item) for _, item in entries])
                entries = [entries[i] for i in order]
            elif modality == "text":  # encode's own order; a protected {"text": s} has the length of s
                order = self.calls.order([item for _, item in entries])
                entries = [entries[i] for i in order]
            batches += [_Batch(entries[i : i + size], kind) for i in range(0, len(entries), size)]
        batches.sort(key=lambda b: min(index for index, _ in b.entries))
        return batches, count

    # -- the stages -----------------------------------------------------------------------------------

    def _decode_one(self, item: Any, kind: str) -> Any:
        """Runs in a decode worker: one item's input(s) for the model (``frames``: a list)."""
        if kind == "frames":
            from modalbridge.media import sample_video_frames

            return sample_video_frames(item, self.settings.video_frames, self.settings.allow_fetch, self.fetch_policy)
        if kind == "device":  # the bytes: the device decodes them in batches
            from modalbridge.items import check_item
            from modalbridge.media.gpu_image import read_image_bytes

            return read_image_bytes(check_item(item), self.settings.allow_fetch, self.fetch_policy)
        return self.preparer.one(item)

    def _decode_all(self, batch: _Batch, pool: ThreadPoolExecutor) -> list[Future]:
        futures = []
        for _, item in batch.entries:
            if isinstance(item, str):  # text needs no worker
                future: Future = Future()
                future.set_result(self.preparer.one(item))
                futures.append(future)
            else:
                futures.append(pool.submit(self._decode_one, item, batch.kind))
        return futures

    def _prepare(self, batch: _Batch, decoded: list[Future]) -> _Prepared:
        """Runs in the preprocess thread: gather the decoded items, then the model's processor."""
        prepared = _Prepared()
        inputs: list[Any] = []
        for (index, _), future in zip(batch.entries, decoded):
            try:
                value = future.result()
            except MediaError as exc:
                prepared.errors[index] = item_error(MediaError, "item", index, str(exc))
                continue
            except Exception as exc:  # a decoder bug: still name the item
                prepared.errors[index] = item_error(ValueError, "item", index, f"{type(exc).__name__}: {exc}")
                continue
            values = value if batch.frames else [value]
            inputs += values
            prepared.owners += [index] * len(values)
        try:
            if batch.kind == "device":
                prepared.chunks = [self._preprocess_on_device(batch, inputs, prepared)] if inputs else []
            else:
                size = self.group_size
                prepared.chunks = [self.calls.preprocess(inputs[i : i + size]) for i in range(0, len(inputs), size)]
        except Exception as exc:
            prepared.failure = exc
        return prepared

    def _preprocess_on_device(self, batch: _Batch, datas: list[Any], prepared: _Prepared) -> Any:
        """The device image path: decode and preprocess a batch of image bytes on the model's device; when
        some do not decode, the others still go through and the culprits are named."""
        items = dict(batch.entries)
        names = [items[index].describe() if hasattr(items[index], "describe") else "an image" for index in prepared.owners]
        try:
            return self.on_device(datas, names, self.workers)
        except MediaError:
            decoded, owners = [], []
            for index, data, name in zip(prepared.owners, datas, names):
                try:
                    decoded.append(self.on_device.decode([data], [name])[0])
                    owners.append(index)
                except MediaError as exc:
                    prepared.errors[index] = item_error(MediaError, "item", index, str(exc))
            prepared.owners = owners
            return self.on_device.preprocess(decoded) if decoded else None

    def _forward(self, kind: str, chunk: Any) -> list[Any]:
        if chunk is None:
            return []
        if kind == "device":
            from modalbridge.device_images import forward_pixel_values

            settings = self.settings
            return list(forward_pixel_values(self.model, chunk, normalize=settings.normalize, truncate_dim=settings.truncate_dim))
        return self.calls.forward(chunk)

    def _compute(self, batch: _Batch) -> dict[int, Embedded]:
        """Runs here: the model's forward pass on one prepared batch, then per-item results."""
        prepared: _Prepared = batch.prepared.result()  # type: ignore[union-attr]
        batch.prepared = None
        results = {index: Embedded(index, None, error) for index, error in prepared.errors.items()}
        if not prepared.owners:
            return results
        try:
            if prepared.failure is not None:
                raise prepared.failure
            vectors = [vector for chunk in prepared.chunks for vector in self._forward(batch.kind, chunk)]
        except Exception:
            if self.raise_errors:
                raise
            ok = [(i, item) for i, item in batch.entries if i not in prepared.errors]
            return {**results, **self._one_by_one(ok, batch.kind)}
        if len(vectors) != len(prepared.owners):  # a model that dropped inputs must never pass silently
            raise RuntimeError(f"the model returned {len(vectors)} embeddings for {len(prepared.owners)} inputs")
        results.update(self._reduce(vectors, prepared.owners, batch.frames))
        return results

    def _reduce(self, vectors: list[np.ndarray], owners: list[int], frames: bool) -> dict[int, Embedded]:
        """Per-item results from the model's rows: frame means for videos, then the finite check (a NaN
        vector names its item and never reaches a store) and the precision (fixed ranges: row by row)."""
        if frames:
            rows: dict[int, np.ndarray] = {}
            owners_array = np.asarray(owners)
            stacked = np.stack(vectors).astype(np.float32)
            for index in dict.fromkeys(owners):
                mean = stacked[owners_array == index].mean(axis=0)
                if self.normalizes:
                    mean = mean / max(np.linalg.norm(mean), 1e-12)
                rows[index] = mean.astype(np.float32)
        else:
            rows = {index: np.asarray(vector, dtype=np.float32) for index, vector in zip(owners, vectors)}
        results = {}
        for index, row in rows.items():
            bad = check_finite_rows(row[None], [index])
            results[index] = Embedded(index, None, bad[index]) if bad else Embedded(index, row)
        if self.settings.precision != "float32":
            good = [index for index, result in results.items() if result.error is None]
            if good:
                quantized = self.embedder.quantize(np.stack([rows[index] for index in good]))
                results.update({index: Embedded(index, row) for index, row in zip(good, quantized)})
        return results

    def _one_by_one(self, entries: list[tuple[int, Any]], kind: str) -> dict[int, Embedded]:
        """After a batch failed on the model: each item alone, so that only the culprit is set aside."""
        results = {}
        for index, item in entries:
            try:
                batch = _Batch([(index, item)], kind)
                value = self._decode_one(item, kind)
                done: Future = Future()
                done.set_result(value)
                prepared = self._prepare(batch, [done])
                if prepared.failure is not None:
                    raise prepared.failure
                if prepared.errors:
                    results[index] = Embedded(index, None, prepared.errors[index])
                    continue
                vectors = [vector for chunk in prepared.chunks for vector in self._forward(kind, chunk)]
                results.update(self._reduce(vectors, prepared.owners, batch.frames))
            except Exception as exc:
                if isinstance(exc, MediaError):
                    error = item_error(MediaError, "item", index, str(exc))
                else:
                    error = item_error(ValueError, "item", index, f"{type(exc).__name__}: {exc}")
                results[index] = Embedded(index, None, error)
        return results


def stream_embeddings(
    embedder: "Embedder", items: Iterable[Any], role: str = "document", raise_errors: bool = False,
    validated: list | None = None,
) -> Iterator[Embedded]:
    """The results of embedding ``items`` (any iterable, read lazily) in input order. With
    ``raise_errors`` the first failing item raises its error instead; ``validated`` gives the
    modalities of an already validated sequence."""
    if isinstance(items, (str, bytes)) or not hasattr(items, "__iter__"):
        raise TypeError(f"expected an iterable of items, got {type(items).__name__}")
    embedder._check_dimensions(embedder.model)
    run = StreamingEmbedding(embedder, role, raise_errors=raise_errors, validated=validated).run(items)
    if not embedder.encode_settings.show_progress_bar:
        return run
    from tqdm.auto import tqdm

    total = len(items) if hasattr(items, "__len__") else None
    return iter(tqdm(run, total=total, desc="Embedding", unit="item"))
