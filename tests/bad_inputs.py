"""The bad-input matrix: every kind of bad input we know of, through every public entry point, with the
outcome each must have. ``tests/test_bad_inputs.py`` runs every row; ``docs/bad-inputs.md`` is this
table rendered (``python tests/bad_inputs.py > docs/bad-inputs.md``; a test checks they agree).

Each row: the kind of input, the entry point, how it is called, and the outcome: an error of ``error``
type whose message contains ``message`` (placeholders in braces are the test's own paths), or for
``modalbridge index`` the line the report prints for the file (the command exits 1, every good file
stored). A message always starts with the item (its index, node, document or URI) and gives the reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

INDEX = "modalbridge index"


@dataclass(frozen=True)
class Case:
    kind: str
    entry: str
    call: str
    """How the entry point is called, as shown in the docs."""
    error: str
    """The exception type's name, or ``"exit 1"`` for ``modalbridge index`` rows."""
    message: str
    run: Callable[[Any], Any]


def _nan_image():
    return np.full((8, 8, 3), np.nan, dtype=np.float32)


def _frames(count: int, dtype=np.uint8):
    return np.zeros((count, 16, 16, 3), dtype=dtype)


def _M():  # late import: the table renders without loading the package
    import modalbridge

    return modalbridge


CASES: list[Case] = []


def case(kind: str, entry: str, call: str, error: str, message: str):
    def register(run: Callable[[Any], Any]) -> Callable[[Any], Any]:
        CASES.append(Case(kind, entry, call, error, message, run))
        return run

    return register


# -- core Embedder: text and tagging ---------------------------------------------------------------------
E = "Embedder.embed_documents"


@case("lone surrogate in a text", E, '["ok", "a\\ud800b"]', "ValueError",
      "item 1: the text holds a lone surrogate '\\ud800' at position 1, which is not valid Unicode")
def _(c):
    return c.clip.embed_documents(["ok", "a\ud800b"])


@case("None as an item", E, '["ok", None]', "TypeError", "item 1: None is not an input")
def _(c):
    return c.clip.embed_documents(["ok", None])


@case("untagged numpy array", E, "[np.zeros((8, 8, 3))]", "TypeError",
      "item 0: an array of shape (8, 8, 3) is ambiguous: tag it as modalbridge.Image(...)")
def _(c):
    return c.clip.embed_documents([np.zeros((8, 8, 3))])


@case("a string instead of a list", E, '"just text"', "TypeError", "expected a list of items, got str")
def _(c):
    return c.clip.embed_documents("just text")


@case("a Combined item with a lone surrogate", "Embedder.embed_documents (Qwen3-VL)",
      '[Combined(text="\\udfff", image=photo)]', "ValueError", "item 0: the text holds a lone surrogate '\\udfff' at position 0")
def _(c):
    M = _M()
    return c.qwen.embed_documents([M.Combined(text="\udfff", image=M.Image(c.names["photo"]))])


# -- core Embedder: image arrays and sources -------------------------------------------------------------


@case("object-dtype image array", E, "[Image(np.array(..., dtype=object))]", "MediaError",
      "item 0: an array of shape (4, 4, 3): the image array of dtype object cannot be read as numbers")
def _(c):
    return c.clip.embed_documents([_M().Image(np.full((4, 4, 3), "x", dtype=object))])


@case("complex image array", E, "[Image(np.zeros((4, 4, 3), complex))]", "MediaError",
      "item 0: an array of shape (4, 4, 3): the image array of dtype complex128 cannot be read as numbers")
def _(c):
    return c.clip.embed_documents([_M().Image(np.zeros((4, 4, 3), dtype=complex))])


@case("2-channel image array", E, "[Image(np.zeros((8, 8, 2), uint8))]", "MediaError",
      "item 0: an array of shape (8, 8, 2): an image array needs 1, 3 or 4 channels on its first or last axis")
def _(c):
    return c.clip.embed_documents([_M().Image(np.zeros((8, 8, 2), dtype=np.uint8))])


