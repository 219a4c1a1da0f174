"""Train the tiny offline demo models from scratch on :mod:`modalbridge.demo.synthetic` data.

Run (CPU, about 10-15 minutes on 2 cores)::

    HF_HUB_OFFLINE=1 PYTHONPATH=adapters python -m modalbridge.demo.train            # all three models
    HF_HUB_OFFLINE=1 PYTHONPATH=adapters python -m modalbridge.demo.train --only reranker

It writes, under ``adapters/modalbridge/demo/models/`` (or ``--out``):

* ``embedder/``: text <-> image, a tiny ``CLIPModel`` (ViT 32x32 px, patch 4; 2-layer text and vision
  towers, hidden 64, 64-d embeddings), saved as a plain sentence-transformers folder (one ``Transformer``
  module, no custom code); ``SentenceTransformer(path)`` -> modalities ``text``, ``image``.
* ``audio-embedder/``: text <-> audio, a tiny ``ClapModel`` (HTSAT audio tower with 1 Swin stage of 2
  layers over a 128-bin log-mel spectrogram of 1 s at 16 kHz, 2-layer RoBERTa text tower, 64-d embeddings);
  ``SentenceTransformer(path)`` -> modalities ``text``, ``audio``.
* ``reranker/``: (text query, image document) reranker, a tiny ``LlavaForConditionalGeneration`` (CLIP
  vision tower initialised from the trained embedder + 2-layer Llama, hidden 64) behind
  sentence-transformers' ``Transformer(transformer_task="any-to-any")`` + ``LogitScore("1", "0")``;
  ``CrossEncoder(path).predict([(caption, pil_image), ...])`` / ``.rank(caption, images)``.
* ``QUALITY.json``: the metrics of :func:`modalbridge.demo.evaluate.evaluate` on the saved folders,
  plus seeds, data sizes, epochs, parameter counts, sizes on disk, training times and library versions.

All tokenizers are byte-level vocabularies without merges (every character is one token), built
offline. Training: contrastive (CLIP) loss in both directions with soft targets for duplicate captions
in a batch, plus an auxiliary loss that predicts each attribute (shape, color, ...) from both the text
and the item embedding with linear heads that are thrown away after training (without it the tiny audio
tower learns far slower). The reranker is trained listwise (softmax over one matching and several
non-matching images per caption, the negatives mined from the trained embedder's top candidates and
from images that differ in one attribute) plus a pointwise binary cross-entropy on the same scores.
Everything is seeded (``--seed``); with the same thread count the run is reproducible on one machine.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np
import torch
import torch.nn.functional as F

from modalbridge.demo import synthetic as S

DEFAULT_OUT = Path(__file__).resolve().parent / "models"
EMBEDDER_DIR, AUDIO_EMBEDDER_DIR, RERANKER_DIR = "embedder", "audio-embedder", "reranker"

# Data seeds (evaluation uses 1000+, see modalbridge.demo.evaluate)
IMAGE_TRAIN_SEED = 0
SOUND_TRAIN_SEED = 1
RERANK_TRAIN_SEED = 2

HP = {
    "embedder": {"n_train": 7200, "epochs": 10, "batch_size": 128, "lr": 2e-3, "weight_decay": 0.05, "aux_weight": 1.0},
    "audio-embedder": {"n_train": 2880, "epochs": 12, "batch_size": 64, "lr": 3e-3, "weight_decay": 0.05, "aux_weight": 4.0},
    "reranker": {
        "n_pool": 2880,
        "caption_steps": 1200,  # phase 1: captioning (next-token loss on the query given the image)
        "caption_batch_size": 32,
        "rank_steps": 800,  # phase 2: ranking loss (+ the captioning loss on the matching pairs)
        "queries_per_batch": 16,
        "group_size": 4,  # 1 matching + 3 non-matching images per caption
        "lr": 2e-3,
        "weight_decay": 0.01,
        "bce_weight": 0.5,
        "caption_weight": 1.0,
    },
}

IMAGE_SIZE, PATCH_SIZE = 32, 8
# "full": the reranker also sees the CLS token of the (CLIP-initialised) vision tower, which carries the
# whole-image summary; "default" would drop it and keep only the 64 patch tokens.
VISION_FEATURE_STRATEGY = "full"
HIDDEN = 64
PROJECTION_DIM = 64
RERANKER_LM_LAYERS = 2

# Chat template of the reranker: ChatML, but every non-query message (the document) is rendered BEFORE
# the query, so that the query tokens (whole words, see build_reranker_tokenizer) can attend to the
# image tokens, and the query can be trained with a captioning loss.
RERANKER_CHAT_TEMPLATE = (
    "{% macro render(message) %}<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}{% else %}"
    "{% for part in message['content'] %}{% if part['type'] == 'text' %}{{ part['text'] }}"
    "{% elif part['type'] == 'image' %}<image>{% endif %}{% endfor %}{% endif %}"
    "<|im_end|>\n{% endmacro %}"
    "{% for message in messages if message['role'] != 'query' %}{{ render(message) }}{% endfor %}"
    "{% for message in messages if message['role'] == 'query' %}{{ render(message) }}{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def log(*args) -> None:
    print(*args, flush=True)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def byte_alphabet() -> list[str]:
    from tokenizers import pre_tokenizers

    return sorted(pre_tokenizers.ByteLevel.alphabet())


# --------------------------------------------------------------------------------------------------
# Builders (standard transformers classes only)
# --------------------------------------------------------------------------------------------------


def clip_image_processor():
    from transformers import CLIPImageProcessorPil

    return CLIPImageProcessorPil(
        size={"shortest_edge": IMAGE_SIZE},
        crop_size={"height": IMAGE_SIZE, "width": IMAGE_SIZE},
        do_center_crop=True,
        image_mean=[0.5, 0.5, 0.5],
        image_std=[0.5, 0.5, 0.5],
    )


def clip_vision_config() -> dict:
    return dict(
        hidden_size=HIDDEN,
        intermediate_size=2 * HIDDEN,
        num_hidden_layers=2,
        num_attention_heads=4,
        image_size=IMAGE_SIZE,
        patch_size=PATCH_SIZE,
    )


def build_clip():
    from transformers import CLIPConfig, CLIPModel, CLIPProcessor, CLIPTokenizer

    alphabet = byte_alphabet()
    vocab: dict[str, int] = {}
    for ch in alphabet:
        vocab[ch] = len(vocab)
    for ch in alphabet:
        vocab[ch + "</w>"] = len(vocab)
    vocab["<|startoftext|>"] = len(vocab)
    vocab["<|endoftext|>"] = len(vocab)
    tokenizer = CLIPTokenizer(vocab=vocab, merges=[])
    tokenizer.model_max_length = 64
    config = CLIPConfig(
        text_config=dict(
            vocab_size=len(vocab),
            hidden_size=HIDDEN,
            intermediate_size=2 * HIDDEN,
            num_hidden_layers=2,
            num_attention_heads=4,
            max_position_embeddings=64,
            bos_token_id=vocab["<|startoftext|>"],
            eos_token_id=vocab["<|endoftext|>"],
            pad_token_id=vocab["<|endoftext|>"],
        ),
        vision_config=clip_vision_config(),
        projection_dim=PROJECTION_DIM,
    )
    model = CLIPModel(config)
    processor = CLIPProcessor(image_processor=clip_image_processor(), tokenizer=tokenizer)
    return model, processor


def build_clap():
    from transformers import ClapConfig, ClapFeatureExtractor, ClapModel, ClapProcessor, RobertaTokenizer

    vocab = {"<s>": 0, "<pad>": 1, "</s>": 2, "<unk>": 3}
    for ch in byte_alphabet():
        vocab[ch] = len(vocab)
    vocab["<mask>"] = len(vocab)
    tokenizer = RobertaTokenizer(vocab=vocab, merges=[])
    tokenizer.model_max_length = 64
    n_mels = 128
    config = ClapConfig(
        text_config=dict(
            vocab_size=len(vocab),
            hidden_size=HIDDEN,
            intermediate_size=2 * HIDDEN,
            num_hidden_layers=2,
            num_attention_heads=4,
            max_position_embeddings=72,
            pad_token_id=1,
            bos_token_id=0,
            eos_token_id=2,
            projection_dim=PROJECTION_DIM,
        ),
        audio_config=dict(
            num_mel_bins=n_mels,
            spec_size=n_mels,  # freq_ratio 1: the (up to 128-frame) spectrogram is used as one 128x128 image
            patch_size=[16, 4],  # 16 mel bins x 4 frames per token -> 8 x 32 tokens
            patch_stride=[16, 4],
            window_size=8,  # one Swin window spans all 8 frequency rows: absolute pitch stays visible
            depths=[2],
            num_attention_heads=[4],
            patch_embeds_hidden_size=HIDDEN,
            hidden_size=HIDDEN,
            enable_patch_layer_norm=False,  # a LayerNorm per patch would hide the loudness
            projection_dim=PROJECTION_DIM,
            enable_fusion=False,
            num_classes=2,
        ),
        projection_dim=PROJECTION_DIM,
    )
    model = ClapModel(config)
    feature_extractor = ClapFeatureExtractor(
        feature_size=n_mels,
        sampling_rate=S.SAMPLING_RATE,
        hop_length=160,
        max_length_s=1,
        fft_window_size=400,
        frequency_min=50,
        frequency_max=8000,
        truncation="rand_trunc",  # clips of exactly 1 s are never cropped, so embeddings are deterministic
        padding="repeatpad",
    )
    processor = ClapProcessor(feature_extractor=feature_extractor, tokenizer=tokenizer)
    return model, processor


def domain_words() -> list[str]:
    """Words of the synthetic captions and of the reranker's chat template."""
    words = {"a", "in", "the", "moving", "to", "query", "document", "assistant", "user", "system"}
    for spec in S.image_combinations():
        words.update(spec.caption.split())
    return sorted(words)


