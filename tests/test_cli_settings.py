"""Model settings on the command line: ``modalbridge index/search --normalize --truncate-dim N --pdf-dpi D
--decode-workers N ...``, derived from the declaration in ``modalbridge.settings``.

A new collection stores the settings that decide its vectors (checked against sentence-transformers and
pypdfium2 called directly); on an existing collection those must match (exit 2, naming the flag) and
the machine-local ones apply to the run; the audio model's collection gets no picture settings; a flag
that does not apply (late interaction, a bad value) is an error naming it.
"""

from __future__ import annotations

import shutil

import chromadb
import numpy as np
import pypdfium2
import pytest
from PIL import Image as PILImage
from sentence_transformers import SentenceTransformer

from modalbridge import Audio, Embedder, testing
from modalbridge.cli import main
from modalbridge.cli.indexing import MediaIndex, file_id, open_client
from modalbridge.cli.main import build_parser
from modalbridge.cli.model_settings import NOT_ON_THE_COMMAND_LINE, command_settings
from modalbridge.settings import SETTINGS


def _collection(db, name="modalbridge"):
    return chromadb.PersistentClient(path=str(db)).get_collection(name)


def _stored_config(db, name="modalbridge") -> dict:
    return _collection(db, name).configuration_json["embedding_function"]["config"]


def test_index_and_search_take_every_embedder_flag_of_the_declaration():
    flags = {a.dest: a.option_strings for a in build_parser()._subparsers._group_actions[0].choices["index"]._actions}
    search = {a.dest for a in build_parser()._subparsers._group_actions[0].choices["search"]._actions}
    declared = {n for n, s in SETTINGS.items() if s.cli and "embedder" in s.applies_to}
    assert set(command_settings()) == declared - set(NOT_ON_THE_COMMAND_LINE) == declared - {"allow_fetch"}
    for name in command_settings():
        assert flags[name] == [SETTINGS[name].cli] and name in search
    assert "allow_fetch" not in flags and "allow_fetch" not in search
    assert SETTINGS["pdf_dpi"].cli == "--pdf-dpi"


def test_normalize_and_truncate_dim_decide_the_stored_vectors(tmp_path, image_paths, tiny_clip_path, capsys):
    folder = tmp_path / "media"
    folder.mkdir()
    for source in image_paths[:2]:
        shutil.copy(source, folder)
    (folder / "note.txt").write_text("a note about a red bicycle", encoding="utf-8")
    db = tmp_path / "db"
    base = ["index", str(folder), "--db", str(db), "-q"]
    assert main([*base, "--model", tiny_clip_path, "--normalize", "--truncate-dim", "8", "--decode-workers", "1"]) == 0
    assert "3 added" in capsys.readouterr().out

    model = SentenceTransformer(tiny_clip_path, device="cpu")
    photos = sorted(file_id(p) for p in folder.glob("*.jpg"))
    ids = photos + [file_id(folder / "note.txt")]

    def direct(paths):  # one modality per call, as sentence-transformers asks
        def encode(inputs):
            return model.encode_document(inputs, normalize_embeddings=True, truncate_dim=8)

        return np.stack([
            encode([PILImage.open(p).convert("RGB")])[0] if p.endswith(".jpg") else encode([open(p, encoding="utf-8").read()])[0]
            for p in paths
        ])

    got = _collection(db).get(ids=ids, include=["embeddings"])
    stored = np.stack([got["embeddings"][got["ids"].index(i)] for i in ids])
    assert stored.shape == (3, 8)
    np.testing.assert_allclose(stored, direct(ids), rtol=1e-5, atol=1e-5)
    config = _stored_config(db)
    assert config["normalize"] is True and config["truncate_dim"] == 8
    assert "decode_workers" not in config and "device" not in config  # machine-local: never stored

    # Another --truncate-dim would mix vectors of two sizes: refused, naming the setting and the flag.
    assert main([*base, "--truncate-dim", "4"]) == 2
    err = capsys.readouterr().err
    assert "truncate_dim (8 -> 4)" in err and "leave out --truncate-dim" in err and "Traceback" not in err
    assert _collection(db).count() == 3

    # Machine-local flags apply to this run of the existing collection; the stored settings still decide.
    shutil.copy(image_paths[2], folder)
    assert main([*base, "--decode-workers", "1", "--batch-size", "2", "--normalize", "--truncate-dim", "8"]) == 0
    assert "1 added, 0 updated, 3 unchanged" in capsys.readouterr().out
    new = file_id(folder / image_paths[2].rsplit("/", 1)[-1])
    np.testing.assert_allclose(_collection(db).get(ids=[new], include=["embeddings"])["embeddings"], direct([new]), rtol=1e-5, atol=1e-5)

    # search: machine-local flags taken, the query embedded with the stored settings, stored ones checked.
    search = ["search", "a red bicycle", "--db", str(db), "-k", "2"]
    assert main([*search, "--decode-workers", "1", "--image-decode", "cpu", "--device", "cpu"]) == 0
    rows = [line.split()[3] for line in capsys.readouterr().out.splitlines()[1:] if line.strip()[:1].isdigit()]
    query = model.encode_query(["a red bicycle"], normalize_embeddings=True, truncate_dim=8)
    assert rows == _collection(db).query(query_embeddings=query, n_results=2)["ids"][0]
    assert main([*search, "--truncate-dim", "16"]) == 2
    assert "truncate_dim (8 -> 16)" in capsys.readouterr().err