@case("zero-size image array", E, "[Image(np.zeros((0, 8, 3), uint8))]", "MediaError",
      "item 0: an array of shape (0, 8, 3): the image array is empty (shape (0, 8, 3))")
def _(c):
    return c.clip.embed_documents([_M().Image(np.zeros((0, 8, 3), dtype=np.uint8))])


@case("2-D image array", E, "[Image(np.zeros((8, 8)))]", "MediaError",
      "item 0: an array of shape (8, 8): an image array must have 3 dimensions (H, W, C) or (C, H, W)")
def _(c):
    return c.clip.embed_documents([_M().Image(np.zeros((8, 8)))])


@case("NaN in an image array", E, '["ok", Image(np.full((8, 8, 3), nan))]', "MediaError",
      "item 1: an array of shape (8, 8, 3): the image array holds 192 non-finite value(s) (first: nan at (0, 0, 0))")
def _(c):
    return c.clip.embed_documents(["ok", _M().Image(_nan_image())])


@case("infinity in an image tensor", E, "[Image(torch.full((3, 8, 8), inf))]", "MediaError",
      "item 0: a Tensor of shape (3, 8, 8): the image array holds 192 non-finite value(s) (first: inf at (0, 0, 0))")
def _(c):
    import torch

    return c.clip.embed_documents([_M().Image(torch.full((3, 8, 8), float("inf")))])


@case("missing image file", E, '[Image("{missing}")]', "MediaError", "item 0: {missing}: no such file")
def _(c):
    return c.clip.embed_documents([_M().Image(c.names["missing"])])


@case("a directory as an image", E, '[Image("{folder}")]', "MediaError", "item 0: {folder}: is a directory, not a file")
def _(c):
    return c.clip.embed_documents([_M().Image(c.names["folder"])])


@case("file:// URL", E, '[Image("file://{photo}")]', "MediaError",
      "item 0: file://{photo}: file:// URLs are not read; pass the local path itself")
def _(c):
    return c.clip.embed_documents([_M().Image("file://" + c.names["photo"])])


@case("ftp:// URL", E, '[Image("ftp://example.com/x.jpg")]', "MediaError",
      "item 0: ftp://example.com/x.jpg: only http and https URLs can be fetched, not ftp://")
def _(c):
    return c.clip.embed_documents([_M().Image("ftp://example.com/x.jpg")])


@case("http URL, fetching off", E, '[Image("http://example.com/x.jpg")]', "MediaError",
      "item 0: http://example.com/x.jpg: fetching URLs is off; build the model with allow_fetch=True")
def _(c):
    return c.clip.embed_documents([_M().Image("http://example.com/x.jpg")])


@case("private-address URL, fetching on", "Embedder(allow_fetch=True).embed_documents",
      '[Image("http://10.0.0.1/x.jpg")]', "MediaError",
      "item 0: http://10.0.0.1/x.jpg: host '10.0.0.1' is at private address 10.0.0.1, which is not fetched unless "
      "fetch_allow_private=True")
def _(c):
    M = _M()
    return M.Embedder(c.names["clip"], allow_fetch=True).embed_documents([M.Image("http://10.0.0.1/x.jpg")])


@case("cloud metadata URL, fetching on", "Embedder(allow_fetch=True).embed_documents",
      '[Image("http://169.254.169.254/latest")]', "MediaError",
      "item 0: http://169.254.169.254/latest: host '169.254.169.254' is at link-local address 169.254.169.254")
def _(c):
    M = _M()
    return M.Embedder(c.names["clip"], allow_fetch=True).embed_documents([M.Image("http://169.254.169.254/latest")])


@case("corrupt image bytes", E, '[Image(b"not a jpeg")]', "MediaError",
      "item 0: 10 bytes: cannot decode image (cannot identify image file")
def _(c):
    return c.clip.embed_documents([_M().Image(b"not a jpeg")])


@case("empty bytes", E, '[Image(b"")]', "MediaError", "item 0: 0 bytes: no data (0 bytes)")
def _(c):
    return c.clip.embed_documents([_M().Image(b"")])


