"""Train the tiny offline demo models from scratch on :mod:`modalbridge.demo.synthetic` data.

Run (CPU, about 5-8 minutes on 2 cores)::

    HF_HUB_OFFLINE=1 PYTHONPATH=adapters python -m modalbridge.demo.train            # all three models
    HF_HUB_OFFLINE=1 PYTHONPATH=adapters python -m modalbridge.demo.train --only reranker

It writes, under ``adapters/modalbridge/demo/models/`` (or ``--out``), plain sentence-transformers folders
(standard ``transformers`` architectures and standard sentence-transformers modules only: no custom code,
no ``trust_remote_code``):

* ``embedder/``: text <-> image, a tiny ``CLIPModel`` (ViT on 32x32 px, patch 8; 2-layer text and vision
  towers, hidden 64, 64-d embeddings) in one ``Transformer`` module; ``SentenceTransformer(path)`` ->
  modalities ``text``, ``image``; no prompts.
* ``audio-embedder/``: text <-> audio, a tiny ``ClapModel`` (HTSAT audio tower: one Swin stage of 2 layers
  over a 128-bin log-mel spectrogram of 1 s at 16 kHz, 16x4 patches; 2-layer RoBERTa text tower; 64-d
  embeddings); ``SentenceTransformer(path)`` -> modalities ``text``, ``audio``; no prompts.
* ``reranker/``: (text query, image document) cross-encoder: ``Transformer`` over a tiny ``LlavaModel``
  (the embedder's CLIP vision tower, MLP projector, 2-layer Llama, hidden 64) + ``Pooling("mean")`` +
  ``Dense(64 -> 1)`` writing ``scores``; ``CrossEncoder(path).predict([(caption, pil_image), ...])`` /
  ``.rank(caption, images)`` (sigmoid scores).
* ``QUALITY.json``: the metrics of :func:`modalbridge.demo.evaluate.evaluate` on the saved folders,
  plus seeds, data sizes, epochs, parameter counts, sizes on disk, training times and library versions.

Tokenizers are built offline from the byte-level alphabet (any text tokenizes): the embedders' have no
merges (one token per character); the reranker's has merges that make each caption word one token.

Embedders: contrastive (CLIP) loss in both directions, with soft targets for duplicate captions in a
batch, plus an auxiliary loss that predicts each attribute (shape, color, ... / kind, pitch, ...) with
linear heads from the text and item embeddings (and, for images, from the mean of the vision tower's
last-layer tokens); the heads are thrown away after training. Without them the tiny CLAP audio tower
learns far slower.

Reranker: a cross-encoder trained from scratch on ranking losses alone did not learn to compare caption
and image within CPU minutes (tried: LLaVA + ``LogitScore`` with or without captioning pre-training,
mean pooling + Dense, dense per-token labels). So it is initialised from the embedder
(:func:`init_reranker_from_embedder`: vision tower copied, projector and word embeddings fitted to the
embedder's joint space, first layer set to score their agreement), then fine-tuned end to end with a
listwise loss (softmax over one matching and several non-matching images per caption, negatives mined
from the embedder's top candidates and images that differ in one attribute) plus binary cross-entropy;
a validation split (seed 997) picks the checkpoint.

Everything is seeded (``--seed``); with the same thread count the run is reproducible on one machine.
"""

from __future__ import annotations

import argparse
import copy
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
        "group_size": 6,  # 1 matching + 5 non-matching images per caption
        "queries_per_batch": 16,
        "steps": 1000,
        "lr": 2e-4,
        "weight_decay": 0.01,
        "bce_weight": 0.5,
        "eval_every": 100,
        "k": 10,
    },
}

IMAGE_SIZE, PATCH_SIZE = 32, 8
# "full": the reranker sees the CLS token of its vision tower too (17 image tokens); "default" drops it.
VISION_FEATURE_STRATEGY = "full"
HIDDEN = 64
PROJECTION_DIM = 64
RERANKER_LM_LAYERS = 2

