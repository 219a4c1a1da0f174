"""Image-embedding throughput, side by side in one run: modalbridge's core against the two ways
integrations commonly call sentence-transformers.

1. one item per call (what Chroma's OpenCLIP function does: batch size 1);
2. sentence-transformers' own batched ``encode_document(paths)`` (single-threaded decoding);
3. modalbridge ``Embedder.embed_documents([Image(path), ...])`` (parallel decoding, then batched encoding).

It prints items/s for each and the ratios, and checks that all three give the same embeddings.

    python examples/benchmark_image_embedding.py                       # a tiny CLIP built offline
    python examples/benchmark_image_embedding.py --model sentence-transformers/clip-ViT-B-32 --device cuda
"""

from __future__ import annotations

import argparse
import glob
import os
import tempfile
import time
from pathlib import Path

import numpy as np

DEFAULT_IMAGES = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "images"


def _time(function, repeats: int) -> tuple[float, object]:
    best, result = float("inf"), None
    for _ in range(repeats):
        start = time.perf_counter()
        result = function()
        best = min(best, time.perf_counter() - start)
    return best, result


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", help="hub name or local folder (default: a tiny CLIP built offline)")
    parser.add_argument("--images", default=str(DEFAULT_IMAGES), help="folder of JPEG/PNG files")
    parser.add_argument("--copies", type=int, default=4, help="use every image this many times")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--repeats", type=int, default=2, help="best of N runs per method")
    args = parser.parse_args(argv)

    from sentence_transformers import SentenceTransformer

    from modalbridge import Embedder, Image

    model_path = args.model
    if model_path is None:
        from modalbridge.testing import build_tiny_clip

        model_path = build_tiny_clip(Path(tempfile.mkdtemp()) / "tiny_clip")
    paths = sorted(glob.glob(os.path.join(args.images, "*.jpg")) + glob.glob(os.path.join(args.images, "*.png")))
    if not paths:
        parser.error(f"no images in {args.images}")
    paths = paths * args.copies

    embedder = Embedder(model_path, device=args.device, batch_size=args.batch_size)
    model = embedder.model  # the same object plain sentence-transformers calls use below
    assert isinstance(model, SentenceTransformer)
    embedder.embed_documents([Image(paths[0])])  # warm-up

    per_item_s, per_item = _time(lambda: np.stack([model.encode_document([p])[0] for p in paths]), args.repeats)
    batched_s, batched = _time(lambda: model.encode_document(paths, batch_size=args.batch_size), args.repeats)
    ours_s, ours = _time(lambda: embedder.embed_documents([Image(p) for p in paths]), args.repeats)

    results = {
        "items": len(paths),
        "per_item_items_per_s": len(paths) / per_item_s,
        "st_batched_items_per_s": len(paths) / batched_s,
        "modalbridge_items_per_s": len(paths) / ours_s,
        "max_abs_diff": float(max(np.abs(ours - per_item).max(), np.abs(ours - batched).max())),
    }
    results["speedup_vs_per_item"] = per_item_s / ours_s
    results["speedup_vs_st_batched"] = batched_s / ours_s
    print(f"model: {model_path}  device: {model.device}  images: {len(paths)}  batch size: {args.batch_size}")
    print(f"{'method':<40}{'items/s':>10}")
    print(f"{'one item per call':<40}{results['per_item_items_per_s']:>10.1f}")
    print(f"{'sentence-transformers encode(paths)':<40}{results['st_batched_items_per_s']:>10.1f}")
    print(f"{'modalbridge Embedder (parallel decode)':<40}{results['modalbridge_items_per_s']:>10.1f}")
    print(f"ratio modalbridge / one item per call: {results['speedup_vs_per_item']:.2f}x")
    print(f"ratio modalbridge / encode(paths):     {results['speedup_vs_st_batched']:.2f}x")
    print(f"max |difference| between methods: {results['max_abs_diff']:.2e}")
    return results


if __name__ == "__main__":
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    main()
