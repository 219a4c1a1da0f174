"""The GPU benchmark runs end to end on the CPU with tiny models (its timings are printed, not asserted),
and its real-size model builders work (here with small sizes: the same code path)."""

import importlib.util
from pathlib import Path

import numpy as np
import torch
from sentence_transformers import SentenceTransformer

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "benchmark_gpu.py"


def _load_example():
    spec = importlib.util.spec_from_file_location("benchmark_gpu", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_benchmark_prints_every_method_for_both_models(shared_data_dir, tmp_path, capsys):
    rows = _load_example().main(
        ["--tiny", "--device", "cpu", "--images", "12", "--images-dir", str(shared_data_dir / "images"),
         "--clip-batch-size", "6", "--qwen-batch-size", "4", "--workers", "2", "--work-dir", str(tmp_path)]
    )
    methods = [(row["model"], row["method"]) for row in rows]
    assert methods == [
        ("CLIP tiny", "sentence-transformers encode(paths)"),
        ("CLIP tiny", "encode(pre-decoded images)"),
        ("CLIP tiny", "modalbridge, exact path (CPU decode)"),
        ("CLIP tiny", "modalbridge, device path (GPU decode)"),
        ("Qwen3-VL tiny", "sentence-transformers encode(paths)"),
        ("Qwen3-VL tiny", "encode(pre-decoded images)"),
        ("Qwen3-VL tiny", "modalbridge, exact path (CPU decode)"),
    ]
    for row in rows:
        assert row["images"] == 12 and row["images_per_s"] > 0 and row["peak_gpu_mb"] is None
        assert row["min_cosine"] > 0.999 and row["same_top1"], row
    assert rows[0]["ratio"] == 1.0 and rows[4]["ratio"] == 1.0
    out = capsys.readouterr().out
    assert "modalbridge, device path (GPU decode)" in out and "images/s" in out


def test_the_real_size_builders_produce_loadable_models(tmp_path, image_paths):
    example = _load_example()
    clip = SentenceTransformer(example.build_clip(tmp_path / "clip", example.CLIP_TINY), device="cpu")
    assert clip[0].processor.image_processor.crop_size["height"] == 32
    assert clip.encode_document([image_paths[0]]).shape == (1, 16)

    small = dict(
        text=dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=2,
                  num_key_value_heads=1, head_dim=32, mrope_section=[8, 4, 4]),
        vision=dict(depth=2, hidden_size=32, intermediate_size=64, num_heads=2, out_hidden_size=64,
                    num_position_embeddings=16, deepstack_visual_indexes=[1]),
        min_pixels=32 * 32,
        max_pixels=64 * 64,
    )
    qwen = SentenceTransformer(example.build_qwen3vl_embedder(tmp_path / "qwen", small, "cpu"), device="cpu")
    assert qwen[0].model.config.text_config.hidden_size == 64
    assert dict(qwen[0].processor.image_processor.size) == {"shortest_edge": 32 * 32, "longest_edge": 64 * 64}
    vectors = qwen.encode_document([image_paths[0], image_paths[1]])
    assert qwen[0].model.dtype == torch.bfloat16  # built in bf16, as on the GPU
    assert vectors.shape == (2, 64) and np.allclose(np.linalg.norm(vectors, axis=1), 1, atol=1e-2)
