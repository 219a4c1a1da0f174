"""Audio and video, side by side in one run: clips/s and videos/s of the core stream against what users
write instead, the vectors' agreement, and peak memory of 8 frames from a short and a long video.

AUDIO (demo CLAP by default, ``--audio-model``; the 4 real clips of ``shared/data/audio`` x ``--copies``;
same loaded model object and files for every method, best of ``--repeats`` interleaved runs):

1. ``encode(paths)``: sentence-transformers' own ``encode_document(paths)`` (transformers' ``load_audio``
   decodes each path: torchcodec where usable, else soundfile + soxr);
2. one clip per call: ``encode_document([path])`` in a loop;
3. decode yourself: soundfile reads each file, soxr (``soxr_hq``, as ``librosa.load``) resamples it to the
   feature extractor's rate, one ``encode_document([{"array": ..., "sampling_rate": ...}])`` per clip
   (librosa is not installed here; ``librosa.load`` is soundfile + soxr);
4. core stream: ``Embedder.embed_documents([Audio(p), ...])`` (the same model object: the core's cache).

VIDEO (a), an image model embedding a video as the mean of 8 evenly spaced frames (demo CLIP,
``video_frames=8``), on a SHORT (4 s) and a LONG (40 s) generated 640x360 30 fps H.264 clip (keyframe every
``--gop`` frames, as cameras write; smooth moving texture): the core (seeks to the sampled frames) against
decoding every frame with PyAV, picking the same 8 (``sample_indices``), ``encode_document(frames)`` and
the mean; videos/s, the core's long/short cost ratio, and peak RSS (VmHWM) of each in a fresh process.

VIDEO (b), a video model (a tiny random Qwen3-VL embedder, ``--video-model`` for another) on the short
clip: ``encode_document(paths)``, one video per call, and the core stream.

    python examples/benchmark_audio_video.py                        # defaults: ~2-3 min on 2 busy cores
    python examples/benchmark_audio_video.py --copies 16 --videos 8 --repeats 3
    python examples/benchmark_audio_video.py --long-seconds 120     # a longer long clip
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import subprocess
import sys
import tempfile
import time
from functools import partial
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
DEFAULT_AUDIO = HERE.parent.parent / "shared" / "data" / "audio"


def _best(functions: dict, repeats: int) -> tuple[dict[str, float], dict[str, object]]:
    """Best-of-``repeats`` seconds and the last result of each function, the runs interleaved
    (round-robin) so that the shared machine's noise hits every method alike."""
    best, results = {name: float("inf") for name in functions}, {}
    for _ in range(repeats):
        for name, function in functions.items():
            start = time.perf_counter()
            results[name] = function()
            best[name] = min(best[name], time.perf_counter() - start)
    return best, results


def _load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load: {one:.2f} {five:.2f} {fifteen:.2f}  cpus: {len(os.sched_getaffinity(0))}"


def _table(unit: str, count: int, timings: dict[str, float], base: str) -> dict[str, float]:
    print(f"{'method':<40}{unit + '/s':>10}  {'vs ' + base:>28}")
    rates = {}
    for name, seconds in timings.items():
        print(f"{name:<40}{count / seconds:>10.1f}  {timings[base] / seconds:>27.2f}x")
        rates[name] = count / seconds
    return rates


# -- audio ------------------------------------------------------------------------------------------------


