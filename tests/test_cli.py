"""The ``modalbridge`` command line through ``main([...])``: index, re-index, search, rerank, errors.

Tiny random-weight models (from the root conftest): results are checked against direct core calls
and on exact duplicates (an image query that is an indexed file comes back first with similarity 1).
"""

from __future__ import annotations

import os
import shutil
from html.parser import HTMLParser
from pathlib import Path

import chromadb
import numpy as np
import pytest

from modalbridge import Audio, Embedder, Image, Reranker, Video
from modalbridge.cli import main
from modalbridge.cli.indexing import MediaIndex, embed_each_or_fail, file_id, open_client, query_item

SETTINGS = chromadb.Settings(anonymized_telemetry=False)


@pytest.fixture()
def media(tmp_path, image_paths, audio_paths) -> Path:
    """Three real photos, the shortest real audio clip, a text note, a corrupt .jpg and an .rst file."""
    folder = tmp_path / "media"
    (folder / "sub").mkdir(parents=True)
    for source in image_paths[:2]:
        shutil.copy(source, folder)
    shutil.copy(image_paths[2], folder / "sub")
    robin = next(p for p in audio_paths if "robin" in p)
    shutil.copy(robin, folder / "sub")
    (folder / "note.txt").write_text("a note about a red bicycle", encoding="utf-8")
    (folder / "bad.jpg").write_bytes(b"this is not a jpeg")
    (folder / "readme.rst").write_text("not indexed")
    (folder / ".hidden.jpg").write_bytes(b"hidden files are skipped")
    return folder


def _index_args(media, db, clip, clap, *extra):
    return ["index", str(media), "--db", str(db), "--model", clip, "--audio-model", clap, "-q", *extra]


def _collection(db, name="modalbridge"):
    return chromadb.PersistentClient(path=str(db), settings=SETTINGS).get_collection(name)


def test_index_stores_everything_but_the_bad_file(media, tmp_path, tiny_clip_path, tiny_clap_path, capsys):
    db = tmp_path / "db"
    code = main(_index_args(media, db, tiny_clip_path, tiny_clap_path))
    out = capsys.readouterr().out
    assert code == 1  # stored what it could, some files failed
    bad = file_id(media / "bad.jpg")
    assert "5 added, 0 updated, 0 unchanged, 1 failed" in out  # 3 photos + note, and the robin clip
    assert f"  {bad}: cannot decode image (cannot identify image file" in out
    assert "1 other files in those folders are not images, audio, video or text" in out

    main_collection, audio_collection = _collection(db), _collection(db, "modalbridge-audio")
    photos = sorted(file_id(p) for p in [*media.glob("*.jpg"), *media.glob("sub/*.jpg")] if p.name not in ("bad.jpg", ".hidden.jpg"))
    records = main_collection.get(include=["metadatas", "uris", "documents", "embeddings"])
    assert sorted(records["ids"]) == sorted(photos + [file_id(media / "note.txt")])
    assert bad not in records["ids"]
    by_id = {i: k for k, i in enumerate(records["ids"])}
    for path in photos:
        k = by_id[path]
        assert records["uris"][k] == path
        meta = records["metadatas"][k]
        assert meta["path"] == path and meta["modality"] == "image" and meta["size"] == os.path.getsize(path)
        assert meta["mtime_ns"] == os.stat(path).st_mtime_ns and len(meta["sha256"]) == 64
    note = by_id[file_id(media / "note.txt")]
    assert records["documents"][note] == "a note about a red bicycle"
    assert records["metadatas"][note]["modality"] == "text"

    # The stored vectors are the core's document embeddings.
    direct = Embedder(tiny_clip_path).embed_documents([Image(p) for p in photos] + ["a note about a red bicycle"])
    stored = np.stack([records["embeddings"][by_id[i]] for i in photos + [file_id(media / "note.txt")]])
    np.testing.assert_allclose(stored, direct, rtol=1e-5, atol=1e-5)

    audio = audio_collection.get(include=["metadatas", "embeddings"])
    robin = file_id(next(media.glob("sub/*.ogg")))
    assert audio["ids"] == [robin] and audio["metadatas"][0]["modality"] == "audio"
    np.testing.assert_allclose(
        audio["embeddings"][0], Embedder(tiny_clap_path).embed_document(Audio(robin)), rtol=1e-5, atol=1e-5
    )


