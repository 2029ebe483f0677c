"""Bi-encoders: a sentence-embedding model read from a local sentence-transformers-style directory.

One encoder for every place that embeds text -- dense mining (mining.dense caches a collection's
document vectors with it), the zero-shot and fine-tuned bi-encoder rankers (training.rankers) and
the bi-encoder trainer (training.bi_encoder) -- so a model scores the same wherever it is used.

The model is read with transformers' AutoModel/AutoTokenizer (local files only, nothing is
downloaded); pooling and normalisation follow the directory's ``modules.json`` and its Pooling
module's ``config.json`` (mean, CLS or max pooling; a ``Normalize`` module L2-normalises). A plain
transformers directory without ``modules.json`` gets mean pooling and normalisation.
``save_bi_encoder`` writes the same files back, so what the trainer writes loads in
``sentence_transformers.SentenceTransformer`` and here alike.

Texts are encoded in batches sorted by length (little padding), under ``torch.inference_mode``.
"""
from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .scoring import ModelDirError

# Models load only from local directories; nothing is downloaded at run time (DESIGN.md).
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


@dataclass(frozen=True)
class Pooling:
    mode: str = "mean"  # mean | cls | max
    normalize: bool = True
    max_length: int = 256


def read_pooling(model_dir: Path) -> Pooling:
    """Pooling, normalisation and max length from a sentence-transformers directory's config files."""
    model_dir = Path(model_dir)
    modules_file = model_dir / "modules.json"
    max_length = 256
    st_config = model_dir / "sentence_bert_config.json"
    if st_config.is_file():
        max_length = int(json.loads(st_config.read_text("utf-8")).get("max_seq_length") or max_length)
    if not modules_file.is_file():
        return Pooling(max_length=max_length)
    try:
        modules = json.loads(modules_file.read_text("utf-8"))
    except json.JSONDecodeError as exc:
        raise ModelDirError(f"{modules_file}: not valid JSON: {exc}") from None
    mode, normalize = "mean", False
    for module in modules:
        kind = str(module.get("type", ""))
        if kind.endswith(".Pooling"):
            config_file = model_dir / module.get("path", "") / "config.json"
            config = json.loads(config_file.read_text("utf-8")) if config_file.is_file() else {}
            if config.get("pooling_mode_cls_token"):
                mode = "cls"
            elif config.get("pooling_mode_max_tokens"):
                mode = "max"
            elif config.get("pooling_mode_mean_tokens", True) or config.get("pooling_mode_mean_sqrt_len_tokens"):
                mode = "mean"
        elif kind.endswith(".Normalize"):
            normalize = True
    return Pooling(mode=mode, normalize=normalize, max_length=max_length)


def pool(hidden, mask, pooling: Pooling):
    """Sentence vectors from token states ``[batch, tokens, dim]`` and the attention mask (keeps the
    autograd graph: the trainer calls it too)."""
    import torch

    if pooling.mode == "cls":
        vectors = hidden[:, 0]
    elif pooling.mode == "max":
        vectors = hidden.masked_fill(~mask.bool().unsqueeze(-1), float("-inf")).max(dim=1).values
    else:
        weights = mask.unsqueeze(-1).to(hidden.dtype)
        vectors = (hidden * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1e-9)
    if pooling.normalize:
        vectors = torch.nn.functional.normalize(vectors, p=2, dim=1)
    return vectors


@dataclass
class EncodeStats:
    tokens: int = 0
    unknown: int = 0

    @property
    def unk_rate(self) -> float:
        return self.unknown / self.tokens if self.tokens else 0.0


def load_encoder_parts(model_dir: str | Path, *, device: str | None = None):
    """(model, tokenizer, pooling) of a local directory; the model in eval mode on ``device``."""
    import torch
    from transformers import AutoModel, AutoTokenizer
    from transformers.utils import logging as hf_logging

    directory = Path(model_dir)
    if not str(model_dir) or not directory.is_dir():
        raise ModelDirError(f"{directory}: no model directory (set BASE_MODEL_DIR or pass one)")
    if not (directory / "config.json").is_file():
        raise ModelDirError(f"{directory / 'config.json'}: missing; not a transformers model directory")
    pooling = read_pooling(directory)
    hf_logging.disable_progress_bar()
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # a cross-encoder's unused head is expected here
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(directory), local_files_only=True)
        model = AutoModel.from_pretrained(str(directory), local_files_only=True)
    except (OSError, ValueError) as exc:
        raise ModelDirError(f"{directory}: cannot load the model ({exc})") from None
    finally:
        hf_logging.set_verbosity(verbosity)
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    return model.to(device).eval(), tokenizer, pooling