@case("invalid base64 data URI", E, '[Image("data:image/png;base64,@@@")]', "MediaError",
      "item 0: data:image/png;base64,...: Image.from_base64: not valid base64")
def _(c):
    return c.clip.embed_documents([_M().Image("data:image/png;base64,@@@")])


@case("audio on a text+image model", E, '["ok", Audio("{wav}")]', "ValueError",
      "item 1: Audio({wav}) is audio, which this model does not support; it supports: text, image")
def _(c):
    return c.clip.embed_documents(["ok", _M().Audio(c.names["wav"])])


@case("video on an image model without video_frames", E, '[Video("{one_frame}")]', "ValueError",
      "(to embed videos as the mean of sampled frames, set video_frames=8)")
def _(c):
    return c.clip.embed_documents([_M().Video(c.names["one_frame"])])


# -- audio ---------------------------------------------------------------------------------------------------
A = "Embedder.embed_documents (CLAP)"


@case("sampling_rate=0", A, "[Audio(wave, sampling_rate=0)]", "MediaError",
      "item 0: an array of shape (800,): sampling_rate must be a positive integer, got 0")
def _(c):
    return c.clap.embed_documents([_M().Audio(np.zeros(800, np.float32), sampling_rate=0)])


@case("negative sampling_rate", A, "[Audio(wave, sampling_rate=-16000)]", "MediaError",
      "item 0: an array of shape (800,): sampling_rate must be a positive integer, got -16000")
def _(c):
    return c.clap.embed_documents([_M().Audio(np.zeros(800, np.float32), sampling_rate=-16000)])


@case("fractional sampling_rate", A, "[Audio(wave, sampling_rate=44100.5)]", "MediaError",
      "item 0: an array of shape (800,): sampling_rate must be a positive integer, got 44100.5")
def _(c):
    return c.clap.embed_documents([_M().Audio(np.zeros(800, np.float32), sampling_rate=44100.5)])


@case("NaN in a waveform", A, '["ok", Audio(np.full(800, nan), sampling_rate=16000)]', "MediaError",
      "item 1: an array of shape (800,): the audio holds 800 non-finite value(s) (first: nan at (0,))")
def _(c):
    return c.clap.embed_documents(["ok", _M().Audio(np.full(800, np.nan, np.float32), sampling_rate=16000)])


@case("empty waveform", A, "[Audio(np.zeros(0), sampling_rate=16000)]", "MediaError",
      "item 0: an array of shape (0,): the waveform is empty (shape (0,))")
def _(c):
    return c.clap.embed_documents([_M().Audio(np.zeros(0, np.float32), sampling_rate=16000)])


@case("3-D waveform", A, "[Audio(np.zeros((2, 2, 400)), sampling_rate=16000)]", "MediaError",
      "item 0: an array of shape (2, 2, 400): a waveform must be a non-empty 1-D or 2-D array")
def _(c):
    return c.clap.embed_documents([_M().Audio(np.zeros((2, 2, 400), np.float32), sampling_rate=16000)])


@case("NaN in a WAV file", A, '[Audio("{nan_wav}")]', "MediaError",
      "item 0: {nan_wav}: the audio holds 1 non-finite value(s) (first: nan at (100,))")
def _(c):
    return c.clap.embed_documents([_M().Audio(c.names["nan_wav"])])


@case("bytes that are no audio", A, '[Audio(b"RIFF....")]', "MediaError", "item 0: 8 bytes: cannot decode audio")
def _(c):
    return c.clap.embed_documents([_M().Audio(b"RIFF....")])


# -- video -----------------------------------------------------------------------------------------------------
V = "Embedder.embed_documents (Qwen3-VL)"


@case("one-frame video file on a video model", V, '[Video("{one_frame}")]', "MediaError",
      "item 0: {one_frame}: a video needs at least 2 frames, got 1")
def _(c):
    return c.qwen.embed_documents([_M().Video(c.names["one_frame"])])


