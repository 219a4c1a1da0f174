"""The late-interaction benchmark runs, and with every record a candidate the two-stage search is exact."""

import importlib.util
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "benchmark_late_interaction.py"


def test_benchmark_runs_and_is_exact_with_every_record_a_candidate(tmp_path, capsys):
    spec = importlib.util.spec_from_file_location("benchmark_late_interaction", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    results = module.main(["--records", "30", "--queries", "4", "-k", "5", "--candidates", "10,30", "--device", "cpu", "--out", str(tmp_path)])
    out = capsys.readouterr().out
    for name in ("muvera", "mean"):
        assert results[name]["candidates"][30]["recall"] == 1.0  # every record rescored: exhaustive MaxSim
        assert 0.0 <= results[name]["candidates"][10]["recall"] <= 1.0
        assert results[name]["store_bytes_per_record"] > 0 and results[name]["chroma_bytes_per_record"] > 0
    pooled = results["muvera + pooling x2"]
    assert pooled["store_bytes_per_record"] < results["muvera"]["store_bytes_per_record"]  # fewer tokens stored
    assert "Recall@5" in out and "exhaustive MaxSim over 30 records" in out
