"""Audio files embed exactly as direct ``encode_document([path])`` calls whichever decoding backend
transformers picks: torchcodec (installed here) and soundfile + soxr (a process where torchcodec cannot
load, as on a machine without it), at 16, 22.05, 44.1 and 48 kHz, mono and stereo."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import soundfile as sf

RATES = (16_000, 22_050, 44_100, 48_000)

# The same check as _in_this_process, run in a process where torchcodec is shadowed by a package that fails to import, which
# transformers treats as "torchcodec unusable" (it then decodes with soundfile). Prints what it measured.
CHECK = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    from sentence_transformers import SentenceTransformer
    from transformers.utils.import_utils import is_torchcodec_usable
    from modalbridge import Audio, Embedder
    from modalbridge.media.audio import torchcodec_decodes_audio

    model_path, paths = sys.argv[1], sys.argv[2:]
    direct = SentenceTransformer(model_path, device="cpu").encode_document(paths, batch_size=1)
    ours = Embedder(model_path, device="cpu", batch_size=1).embed_documents([Audio(p) for p in paths])
    print(json.dumps({
        "transformers_uses_torchcodec": bool(is_torchcodec_usable(decode="audio")),
        "core_uses_torchcodec": torchcodec_decodes_audio(),
        "max_difference": float(np.abs(np.asarray(ours) - np.asarray(direct)).max()),
        "vectors": np.asarray(ours).tolist(),
    }))
    """
)


def _in_this_process(model_path: str, paths: list[str]) -> dict:
    from sentence_transformers import SentenceTransformer
    from transformers.utils.import_utils import is_torchcodec_usable

    from modalbridge import Audio, Embedder
    from modalbridge.media.audio import torchcodec_decodes_audio

    direct = SentenceTransformer(model_path, device="cpu").encode_document(paths, batch_size=1)
    ours = Embedder(model_path, device="cpu", batch_size=1).embed_documents([Audio(p) for p in paths])
    return {
        "transformers_uses_torchcodec": bool(is_torchcodec_usable(decode="audio")),
        "core_uses_torchcodec": torchcodec_decodes_audio(),
        "max_difference": float(np.abs(ours - direct).max()),
        "vectors": ours.tolist(),
    }


def _run(model_path: str, paths: list[str], shadow_dir: str | None) -> dict:
    env = dict(os.environ)
    if shadow_dir is not None:
        env["PYTHONPATH"] = shadow_dir + os.pathsep + env.get("PYTHONPATH", "")
    out = subprocess.run(
        [sys.executable, "-c", CHECK, model_path, *paths], env=env, capture_output=True, text=True, timeout=240
    )
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_audio_files_equal_direct_calls_with_either_backend(tiny_clap_path, tmp_path):
    rng = np.random.default_rng(0)
    paths = []
    for rate in RATES:
        t = np.arange(int(0.6 * rate)) / rate
        tone = 0.4 * np.sin(2 * np.pi * 440 * t) + 0.05 * rng.standard_normal(len(t))
        for channels in (1, 2):
            path = tmp_path / f"tone-{rate}-{channels}ch.wav"
            data = tone if channels == 1 else np.stack([tone, 0.5 * tone], axis=1)
            sf.write(path, data.astype(np.float32), rate, subtype="FLOAT")
            paths.append(str(path))

    shadow = tmp_path / "no-torchcodec" / "torchcodec"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text("raise ImportError('torchcodec is not usable in this process')\n")

    with_torchcodec = _in_this_process(tiny_clap_path, paths)
    without = _run(tiny_clap_path, paths, str(shadow.parent))
    assert with_torchcodec["transformers_uses_torchcodec"] and with_torchcodec["core_uses_torchcodec"]
    assert not without["transformers_uses_torchcodec"] and not without["core_uses_torchcodec"]
    assert with_torchcodec["max_difference"] <= 1e-6, with_torchcodec["max_difference"]
    assert without["max_difference"] <= 1e-6, without["max_difference"]
    # the backends really differ after resampling: following transformers' choice is what makes both equal
    difference = np.abs(np.asarray(with_torchcodec["vectors"]) - np.asarray(without["vectors"])).max()
    assert difference > 1e-6, difference
