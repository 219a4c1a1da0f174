"""Threads or processes for the streaming pipeline's worker stages? Each stage, side by side in one run:
serial, a thread pool and a process pool of ``--workers`` workers (default: the CPUs this process may
use), the results brought back to this process as the pipeline needs them.

Stages: image decode (Pillow, the 12 COCO photos), the CLIP processor on decoded images, audio decode
and resampling (soundfile + soxr), video frame sampling (PyAV, 8 frames of a generated clip).

    python examples/benchmark_pipeline_workers.py
"""

from __future__ import annotations

import argparse
import glob
import multiprocessing
import os
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path

DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data"


def decode_image(path: str):
    from modalbridge import Image
    from modalbridge.media import decode_image as decode

    return decode(Image(path))


def process_images(args: tuple[str, list[str]]):
    model_path, paths = args
    return _processor(model_path)(images=[decode_image(p) for p in paths], return_tensors="pt")["pixel_values"]


_PROCESSORS: dict = {}


def _processor(model_path: str):
    if model_path not in _PROCESSORS:
        from transformers import AutoProcessor

        _PROCESSORS[model_path] = AutoProcessor.from_pretrained(model_path)
    return _PROCESSORS[model_path]


def resample_audio(path: str):
    from modalbridge import Audio
    from modalbridge.media import decode_audio

    return decode_audio(Audio(path), 48_000)


def sample_video(path: str):
    from modalbridge import Video
    from modalbridge.media import sample_video_frames

    return sample_video_frames(Video(path), 8)


def _run(function, values, pool_kind: str, workers: int) -> float:
    """Seconds for one pass over ``values``, timed after a warm-up pass over the first few: a pipeline's
    workers are long-lived, so their start-up (and a process's imports) is not part of the steady rate."""
    if pool_kind == "serial":
        function(values[0])
        start = time.perf_counter()
        [function(v) for v in values]
        return time.perf_counter() - start
    if pool_kind == "threads":
        pool = ThreadPoolExecutor(workers)
    else:
        # spawn, not fork: forking a process whose torch/OpenMP threads are already running deadlocks the
        # children (the processor stage hung here with the default fork context).
        pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"))
    with pool:
        list(pool.map(function, values[:workers]))
        start = time.perf_counter()
        list(pool.map(function, values))
        return time.perf_counter() - start


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workers", type=int, default=len(os.sched_getaffinity(0)))
    parser.add_argument("--copies", type=int, default=4)
    args = parser.parse_args(argv)

    from modalbridge.demo import demo_embedder_path
    from modalbridge.testing import make_test_video

    images = sorted(glob.glob(str(DATA / "images" / "*.jpg"))) * args.copies
    audio = sorted(glob.glob(str(DATA / "audio" / "*.ogg")))
    video = make_test_video(Path(tempfile.mkdtemp()) / "clip.mp4", num_frames=240, size=(240, 320), fps=30)
    model = demo_embedder_path()
    batches = [(model, images[i : i + 16]) for i in range(0, len(images), 16)]
    stages = {
        "image decode": (decode_image, images),
        "decode + CLIP processor": (process_images, batches),
        "audio decode + resample": (resample_audio, audio),
        "video: 8 sampled frames": (sample_video, [video] * 8),
    }
    print(f"workers: {args.workers}  load: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"{'stage':<28}{'serial s':>10}{'threads s':>11}{'processes s':>13}")
    for name, (function, values) in stages.items():
        serial = _run(function, values, "serial", 1)
        threads = _run(function, values, "threads", args.workers)
        processes = _run(function, values, "processes", args.workers)
        print(f"{name:<28}{serial:>10.2f}{threads:>11.2f}{processes:>13.2f}")


if __name__ == "__main__":
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    main()
