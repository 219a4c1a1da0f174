"""Embedder: equality with direct sentence-transformers calls for every modality, order, errors."""

import base64
import http.server
import os
import threading
from pathlib import Path

import numpy as np
from sentence_transformers.util.quantization import quantize_embeddings
import pytest
from PIL import Image as PILImageModule
from sentence_transformers import SentenceTransformer
from transformers.audio_utils import load_audio
from transformers.image_utils import load_image

from modalbridge import Audio, Combined, Embedder, Image, MediaError, Video
from modalbridge.testing import make_test_frames

ATOL = 1e-6


@pytest.fixture(scope="module")
def clip(tiny_clip_path):
    return Embedder(tiny_clip_path), SentenceTransformer(tiny_clip_path)


@pytest.fixture(scope="module")
def clap(tiny_clap_path):
    return Embedder(tiny_clap_path), SentenceTransformer(tiny_clap_path)


@pytest.fixture(scope="module")
def qwen(tiny_qwen3vl_path):
    return Embedder(tiny_qwen3vl_path), SentenceTransformer(tiny_qwen3vl_path)


def test_text_equals_sentence_transformers_on_a_real_model(minilm_model_path):
    texts = ["A man is eating food.", "A cheetah chases prey.", ""]
    ours = Embedder(minilm_model_path).embed_documents(texts)
    direct = SentenceTransformer(minilm_model_path).encode_document(texts)
    assert ours.dtype == np.float32 and ours.shape == (3, 384)
    np.testing.assert_allclose(ours, direct, atol=ATOL)


def test_encode_settings_pass_through(minilm_model_path):
    model = SentenceTransformer(minilm_model_path)
    texts = ["one", "two"]
    ours = Embedder(minilm_model_path, truncate_dim=32, normalize=True, query_prompt="query: ").embed_queries(texts)
    direct = model.encode_query(texts, prompt="query: ", truncate_dim=32, normalize_embeddings=True)
    assert ours.shape == (2, 32)
    np.testing.assert_allclose(ours, direct, atol=ATOL)
    # int8 with fixed calibration ranges: sentence-transformers' quantize_embeddings with the same ranges.
    sample = ["one", "two", "three", "four"]
    floats = model.encode_document(sample)
    ranges = np.stack([floats.min(axis=0), floats.max(axis=0)])
    int8 = Embedder(minilm_model_path, precision="int8", quantization_ranges=ranges.tolist()).embed_documents(texts)
    clipped = np.clip(model.encode_document(texts), *ranges.astype(np.float32))  # saturate, never wrap around
    np.testing.assert_array_equal(int8, quantize_embeddings(clipped, "int8", ranges=ranges))


def test_images_from_every_source_equal_direct_calls(clip, image_paths):
    embedder, model = clip
    path = image_paths[0]
    raw = Path(path).read_bytes()
    pil = load_image(path)
    direct = model.encode_document([pil])[0]
    sources = [
        Image(path),
        Image(Path(path)),
        Image(raw),
        Image.from_base64(base64.b64encode(raw).decode()),
        Image("data:image/jpeg;base64," + base64.b64encode(raw).decode()),
        pil,
    ]
    for row in embedder.embed_documents(sources):
        np.testing.assert_allclose(row, direct, atol=ATOL)
    array = np.asarray(pil)
    np.testing.assert_allclose(
        embedder.embed_documents([Image(array)])[0], model.encode_document([array])[0], atol=ATOL
    )


def test_mixed_batch_keeps_input_order(clip, image_paths):
    embedder, model = clip
    items = ["a kitchen", Image(image_paths[0]), "a street", Image(image_paths[1]), "a bike"]
    ours = embedder.embed_documents(items)
    texts = model.encode_document(["a kitchen", "a street", "a bike"])
    images = model.encode_document([load_image(image_paths[0]), load_image(image_paths[1])])
    expected = np.stack([texts[0], images[0], texts[1], images[1], texts[2]])
    np.testing.assert_allclose(ours, expected, atol=ATOL)