@case("one-frame frames array", V, "[Video(np.zeros((1, 16, 16, 3), uint8))]", "MediaError",
      "item 0: an array of shape (1, 16, 16, 3): a video needs at least 2 frames, got 1")
def _(c):
    return c.qwen.embed_documents([_M().Video(_frames(1))])


@case("NaN in video frames", V, "[Video(np.full((4, 16, 16, 3), nan))]", "MediaError",
      "item 0: an array of shape (4, 16, 16, 3): the video frames hold")
def _(c):
    return c.qwen.embed_documents([_M().Video(np.full((4, 16, 16, 3), np.nan, np.float32))])


@case("3-D frames array", V, "[Video(np.zeros((16, 16, 3)))]", "MediaError",
      "item 0: an array of shape (16, 16, 3): video frames must be a (T, H, W, C) array or a list of images")
def _(c):
    return c.qwen.embed_documents([_M().Video(np.zeros((16, 16, 3), np.uint8))])


@case("frames of different sizes", V, "[Video([frame_16x16, frame_8x8])]", "MediaError",
      "item 0: a list: the frames cannot be stacked")
def _(c):
    return c.qwen.embed_documents([_M().Video([np.zeros((16, 16, 3), np.uint8), np.zeros((8, 8, 3), np.uint8)])])


# -- settings ----------------------------------------------------------------------------------------------------


@case("truncate_dim=-5", "Embedder(...)", "Embedder(model, truncate_dim=-5)", "ValueError",
      "truncate_dim must be a positive integer or None, got -5")
def _(c):
    return _M().Embedder(c.names["clip"], truncate_dim=-5)


@case("truncate_dim=0", "Embedder(...)", "Embedder(model, truncate_dim=0)", "ValueError",
      "truncate_dim must be a positive integer or None, got 0")
def _(c):
    return _M().Embedder(c.names["clip"], truncate_dim=0)


@case("truncate_dim above the model's dimension", "Embedder.dimension", "Embedder(model, truncate_dim=1000).dimension",
      "ValueError", "truncate_dim=1000 is larger than the model's embedding dimension 16; use a value from 1 to 16")
def _(c):
    return _M().Embedder(c.names["clip"], truncate_dim=1000).dimension


@case("int8 without calibration ranges", "Embedder(...)", 'Embedder(model, precision="int8")', "ValueError",
      "precision='int8' needs quantization_ranges")
def _(c):
    return _M().Embedder(c.names["clip"], precision="int8")


@case("unknown setting", "Embedder(...)", "Embedder(model, normalise=True)", "TypeError",
      "Embedder got unknown settings: normalise")
def _(c):
    return _M().Embedder(c.names["clip"], normalise=True)


@case("fetch byte cap of 0", "Embedder(...)", "Embedder(model, fetch_max_bytes=0)", "ValueError",
      "fetch_max_bytes must be an integer in [1, 2**34], got 0")
def _(c):
    return _M().Embedder(c.names["clip"], fetch_max_bytes=0)


# -- outputs --------------------------------------------------------------------------------------------------------


@case("a model that outputs NaN", E, '["ok", Image(photo)] on a model with NaN weights', "ValueError",
      "item 1: the model gave a non-finite embedding (NaN or infinity) for it")
def _(c):
    return c.poisoned_clip.embed_documents(["ok", _M().Image(c.names["photo"])])


@case("a reranker that outputs NaN", "Reranker.rank", '("q", ["a", "b"]) on a model with NaN weights', "ValueError",
      "document 0: the model gave a non-finite score (NaN or infinity) for it")
def _(c):
    return c.poisoned_reranker.rank("q", ["a", "b"])


# -- core Reranker ----------------------------------------------------------------------------------------------------
R = "Reranker.score (Qwen3-VL)"


@case("None as the query", R, '(None, ["a"])', "TypeError", "query 0: None is not an input")
def _(c):
    return c.reranker.score(None, ["a"])