def test_reindex_skips_unchanged_and_updates_modified(media, tmp_path, tiny_clip_path, tiny_clap_path, capsys):
    db = tmp_path / "db"
    args = _index_args(media, db, tiny_clip_path, tiny_clap_path)
    main(args)
    capsys.readouterr()

    assert main(args) == 1
    out = capsys.readouterr().out
    assert "0 added, 0 updated, 5 unchanged, 1 failed" in out
    assert _collection(db).count() == 4 and _collection(db, "modalbridge-audio").count() == 1

    # Same content, new mtime: unchanged (only the mtime is remembered). New content: updated.
    note = media / "note.txt"
    os.utime(note, ns=(os.stat(note).st_atime_ns, os.stat(note).st_mtime_ns + 5_000_000_000))
    photo = media / os.path.basename(sorted(os.listdir(media))[1])
    assert photo.suffix == ".jpg" and photo.name[0].isdigit()
    from PIL import Image as PILImage

    PILImage.open(photo).rotate(90, expand=True).save(photo)
    (media / "bad.jpg").unlink()
    main(args[:-1] + ["--quiet"])
    out = capsys.readouterr().out
    assert "0 added, 1 updated, 4 unchanged, 0 failed" in out
    collection = _collection(db)
    assert collection.count() == 4
    got = collection.get(ids=[file_id(photo), file_id(note)], include=["embeddings", "metadatas"])
    by_id = dict(zip(got["ids"], range(2)))
    np.testing.assert_allclose(
        got["embeddings"][by_id[file_id(photo)]], Embedder(tiny_clip_path).embed_document(Image(str(photo))), rtol=1e-5, atol=1e-5
    )
    assert got["metadatas"][by_id[file_id(note)]]["mtime_ns"] == os.stat(note).st_mtime_ns

    # Unreadable after a change: reported, and its stale entry is removed.
    photo.write_bytes(b"broken now")
    assert main(args) == 1
    out = capsys.readouterr().out
    assert f"{file_id(photo)}: cannot decode image" in out and "(its previous entry was removed)" in out
    assert collection.count() == 3


def test_search_image_returns_that_photo_first_and_writes_a_page(media, tmp_path, tiny_clip_path, tiny_clap_path, capsys):
    db = tmp_path / "db"
    main(_index_args(media, db, tiny_clip_path, tiny_clap_path))
    capsys.readouterr()
    photo = file_id(media / sorted(os.listdir(media))[2])
    assert os.path.basename(photo)[0].isdigit() and photo.endswith(".jpg")
    page = tmp_path / "out" / "results.html"

    code = main(["search", "--image", photo, "--db", str(db), "-k", "3", "--html", str(page)])
    out = capsys.readouterr().out
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split() == ["rank", "score", "modality", "path"]
    assert lines[1].split() == ["1", "1.0000", "image", photo]
    assert len([line for line in lines if line.strip()[:1].isdigit()]) == 3
    assert f"results page: {page}" in out

    cards = _cards(page.read_text(encoding="utf-8"))
    assert [c["data-rank"] for c in cards] == ["1", "2", "3"]
    assert cards[0]["data-path"] == photo and cards[0]["data-modality"] == "image"


def test_search_text_matches_a_direct_chroma_query(media, tmp_path, tiny_clip_path, tiny_clap_path, capsys):
    db = tmp_path / "db"
    main(_index_args(media, db, tiny_clip_path, tiny_clap_path))
    capsys.readouterr()
    assert main(["search", "a red bicycle", "--db", str(db), "--modality", "image", "-k", "2"]) == 0
    out = capsys.readouterr().out
    paths = [line.split()[3] for line in out.splitlines()[1:] if line.strip()[:1].isdigit()]

    query = Embedder(tiny_clip_path).embed_query("a red bicycle")
    expected = _collection(db).query(query_embeddings=[query], n_results=2, where={"modality": "image"})
    assert paths == expected["ids"][0]


def test_text_query_is_never_read_as_a_file(media):
    photo = str(media / "sub" / sorted(os.listdir(media / "sub"))[0])
    assert query_item(photo) == photo  # a str is text
    assert query_item(image=photo) == Image(photo)
    assert query_item(audio=photo).modality == "audio"


