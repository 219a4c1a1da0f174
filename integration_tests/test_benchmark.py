"""The benchmark script runs and its three methods agree (its timings are printed, not asserted)."""

import importlib.util
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "benchmark_image_embedding.py"


def test_benchmark_runs_and_methods_agree(tiny_clip_path, shared_data_dir, capsys):
    spec = importlib.util.spec_from_file_location("benchmark_image_embedding", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    results = module.main(
        ["--model", tiny_clip_path, "--images", str(shared_data_dir / "images"), "--copies", "1", "--repeats", "1"]
    )
    assert results["items"] == 12
    assert results["max_abs_diff"] < 1e-5
    assert results["speedup_vs_per_item"] > 0 and results["speedup_vs_st_batched"] > 0
    assert "ratio modalbridge / one item per call" in capsys.readouterr().out