@case("NaN image document", R, '("q", ["a", Image(nan array)])', "MediaError",
      "document 1: an array of shape (8, 8, 3): the image array holds 192 non-finite value(s)")
def _(c):
    return c.reranker.score("q", ["a", _M().Image(_nan_image())])


@case("lone surrogate in the query", R, '("\\ud800", ["a"])', "ValueError", "query 0: the text holds a lone surrogate")
def _(c):
    return c.reranker.score("\ud800", ["a"])


# -- Chroma -----------------------------------------------------------------------------------------------------------


@case("None record", "MultimodalEmbeddingFunction.__call__", '["ok", None]', "TypeError",
      "item 1: None is not an input (a record without a URI or document?)")
def _(c):
    return c.chroma_function(["ok", None])


@case("NaN image from add(images=...)", "MultimodalEmbeddingFunction.__call__", "[np.full((8, 8, 3), nan)]",
      "MediaError", "item 0: an array of shape (8, 8, 3): the image array holds 192 non-finite value(s)")
def _(c):
    return c.chroma_function([_nan_image()])


@case("missing file URI", "MultimodalDataLoader", 'loader(["{missing}"])', "MediaError", "uri 0: {missing}: no such file")
def _(c):
    return c.loader([c.names["missing"]])


@case("URI of unknown type", "MultimodalDataLoader", 'loader(["notes.xyz"])', "MediaError",
      "uri 0: notes.xyz: cannot tell whether this is an image, audio or video from its extension")
def _(c):
    return c.loader(["notes.xyz"])


@case("NaN WAV URI", "MultimodalDataLoader", 'loader(["{nan_wav}"])', "MediaError",
      "uri 0: {nan_wav}: the audio holds 1 non-finite value(s)")
def _(c):
    return c.loader([c.names["nan_wav"]])


@case("query result without content", "rerank_query_result", '({"ids": [["x"]]}, "q", reranker)', "ValueError",
      "id 'x': the query result has no data, uri or document for this hit to rerank")
def _(c):
    from modalbridge.chroma import rerank_query_result

    return rerank_query_result({"ids": [["x"]], "documents": [[None]], "uris": [[None]]}, "q", c.reranker)


@case("NaN image in query result data", "rerank_query_result",
      '({"ids": [["a", "b"]], "data": [[ok, nan image]]}, "q", reranker)', "MediaError",
      "document 1 (id 'b'): an array of shape (8, 8, 3): the image array holds 192 non-finite value(s)")
def _(c):
    from modalbridge.chroma import rerank_query_result

    result = {"ids": [["a", "b"]], "data": [[np.zeros((8, 8, 3), np.uint8), _nan_image()]], "documents": [[None, None]]}
    return rerank_query_result(result, "q", c.reranker, source="data")


# -- LangChain ----------------------------------------------------------------------------------------------------------


@case("None among the texts", "MultimodalEmbeddings.embed_documents", '["ok", None]', "TypeError",
      "item 1: None is not an input")
def _(c):
    return c.langchain_embeddings.embed_documents(["ok", None])


@case("missing image URI", "MultimodalEmbeddings.embed_image", 'uris=["{photo}", "{missing}"]', "MediaError",
      "item 1: {missing}: no such file")
def _(c):
    return c.langchain_embeddings.embed_image(uris=[c.names["photo"], c.names["missing"]])


@case("lone surrogate in the query", "MultimodalEmbeddings.embed_query", '"\\ud83d"', "ValueError",
      "item 0: the text holds a lone surrogate '\\ud83d' at position 0")
def _(c):
    return c.langchain_embeddings.embed_query("\ud83d")


@case("metadata image that is missing", "MultimodalRerank.compress_documents",
      'Document("x", metadata={"image": "{missing}"})', "MediaError", "document 1: {missing}: no such file")
def _(c):
    from langchain_core.documents import Document

    documents = [Document(page_content="ok"), Document(page_content="x", metadata={"image": c.names["missing"]})]
    return c.langchain_rerank.compress_documents(documents, "q")