def test_search_merges_collections_and_filters_by_modality(media, tmp_path, tiny_clip_path, tiny_clap_path):
    client = open_client(tmp_path / "db")
    index = MediaIndex(client, "mixed", model=tiny_clip_path, audio_model=tiny_clap_path)
    index.index([media])
    everything = index.search("a robin singing", k=10)
    assert {h.collection for h in everything.hits} == {"mixed", "mixed-audio"}
    assert [h.rank for h in everything.hits] == list(range(1, 6))
    assert all(a.score >= b.score for a, b in zip(everything.hits, everything.hits[1:]))
    assert any("merged by similarity" in note for note in everything.notes)
    only_audio = index.search("a robin singing", k=10, modality="audio")
    assert [h.modality for h in only_audio.hits] == ["audio"] and not only_audio.notes


def test_rerank_orders_like_the_core_reranker(media, tmp_path, tiny_clip_path, tiny_clap_path, tiny_qwen3vl_reranker_path, capsys):
    db = tmp_path / "db"
    main(_index_args(media, db, tiny_clip_path, tiny_clap_path))
    capsys.readouterr()
    args = ["search", "a red bicycle", "--db", str(db), "-k", "5", "--reranker", tiny_qwen3vl_reranker_path, "--top-n", "2"]
    assert main(args) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0].split() == ["rank", "score", "was", "modality", "path"]
    rows = [line.split() for line in lines[1:] if line.strip()[:1].isdigit()]
    assert len(rows) == 2

    # The same candidates, scored by the core reranker directly.
    query = Embedder(tiny_clip_path).embed_query("a red bicycle")
    found = _collection(db).query(query_embeddings=[query], n_results=4, include=["documents", "uris", "metadatas"])
    audio = _collection(db, "modalbridge-audio").get()["ids"]
    candidates = [
        found["documents"][0][j] if found["metadatas"][0][j]["modality"] == "text" else Image(found["uris"][0][j])
        for j in range(len(found["ids"][0]))
    ]
    ranked = Reranker(tiny_qwen3vl_reranker_path).rank("a red bicycle", candidates, top_n=2)
    assert [row[4] for row in rows] == [found["ids"][0][hit.index] for hit in ranked]
    assert [float(row[1]) for row in rows] == pytest.approx([hit.score for hit in ranked], abs=1e-4)
    # The robin clip was a candidate too (5 = 4 main + 1 audio) but this reranker takes no audio: said so.
    assert audio and "1 audio candidate(s) not reranked and not shown" in out


def test_unloadable_model_exits_2_with_the_message(media, tmp_path, capsys):
    missing = str(tmp_path / "no-such-model")
    code = main(["index", str(media), "--db", str(tmp_path / "db"), "--model", missing, "-q"])
    captured = capsys.readouterr()
    assert code == 2
    assert f"modalbridge: error: could not load model {missing!r}" in captured.err
    assert "HF_HUB_OFFLINE=1 is set" in captured.err and "Traceback" not in captured.err

    code = main(["index", str(media), "--db", str(tmp_path / "db2"), "--model", "nobody/no-such-model", "-q"])
    err = capsys.readouterr().err
    assert code == 2 and "could not load model 'nobody/no-such-model'" in err


def test_search_errors_exit_2(media, tmp_path, tiny_clip_path, tiny_clap_path, capsys):
    assert main(["search", "cats", "--db", str(tmp_path / "missing")]) == 2
    assert "no index at" in capsys.readouterr().err
    assert not (tmp_path / "missing").exists()  # searching creates nothing

    db = tmp_path / "db"
    main(["index", str(media / "note.txt"), "--db", str(db), "--model", tiny_clip_path, "-q"])
    capsys.readouterr()
    assert main(["search", "--image", str(tmp_path / "nope.jpg"), "--db", str(db)]) == 2
    assert f"{tmp_path / 'nope.jpg'}: no such file" in capsys.readouterr().err
    robin = str(next(media.glob("sub/*.ogg")))
    assert main(["search", "--audio", robin, "--db", str(db)]) == 2
    assert "no collection of this index can take a audio query" in capsys.readouterr().err
    assert main(["search", "cats", "--db", str(db), "--collection", "other"]) == 2
    assert "no collection 'other' in this database" in capsys.readouterr().err

    # A different model for an existing collection would mix incompatible vectors.
    assert main(["index", str(media / "note.txt"), "--db", str(db), "--model", tiny_clap_path, "-q"]) == 2
    err = capsys.readouterr().err
    assert "collection 'modalbridge' holds vectors of model" in err and "model_name_or_path" in err