def test_queries_use_the_query_prompt(qwen):
    embedder, model = qwen
    assert model.prompts["query"]  # the tiny model has a real query prompt
    np.testing.assert_allclose(embedder.embed_queries(["red"]), model.encode_query(["red"]), atol=ATOL)
    np.testing.assert_allclose(embedder.embed_documents(["red"]), model.encode_document(["red"]), atol=ATOL)
    assert not np.allclose(embedder.embed_query("red"), embedder.embed_document("red"))


def test_audio_is_decoded_and_resampled_like_sentence_transformers(clap, audio_paths):
    embedder, model = clap
    rate = model[0].processor.feature_extractor.sampling_rate
    short_clip = next(p for p in audio_paths if "robin" in p)
    window = model[0].processor.feature_extractor.nb_max_samples
    waveform = load_audio(short_clip, sampling_rate=rate)[:window]  # the backend transformers picks
    direct = model.encode_document([{"array": waveform, "sampling_rate": rate}])[0]
    np.testing.assert_allclose(embedder.embed_documents([Audio(short_clip)])[0], direct, atol=ATOL)
    np.testing.assert_allclose(embedder.embed_documents([Audio(Path(short_clip).read_bytes())])[0], direct, atol=ATOL)


def test_waveforms_at_another_rate_are_resampled_to_the_model_rate(clap, tmp_path):
    import soundfile

    embedder, model = clap
    rate = model[0].processor.feature_extractor.sampling_rate
    tone = (0.3 * np.sin(np.linspace(0, 3000, 22_050))).astype(np.float32)
    # Reference: the same waveform written to a file and decoded by transformers' own loader.
    soundfile.write(tmp_path / "tone.wav", tone, 22_050, subtype="FLOAT")
    reference = load_audio(str(tmp_path / "tone.wav"), sampling_rate=rate, backend="soundfile")  # arrays: soxr
    direct = model.encode_document([{"array": reference, "sampling_rate": rate}])[0]
    np.testing.assert_allclose(embedder.embed_documents([Audio(tone, sampling_rate=22_050)])[0], direct, atol=ATOL)


def test_long_clips_embed_deterministically(clap, audio_paths):
    """CLAP crops clips longer than its window at a random offset; the core cuts them to the window first."""
    embedder, model = clap
    extractor = model[0].processor.feature_extractor
    longest = max(audio_paths, key=lambda p: len(load_audio(p, extractor.sampling_rate)))  # the backend transformers picks
    waveform = load_audio(longest, extractor.sampling_rate)  # the backend transformers picks
    assert len(waveform) > 3 * extractor.nb_max_samples
    runs = [embedder.embed_documents([Audio(longest)])[0] for _ in range(3)]
    assert all(np.array_equal(run, runs[0]) for run in runs)
    head = {"array": waveform[: extractor.nb_max_samples], "sampling_rate": extractor.sampling_rate}
    np.testing.assert_allclose(runs[0], model.encode_document([head])[0], atol=ATOL)


def test_audio_text_mixed_batch(clap, audio_paths):
    embedder, model = clap
    rate = model[0].processor.feature_extractor.sampling_rate
    window = model[0].processor.feature_extractor.nb_max_samples
    ours = embedder.embed_documents(["birdsong", Audio(audio_paths[0]), "a trumpet"])
    waveform = load_audio(audio_paths[0], rate)[:window]  # the backend transformers picks
    audio = model.encode_document([{"array": waveform, "sampling_rate": rate}])
    text = model.encode_document(["birdsong", "a trumpet"])
    np.testing.assert_allclose(ours, np.stack([text[0], audio[0], text[1]]), atol=ATOL)


