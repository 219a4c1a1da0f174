"""The audio and video benchmark runs end to end with tiny sizes, every method's vectors agree with its
reference, and the printed ratios are the ones its measured rates give (timings are printed, not
asserted: speed goals are met in benchmarks, not tests)."""

import importlib.util
from pathlib import Path

import pytest

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "benchmark_audio_video.py"


def test_the_benchmark_runs_every_method_and_the_vectors_agree(shared_data_dir, capsys):
    spec = importlib.util.spec_from_file_location("benchmark_audio_video", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    results = module.main(
        ["--audio", str(shared_data_dir / "audio"), "--copies", "1", "--repeats", "1", "--videos", "2",
         "--short-seconds", "1", "--long-seconds", "3", "--width", "96", "--height", "64", "--gop", "10", "--no-rss"]
    )
    audio = ["encode(paths)", "one clip per call", "soundfile+soxr, one encode per clip", "core stream (embed_documents)"]
    frames = [f"{method}, {length}" for length in ("short", "long") for method in ("core stream", "decode all frames")]
    model = ["encode(paths)", "one video per call", "core stream (embed_documents)"]
    expected = [f"audio {m}" for m in audio] + [f"video {m}" for m in frames] + [f"video model {m}" for m in model]
    for name in expected:
        assert results[name] > 0, name
    # The core equals the independent references: the cropped load_audio waveform through encode_document,
    # a full PyAV decode's sampled frames averaged by hand, and encode(paths) of the video model.
    assert results["audio_max_diff"] <= 1e-5
    assert results["video_frames_max_diff_short"] <= 1e-5 and results["video_frames_max_diff_long"] <= 1e-5
    assert results["video_model_max_diff"] <= 1e-5
    assert not any(key.startswith("rss_") for key in results)  # --no-rss: no memory processes

    out = capsys.readouterr().out
    base = results["audio encode(paths)"]
    for method in audio:  # the printed rate and ratio of each audio method are the measured ones
        line = next(line for line in out.splitlines() if line.startswith(method) and "clips" not in line)
        rate, ratio = line[len(method):].split()
        assert float(rate) == pytest.approx(results[f"audio {method}"], abs=0.051)
        assert float(ratio.rstrip("x")) == pytest.approx(results[f"audio {method}"] / base, abs=0.0051)
    long_short = results["video core stream, short"] / results["video core stream, long"]
    assert results["core_long_short_ratio"] == pytest.approx(long_short, rel=1e-9)
    assert f"time long/short: core stream {long_short:.2f}x" in out
