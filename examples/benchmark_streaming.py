"""The streaming data path, side by side in one run: images/s of every way to embed JPEG files, the
reduced-size JPEG decode's fidelity, and peak memory against the number of images.

Methods (same model object, same files, best of ``--repeats`` runs taken round-robin):

1. ``encode(paths)``: sentence-transformers' own ``encode_document(paths)``;
2. one image per call: ``encode_document([path])`` in a loop;
3. OpenCLIP-style loop: Pillow decodes each image, one ``encode_document([image])`` per image (what
   Chroma's ``OpenCLIPEmbeddingFunction`` does per image);
4. core stream: ``Embedder.embed_documents([Image(p), ...])`` (decode and preprocessing in workers,
   overlapped with the model; vectors equal ``encode(paths)``);
5. core stream, ``reduced_jpeg_decode=True``: JPEGs decoded at 1/2, 1/4 or 1/8 size by the decoder's
   DCT scaling when the processor shrinks them anyway (approximate: cosine to the exact path printed).

Then peak RSS of a fresh process embedding ``--rss-counts`` images (the files reused by path) through the
core stream, and through ``encode(paths)`` for comparison.

    python examples/benchmark_streaming.py                          # demo CLIP, 240 images
    python examples/benchmark_streaming.py --model vit-b32          # a ViT-B/32-sized random CLIP
    python examples/benchmark_streaming.py --rss-counts 2000 20000  # flat memory at scale
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
DEFAULT_IMAGES = HERE.parent.parent / "shared" / "data" / "images"


def _model_path(name: str | None) -> str:
    if name in (None, "demo"):
        from modalbridge.demo import demo_embedder_path

        return demo_embedder_path()
    if name == "vit-b32":
        sys.path.insert(0, str(HERE))
        from benchmark_gpu import CLIP_FULL, build_clip

        return build_clip(Path(tempfile.mkdtemp()) / "clip_vit_b32", CLIP_FULL)
    return name


_RSS_SCRIPT = """
import json, sys
from modalbridge.testing import peak_rss_mb
from modalbridge import Embedder, Image
model, method, count, batch, paths = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), json.loads(sys.argv[5])
embedder = Embedder(model, batch_size=batch)
items = [paths[i % len(paths)] for i in range(count)]
if method == "stream":
    done = sum(1 for r in embedder.stream(Image(p) for p in items) if r.error is None)
else:
    done = len(embedder.model.encode_document(items, batch_size=batch))