# Chat template of the reranker: ChatML over the messages in their order (the CrossEncoder sends the
# query as role "query", then the document as role "document"); images become "<image>", which the
# LLaVA processor expands to one token per vision token. No generation prompt: the score is pooled.
RERANKER_CHAT_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}{% else %}"
    "{% for part in message['content'] %}{% if part['type'] == 'text' %}{{ part['text'] }}"
    "{% elif part['type'] == 'image' %}<image>{% endif %}{% endfor %}{% endif %}"
    "<|im_end|>\n{% endfor %}"
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
        fft_window_size=1024,  # 513 frequency bins: every one of the 128 mel filters gets some
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
    """Tiny LLaVA without LM head (``LlavaModel``: CLIP vision tower, 2-layer MLP projector, 2-layer Llama)."""
    from transformers import LlavaConfig, LlavaModel, LlavaProcessor

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
            num_key_value_heads=4,
            mlp_bias=True,
            max_position_embeddings=256,
            pad_token_id=vocab["<|endoftext|>"],
            eos_token_id=vocab["<|im_end|>"],
            bos_token_id=None,
        ),
        image_token_index=vocab["<image>"],
        image_seq_length=n_image_tokens,
        vision_feature_layer=-1,
        vision_feature_select_strategy=VISION_FEATURE_STRATEGY,
    )
    model = LlavaModel(config)
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


RERANK_JOINT_DIMS = 24  # joint text/image subspace carried through the reranker's residual stream


def _embedder_features(clip, clip_processor, images, captions):
    """The embedder's normalized image / text embeddings and its vision tower's last-layer tokens."""
    pixel_values = clip_processor.image_processor(images, return_tensors="pt").pixel_values
    text = clip_processor.tokenizer(captions, return_tensors="pt", padding=True)
    with torch.no_grad():
        vision = clip.vision_model(pixel_values=pixel_values)
        image_emb = F.normalize(clip.visual_projection(vision.pooler_output), dim=-1)
        text_emb = F.normalize(clip.get_text_features(**text).pooler_output, dim=-1)
    return vision.last_hidden_state, image_emb, text_emb


def init_reranker_from_embedder(model, vocab: dict[str, int], clip, clip_processor, images, captions, log_prefix="[reranker]") -> dict:
    """Data-dependent initialisation of the tiny LLaVA so that, before any ranking loss, its pooled score
    follows the embedder's text-image similarity (the cross-encoder then starts as good as the embedder
    and is fine-tuned from there).

    Residual stream layout (hidden 64): dims [0, K) image part, [K, 2K) text part, two filler dims, and
    the last dim for the score. (1) The vision tower is the embedder's. (2) The projector is trained by
    regression to map every vision token to the embedder's image embedding (projected on a K-dim basis of
    the joint space), like LLaVA's stage-1 projector alignment. (3) Caption words get embeddings from a
    least-squares bag-of-words fit of the embedder's caption embeddings. (4) Layer 1's attention has zero
    query/key weights, i.e. uniform causal attention that brings the mean of the preceding caption words
    to every image token; its SwiGLU MLP multiplies image and text parts (SiLU is linear near 0) and writes
    their dot product to the score dim. Layer 2 starts as the identity (zero output projections). Dense
    calibration happens afterwards."""
    K = RERANK_JOINT_DIMS
    D = HIDDEN
    score_dim, filler_word, filler_other = D - 1, 2 * K, 2 * K + 1
    tokens, image_emb, text_emb = _embedder_features(clip, clip_processor, images, captions["images"])
    _, _, caption_emb = _embedder_features(clip, clip_processor, images[:1], captions["all"])

    # (1) joint basis: top right-singular vectors of image and caption embeddings (uncentred: dot products kept)
    basis = torch.linalg.svd(torch.cat([image_emb, caption_emb]), full_matrices=False).Vh[:K].T  # (D_clip, K)
    y_image = image_emb @ basis
    y_caption = caption_emb @ basis

    # (2) projector: every vision token -> y_image of its image
    model.vision_tower.load_state_dict(clip.vision_model.state_dict(), strict=True)
    projector = model.multi_modal_projector
    opt = torch.optim.Adam(projector.parameters(), lr=1e-2)
    for step in range(300):
        out = projector(tokens)[..., :K]
        loss = F.mse_loss(out, y_image[:, None, :].expand_as(out)) + F.mse_loss(out.mean(1), y_image)
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        projector.linear_2.weight[K:] = 0
        projector.linear_2.bias[K:] = 0
        fitted = F.normalize(projector(tokens)[..., :K].mean(1), dim=-1)
    log(f"{log_prefix} projector fit: mse={loss.item():.4f} cos(fit, embedder)={(fitted * F.normalize(y_image, dim=-1)).sum(1).mean():.3f}")

    # (3) caption words: bag-of-words least squares
    words = domain_words()
    word_index = {w: i for i, w in enumerate(words)}
    bag = torch.zeros(len(captions["all"]), len(words))
    for row, caption in enumerate(captions["all"]):
        for w in caption.split():
            bag[row, word_index[w]] += 1
    word_vectors = torch.linalg.lstsq(bag, y_caption).solution  # (n_words, K)
    fit_cos = F.cosine_similarity(bag @ word_vectors, y_caption).mean()
    log(f"{log_prefix} word fit: cos(bag of words, embedder)={fit_cos:.3f}")

    lm = model.language_model
    norm_c = 8.0  # every token embedding has norm 8, so RMSNorm (sqrt(64) = 8) leaves it unchanged
    lam = 0.9 * norm_c / word_vectors.norm(dim=1).max().item()
    with torch.no_grad():
        emb = lm.embed_tokens.weight
        emb.zero_()
        emb[:, filler_other] = norm_c
        for w in words:
            vec = lam * word_vectors[word_index[w]]
            for form in (w, "\u0120" + w):
                if form in vocab:
                    row = vocab[form]
                    emb[row, filler_other] = 0
                    emb[row, K : 2 * K] = vec
                    emb[row, filler_word] = (norm_c**2 - vec.norm() ** 2).clamp(min=0).sqrt()

        # (4) layer 1: uniform attention moving the text part; bilinear MLP into the score dim
        layer = lm.layers[0]
        attn, mlp = layer.self_attn, layer.mlp
        n_typical = 30.0  # tokens before a typical image token (query turn ~12 + document header 3 + ~9 image)
        mu = 10.0 * n_typical / lam  # |text part| ~ 10 at image tokens, >> |image part| ~ 1
        for lin in (attn.q_proj, attn.k_proj, attn.v_proj, attn.o_proj, mlp.gate_proj, mlp.up_proj, mlp.down_proj):
            lin.weight.zero_()
            if lin.bias is not None:
                lin.bias.zero_()
        idx = torch.arange(K)
        attn.v_proj.weight[idx, K + idx] = 1.0
        attn.o_proj.weight[K + idx, idx] = mu
        alpha, gamma, rho = 0.5, 1.0, 1.0
        mlp.gate_proj.weight[idx, idx] = alpha
        mlp.up_proj.weight[idx, K + idx] = gamma
        mlp.down_proj.weight[score_dim, idx] = rho
        for layer in lm.layers[1:]:
            for lin in (layer.self_attn.o_proj, layer.mlp.down_proj):
                lin.weight.zero_()
                if lin.bias is not None:
                    lin.bias.zero_()
    return {"joint_dims": K, "projector_mse": round(loss.item(), 5), "word_fit_cos": round(float(fit_cos), 4)}