def compare_audio(args: argparse.Namespace) -> dict[str, float]:
    import soundfile as sf
    import soxr
    from transformers.audio_utils import load_audio

    from modalbridge import Audio, Embedder
    from modalbridge.inputs import audio_sampling_rate, random_crop_length

    model_path = args.audio_model
    if model_path == "demo":
        from modalbridge.demo import demo_audio_embedder_path

        model_path = demo_audio_embedder_path()
    files = sorted(glob.glob(os.path.join(args.audio, "*.ogg")) + glob.glob(os.path.join(args.audio, "*.wav")))
    if not files:
        raise SystemExit(f"no .ogg or .wav files in {args.audio}")
    paths = files * args.copies
    core = Embedder(model_path, batch_size=args.batch_size)
    model = core.model
    rate, crop = audio_sampling_rate(model), random_crop_length(model)

    def decode_yourself(path: str) -> dict:
        waveform, source_rate = sf.read(path, dtype="float32", always_2d=True)
        waveform = waveform.mean(axis=1)
        if source_rate != rate:
            waveform = soxr.resample(waveform, source_rate, rate, quality="soxr_hq")
        return {"array": waveform, "sampling_rate": rate}

    methods = {
        "encode(paths)": lambda ps: model.encode_document(ps, batch_size=args.batch_size),
        "one clip per call": lambda ps: np.stack([model.encode_document([p])[0] for p in ps]),
        "soundfile+soxr, one encode per clip": lambda ps: np.stack(
            [model.encode_document([decode_yourself(p)])[0] for p in ps]
        ),
        "core stream (embed_documents)": lambda ps: core.embed_documents([Audio(p) for p in ps]),
    }
    for run in methods.values():  # warm-up: allocator, threads, the decoders' first-call costs
        run(files)
    timings, vectors = _best({name: partial(run, paths) for name, run in methods.items()}, args.repeats)

    durations = [sf.info(p).duration for p in files]
    print(f"\nAUDIO  model: {model_path}  clips: {len(paths)} ({len(files)} files x {args.copies}, "
          f"{min(durations):.1f}-{max(durations):.1f} s)  batch: {args.batch_size}  {_load()}")
    rates = _table("clips", len(paths), timings, "encode(paths)")
    ours = vectors["core stream (embed_documents)"][: len(files)]
    if crop is None:
        reference, against = vectors["encode(paths)"][: len(files)], "encode(paths)"
    else:
        # The feature extractor crops a clip longer than its window at a RANDOM offset (CLAP's
        # rand_trunc), so encode(paths) of such a clip changes from call to call; the core cuts it to the
        # window's first samples. The independent reference: the waveform transformers' load_audio
        # decodes for encode(paths), cut the same way, given to encode_document.
        waveforms = [load_audio(p, sampling_rate=rate)[:crop] for p in files]
        reference = model.encode_document([{"array": w, "sampling_rate": rate} for w in waveforms])
        against = f"encode_document(load_audio(path)[:{crop}])"
        again = model.encode_document(files)
        print(f"encode(paths) of the same clips twice differs by up to "
              f"{np.abs(again - vectors['encode(paths)'][: len(files)]).max():.2e} (random crop of clips "
              f"longer than {crop / rate:g} s)")
    diff = float(np.abs(ours - reference).max())
    print(f"max |core stream - {against}|: {diff:.2e}", flush=True)
    return {**{f"audio {k}": v for k, v in rates.items()}, "audio_max_diff": diff}


# -- video ------------------------------------------------------------------------------------------------