def build_reranker_tokenizer():
    """Byte-level BPE (any text tokenizes) whose merges make every caption word one token."""
    from transformers import Qwen2Tokenizer

    vocab = {ch: i for i, ch in enumerate(byte_alphabet())}
    merges: list[tuple[str, str]] = []
    # Space-prefixed forms ("Ġred") first: BPE applies lower-ranked merges first, and the bare forms (after
    # a newline or at the start) would otherwise split the space-prefixed words.
    forms = ["\u0120" + word for word in domain_words()] + domain_words()
    for form in forms:
        for i in range(1, len(form)):
            left, right, merged = form[:i], form[i], form[: i + 1]
            if merged not in vocab:
                vocab[merged] = len(vocab)
                merges.append((left, right))
    for special in ("<|endoftext|>", "<|im_start|>", "<|im_end|>", "<image>"):
        vocab[special] = len(vocab)
    tokenizer = Qwen2Tokenizer(
        vocab=vocab, merges=merges, unk_token=None, bos_token=None, eos_token="<|im_end|>", pad_token="<|endoftext|>"
    )
    tokenizer.add_special_tokens({"additional_special_tokens": ["<|im_start|>", "<|im_end|>", "<image>"]})
    tokenizer.model_max_length = 256
    assert len(tokenizer) == len(vocab), "special tokens must not extend the vocabulary"
    return tokenizer, vocab