def test_pdf_dpi_flag_renders_pages_at_that_resolution(tmp_path, tiny_clip_path, capsys):
    folder = tmp_path / "docs"
    pdf = testing.make_test_pdf(folder / "doc.pdf", ((200, 100), (100, 150)), rotations={})
    db = tmp_path / "db"
    assert main(["index", str(folder), "--db", str(db), "--model", tiny_clip_path, "--pdf-dpi", "72", "-q"]) == 0
    assert _stored_config(db)["pdf_dpi"] == 72

    document = pypdfium2.PdfDocument(pdf)
    pages = [document[n].render(scale=1.0).to_pil().convert("RGB") for n in range(2)]  # 72 dpi: 1 px per point
    document.close()
    assert [p.size for p in pages] == [(200, 100), (100, 150)]
    direct = SentenceTransformer(tiny_clip_path, device="cpu").encode_document(pages)
    ids = [f"{file_id(pdf)}#page={n}" for n in (1, 2)]
    got = _collection(db).get(ids=ids, include=["embeddings"])
    stored = np.stack([got["embeddings"][got["ids"].index(i)] for i in ids])
    np.testing.assert_allclose(stored, direct, rtol=1e-5, atol=1e-5)
    # ... which is not what the default resolution gives: the flag changed the rendering.
    from modalbridge import PdfPage

    default = Embedder(tiny_clip_path, device="cpu").embed_documents([PdfPage(pdf, page=n) for n in (1, 2)])
    assert not np.allclose(stored, default, atol=1e-4)


def test_the_audio_collection_gets_no_picture_settings(tmp_path, image_paths, audio_paths, tiny_clip_path, tiny_clap_path, capsys):
    folder = tmp_path / "media"
    folder.mkdir()
    shutil.copy(image_paths[0], folder)
    robin = shutil.copy(next(p for p in audio_paths if "robin" in p), folder)
    db = tmp_path / "db"
    args = ["index", str(folder), "--db", str(db), "--model", tiny_clip_path, "--audio-model", tiny_clap_path, "-q",
            "--normalize", "--video-frames", "4", "--pdf-dpi", "100", "--reduced-jpeg-decode"]
    assert main(args) == 0
    main_config, audio_config = _stored_config(db), _stored_config(db, "modalbridge-audio")
    assert (main_config["normalize"], main_config["video_frames"], main_config["pdf_dpi"], main_config["reduced_jpeg_decode"]) == (True, 4, 100, True)
    assert audio_config["normalize"] is True
    assert (audio_config["video_frames"], audio_config["pdf_dpi"], audio_config["reduced_jpeg_decode"]) == (None, None, False)
    vector = _collection(db, "modalbridge-audio").get(include=["embeddings"])["embeddings"][0]
    np.testing.assert_allclose(vector, Embedder(tiny_clap_path, normalize=True).embed_document(Audio(file_id(robin))), rtol=1e-5, atol=1e-5)
    # Again with the same flags: both collections match (the audio one is not asked about pictures).
    assert main(args) == 0
    assert "0 added, 0 updated, 2 unchanged" in capsys.readouterr().out

    # An index holding audio only (no file went to the main model, so only NAME-audio exists) has no
    # collection for a picture flag: refused, naming it.
    assert main(["index", robin, "--db", str(tmp_path / "db2"), "--model", tiny_clip_path, "--audio-model", tiny_clap_path, "-q"]) == 0
    assert [c.name for c in chromadb.PersistentClient(path=str(tmp_path / "db2")).list_collections()] == ["modalbridge-audio"]
    assert main(["search", "a bird", "--db", str(tmp_path / "db2"), "--pdf-dpi", "100"]) == 2
    err = capsys.readouterr().err
    assert "pdf_dpi (--pdf-dpi): about images and videos, but this index has no collection 'modalbridge'" in err
    assert main(["search", "a bird", "--db", str(tmp_path / "db2"), "--normalize"]) == 2  # stored: checked
    assert "normalize (False -> True)" in capsys.readouterr().err