def test_video_path_and_frames_equal_direct_calls(qwen, video_path):
    embedder, model = qwen
    np.testing.assert_allclose(
        embedder.embed_documents([Video(video_path)])[0], model.encode_document([video_path])[0], atol=ATOL
    )
    frames = make_test_frames()
    np.testing.assert_allclose(
        embedder.embed_documents([Video(frames)])[0], model.encode_document([{"video": frames}])[0], atol=ATOL
    )


def test_video_bytes_decoded_with_pyav_equal_the_path(qwen, video_path):
    embedder, _ = qwen
    from_path = embedder.embed_documents([Video(video_path)])[0]
    from_bytes = embedder.embed_documents([Video(Path(video_path).read_bytes())])[0]
    np.testing.assert_allclose(from_bytes, from_path, atol=1e-5)


def test_combined_items_equal_direct_calls(qwen, image_paths):
    embedder, model = qwen
    pil = load_image(image_paths[2])
    ours = embedder.embed_documents([Combined(text="a sign", image=Image(image_paths[2]))])[0]
    np.testing.assert_allclose(ours, model.encode_document([{"text": "a sign", "image": pil}])[0], atol=ATOL)


def test_image_models_embed_videos_as_mean_of_frames_when_asked(tiny_clip_path, video_path):
    plain = Embedder(tiny_clip_path)
    with pytest.raises(ValueError) as error:
        plain.embed_documents(["x", Video(video_path)])
    assert str(error.value) == (
        f"item 1: Video({video_path}) is video, which this model does not support; it supports: text, image "
        "(to embed videos as the mean of sampled frames, set video_frames=8)"
    )
    frames = make_test_frames(num_frames=8)
    embedder = Embedder(tiny_clip_path, video_frames=4, normalize=True)
    ours = embedder.embed_documents([Video(frames), "a clip"])
    # The reference is sentence-transformers itself on the frames numpy picks by hand (0, 2, 5, 7).
    picked = [PILImageModule.fromarray(frames[i]) for i in (0, 2, 5, 7)]
    direct = SentenceTransformer(tiny_clip_path).encode_document(picked, normalize_embeddings=True)
    mean = direct.mean(axis=0)
    np.testing.assert_allclose(ours[0], mean / np.linalg.norm(mean), atol=ATOL)
    assert embedder.supports("video") and not plain.supports("video")


def test_unsupported_modality_names_index_modality_and_support(clip, qwen, audio_paths):
    embedder, _ = clip
    with pytest.raises(ValueError) as error:
        embedder.embed_documents(["fine", "fine", Audio(audio_paths[0])])
    assert str(error.value) == (
        f"item 2: Audio({audio_paths[0]}) is audio, which this model does not support; it supports: text, image"
    )
    # A chat-template model would silently drop audio it cannot render: refused before any compute.
    with pytest.raises(ValueError, match=r"item 0: Audio\(.*\) is audio, which this model does not support; "
                       r"it supports: text, image, video, combinations of text/image/video"):
        qwen[0].embed_documents([Audio(audio_paths[0])])
    with pytest.raises(ValueError, match=r"item 0: Combined\(text='x', image=.*\) is image\+text"):
        embedder.embed_documents([Combined(text="x", image=PILImageModule.new("RGB", (8, 8)))])


def test_errors_name_the_item_and_the_reason(clip, image_paths, tmp_path):
    embedder, _ = clip
    with pytest.raises(TypeError, match=r"item 1: an array of shape \(8, 8, 3\) is ambiguous"):
        embedder.embed_documents(["x", np.zeros((8, 8, 3), dtype=np.uint8)])
    missing = str(tmp_path / "missing.jpg")
    with pytest.raises(MediaError, match=f"item 2: {missing}: no such file"):
        embedder.embed_documents(["x", Image(image_paths[0]), Image(missing)])
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"not a jpeg")
    with pytest.raises(MediaError, match=f"item 0: {broken}: cannot decode image"):
        embedder.embed_documents([Image(str(broken))])
    with pytest.raises(MediaError, match="item 0: https://example.invalid/a.jpg: fetching URLs is off"):
        embedder.embed_documents([Image("https://example.invalid/a.jpg")])
    with pytest.raises(TypeError, match="expected a list of items, got str"):
        embedder.embed_documents("a single string")