def build_llava():
    from transformers import LlavaConfig, LlavaForConditionalGeneration, LlavaProcessor

    tokenizer, vocab = build_reranker_tokenizer()
    n_image_tokens = (IMAGE_SIZE // PATCH_SIZE) ** 2 + (1 if VISION_FEATURE_STRATEGY == "full" else 0)
    config = LlavaConfig(
        vision_config=dict(model_type="clip_vision_model", **clip_vision_config()),
        text_config=dict(
            model_type="llama",
            vocab_size=len(vocab),
            hidden_size=HIDDEN,
            intermediate_size=2 * HIDDEN,
            num_hidden_layers=RERANKER_LM_LAYERS,
            num_attention_heads=4,
            num_key_value_heads=2,
            max_position_embeddings=256,
            tie_word_embeddings=True,
            pad_token_id=vocab["<|endoftext|>"],
            eos_token_id=vocab["<|im_end|>"],
            bos_token_id=None,
        ),
        image_token_index=vocab["<image>"],
        image_seq_length=n_image_tokens,
        vision_feature_layer=-1,
        vision_feature_select_strategy=VISION_FEATURE_STRATEGY,
        tie_word_embeddings=True,
    )
    model = LlavaForConditionalGeneration(config)
    processor = LlavaProcessor(
        image_processor=clip_image_processor(),
        tokenizer=tokenizer,
        patch_size=PATCH_SIZE,
        vision_feature_select_strategy=VISION_FEATURE_STRATEGY,
        chat_template=RERANKER_CHAT_TEMPLATE,
        num_additional_image_tokens=1,
    )
    return model, processor, vocab


# --------------------------------------------------------------------------------------------------
# Contrastive training (embedders)
# --------------------------------------------------------------------------------------------------


def attribute_targets(specs: Sequence, options: dict[str, Sequence[str]]) -> torch.Tensor:
    return torch.tensor([[list(values).index(getattr(s, field)) for field, values in options.items()] for s in specs])


def train_contrastive(
    *,
    name: str,
    params: list[torch.nn.Parameter],
    encode_items: Callable[[torch.Tensor], torch.Tensor],
    encode_texts: Callable[[torch.Tensor], torch.Tensor],
    logit_scale: torch.nn.Parameter,
    labels: torch.Tensor,
    attributes: torch.Tensor,
    n_options: list[int],
    hp: dict,
    seed: int,
    evaluate: Callable[[], float] | None = None,
    set_train: Callable[[bool], None] = lambda _: None,
    token_dim: int | None = None,
) -> list[dict]:
    """CLIP loss over (item, caption) batches plus attribute heads; ``labels`` are caption ids per item.

    When ``token_dim`` is set, ``encode_items`` returns ``(embedding, token_mean)`` and further attribute
    heads read ``token_mean`` (the mean of the item's last-layer tokens), so that every token of the
    item tower carries the attributes (the reranker's language model reads those tokens)."""
    heads = torch.nn.ModuleList([torch.nn.Linear(PROJECTION_DIM, n) for n in n_options])
    token_heads = torch.nn.ModuleList([torch.nn.Linear(token_dim, n) for n in n_options]) if token_dim else None
    head_params = list(heads.parameters()) + (list(token_heads.parameters()) if token_heads is not None else [])
    optimizer = torch.optim.AdamW(params + head_params, lr=hp["lr"], weight_decay=hp["weight_decay"])
    n, bs = len(labels), hp["batch_size"]
    steps_per_epoch = n // bs
    scheduler = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=hp["lr"], total_steps=hp["epochs"] * steps_per_epoch, pct_start=0.1
    )
    generator = torch.Generator().manual_seed(seed)
    history = []
    start = time.time()
    for epoch in range(hp["epochs"]):
        set_train(True)
        perm = torch.randperm(n, generator=generator)
        total_clip = total_aux = 0.0
        for step in range(steps_per_epoch):
            idx = perm[step * bs : (step + 1) * bs]
            lab = labels[idx]
            encoded = encode_items(idx)
            token_mean = None
            if token_heads is not None:
                encoded, token_mean = encoded
            item_emb = F.normalize(encoded, dim=-1)
            text_emb = F.normalize(encode_texts(lab), dim=-1)
            logits = logit_scale.exp().clamp(max=100) * item_emb @ text_emb.T
            target = (lab[:, None] == lab[None, :]).float()
            target = target / target.sum(1, keepdim=True)
            clip_loss = (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target)) / 2
            aux_loss = sum(
                F.cross_entropy(head(item_emb * 8), attributes[idx, j]) + F.cross_entropy(head(text_emb * 8), attributes[idx, j])
                for j, head in enumerate(heads)
            ) / (2 * len(heads))
            if token_heads is not None:
                aux_loss = aux_loss + sum(
                    F.cross_entropy(head(token_mean), attributes[idx, j]) for j, head in enumerate(token_heads)
                ) / len(token_heads)
            loss = clip_loss + hp["aux_weight"] * aux_loss
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            total_clip += clip_loss.item()
            total_aux += aux_loss.item()
        record = {
            "epoch": epoch + 1,
            "clip_loss": round(total_clip / steps_per_epoch, 4),
            "aux_loss": round(total_aux / steps_per_epoch, 4),
            "seconds": round(time.time() - start, 1),
        }
        if evaluate is not None:
            set_train(False)
            with torch.no_grad():
                record["heldout_recall@1"] = round(evaluate(), 4)
        history.append(record)
        log(f"[{name}] " + " ".join(f"{k}={v}" for k, v in record.items()))
    set_train(False)
    return history