def test_bad_values_are_argparse_errors_from_the_declaration(capsys):
    for flag, value, message in [
        ("--truncate-dim", "0", "--truncate-dim must be a positive integer or None, got 0"),
        ("--image-decode", "fast", "--image-decode must be one of cpu, gpu, auto, got 'fast'"),
        ("--pdf-dpi", "5", "pdf_dpi must be None or a number from 10 to 1200, got 5"),
    ]:
        with pytest.raises(SystemExit) as exit_info:
            main(["index", "x", flag, value])
        assert exit_info.value.code == 2
        assert f"argument {flag}: {message}" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["index", "x", "--allow-fetch"])  # index and search read local files only
    assert "unrecognized arguments: --allow-fetch" in capsys.readouterr().err


def test_media_index_takes_settings_as_one_mapping(tmp_path, tiny_clip_path):
    client = open_client(tmp_path / "db")
    index = MediaIndex(client, "x", model=tiny_clip_path, settings={"truncate_dim": 8, "decode_workers": 1}, device="cpu")
    assert index.main.embedder.encode_settings.truncate_dim == 8
    assert index.main.embedder.encode_settings.decode_workers == 1
    assert index.main.embedder.load_settings.device == "cpu" and index.main.embedder.encode_settings.video_frames == 8
    with pytest.raises(TypeError, match=r"device is given twice with different values: 'cuda' \(settings\) and 'cpu'"):
        MediaIndex(client, "x", model=tiny_clip_path, settings={"device": "cuda"}, device="cpu")
    with pytest.raises(TypeError, match="MediaIndex got unknown settings: nope"):
        MediaIndex(client, "x", model=tiny_clip_path, settings={"nope": 1})


def test_late_interaction_takes_its_settings_and_refuses_the_others(tmp_path, tiny_colqwen2_path, capsys):
    from modalbridge.chroma import LateInteractionCollection

    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "note.txt").write_text("a note about a red bicycle", encoding="utf-8")
    db = tmp_path / "db"
    base = ["index", str(folder), "--db", str(db), "--device", "cpu", "-q"]
    assert main([*base, "--multi-vector", tiny_colqwen2_path, "--truncate-dim", "8", "--image-decode", "cpu"]) == 2
    err = capsys.readouterr().err
    assert "does not take truncate_dim (--truncate-dim): multi-vector models have no truncate_dim" in err
    assert "image_decode (--image-decode)" in err
    assert not (db.exists() and chromadb.PersistentClient(path=str(db)).list_collections())

    assert main([*base, "--multi-vector", tiny_colqwen2_path, "--max-length", "32"]) == 0
    opened = LateInteractionCollection.open(chromadb.PersistentClient(path=str(db)), "modalbridge")
    assert opened.embedder.load_settings.max_length == 32
    (folder / "other.txt").write_text("another note", encoding="utf-8")
    assert main([*base, "--decode-workers", "1", "--batch-size", "1"]) == 0  # machine-local: this run
    assert "1 added, 0 updated, 1 unchanged" in capsys.readouterr().out
    assert main([*base, "--max-length", "16"]) == 2
    err = capsys.readouterr().err
    assert "max_length (--max-length) (32 -> 16)" in err and "leave out --max-length" in err
