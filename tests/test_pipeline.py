"""The streaming data path: lazy input, input order, per-item errors, equality with direct calls, and
memory that does not grow with the number of items (measured in a subprocess)."""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from sentence_transformers import SentenceTransformer
from transformers.image_utils import load_image

from modalbridge import Embedded, Embedder, Image, MediaError, Video
from modalbridge.pipeline import PREFETCH_BATCHES, WINDOW_BATCHES, default_workers

ATOL = 1e-6


@pytest.fixture(scope="module")
def clip_model(tiny_clip_path):
    return SentenceTransformer(tiny_clip_path)


def test_a_generator_of_mixed_items_streams_in_input_order_equal_to_direct_calls(tiny_clip_path, clip_model, image_paths):
    # batch_size=2 makes a window 16 items: 40 items span several windows, each mixing text and images.
    embedder = Embedder(tiny_clip_path, batch_size=2)
    texts = [f"caption number {i} " + "word " * (i % 7) for i in range(40)]
    plan = ["image" if i % 3 else "text" for i in range(40)]
    items = (Image(image_paths[i % 12]) if kind == "image" else texts[i] for i, kind in enumerate(plan))

    results = list(embedder.stream(items))

    assert [r.index for r in results] == list(range(40))
    assert all(isinstance(r, Embedded) and r.error is None for r in results)
    image_rows = [i for i, kind in enumerate(plan) if kind == "image"]
    text_rows = [i for i, kind in enumerate(plan) if kind == "text"]
    direct_images = clip_model.encode_document([load_image(image_paths[i % 12]) for i in image_rows])
    direct_texts = clip_model.encode_document([texts[i] for i in text_rows])
    np.testing.assert_allclose(np.stack([results[i].vector for i in image_rows]), direct_images, atol=ATOL)
    np.testing.assert_allclose(np.stack([results[i].vector for i in text_rows]), direct_texts, atol=ATOL)


def test_items_are_read_lazily_a_bounded_window_ahead(tiny_clip_path):
    embedder = Embedder(tiny_clip_path, batch_size=4)
    consumed = 0

    def sentences():
        nonlocal consumed
        for i in range(10_000):
            consumed += 1
            yield f"sentence {i}"

    stream = embedder.stream(sentences())
    first = next(stream)
    assert first.index == 0 and first.error is None
    # one window read, plus at most the next one while the prefetched batches run
    assert consumed <= 2 * 4 * WINDOW_BATCHES + 4 * (PREFETCH_BATCHES + 1)
    stream.close()  # stopping early is fine: the workers are shut down
    assert consumed < 10_000


def test_stream_reports_bad_items_like_try_embed_documents(tiny_clip_path, clip_model, image_paths, tmp_path):
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"not a jpeg")
    items = [Image(image_paths[0]), Image(str(tmp_path / "missing.jpg")), b"untagged bytes", Image(str(broken)), "ok"]
    embedder = Embedder(tiny_clip_path)

    results = list(embedder.stream(iter(items)))
    vectors, errors = embedder.try_embed_documents(items)

    assert [r.index for r in results] == [0, 1, 2, 3, 4]
    assert {r.index: str(r.error) for r in results if r.error is not None} == {i: str(e) for i, e in errors.items()}
    assert str(results[1].error).startswith("item 1: ") and "missing.jpg: no such file" in str(results[1].error)
    assert isinstance(results[1].error, MediaError)
    assert str(results[2].error).startswith("item 2: ") and "ambiguous" in str(results[2].error)
    assert str(results[3].error).startswith("item 3: ") and "cannot decode image" in str(results[3].error)
    np.testing.assert_allclose(results[0].vector, clip_model.encode_document([load_image(image_paths[0])])[0], atol=ATOL)
    np.testing.assert_allclose(results[4].vector, clip_model.encode_document(["ok"])[0], atol=ATOL)
    np.testing.assert_allclose(vectors[4], results[4].vector, atol=0)


def test_query_role_uses_the_query_prompt(tiny_qwen3vl_path):
    model = SentenceTransformer(tiny_qwen3vl_path)
    embedder = Embedder(tiny_qwen3vl_path)
    (query,) = embedder.stream(["red shoes"], role="query")
    (document,) = embedder.stream(["red shoes"])
    np.testing.assert_allclose(query.vector, model.encode_query(["red shoes"])[0], atol=ATOL)
    np.testing.assert_allclose(document.vector, model.encode_document(["red shoes"])[0], atol=ATOL)
    with pytest.raises(ValueError, match="role must be"):
        embedder.stream(["x"], role="passage")