class BiEncoder:
    """A sentence encoder: texts in, float32 vectors out (L2-normalised when the model says so)."""

    def __init__(self, model_dir: str | Path, *, batch_size: int = 64, device: str | None = None):
        self.model, self.tokenizer, self.pooling = load_encoder_parts(model_dir, device=device)
        self.model_dir = Path(model_dir).resolve()
        self.batch_size = batch_size
        self.device = str(next(self.model.parameters()).device)
        self.max_length = min(self.pooling.max_length, getattr(self.tokenizer, "model_max_length", 10**6) or 10**6)
        self.dimension = int(self.model.config.hidden_size)

    @property
    def fingerprint(self) -> str:
        """Names the model in cache keys: its path plus the size and mtime of its weight files."""
        parts = [str(self.model_dir), self.pooling.mode, str(self.pooling.normalize), str(self.max_length)]
        for weights in sorted(self.model_dir.glob("*.safetensors")) + sorted(self.model_dir.glob("*.bin")):
            stat = weights.stat()
            parts.append(f"{weights.name}:{stat.st_size}:{int(stat.st_mtime)}")
        return hashlib.sha1("|".join(parts).encode()).hexdigest()[:12]

    def encode(self, texts: Sequence[str], *, stats: EncodeStats | None = None, progress=None) -> np.ndarray:
        """Embeddings of `texts` in their order, shape (len(texts), dimension), float32."""
        import torch

        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        if not len(texts):
            return out
        # Longest first: a batch pads to its longest text, so similar lengths waste little work,
        # and an out-of-memory error shows on the first batch rather than the last.
        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
        unk_id = self.tokenizer.unk_token_id
        special = set(self.tokenizer.all_special_ids)
        was_training = self.model.training
        self.model.eval()
        try:
            with torch.inference_mode():
                for start in range(0, len(order), self.batch_size):
                    batch = order[start : start + self.batch_size]
                    encoded = self.tokenizer(
                        [texts[i] for i in batch], padding=True, truncation=True,
                        max_length=self.max_length, return_tensors="pt",
                    )
                    if stats is not None:
                        ids = encoded["input_ids"][encoded["attention_mask"].bool()]
                        content = ~torch.isin(ids, torch.tensor(sorted(special - {unk_id}), dtype=ids.dtype))
                        stats.tokens += int(content.sum())
                        stats.unknown += int((ids == unk_id).sum()) if unk_id is not None else 0
                    encoded = {name: tensor.to(self.device) for name, tensor in encoded.items()}
                    hidden = self.model(**encoded).last_hidden_state
                    out[batch] = pool(hidden, encoded["attention_mask"], self.pooling).float().cpu().numpy()
                    if progress is not None:
                        progress(len(batch))
        finally:
            self.model.train(was_training)
        return out


def save_bi_encoder(model, tokenizer, out_dir: str | Path, *, pooling: Pooling, max_length: int) -> None:
    """Write a sentence-transformers directory: the transformer at the top level, then Pooling and
    (when the pooling normalises) Normalize modules, as ``SentenceTransformer`` reads them."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    modules = [{"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
               {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"}]
    if pooling.normalize:
        modules.append({"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"})
        (out_dir / "2_Normalize").mkdir(exist_ok=True)
    (out_dir / "modules.json").write_text(json.dumps(modules, indent=2))
    (out_dir / "1_Pooling").mkdir(exist_ok=True)
    (out_dir / "1_Pooling" / "config.json").write_text(json.dumps({
        "word_embedding_dimension": int(model.config.hidden_size),
        "pooling_mode_cls_token": pooling.mode == "cls",
        "pooling_mode_mean_tokens": pooling.mode == "mean",
        "pooling_mode_max_tokens": pooling.mode == "max",
        "pooling_mode_mean_sqrt_len_tokens": False,
    }, indent=2))
    (out_dir / "sentence_bert_config.json").write_text(json.dumps({"max_seq_length": max_length,
                                                                    "do_lower_case": False}))
