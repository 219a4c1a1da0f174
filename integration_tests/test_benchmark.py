"""The benchmark script runs, its three methods agree, and the ratios it reports are the ones its
measured rates give (timings are printed, not asserted: speed goals are met in benchmarks, not tests)."""

import importlib.util
import re
from pathlib import Path

import pytest

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
    # The ratios are what the measured rates say (items/s of modalbridge over each other method), and
    # the printed table carries exactly those numbers.
    assert results["speedup_vs_per_item"] == pytest.approx(
        results["modalbridge_items_per_s"] / results["per_item_items_per_s"], rel=1e-9
    )
    assert results["speedup_vs_st_batched"] == pytest.approx(
        results["modalbridge_items_per_s"] / results["st_batched_items_per_s"], rel=1e-9
    )
    out = capsys.readouterr().out
    printed = {
        "one item per call": results["per_item_items_per_s"],
        "sentence-transformers encode(paths)": results["st_batched_items_per_s"],
        "modalbridge Embedder (parallel decode)": results["modalbridge_items_per_s"],
    }
    for method, rate in printed.items():
        line = next(line for line in out.splitlines() if line.startswith(method))
        assert float(line[len(method):]) == pytest.approx(rate, abs=0.051)
    ratio = re.search(r"ratio modalbridge / one item per call: ([0-9.]+)x", out)
    assert float(ratio.group(1)) == pytest.approx(results["speedup_vs_per_item"], abs=0.0051)