assert done == count
print(json.dumps(peak_rss_mb()))
"""


def peak_rss_mb(model: str, method: str, count: int, batch: int, paths: list[str]) -> float:
    out = subprocess.run(
        [sys.executable, "-c", _RSS_SCRIPT, model, method, str(count), str(batch), json.dumps(paths)],
        capture_output=True, text=True, check=True,
    )
    return float(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="demo", help="'demo' (default), 'vit-b32', or a model folder / hub name")
    parser.add_argument("--images", default=str(DEFAULT_IMAGES), help="folder of JPEG files")
    parser.add_argument("--copies", type=int, default=20, help="use every image this many times")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=2, help="best of N runs per method")
    parser.add_argument("--rss-counts", type=int, nargs="*", default=[2000], help="peak RSS at these image counts")
    parser.add_argument(
        "--rss-encode-max", type=int, default=2000, help="measure encode(paths)'s peak RSS only up to this count (it is slow)"
    )
    parser.add_argument("--rss-only", action="store_true", help="skip the speed comparison")
    args = parser.parse_args(argv)

    model_path = _model_path(args.model)
    files = sorted(glob.glob(os.path.join(args.images, "*.jpg")))
    if not files:
        parser.error(f"no JPEG files in {args.images}")
    paths = files * args.copies

    results: dict[str, float] = {}
    if not args.rss_only:
        results.update(compare_speed(args, model_path, files, paths))
    for count in args.rss_counts:
        stream_mb = peak_rss_mb(model_path, "stream", count, args.batch_size, files)
        line = f"peak RSS at {count:>6} images: core stream {stream_mb:7.0f} MB"
        results[f"rss_stream_{count}"] = stream_mb
        if count <= args.rss_encode_max:
            results[f"rss_encode_{count}"] = peak_rss_mb(model_path, "encode", count, args.batch_size, files)
            line += f"   encode(paths) {results[f'rss_encode_{count}']:7.0f} MB"
        print(line, flush=True)
    return results


def compare_speed(args: argparse.Namespace, model_path: str, files: list[str], paths: list[str]) -> dict[str, float]:
    from PIL import Image as PILImage

    from modalbridge import Embedder, Image

    exact = Embedder(model_path, batch_size=args.batch_size)
    reduced = Embedder(model_path, batch_size=args.batch_size, reduced_jpeg_decode=True)
    model = exact.model
    exact.embed_documents([Image(p) for p in files])  # warm-up (threads, allocator)
    reduced.embed_documents([Image(p) for p in files])

    def per_image(open_first: bool):
        rows = [model.encode_document([PILImage.open(p).convert("RGB") if open_first else p])[0] for p in paths]
        return np.stack(rows)

    methods = {
        "encode(paths)": lambda: model.encode_document(paths, batch_size=args.batch_size),
        "one image per call": lambda: per_image(False),
        "OpenCLIP-style loop": lambda: per_image(True),
        "core stream (exact)": lambda: exact.embed_documents([Image(p) for p in paths]),
        "core stream, reduced JPEG": lambda: reduced.embed_documents([Image(p) for p in paths]),
    }
    sys.path.insert(0, str(HERE))
    from benchmark_audio_video import _best  # round-robin, so the shared machine's noise hits every method alike

    timings, outputs = _best(methods, args.repeats)
    st, ours, approx = outputs["encode(paths)"], outputs["core stream (exact)"], outputs["core stream, reduced JPEG"]

    base = timings["encode(paths)"]
    print(f"model: {model_path}  images: {len(paths)} ({len(files)} files x {args.copies})  batch: {args.batch_size}")
    print(f"load: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f}  cpus: {len(os.sched_getaffinity(0))}")
    print(f"{'method':<32}{'images/s':>10}{'vs encode(paths)':>18}")
    results: dict[str, float] = {}
    for name, seconds in timings.items():
        print(f"{name:<32}{len(paths) / seconds:>10.1f}{base / seconds:>17.2f}x")
        results[name] = len(paths) / seconds
    print(f"max |exact stream - encode(paths)|: {np.abs(ours - st).max():.2e}")

    # Fidelity of the reduced decode, per photo: cosine to the exact vector, and whether each photo's
    # nearest other photo (top result) stays the same.
    one = np.stack([ours[i] for i in range(len(files))])
    red = np.stack([approx[i] for i in range(len(files))])
    unit = lambda m: m / np.linalg.norm(m, axis=1, keepdims=True)  # noqa: E731
    cosine = (unit(one) * unit(red)).sum(axis=1)
    sims_exact, sims_reduced = unit(one) @ unit(one).T, unit(red) @ unit(one).T
    np.fill_diagonal(sims_exact, -np.inf)
    np.fill_diagonal(sims_reduced, -np.inf)
    same_top = float((sims_exact.argmax(1) == sims_reduced.argmax(1)).mean())
    self_top = float((unit(red) @ unit(one).T).argmax(1).tolist() == list(range(len(files))))
    print(f"reduced JPEG decode on {len(files)} photos: cosine to exact min {cosine.min():.4f} mean {cosine.mean():.4f}; "
          f"top result unchanged {same_top:.0%}; each photo still retrieves itself: {bool(self_top)}", flush=True)
    results.update(cosine_min=float(cosine.min()), cosine_mean=float(cosine.mean()), same_top=same_top)
    return results


if __name__ == "__main__":
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    main()