def test_audio_without_an_audio_model_is_skipped(media, tmp_path, tiny_clip_path, capsys):
    code = main(["index", str(media / "sub"), "--db", str(tmp_path / "db"), "--model", tiny_clip_path, "-q"])
    out = capsys.readouterr().out
    assert code == 0
    assert "1 added, 0 updated, 0 unchanged, 0 failed, 1 skipped" in out
    assert "no model of this index takes audio" in out and "--audio-model" in out


def test_videos_are_indexed_as_frames_by_an_image_model(tmp_path, video_path, tiny_clip_path, capsys):
    folder = tmp_path / "videos"
    folder.mkdir()
    shutil.copy(video_path, folder / "clip.mp4")
    db = tmp_path / "db"
    assert main(["index", str(folder), "--db", str(db), "--model", tiny_clip_path, "--video-frames", "4", "-q"]) == 0
    got = _collection(db).get(include=["embeddings", "metadatas"])
    assert got["metadatas"][0]["modality"] == "video"
    direct = Embedder(tiny_clip_path, video_frames=4).embed_document(Video(str(folder / "clip.mp4")))
    np.testing.assert_allclose(got["embeddings"][0], direct, rtol=1e-5, atol=1e-5)
    # The collection remembers video_frames: asking for another number is refused.
    assert main(["index", str(folder), "--db", str(db), "--model", tiny_clip_path, "--video-frames", "2", "-q"]) == 2
    assert "video_frames (4 -> 2)" in capsys.readouterr().err


def test_one_bad_item_does_not_block_its_batch(media, tiny_clip_path):
    photos = [str(p) for p in sorted(media.glob("*.jpg")) if p.name not in ("bad.jpg", ".hidden.jpg")]
    items = [Image(photos[0]), Image(str(media / "bad.jpg")), Image(photos[1]), Image(str(media / "gone.jpg"))]
    embedder = Embedder(tiny_clip_path)
    vectors, errors = embed_each_or_fail(embedder, items)
    assert sorted(vectors) == [0, 2] and sorted(errors) == [1, 3]
    assert errors[1].startswith(f"{media / 'bad.jpg'}: cannot decode image (cannot identify image file")
    assert errors[3] == f"{media / 'gone.jpg'}: no such file"
    np.testing.assert_allclose(np.stack([vectors[0], vectors[2]]), embedder.embed_documents([items[0], items[2]]), rtol=1e-5, atol=1e-5)


def test_help_lists_the_commands(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    for command in ("index", "search", "demo"):
        assert command in out
    with pytest.raises(SystemExit) as exit_info:
        main(["search", "text", "--image", "x.jpg"])
    assert exit_info.value.code == 2


class _CardParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.cards: list[dict[str, str]] = []

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        if tag == "div" and "hit" in (attributes.get("class") or "").split():
            self.cards.append(attributes)


def _cards(page: str) -> list[dict[str, str]]:
    parser = _CardParser()
    parser.feed(page)
    return parser.cards


def test_a_video_the_model_itself_cannot_decode_fails_alone(tmp_path, video_path, tiny_qwen3vl_path, capsys):
    """A video-native model decodes video paths inside its processor, where errors name no item: the
    batch is then embedded one file at a time, so only the broken file fails."""
    folder = tmp_path / "videos"
    folder.mkdir()
    shutil.copy(video_path, folder / "good.mp4")
    (folder / "broken.mp4").write_bytes(b"not a video at all")
    (folder / "caption.md").write_text("# a square moving across", encoding="utf-8")
    db = tmp_path / "db"
    assert main(["index", str(folder), "--db", str(db), "--model", tiny_qwen3vl_path, "-q"]) == 1
    out = capsys.readouterr().out
    assert "2 added, 0 updated, 0 unchanged, 1 failed" in out
    assert f"  {file_id(folder / 'broken.mp4')}: " in out
    got = _collection(db).get(include=["embeddings"])
    assert sorted(got["ids"]) == sorted([file_id(folder / "good.mp4"), file_id(folder / "caption.md")])
    by_id = dict(zip(got["ids"], got["embeddings"]))
    direct = Embedder(tiny_qwen3vl_path).embed_document(Video(file_id(folder / "good.mp4")))
    np.testing.assert_allclose(by_id[file_id(folder / "good.mp4")], direct, rtol=1e-4, atol=1e-5)