def write_clip(path: Path, seconds: float, width: int, height: int, fps: int = 30, gop: int = 30) -> str:
    """An H.264 clip of a smooth texture panning 2 pixels a frame under a slowly pulsing vertical
    gradient: it compresses like real footage (~1.8 Mbit/s at 640x360), unlike random noise."""
    import av
    from PIL import Image as PILImage

    rng = np.random.default_rng(0)
    small = rng.integers(0, 256, (max(2, height // 8), max(2, 2 * width // 8), 3), dtype=np.uint8)
    base = np.asarray(PILImage.fromarray(small).resize((2 * width, height), PILImage.BICUBIC)).astype(np.int16)
    ramp = np.linspace(-40, 40, height, dtype=np.float32)[:, None, None]
    with av.open(str(path), mode="w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.height, stream.width, stream.pix_fmt = height, width, "yuv420p"
        stream.options = {
            "crf": "23", "preset": "ultrafast", "threads": "2", "g": str(gop), "keyint_min": str(gop), "sc_threshold": "0"
        }
        for i in range(int(round(seconds * fps))):
            shift = (2 * i) % width
            frame = np.clip(base[:, shift : shift + width] + (ramp * np.sin(i / 20)).astype(np.int16), 0, 255)
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame.astype(np.uint8), format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return str(path)


def decode_all_mean(model, path: str, num_frames: int, normalize: bool) -> np.ndarray:
    """What users write without the core: decode every frame with PyAV, keep the same evenly spaced frames
    the core samples, embed them, average (normalized when the core's vectors are)."""
    import av

    from modalbridge.media.video import sample_indices

    with av.open(path) as container:
        frames = [frame.to_ndarray(format="rgb24") for frame in container.decode(container.streams.video[0])]
    picked = [frames[i] for i in sample_indices(len(frames), num_frames)]
    del frames
    mean = model.encode_document(picked).mean(axis=0)
    return mean / max(np.linalg.norm(mean), 1e-12) if normalize else mean


# The peak is this process's own (VmHWM, see modalbridge.testing.peak_rss_mb), not getrusage's ru_maxrss,
# which Linux carries over fork and exec (checked: a child of a 1.2 GB parent reads 1,175 MB from
# ru_maxrss, 9 MB from VmHWM).
_RSS_SCRIPT = """
import json, sys
sys.path.insert(0, sys.argv[1])
from benchmark_audio_video import decode_all_mean
from modalbridge import Embedder, Video
from modalbridge.testing import peak_rss_mb as peak_mb
model, method, frames, paths = sys.argv[2], sys.argv[3], int(sys.argv[4]), json.loads(sys.argv[5])
embedder = Embedder(model, video_frames=frames)
embedder.embed_documents(["warm-up"])
loaded = peak_mb()
if method == "core":
    vectors = embedder.embed_documents([Video(p) for p in paths])
else:
    vectors = [decode_all_mean(embedder.model, p, frames, embedder.normalizes) for p in paths]
assert len(vectors) == len(paths)
print(json.dumps([loaded, peak_mb()]))
"""


def peak_rss_mb(model: str, method: str, frames: int, paths: list[str]) -> tuple[float, float]:
    """(peak RSS once the model is loaded, peak RSS after embedding ``paths``) of a fresh process, MB."""
    out = subprocess.run(
        [sys.executable, "-c", _RSS_SCRIPT, str(HERE), model, method, str(frames), json.dumps(paths)],
        capture_output=True, text=True, check=True,
    )
    loaded, peak = json.loads(out.stdout.strip().splitlines()[-1])
    return float(loaded), float(peak)


def compare_video_frames(args: argparse.Namespace, clips: dict[str, str]) -> dict[str, float]:
    from modalbridge import Embedder, Video

    model_path = args.image_model
    if model_path == "demo":
        from modalbridge.demo import demo_embedder_path

        model_path = demo_embedder_path()
    core = Embedder(model_path, video_frames=args.frames, batch_size=args.batch_size)
    model, normalize = core.model, core.normalizes
    print(f"\nVIDEO (a)  image model: {model_path}  video_frames={args.frames}  {args.videos} videos per length  "
          f"{args.width}x{args.height} 30 fps H.264, keyframe every {args.gop}  {_load()}")
    def core_stream(paths: list[str]) -> np.ndarray:
        return core.embed_documents([Video(p) for p in paths])

    def decode_all(paths: list[str]) -> np.ndarray:
        return np.stack([decode_all_mean(model, p, args.frames, normalize) for p in paths])

    methods = {}
    for length, path in clips.items():
        core_stream([path]), decode_all([path])  # warm-up
        methods[f"core stream, {length}"] = partial(core_stream, [path] * args.videos)
        methods[f"decode all frames, {length}"] = partial(decode_all, [path] * args.videos)
    timings, vectors = _best(methods, args.repeats)
    results: dict[str, float] = {}
    for length in clips:
        diff = np.abs(vectors[f"core stream, {length}"] - vectors[f"decode all frames, {length}"]).max()
        results[f"video_frames_max_diff_{length}"] = float(diff)
    first = next(iter(clips))
    rates = _table("videos", args.videos, timings, f"decode all frames, {first}")
    for length in clips:
        print(f"{length}: core stream {timings[f'decode all frames, {length}'] / timings[f'core stream, {length}']:.2f}x "
              f"decode all frames; max |core - decode all|: {results[f'video_frames_max_diff_{length}']:.2e}")
    if {"short", "long"} <= set(clips):
        ratio = timings["core stream, long"] / timings["core stream, short"]
        decode_ratio = timings["decode all frames, long"] / timings["decode all frames, short"]
        print(f"time long/short: core stream {ratio:.2f}x (goal <= 1.5x), decode all frames {decode_ratio:.2f}x")
        results.update(core_long_short_ratio=ratio, decode_all_long_short_ratio=decode_ratio)
    results.update({f"video {k}": v for k, v in rates.items()})
    if args.rss:
        print(f"peak RSS of a fresh process embedding {args.videos} video(s) (model loaded -> peak):")
        for length in args.rss_lengths:
            line = f"  {length:<6}"
            for method, label in (("core", "core stream"), ("decode_all", "decode all frames")):
                loaded, peak = peak_rss_mb(model_path, method, args.frames, [clips[length]] * args.videos)
                results[f"rss_{method}_{length}"] = peak
                line += f"  {label} {loaded:6.0f} -> {peak:6.0f} MB (+{peak - loaded:4.0f})"
            print(line, flush=True)
    return results


def compare_video_model(args: argparse.Namespace, path: str, work: Path) -> dict[str, float]:
    from modalbridge import Embedder, Video

    model_path = args.video_model
    if model_path == "tiny-qwen3vl":
        from modalbridge.testing import build_tiny_qwen3vl_embedder

        model_path = build_tiny_qwen3vl_embedder(work / "qwen3vl")
    core = Embedder(model_path, batch_size=args.batch_size)
    model = core.model
    paths = [path] * args.videos
    methods = {
        "encode(paths)": lambda ps: model.encode_document(ps, batch_size=args.batch_size),
        "one video per call": lambda ps: np.stack([model.encode_document([p])[0] for p in ps]),
        "core stream (embed_documents)": lambda ps: core.embed_documents([Video(p) for p in ps]),
    }
    for run in methods.values():
        run([path])
    timings, vectors = _best({name: partial(run, paths) for name, run in methods.items()}, args.repeats)
    print(f"\nVIDEO (b)  video model: {args.video_model} ({model_path})  {args.videos} short videos  {_load()}")
    rates = _table("videos", len(paths), timings, "encode(paths)")
    diff = float(np.abs(vectors["core stream (embed_documents)"] - vectors["encode(paths)"]).max())
    print(f"max |core stream - encode(paths)|: {diff:.2e}", flush=True)
    return {**{f"video model {k}": v for k, v in rates.items()}, "video_model_max_diff": diff}


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--audio-model", default="demo", help="'demo' (the demo CLAP) or a model folder / hub name")
    parser.add_argument("--audio", default=str(DEFAULT_AUDIO), help="folder of .ogg / .wav clips")
    parser.add_argument("--copies", type=int, default=8, help="use every audio clip this many times")
    parser.add_argument("--image-model", default="demo", help="'demo' (the demo CLIP) or an image model for video (a)")
    parser.add_argument("--video-model", default="tiny-qwen3vl", help="'tiny-qwen3vl' or a video model for video (b)")
    parser.add_argument("--videos", type=int, default=4, help="videos per length and method")
    parser.add_argument("--frames", type=int, default=8, help="video_frames for the image model")
    parser.add_argument("--short-seconds", type=float, default=4.0)
    parser.add_argument("--long-seconds", type=float, default=40.0)
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--height", type=int, default=360)
    parser.add_argument("--gop", type=int, default=30, help="a keyframe every this many frames")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3, help="best of N interleaved runs per method")
    parser.add_argument("--rss-lengths", nargs="*", default=["short", "long"], choices=["short", "long"],
                        help="clip lengths whose peak RSS is measured (a fresh process per method and length)")
    parser.add_argument("--no-rss", dest="rss", action="store_false", help="skip the peak-RSS processes")
    parser.add_argument("--skip", nargs="*", default=[], choices=["audio", "frames", "video-model"])
    args = parser.parse_args(argv)

    results: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="benchmark_audio_video_") as tmp:
        work = Path(tmp)
        if "audio" not in args.skip:
            results.update(compare_audio(args))
        if {"frames", "video-model"} - set(args.skip):
            start = time.perf_counter()
            clips = {
                length: write_clip(work / f"{length}.mp4", seconds, args.width, args.height, gop=args.gop)
                for length, seconds in (("short", args.short_seconds), ("long", args.long_seconds))
            }
            sizes = ", ".join(f"{k} {os.path.getsize(v) / 1e6:.1f} MB" for k, v in clips.items())
            print(f"\nwrote the clips in {time.perf_counter() - start:.1f} s: {sizes}", flush=True)
            if "frames" not in args.skip:
                results.update(compare_video_frames(args, clips))
            if "video-model" not in args.skip:
                results.update(compare_video_model(args, clips["short"], work))
    return results


if __name__ == "__main__":
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    main()