def save_sentence_transformer(hf_model, processor, out_dir: Path, readme: str) -> None:
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.base.modules import Transformer

    with tempfile.TemporaryDirectory() as tmp:
        hf_model.save_pretrained(tmp)
        processor.save_pretrained(tmp)
        st = SentenceTransformer(modules=[Transformer(tmp)], similarity_fn_name="cosine")
        if out_dir.exists():
            shutil.rmtree(out_dir)
        st.save(str(out_dir), create_model_card=False)
    (out_dir / "README.md").write_text(readme)


def heldout_images(n: int = 100, seed: int = 999):
    specs = S.sample_specs(S.image_combinations(), n, seed)
    return S.generate_images(specs=specs, seed=seed)


def train_embedder(out: Path, seed: int) -> dict:
    hp = HP["embedder"]
    seed_everything(seed)
    model, processor = build_clip()
    t0 = time.time()
    specs = S.sample_specs(S.image_combinations(), hp["n_train"], IMAGE_TRAIN_SEED)
    data = S.generate_images(specs=specs, seed=IMAGE_TRAIN_SEED)
    pixel_values = processor(images=[img for img, _ in data], return_tensors="pt").pixel_values
    captions = sorted({s.caption for s in specs})
    caption_id = {c: i for i, c in enumerate(captions)}
    text_inputs = processor(text=captions, return_tensors="pt", padding=True)
    labels = torch.tensor([caption_id[s.caption] for s in specs])
    options = {"shape": S.IMAGE_SHAPES, "color": list(S.IMAGE_COLORS), "size": list(S.IMAGE_SIZES), "position": list(S.IMAGE_POSITIONS)}
    log(f"[embedder] data: {len(data)} images, {len(captions)} captions, {time.time() - t0:.1f}s")

    val = heldout_images()
    val_pixels = processor(images=[img for img, _ in val], return_tensors="pt").pixel_values
    val_text = processor(text=[c for _, c in val], return_tensors="pt", padding=True)

    def evaluate() -> float:
        ie = model.get_image_features(pixel_values=val_pixels).pooler_output
        te = model.get_text_features(**val_text).pooler_output
        sims = F.normalize(te, dim=-1) @ F.normalize(ie, dim=-1).T
        return (sims.argmax(1) == torch.arange(len(val))).float().mean().item()

    def encode_images(idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        vision = model.vision_model(pixel_values=pixel_values[idx])
        return model.visual_projection(vision.pooler_output), vision.last_hidden_state.mean(1)

    history = train_contrastive(
        name="embedder",
        params=list(model.parameters()),
        encode_items=encode_images,
        encode_texts=lambda lab: model.get_text_features(
            input_ids=text_inputs.input_ids[lab], attention_mask=text_inputs.attention_mask[lab]
        ).pooler_output,
        logit_scale=model.logit_scale,
        token_dim=HIDDEN,
        labels=labels,
        attributes=attribute_targets(specs, options),
        n_options=[len(v) for v in options.values()],
        hp=hp,
        seed=seed,
        evaluate=evaluate,
        set_train=model.train,
    )
    train_seconds = time.time() - t0
    save_sentence_transformer(
        model,
        processor,
        out / EMBEDDER_DIR,
        _readme(
            "modalbridge demo embedder (text <-> image)",
            "A tiny `CLIPModel` trained from scratch on synthetic shapes (`modalbridge.demo.synthetic`). "
            "Toy model for the offline demo only: it knows 6 shapes, 6 colors, 2 sizes and 5 positions.",
            "from sentence_transformers import SentenceTransformer\n"
            "model = SentenceTransformer(path)\n"
            "q = model.encode_query(['a small red circle in the top left'])\n"
            "d = model.encode_document([pil_image])\n"
            "model.similarity(q, d)",
        ),
    )
    return {
        "architecture": "CLIPModel",
        "parameters": sum(p.numel() for p in model.parameters()),
        "train_items": len(data),
        "train_data_seed": IMAGE_TRAIN_SEED,
        "hyperparameters": hp,
        "history": history,
        "train_seconds": round(train_seconds, 1),
    }


def train_audio_embedder(out: Path, seed: int) -> dict:
    hp = HP["audio-embedder"]
    seed_everything(seed)
    model, processor = build_clap()
    t0 = time.time()
    specs = S.sample_specs(S.sound_combinations(), hp["n_train"], SOUND_TRAIN_SEED)
    data = S.generate_sounds(specs=specs, seed=SOUND_TRAIN_SEED)
    features = torch.cat(
        [
            processor(audio=[a["array"] for a, _ in data[i : i + 256]], sampling_rate=S.SAMPLING_RATE, return_tensors="pt").input_features
            for i in range(0, len(data), 256)
        ]
    )
    captions = sorted({s.caption for s in specs})
    caption_id = {c: i for i, c in enumerate(captions)}
    text_inputs = processor(text=captions, return_tensors="pt", padding=True)
    labels = torch.tensor([caption_id[s.caption] for s in specs])
    options = {"kind": list(S.SOUND_KINDS), "pitch": list(S.SOUND_PITCHES), "volume": list(S.SOUND_VOLUMES), "length": list(S.SOUND_LENGTHS)}
    log(f"[audio-embedder] data: {len(data)} clips, {len(captions)} captions, {time.time() - t0:.1f}s")

    val = S.generate_sounds(specs=S.sound_combinations(), seed=998)
    val_features = processor(audio=[a["array"] for a, _ in val], sampling_rate=S.SAMPLING_RATE, return_tensors="pt").input_features
    val_text = processor(text=[c for _, c in val], return_tensors="pt", padding=True)

    def evaluate() -> float:
        ae = model.get_audio_features(input_features=val_features).pooler_output
        te = model.get_text_features(**val_text).pooler_output
        sims = F.normalize(te, dim=-1) @ F.normalize(ae, dim=-1).T
        return (sims.argmax(1) == torch.arange(len(val))).float().mean().item()

    history = train_contrastive(
        name="audio-embedder",
        params=list(model.parameters()),
        encode_items=lambda idx: model.get_audio_features(input_features=features[idx]).pooler_output,
        encode_texts=lambda lab: model.get_text_features(
            input_ids=text_inputs.input_ids[lab], attention_mask=text_inputs.attention_mask[lab]
        ).pooler_output,
        logit_scale=model.logit_scale_a,
        labels=labels,
        attributes=attribute_targets(specs, options),
        n_options=[len(v) for v in options.values()],
        hp=hp,
        seed=seed,
        evaluate=evaluate,
        set_train=model.train,
    )
    train_seconds = time.time() - t0
    save_sentence_transformer(
        model,
        processor,
        out / AUDIO_EMBEDDER_DIR,
        _readme(
            "modalbridge demo audio embedder (text <-> audio)",
            "A tiny `ClapModel` trained from scratch on synthetic sounds (`modalbridge.demo.synthetic`): "
            "tones, chirps, noise bursts, beeps at 3 pitches, 2 volumes, 2 lengths. Input: 16 kHz mono, "
            "clips of 1 s (longer clips are cropped at random by the CLAP feature extractor).",
            "from sentence_transformers import SentenceTransformer\n"
            "model = SentenceTransformer(path)\n"
            "q = model.encode_query(['a loud short rising high-pitched chirp'])\n"
            "d = model.encode_document([{'array': waveform, 'sampling_rate': 16000}])\n"
            "model.similarity(q, d)",
        ),
    )
    return {
        "architecture": "ClapModel",
        "parameters": sum(p.numel() for p in model.parameters()),
        "train_items": len(data),
        "train_data_seed": SOUND_TRAIN_SEED,
        "hyperparameters": hp,
        "history": history,
        "train_seconds": round(train_seconds, 1),
    }


# --------------------------------------------------------------------------------------------------
# Reranker
# --------------------------------------------------------------------------------------------------


def train_reranker(out: Path, seed: int) -> dict:
    """Two phases on one model: (1) captioning, i.e. next-token loss on the query given the image, which
    teaches the tiny LM to read the image tokens; (2) ranking: per caption one matching and
    ``group_size - 1`` non-matching images, softmax cross-entropy over the group's scores plus a binary
    cross-entropy per pair, plus the captioning loss on the matching pairs. The score is exactly what
    ``LogitScore`` computes: logit("1") - logit("0") at the last position (sentence-transformers pads on
    the left)."""
    from sentence_transformers import CrossEncoder, SentenceTransformer
    from sentence_transformers.base.modules import Transformer
    from sentence_transformers.cross_encoder.modules import LogitScore

    hp = HP["reranker"]
    seed_everything(seed)
    embedder_dir = out / EMBEDDER_DIR
    if not embedder_dir.exists():
        raise SystemExit(f"train the embedder first: {embedder_dir} is missing")
    embedder = SentenceTransformer(str(embedder_dir), device="cpu")
    t0 = time.time()

    # Image pool: every combination n_pool / 360 times.
    combos = S.image_combinations()
    combo_index = {spec: i for i, spec in enumerate(combos)}
    captions = [spec.caption for spec in combos]
    pool_specs = S.sample_specs(combos, hp["n_pool"], RERANK_TRAIN_SEED)
    pool_images = [img for img, _ in S.generate_images(specs=pool_specs, seed=RERANK_TRAIN_SEED)]
    by_combo: list[list[int]] = [[] for _ in combos]
    for i, spec in enumerate(pool_specs):
        by_combo[combo_index[spec]].append(i)

    # Negatives mined with the trained embedder: per caption, the best-scoring pool images of other combos.
    with torch.no_grad():
        q = embedder.encode_query(captions, convert_to_tensor=True, normalize_embeddings=True)
        d = embedder.encode_document(pool_images, convert_to_tensor=True, normalize_embeddings=True, batch_size=256)
    sims = q @ d.T
    pool_combo = torch.tensor([combo_index[s] for s in pool_specs])
    sims[pool_combo[None, :] == torch.arange(len(combos))[:, None]] = -2  # hide the matching images
    mined = sims.topk(20, dim=1).indices.numpy()  # (360, 20) pool indices
    log(f"[reranker] data: pool of {len(pool_images)} images, negatives mined, {time.time() - t0:.1f}s")

    # Model: LLaVA whose vision tower starts from the embedder's
    hf_model, processor, vocab = build_llava()
    hf_model.model.vision_tower.load_state_dict(embedder[0].auto_model.vision_model.state_dict(), strict=True)
    del embedder
    tmp = tempfile.TemporaryDirectory()
    hf_model.save_pretrained(tmp.name)
    processor.save_pretrained(tmp.name)
    transformer = Transformer(
        tmp.name, transformer_task="any-to-any", processing_kwargs={"chat_template": {"add_generation_prompt": True}}
    )
    true_id, false_id = vocab["1"], vocab["0"]
    reranker = CrossEncoder(
        modules=[transformer, LogitScore(true_token_id=true_id, false_token_id=false_id)], device="cpu"
    )
    model = reranker[0].auto_model  # the LlavaForConditionalGeneration being trained
    image_id, pad_id = vocab["<image>"], vocab["<|endoftext|>"]

    def forward(pairs: list) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Scores as LogitScore computes them, and per-pair captioning loss (summed) and token counts."""
        features = reranker.preprocess(pairs)  # exactly the inference-time tokenization and image processing
        logits = model(
            input_ids=features["input_ids"],
            attention_mask=features["attention_mask"],
            pixel_values=features["pixel_values"],
        ).logits
        scores = logits[:, -1, true_id] - logits[:, -1, false_id]
        ids = features["input_ids"]
        labels = ids.masked_fill((ids == image_id) | (features["attention_mask"] == 0), -100)[:, 1:]
        nll = F.cross_entropy(logits[:, :-1].transpose(1, 2), labels, ignore_index=-100, reduction="none").sum(1)
        return scores, nll, (labels != -100).sum(1)

    rng = np.random.default_rng([seed, 4242])
    group = hp["group_size"]

    def make_group(combo: int) -> list[int]:
        """Pool indices: the matching image, then negatives: half mined, the rest one attribute off."""
        spec = combos[combo]
        positive = int(rng.choice(by_combo[combo]))
        n_mined = (group - 1 + 1) // 2
        negatives = [int(mined[combo, j]) for j in rng.permutation(mined.shape[1])[:n_mined]]
        neighbours = S.image_neighbours(spec)
        for j in rng.permutation(len(neighbours))[: group - 1 - n_mined]:
            negatives.append(int(rng.choice(by_combo[combo_index[neighbours[j]]])))
        return [positive] + negatives

    total_steps = hp["caption_steps"] + hp["rank_steps"]
    optimizer = torch.optim.AdamW(reranker.parameters(), lr=hp["lr"], weight_decay=hp["weight_decay"])
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=hp["lr"], total_steps=total_steps, pct_start=0.05)
    history: list[dict] = []
    start = time.time()
    stats: dict[str, float] = {}
    reranker.train()
    for step in range(total_steps):
        if step < hp["caption_steps"]:
            phase = "caption"
            batch = rng.integers(0, len(combos), hp["caption_batch_size"])
            pairs = [(captions[c], pool_images[int(rng.choice(by_combo[c]))]) for c in batch]
            _, nll, n_tokens = forward(pairs)
            caption_loss = nll.sum() / n_tokens.sum()
            loss = caption_loss
            parts = {"caption_loss": caption_loss.item()}
        else:
            phase = "rank"
            qpb = hp["queries_per_batch"]
            batch = rng.integers(0, len(combos), qpb)
            pairs = [(captions[c], pool_images[i]) for c in batch for i in make_group(int(c))]
            scores, nll, n_tokens = forward(pairs)
            scores = scores.view(qpb, group)
            positives = torch.arange(0, qpb * group, group)
            caption_loss = nll[positives].sum() / n_tokens[positives].sum()
            listwise = F.cross_entropy(scores, torch.zeros(qpb, dtype=torch.long))
            labels = torch.zeros_like(scores)
            labels[:, 0] = 1
            bce = F.binary_cross_entropy_with_logits(scores, labels, pos_weight=torch.tensor(float(group - 1)))
            loss = listwise + hp["bce_weight"] * bce + hp["caption_weight"] * caption_loss
            parts = {
                "caption_loss": caption_loss.item(),
                "listwise_loss": listwise.item(),
                "bce_loss": bce.item(),
                "group_top1": (scores.argmax(1) == 0).float().mean().item(),
            }
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(reranker.parameters(), 1.0)
        optimizer.step()
        scheduler.step()
        for key, value in parts.items():
            stats[key] = stats.get(key, 0.0) + value
        stats["n"] = stats.get("n", 0) + 1
        if (step + 1) % 100 == 0 or step + 1 == hp["caption_steps"] or step + 1 == total_steps:
            n = stats.pop("n")
            record = {"step": step + 1, "phase": phase, **{k: round(v / n, 4) for k, v in stats.items()}}
            record["seconds"] = round(time.time() - start, 1)
            history.append(record)
            log("[reranker] " + " ".join(f"{k}={v}" for k, v in record.items()))
            stats = {}
    reranker.eval()
    train_seconds = time.time() - t0

    out_dir = out / RERANKER_DIR
    if out_dir.exists():
        shutil.rmtree(out_dir)
    reranker.save(str(out_dir), create_model_card=False)
    tmp.cleanup()
    (out_dir / "README.md").write_text(
        _readme(
            "modalbridge demo reranker (text query, image document)",
            "A tiny `LlavaForConditionalGeneration` (CLIP vision tower + 2-layer Llama, hidden 64) used as a "
            "multimodal cross-encoder: sentence-transformers turns a (query, document) pair into chat messages "
            "with roles `query` and `document`; the chat template renders the document (image) first, then the "
            "query, then `<|im_start|>assistant`, and `LogitScore` scores logit('1') - logit('0') at the last "
            "position (`predict` applies a sigmoid). Trained from scratch on synthetic shapes "
            "(`modalbridge.demo.synthetic`): captioning first, then listwise + binary ranking losses.",
            "from sentence_transformers import CrossEncoder\n"
            "model = CrossEncoder(path)\n"
            "model.predict([('a small red circle in the top left', pil_image)])\n"
            "model.rank('a small red circle in the top left', [pil_image_1, pil_image_2])",
        )
    )
    return {
        "architecture": "LlavaForConditionalGeneration (CLIP vision + Llama) + LogitScore, any-to-any CrossEncoder",
        "parameters": sum(p.numel() for p in model.parameters()),
        "train_pool_images": len(pool_images),
        "train_data_seed": RERANK_TRAIN_SEED,
        "hyperparameters": hp,
        "history": history,
        "train_seconds": round(train_seconds, 1),
    }


def _readme(title: str, body: str, usage: str) -> str:
    return (
        f"# {title}\n\n{body}\n\nTrained by `python -m modalbridge.demo.train`; quality in `../QUALITY.json`.\n\n"
        f"```python\n{usage}\n```\n"
    )


def dir_size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output folder (default: %(default)s)")
    parser.add_argument("--only", default="embedder,audio-embedder,reranker", help="comma-separated stages to (re)train")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)
    stages = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = set(stages) - {"embedder", "audio-embedder", "reranker"}
    if unknown:
        parser.error(f"unknown stages: {sorted(unknown)}")

    quality_path = args.out / "QUALITY.json"
    quality = json.loads(quality_path.read_text()) if quality_path.exists() else {}
    trainers = {"embedder": train_embedder, "audio-embedder": train_audio_embedder, "reranker": train_reranker}
    for stage in ("embedder", "audio-embedder", "reranker"):
        if stage in stages:
            log(f"== training {stage} ==")
            quality.setdefault("models", {})[stage] = {**trainers[stage](args.out, args.seed), "seed": args.seed}

    from modalbridge.demo.evaluate import evaluate

    if not all((args.out / sub).exists() for sub in (EMBEDDER_DIR, AUDIO_EMBEDDER_DIR, RERANKER_DIR)):
        quality_path.write_text(json.dumps(quality, indent=2) + "\n")
        log(f"not all three models exist under {args.out}: skipped the evaluation; wrote {quality_path}")
        return 0
    log("== evaluating the saved folders ==")
    t0 = time.time()
    metrics = evaluate(args.out)
    log(json.dumps(metrics, indent=2))
    import sentence_transformers
    import transformers

    for stage, sub in (("embedder", EMBEDDER_DIR), ("audio-embedder", AUDIO_EMBEDDER_DIR), ("reranker", RERANKER_DIR)):
        if (args.out / sub).exists() and stage in quality.get("models", {}):
            quality["models"][stage]["path"] = sub
            quality["models"][stage]["bytes_on_disk"] = dir_size(args.out / sub)
    quality.update(
        {
            "metrics": metrics,
            "evaluate_seconds": round(time.time() - t0, 1),
            "command": "HF_HUB_OFFLINE=1 PYTHONPATH=adapters python -m modalbridge.demo.train " + " ".join(argv if argv is not None else sys.argv[1:]),
            "evaluate_command": "PYTHONPATH=adapters python -c 'from modalbridge.demo.evaluate import evaluate; print(evaluate())'",
            "threads": args.threads,
            "versions": {
                "python": platform.python_version(),
                "torch": torch.__version__,
                "transformers": transformers.__version__,
                "sentence_transformers": sentence_transformers.__version__,
            },
        }
    )
    quality_path.write_text(json.dumps(quality, indent=2) + "\n")
    log(f"wrote {quality_path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