@pytest.mark.parametrize("precision", ["int8", "ubinary"])
def test_quantized_precisions_equal_direct_quantization(tiny_clip_path, clip_model, precision):
    from sentence_transformers.util.quantization import quantize_embeddings

    texts = [f"text {i} " * (1 + i % 5) for i in range(30)]
    floats = clip_model.encode_document(texts, batch_size=4)
    ranges = [floats.min(axis=0).tolist(), floats.max(axis=0).tolist()] if precision == "int8" else None
    embedder = Embedder(tiny_clip_path, batch_size=4, precision=precision, quantization_ranges=ranges)
    streamed = np.stack([r.vector for r in embedder.stream(iter(texts))])
    expected = quantize_embeddings(floats, precision=precision, ranges=None if ranges is None else np.array(ranges))
    np.testing.assert_array_equal(streamed, expected)


def test_videos_as_frames_stream_between_other_items(tiny_clip_path, clip_model, video_path):
    embedder = Embedder(tiny_clip_path, video_frames=4, normalize=True, batch_size=3)
    results = list(embedder.stream(["a", Video(video_path), "b", Video(video_path)]))
    from modalbridge.media import sample_video_frames

    reference = clip_model.encode_document(sample_video_frames(Video(video_path), 4), normalize_embeddings=True).mean(0)
    reference /= np.linalg.norm(reference)
    for row in (1, 3):
        np.testing.assert_allclose(results[row].vector, reference, atol=ATOL)
    np.testing.assert_allclose(results[2].vector, clip_model.encode_document(["b"], normalize_embeddings=True)[0], atol=ATOL)


def test_default_workers_follow_the_cpus_this_process_may_use(tiny_clip_path):
    assert default_workers() == len(os.sched_getaffinity(0))
    assert Embedder(tiny_clip_path).encode_settings.decode_workers == len(os.sched_getaffinity(0))
    with pytest.raises(ValueError, match="decode_workers must be at least 1"):
        Embedder(tiny_clip_path, decode_workers=0)


_PEAK_SCRIPT = textwrap.dedent(
    """
    import json, sys
    from modalbridge.testing import peak_rss_mb
    from modalbridge import Embedder, Image
    model_path, count, paths = sys.argv[1], int(sys.argv[2]), json.loads(sys.argv[3])
    embedder = Embedder(model_path, batch_size=8, decode_workers=2)
    peaks = []
    for n in (count, 4 * count):  # the peak is monotonic: the larger run must not raise it
        vectors = embedder.embed_documents([Image(paths[i % len(paths)]) for i in range(n)])
        assert vectors.shape[0] == n
        peaks.append(peak_rss_mb())
    print(json.dumps(peaks))
    """
)


def test_peak_memory_does_not_grow_with_the_number_of_items(tiny_clip_path, image_paths):
    # 640x480 photos decode to ~0.9 MB each: holding 4N = 240 of them would add ~160 MB over N = 60
    # (about 14 % of this process); streamed, only a few batches are ever decoded at once.
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "adapters")}
    out = subprocess.run(
        [sys.executable, "-c", _PEAK_SCRIPT, tiny_clip_path, "60", json.dumps(image_paths)],
        capture_output=True, text=True, env=env, timeout=300,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    small, large = json.loads(out.stdout.strip().splitlines()[-1])
    assert large <= small * 1.10, f"peak RSS {small:.0f} MB for 60 images, {large:.0f} MB for 240"


def test_reduced_jpeg_decode_is_opt_in_and_keeps_the_processor_size(tiny_clip_path, clip_model, image_paths, tmp_path):
    from modalbridge.inputs import reduced_decode_edge
    from modalbridge.media import decode_image

    edge = reduced_decode_edge(clip_model)
    assert edge == clip_model[0].processor.image_processor.size["shortest_edge"] == 32
    full = decode_image(Image(image_paths[0]))
    small = decode_image(Image(image_paths[0]), jpeg_min_edge=edge)
    assert min(small.size) >= edge and small.size[0] <= full.size[0] // 8 + 1  # 1/8 of 640x480 still >= 32
    png = tmp_path / "photo.png"
    full.save(png)
    assert decode_image(Image(str(png)), jpeg_min_edge=edge).size == full.size  # only JPEGs are scaled

    items = [Image(p) for p in image_paths]
    exact = Embedder(tiny_clip_path).embed_documents(items)
    np.testing.assert_allclose(exact, clip_model.encode_document([load_image(p) for p in image_paths]), atol=ATOL)
    reduced = Embedder(tiny_clip_path, reduced_jpeg_decode=True).embed_documents(items)
    expected = clip_model.encode_document([decode_image(Image(p), jpeg_min_edge=edge) for p in image_paths])
    np.testing.assert_allclose(reduced, expected, atol=ATOL)
    assert not np.allclose(reduced, exact, atol=1e-4)