# -- LlamaIndex -----------------------------------------------------------------------------------------------------------


@case("missing image in a batch", "MultimodalEmbedding.get_image_embedding_batch", '["{photo}", "{missing}"]',
      "MediaError", "item 1: {missing}: no such file")
def _(c):
    return c.llama_embedding.get_image_embedding_batch([c.names["photo"], c.names["missing"]])


@case("lone surrogate text", "MultimodalEmbedding.get_text_embedding_batch", '["ok", "\\udc80"]', "ValueError",
      "item 1: the text holds a lone surrogate")
def _(c):
    return c.llama_embedding.get_text_embedding_batch(["ok", "\udc80"])


@case("image node with a missing file", "MultimodalRerank.postprocess_nodes", "ImageNode(image_path={missing})",
      "MediaError", "document 1 (node 'gone'): {missing}: no such file")
def _(c):
    from llama_index.core.schema import ImageNode, NodeWithScore, TextNode

    nodes = [NodeWithScore(node=TextNode(text="ok", id_="t"), score=0.5),
             NodeWithScore(node=ImageNode(image_path=c.names["missing"], id_="gone"), score=0.4)]
    return c.llama_rerank.postprocess_nodes(nodes, query_str="q")


# -- modalbridge index: one bad file never fails the others ---------------------------------------------------------------
I = f"{INDEX} FOLDER"


@case("NaN in a WAV file", I, "sounds/nan.wav", "exit 1", "{index}/sounds/nan.wav: the audio holds 1 non-finite value(s)")
def _(c):
    return c.index_report


@case("corrupt JPEG", I, "bad.jpg", "exit 1", "{index}/bad.jpg: cannot decode image (cannot identify image file")
def _(c):
    return c.index_report


@case("zero-byte PNG", I, "empty.png", "exit 1", "{index}/empty.png: cannot decode image")
def _(c):
    return c.index_report


@case("empty text file", I, "empty.txt", "exit 1", "{index}/empty.txt: the text file is empty")
def _(c):
    return c.index_report


@case("text file that is not UTF-8", I, "latin1.txt", "exit 1", "{index}/latin1.txt: not UTF-8 text (unexpected end of data at byte 3)")
def _(c):
    return c.index_report


@case("one-frame video (image model, frame mean)", I, "still.mp4", "exit 1",
      "{index}/still.mp4: a video needs at least 2 frames, got 1")
def _(c):
    return c.index_report


@case("broken symlink", I, "dangling.jpg -> nowhere.jpg", "exit 1", "{index}/nowhere.jpg: cannot read the file")
def _(c):
    return c.index_report


@case("argument that does not exist", INDEX, "{index}/no-such-folder", "exit 1",
      "{index}/no-such-folder: no such file or directory")
def _(c):
    return c.index_report


def render_markdown() -> str:
    """The table as Markdown (what ``docs/bad-inputs.md`` holds)."""
    lines = [
        "# Bad inputs and what happens to them",
        "",
        "Generated from `tests/bad_inputs.py` (`python tests/bad_inputs.py > docs/bad-inputs.md`); "
        "`tests/test_bad_inputs.py` runs every row and checks that this page is current.",
        "",
        "Every error names the item (its index, node, document, URI or path) and the reason, and is raised "
        "before any compute where the input can be checked beforehand. `try_embed_documents` and "
        "`modalbridge index` set a bad item aside and embed the rest: for the `modalbridge index` rows the "
        "command exits 1, prints the line shown for the file, and stores every good file. Placeholders in "
        "braces stand for the test's own paths.",
        "",
        f"{len(CASES)} cases over {len({c.entry.split(' (')[0] for c in CASES})} entry points.",
        "",
        "| # | bad input | entry point | call | outcome |",
        "|---|---|---|---|---|",
    ]
    for number, c in enumerate(CASES, 1):
        cells = [str(number), c.kind, f"`{c.entry}`", f"`{c.call}`", f"{c.error}: `{c.message}`"]
        lines.append("| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(render_markdown(), end="")
