"""Ingest throughput, side by side in one run: ``modalbridge index`` in one process against
``modalbridge index --ray`` with decoding in the model actors and with decoding split out to CPU tasks.

All three index the same folder of photos into fresh embedded Chroma databases through
:class:`~modalbridge.cli.indexing.MediaIndex` (what the command runs); the Ray runs share one local
cluster started first (its start-up is reported apart). It prints files/s for each, the ratios, and
the largest difference between the stored vectors (they must agree).

    python examples/benchmark_ray_ingest.py                           # the demo CLIP, 12 COCO photos x 20
    python examples/benchmark_ray_ingest.py --copies 100 --actors 2 --model sentence-transformers/clip-ViT-B-32
    RAY_ADDRESS=ray://head:10001 python examples/benchmark_ray_ingest.py --images /shared/photos   # a cluster

On a cluster the photo folder must be visible at the same path on every node.
"""

from __future__ import annotations

import argparse
import glob
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

DEFAULT_IMAGES = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "images"


def _stored(db: str, collection: str) -> dict[str, np.ndarray]:
    import chromadb

    client = chromadb.PersistentClient(path=db, settings=chromadb.Settings(anonymized_telemetry=False))
    got = client.get_collection(collection).get(include=["embeddings"])
    return dict(zip(got["ids"], np.asarray(got["embeddings"])))


class _Clocked:
    """An embedding backend that notes when its first chunk of files came back: the start-up cost (for
    Ray, scheduling the stages and loading the model in each actor), which a longer job amortizes."""

    def __init__(self, backend) -> None:
        self.backend = backend
        self.first: tuple[float, int] | None = None

    def embed(self, embedder, records):
        for chunk in self.backend.embed(embedder, records):
            if self.first is None:
                self.first = (time.perf_counter(), len(chunk))
            yield chunk


def _index(folder: str, db: str, model: str, batch_size: int, embedding) -> dict:
    import chromadb

    from modalbridge.cli.indexing import MediaIndex

    client = chromadb.PersistentClient(path=db, settings=chromadb.Settings(anonymized_telemetry=False))
    clocked = _Clocked(embedding)
    index = MediaIndex(client, "bench", model=model, batch_size=batch_size, embedding=clocked, use_demo_models=False)
    index.main.embedder.model  # the driver's copy, loaded before timing  # noqa: B018
    start = time.perf_counter()
    report = index.index([folder])
    end = time.perf_counter()
    if report.failed:
        raise SystemExit(f"files failed: {report.failed[:3]}")
    return {
        "files/s": len(report.added) / (end - start),
        "first chunk after s": clocked.first[0] - start,
        "vectors": _stored(db, "bench"),
    }


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", help="hub name or local folder (default: the demo text+image model)")
    parser.add_argument("--images", default=str(DEFAULT_IMAGES), help="folder of JPEG/PNG photos")
    parser.add_argument("--copies", type=int, default=20, help="index every photo this many times (as separate files)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--actors", type=int, default=None, help="model actors (default: one per GPU, else 1)")
    parser.add_argument("--cpus", type=int, default=None, help="CPUs of the local cluster (default: all)")
    args = parser.parse_args(argv)

    import ray

    from modalbridge.cli.backends import InProcessEmbedding
    from modalbridge.ray import RayEmbedding, init_cluster

    model = args.model
    if model is None:
        from modalbridge.demo import demo_embedder_path

        model = demo_embedder_path()
    photos = sorted(glob.glob(os.path.join(args.images, "*.jpg")) + glob.glob(os.path.join(args.images, "*.png")))
    if not photos:
        parser.error(f"no photos in {args.images}")
    work = Path(tempfile.mkdtemp(prefix="modalbridge-ray-bench-"))
    try:
        folder = work / "photos"
        folder.mkdir()
        for copy in range(args.copies):
            for photo in photos:
                shutil.copy(photo, folder / f"{copy:04d}-{os.path.basename(photo)}")
        files = len(photos) * args.copies

        start = time.perf_counter()
        init_cluster(num_cpus=args.cpus)
        ray.data.DataContext.get_current().enable_progress_bars = False
        cluster_s = time.perf_counter() - start
        cluster = ray.cluster_resources()

        runs = {}
        runs["one process"] = _index(str(folder), str(work / "db0"), model, args.batch_size, InProcessEmbedding(args.batch_size))
        for decode in ("actor", "cpu"):
            backend = RayEmbedding(actors=args.actors, batch_size=args.batch_size, decode=decode)
            name = "ray, decode in actors" if decode == "actor" else "ray, decode on CPU tasks"
            runs[name] = _index(str(folder), str(work / f"db-{decode}"), model, args.batch_size, backend)

        reference = runs["one process"]["vectors"]
        diff = max(float(np.abs(run["vectors"][key] - reference[key]).max()) for run in runs.values() for key in reference)
        same_ids = all(sorted(run["vectors"]) == sorted(reference) for run in runs.values())
        print(f"model: {model}  files: {files}  batch size: {args.batch_size}")
        print(
            f"ray cluster: {cluster.get('CPU', 0):.0f} CPUs, {cluster.get('GPU', 0):.0f} GPUs, "
            f"started in {cluster_s:.1f} s (not counted below); load average {os.getloadavg()[0]:.1f}"
        )
        base = runs["one process"]
        print(f"{'path':<26}{'files/s':>9}{'vs one process':>16}{'first files stored after':>26}")
        results: dict[str, float] = {"files": files, "max_abs_diff": diff}
        for name, run in runs.items():
            print(
                f"{name:<26}{run['files/s']:>9.1f}{run['files/s'] / base['files/s']:>15.2f}x"
                f"{run['first chunk after s']:>25.1f}s"
            )
            results[name] = run["files/s"]
        print("files/s over the whole `index` call (the model already loaded in the driver; Ray's actors load theirs)")
        print(f"same ids: {same_ids}; largest vector difference: {diff:.2e}")
        return results
    finally:
        ray.shutdown()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