def rerank_top1(reranker, embedder, captions: list[str], gallery: list, targets: np.ndarray, k: int) -> tuple[float, float]:
    """(embedding top-1, rerank top-1) with the same procedure as ``evaluate``."""
    q = embedder.encode_query(captions, convert_to_tensor=True)
    d = embedder.encode_document(gallery, batch_size=128, convert_to_tensor=True)
    ranking = np.argsort(-embedder.similarity(q, d).cpu().numpy(), axis=1, kind="stable")[:, :k]
    pairs = [(c, gallery[j]) for c, row in zip(captions, ranking) for j in row]
    scores = np.asarray(reranker.predict(pairs, batch_size=100, show_progress_bar=False)).reshape(len(captions), k)
    best = ranking[np.arange(len(captions)), scores.argmax(1)]
    return float(np.mean(ranking[:, 0] == targets)), float(np.mean(best == targets))


def train_reranker(out: Path, seed: int) -> dict:
    """Initialise from the embedder (see :func:`init_reranker_from_embedder`), calibrate the score, then
    fine-tune everything on (caption, image) groups: one matching and ``group_size - 1`` non-matching
    images (half mined from the embedder's top candidates, the rest one attribute off), softmax
    cross-entropy over the group plus binary cross-entropy per pair. A validation split (seed 997, not
    used by ``evaluate``) picks the checkpoint; step 0 (the initialisation) is a candidate too."""
    from sentence_transformers import CrossEncoder, SentenceTransformer
    from sentence_transformers.base.modules import Dense, Transformer
    from sentence_transformers.sentence_transformer.modules import Pooling

    hp = HP["reranker"]
    seed_everything(seed)
    embedder_dir = out / EMBEDDER_DIR
    if not embedder_dir.exists():
        raise SystemExit(f"train the embedder first: {embedder_dir} is missing")
    embedder = SentenceTransformer(str(embedder_dir), device="cpu")
    clip, clip_processor = embedder[0].auto_model, embedder[0].processor
    t0 = time.time()

    combos = S.image_combinations()
    combo_index = {spec: i for i, spec in enumerate(combos)}
    captions = [spec.caption for spec in combos]
    pool_specs = S.sample_specs(combos, hp["n_pool"], RERANK_TRAIN_SEED)
    pool_images = [img for img, _ in S.generate_images(specs=pool_specs, seed=RERANK_TRAIN_SEED)]
    by_combo: list[list[int]] = [[] for _ in combos]
    for i, spec in enumerate(pool_specs):
        by_combo[combo_index[spec]].append(i)
    with torch.no_grad():
        q = embedder.encode_query(captions, convert_to_tensor=True, normalize_embeddings=True)
        d = embedder.encode_document(pool_images, convert_to_tensor=True, normalize_embeddings=True, batch_size=256)
    sims = q @ d.T
    pool_combo = torch.tensor([combo_index[s] for s in pool_specs])
    sims[pool_combo[None, :] == torch.arange(len(combos))[:, None]] = -2  # hide the matching images
    mined = sims.topk(20, dim=1).indices.numpy()  # (360, 20) pool indices

    val_seed = 997
    val_specs = S.sample_specs(combos, len(combos), val_seed)  # every caption once
    val_gallery = [img for img, _ in S.generate_images(specs=combos, seed=val_seed)]
    val_captions = [spec.caption for spec in val_specs]
    val_targets = np.array([combo_index[spec] for spec in val_specs])
    log(f"[reranker] data: pool of {len(pool_images)} images, negatives mined, {time.time() - t0:.1f}s")

    hf_model, processor, vocab = build_llava()
    init_stats = init_reranker_from_embedder(
        hf_model, vocab, clip, clip_processor, pool_images, {"images": [pool_specs[i].caption for i in range(len(pool_specs))], "all": captions}
    )
    tmp = tempfile.TemporaryDirectory()
    hf_model.save_pretrained(tmp.name)
    processor.save_pretrained(tmp.name)
    dense = Dense(HIDDEN, 1, activation_function=None, module_input_name="sentence_embedding", module_output_name="scores")
    reranker = CrossEncoder(
        modules=[Transformer(tmp.name, transformer_task="feature-extraction"), Pooling(HIDDEN, "mean"), dense], device="cpu"
    )
    rng = np.random.default_rng([seed, 4242])
    group = hp["group_size"]

    def make_group(combo: int) -> list[int]:
        spec = combos[combo]
        positive = int(rng.choice(by_combo[combo]))
        n_mined = group // 2
        negatives = [int(mined[combo, j]) for j in rng.permutation(mined.shape[1])[:n_mined]]
        neighbours = S.image_neighbours(spec)
        for j in rng.permutation(len(neighbours))[: group - 1 - n_mined]:
            negatives.append(int(rng.choice(by_combo[combo_index[neighbours[j]]])))
        return [positive] + negatives

    def batch_pairs(n_queries: int) -> list:
        batch = rng.integers(0, len(combos), n_queries)
        return [(captions[c], pool_images[i]) for c in batch for i in make_group(int(c))]

    # Calibrate the Dense layer (score = kappa * pooled score-dim + b) by logistic regression.
    with torch.no_grad():
        raw, labels = [], []
        for _ in range(8):
            pairs = batch_pairs(16)
            features = reranker(reranker.preprocess(pairs))
            raw.append(features["sentence_embedding"][:, HIDDEN - 1])
            labels.append(torch.tensor([1.0] + [0.0] * (group - 1)).repeat(16))
        raw, labels = torch.cat(raw), torch.cat(labels)
    kappa = torch.zeros(1, requires_grad=True)
    bias = torch.zeros(1, requires_grad=True)
    scale = 1.0 / raw.std().clamp(min=1e-6)
    opt = torch.optim.Adam([kappa, bias], lr=0.1)
    for _ in range(300):
        loss = F.binary_cross_entropy_with_logits(kappa * scale * raw + bias, labels, pos_weight=torch.tensor(float(group - 1)))
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        dense.linear.weight.zero_()
        dense.linear.weight[0, HIDDEN - 1] = kappa.item() * scale
        dense.linear.bias.fill_(bias.item())

    reranker.eval()
    embedding_val, rerank_val = rerank_top1(reranker, embedder, val_captions, val_gallery, val_targets, hp["k"])
    log(f"[reranker] initialisation: validation embedding_top1={embedding_val} rerank_top1={rerank_val}")
    history = [{"step": 0, "val_rerank_top1": rerank_val, "val_embedding_top1": embedding_val}]
    best_state, best_val, best_step = copy.deepcopy(reranker.state_dict()), rerank_val, 0

    optimizer = torch.optim.AdamW(reranker.parameters(), lr=hp["lr"], weight_decay=hp["weight_decay"])
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=hp["lr"], total_steps=hp["steps"], pct_start=0.1)
    start = time.time()
    stats: dict[str, float] = {}
    for step in range(hp["steps"]):
        reranker.train()
        qpb = hp["queries_per_batch"]
        scores = reranker(reranker.preprocess(batch_pairs(qpb)))["scores"].view(qpb, group)
        listwise = F.cross_entropy(scores, torch.zeros(qpb, dtype=torch.long))
        labels = torch.zeros_like(scores)
        labels[:, 0] = 1
        bce = F.binary_cross_entropy_with_logits(scores, labels, pos_weight=torch.tensor(float(group - 1)))
        loss = listwise + hp["bce_weight"] * bce
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(reranker.parameters(), 1.0)
        optimizer.step()
        scheduler.step()
        for key, value in (("listwise_loss", listwise.item()), ("bce_loss", bce.item()), ("group_top1", (scores.argmax(1) == 0).float().mean().item())):
            stats[key] = stats.get(key, 0.0) + value
        if (step + 1) % hp["eval_every"] == 0 or step + 1 == hp["steps"]:
            n = hp["eval_every"] if (step + 1) % hp["eval_every"] == 0 else (step + 1) % hp["eval_every"]
            reranker.eval()
            _, rerank_val = rerank_top1(reranker, embedder, val_captions, val_gallery, val_targets, hp["k"])
            record = {"step": step + 1, **{k: round(v / n, 4) for k, v in stats.items()}, "val_rerank_top1": rerank_val}
            record["seconds"] = round(time.time() - start, 1)
            history.append(record)
            log("[reranker] " + " ".join(f"{k}={v}" for k, v in record.items()))
            stats = {}
            if rerank_val >= best_val:  # ties: keep the longer-trained model
                best_state, best_val, best_step = copy.deepcopy(reranker.state_dict()), rerank_val, step + 1
    reranker.load_state_dict(best_state)
    reranker.eval()
    log(f"[reranker] kept step {best_step} (validation rerank_top1={best_val})")
    train_seconds = time.time() - t0

    out_dir = out / RERANKER_DIR
    if out_dir.exists():
        shutil.rmtree(out_dir)
    reranker.save(str(out_dir), create_model_card=False)
    tmp.cleanup()
    (out_dir / "README.md").write_text(
        _readme(
            "modalbridge demo reranker (text query, image document)",
            "A tiny `LlavaModel` (CLIP vision tower, MLP projector, 2-layer Llama, hidden 64) used as a "
            "multimodal cross-encoder: sentence-transformers turns a (query, document) pair into ChatML "
            "messages with roles `query` and `document`, the image becomes 17 vision tokens after the "
            "query, and `Pooling(mean)` + `Dense(64 -> 1)` give the score (`predict` applies a sigmoid). "
            "Initialised from the demo embedder (vision tower; projector and word embeddings fitted to its "
            "joint space; first layer set to score text-image agreement) and fine-tuned with listwise and "
            "binary losses on hard negatives. Synthetic shapes only (`modalbridge.demo.synthetic`).",
            "from sentence_transformers import CrossEncoder\n"
            "model = CrossEncoder(path)\n"
            "model.predict([('a small red circle in the top left', pil_image)])\n"
            "model.rank('a small red circle in the top left', [pil_image_1, pil_image_2])",
        )
    )
    return {
        "architecture": "LlavaModel (CLIP vision + MLP projector + Llama) + Pooling(mean) + Dense, CrossEncoder",
        "parameters": sum(p.numel() for p in reranker.parameters()),
        "train_pool_images": len(pool_images),
        "train_data_seed": RERANK_TRAIN_SEED,
        "validation_seed": val_seed,
        "initialisation": init_stats,
        "kept_step": best_step,
        "hyperparameters": hp,
        "history": history,
        "train_seconds": round(train_seconds, 1),
    }


def _readme(title: str, body: str, usage: str) -> str:
    return (
        f"# {title}\n\n{body}\n\nTrained by `python -m modalbridge.demo.train`; quality in `../QUALITY.json`.\n\n"
        f"```python\n{usage}\n```\n"
    )


def make_world_readable(path: Path) -> None:
    """safetensors writes files with mode 0600; package data should be 0644."""
    for f in path.rglob("*"):
        if f.is_file():
            f.chmod(0o644)


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

    make_world_readable(args.out)
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
    make_world_readable(args.out)
    log(f"wrote {quality_path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