def test_empty_input_gives_an_empty_matrix(clip):
    embedder, _ = clip
    out = embedder.embed_documents([])
    assert out.shape == (0, embedder.dimension) and out.dtype == np.float32


class _CountingServer:
    def __init__(self, directory):
        counter = self
        self.requests = []

        class Handler(http.server.SimpleHTTPRequestHandler):
            def __init__(self, *args, **kwargs):
                super().__init__(*args, directory=directory, **kwargs)

            def do_GET(self):
                counter.requests.append(self.path)
                super().do_GET()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def image_server(tmp_path, image_paths):
    (tmp_path / "cat.jpg").write_bytes(Path(image_paths[0]).read_bytes())
    server = _CountingServer(str(tmp_path))
    yield server
    server.close()


def test_text_that_looks_like_a_url_is_never_fetched(clip, image_server, image_paths):
    embedder, model = clip
    url = f"{image_server.url}/cat.jpg"
    as_text = embedder.embed_documents([url, "plain"])
    assert image_server.requests == []
    # Fetching is opt-in for tagged URLs; the server sees exactly that one request.
    fetching = Embedder(embedder.load_settings.model_name_or_path, allow_fetch=True, fetch_allow_private=True)
    fetched = fetching.embed_documents([Image(url)])
    assert image_server.requests == ["/cat.jpg"]
    np.testing.assert_allclose(fetched[0], model.encode_document([load_image(image_paths[0])])[0], atol=ATOL)
    assert not np.allclose(as_text[0], fetched[0])


def test_text_that_names_an_existing_image_file_is_embedded_as_text(clip, image_paths, tmp_path, monkeypatch):
    embedder, model = clip
    elsewhere = tmp_path / "empty"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    reference = model.encode_document(["cat.jpg"])[0]  # no such file here: sentence-transformers reads text
    (tmp_path / "withcat").mkdir()
    monkeypatch.chdir(tmp_path / "withcat")
    Path("cat.jpg").write_bytes(Path(image_paths[0]).read_bytes())
    assert os.path.isfile("cat.jpg")
    np.testing.assert_allclose(embedder.embed_documents(["cat.jpg"])[0], reference, atol=ATOL)
    # ...whereas sentence-transformers itself would have read the file as an image.
    assert not np.allclose(model.encode_document(["cat.jpg"])[0], reference, atol=1e-3)


def test_try_embed_documents_sets_aside_what_fails_and_embeds_the_rest(clip, image_paths, audio_paths, tmp_path):
    embedder, _ = clip
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"not a jpeg")
    items = [
        "a kitchen",
        Image(str(broken)),
        Image(image_paths[0]),
        Audio(audio_paths[0]),
        np.zeros((2, 2, 3), dtype=np.uint8),
        Image(str(tmp_path / "missing.png")),
        Image(image_paths[1]),
    ]
    vectors, errors = embedder.try_embed_documents(items)
    assert sorted(vectors) == [0, 2, 6]
    expected = embedder.embed_documents([items[0], items[2], items[6]])
    np.testing.assert_allclose(np.stack([vectors[0], vectors[2], vectors[6]]), expected, atol=ATOL)
    assert sorted(errors) == [1, 3, 4, 5]
    assert str(errors[1]).startswith(f"item 1: {broken}: cannot decode image")
    assert str(errors[3]).startswith("item 3: Audio(") and "which this model does not support" in str(errors[3])
    assert str(errors[4]).startswith("item 4: an array of shape (2, 2, 3) is ambiguous")
    assert str(errors[5]) == f"item 5: {tmp_path / 'missing.png'}: no such file"
    assert embedder.try_embed_documents([]) == ({}, {})
