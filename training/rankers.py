"""What a served model is and how it scores a query's documents: a cross-encoder (one logit per
``[CLS] query [SEP] doc [SEP]``), a bi-encoder (cosine of the two embeddings) or a fusion of one of
those with BM25. A training run's candidates are all rankers, and whichever wins is served by the
rerank API, the search preview, ``evaluate_reranker --model DIR`` and mining alike.

A model directory names its kind in ``ranker.json`` (written by the trainers); a directory
without one -- a base model from elsewhere -- is a cross-encoder when its config's architecture
is a sequence classifier, else a bi-encoder (a sentence-embedding model such as all-MiniLM-L6-v2,
whose cosine ranks well zero-shot; a fresh classification head on it would rank at random).

A fusion directory holds its inner model under ``model/`` and the BM25 weight in ``ranker.json``.
Fusion works per list: BM25 over the list's own documents (its idf from them: the rerank API gets
a list, not a corpus), both score vectors z-normalised within the list, then mixed
``(1 - w) * model + w * bm25``; the weight is fitted on train queries (``fit_fusion_weight``).
"""
from __future__ import annotations

import json
import os
import shutil
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .scoring import (
    DEFAULT_BATCH_SIZE,
    DEFAULT_MAX_LENGTH,
    ModelDirError,
    load_cross_encoder,
    score_lists,
)

RANKER_FILE = "ranker.json"
CROSS_ENCODER, BI_ENCODER, FUSION = "cross-encoder", "bi-encoder", "fusion"
KINDS = (CROSS_ENCODER, BI_ENCODER, FUSION)
FUSION_INNER = "model"
# Fusion weights tried when fitting: BM25's share of the mix.
FUSION_GRID = tuple(round(w, 2) for w in np.linspace(0.0, 1.0, 21))

Lists = Sequence[tuple[str, Sequence[str]]]  # (query, its documents) per list


def model_kind(path: str | Path) -> str:
    """The kind of ranker a model directory holds (see the module's docstring)."""
    path = Path(path)
    card = path / RANKER_FILE
    if card.is_file():
        try:
            kind = json.loads(card.read_text("utf-8")).get("kind")
        except (json.JSONDecodeError, AttributeError) as error:
            raise ModelDirError(f"{card}: not a JSON object ({error})") from None
        if kind not in KINDS:
            raise ModelDirError(f"{card}: kind must be one of {', '.join(KINDS)}, got {kind!r}")
        return kind
    config = path / "config.json"
    if not config.is_file():
        raise ModelDirError(f"{path}: not a model directory (no config.json)")
    try:
        architectures = json.loads(config.read_text("utf-8")).get("architectures") or []
    except (json.JSONDecodeError, AttributeError) as error:
        raise ModelDirError(f"{config}: not a JSON object ({error})") from None
    if any(str(name).endswith("ForSequenceClassification") for name in architectures):
        return CROSS_ENCODER
    return BI_ENCODER


def write_ranker_card(out_dir: str | Path, kind: str, **fields) -> None:
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)}, got {kind!r}")
    Path(out_dir, RANKER_FILE).write_text(json.dumps({"kind": kind, **fields}, indent=2, ensure_ascii=False))


def read_ranker_card(path: str | Path) -> dict:
    card = Path(path) / RANKER_FILE
    return json.loads(card.read_text("utf-8")) if card.is_file() else {"kind": model_kind(path)}


class Ranker:
    kind: str = ""
    path: Path | None = None

    def score(self, query: str, docs: Sequence[str]) -> np.ndarray:
        return self.score_lists([(query, docs)])[0]

    def score_lists(self, lists: Lists) -> list[np.ndarray]:
        raise NotImplementedError


class CrossEncoderRanker(Ranker):
    kind = CROSS_ENCODER

    def __init__(self, path=None, *, model=None, tokenizer=None, device: str | None = None,
                 max_length: int = DEFAULT_MAX_LENGTH, batch_size: int = DEFAULT_BATCH_SIZE):
        if model is None:
            model, tokenizer = load_cross_encoder(path, device=device)
        self.path = Path(path) if path else None
        self.model, self.tokenizer = model, tokenizer
        self.max_length = min(max_length, tokenizer.model_max_length or max_length)
        self.batch_size = batch_size

    def score_lists(self, lists: Lists) -> list[np.ndarray]:
        return score_lists(self.model, self.tokenizer, lists, max_length=self.max_length, batch_size=self.batch_size)


class BiEncoderRanker(Ranker):
    """Cosine of query and document embeddings; each distinct text is encoded once per call."""

    kind = BI_ENCODER

    def __init__(self, path=None, *, encoder=None, device: str | None = None, batch_size: int = DEFAULT_BATCH_SIZE):
        from .encoders import BiEncoder

        self.encoder = encoder if encoder is not None else BiEncoder(path, device=device, batch_size=batch_size)
        self.path = Path(path) if path else self.encoder.model_dir

    def score_lists(self, lists: Lists) -> list[np.ndarray]:
        queries = _unique(query for query, _ in lists)
        docs = _unique(doc for _, docs in lists for doc in docs)
        query_vectors = _unit(self.encoder.encode(list(queries)))
        doc_vectors = _unit(self.encoder.encode(list(docs)))
        return [doc_vectors[[docs[d] for d in list_docs]] @ query_vectors[queries[query]]
                for query, list_docs in lists]


class FusionRanker(Ranker):
    kind = FUSION

    def __init__(self, inner: Ranker, bm25_weight: float, *, path=None, tokenizer: str = "auto"):
        if not 0.0 <= bm25_weight <= 1.0:
            raise ValueError(f"bm25_weight must be in [0, 1], got {bm25_weight}")
        self.inner, self.bm25_weight, self.tokenizer = inner, float(bm25_weight), tokenizer
        self.path = Path(path) if path else None

    def score_lists(self, lists: Lists) -> list[np.ndarray]:
        inner = self.inner.score_lists(lists)
        return [fuse(model, list_bm25(query, docs, method=self.tokenizer), self.bm25_weight)
                for model, (query, docs) in zip(inner, lists)]


def load_ranker(path: str | Path, *, device: str | None = None, max_length: int = DEFAULT_MAX_LENGTH) -> Ranker:
    """The ranker a model directory holds, ready to score."""
    path = Path(path)
    if not path.is_dir():
        raise ModelDirError(f"{path}: no such model directory")
    kind = model_kind(path)
    if kind == CROSS_ENCODER:
        return CrossEncoderRanker(path, device=device, max_length=max_length)
    if kind == BI_ENCODER:
        return BiEncoderRanker(path, device=device)
    card = read_ranker_card(path)
    weight = card.get("bm25_weight")
    if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not 0 <= weight <= 1:
        raise ModelDirError(f"{path / RANKER_FILE}: bm25_weight must be a number in [0, 1], got {weight!r}")
    inner_dir = path / str(card.get("inner", FUSION_INNER))
    if model_kind(inner_dir) == FUSION:
        raise ModelDirError(f"{inner_dir}: a fusion's inner model cannot itself be a fusion")
    return FusionRanker(load_ranker(inner_dir, device=device, max_length=max_length), weight, path=path,
                        tokenizer=str(card.get("tokenizer", "auto")))


def save_fusion(out_dir: str | Path, *, inner_dir: str | Path, bm25_weight: float, **fields) -> None:
    """A fusion directory: the inner model copied under ``model/`` and the weight in ranker.json."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    copy_model_dir(inner_dir, out_dir / FUSION_INNER)
    write_ranker_card(out_dir, FUSION, inner=FUSION_INNER, bm25_weight=float(bm25_weight), tokenizer="auto",
                      normalise="z-score per list", **fields)


def copy_model_dir(source: str | Path, target: str | Path) -> None:
    """Copy a model directory, hard-linking files where the filesystem allows (weights are large
    and never written in place)."""
    def link_or_copy(src, dst):
        try:
            os.link(src, dst)
        except OSError:
            shutil.copy2(src, dst)

    shutil.copytree(source, target, copy_function=link_or_copy, dirs_exist_ok=True,
                    ignore=shutil.ignore_patterns("checkpoints", "__pycache__"))


def list_bm25(query: str, docs: Sequence[str], *, method: str = "auto") -> np.ndarray:
    """BM25 of each document for the query, the list being the corpus."""
    from mining.text.bm25 import BM25Index
    from mining.text.tokenize import tokenize, tokenize_many

    if not len(docs):
        return np.zeros(0)
    index = BM25Index.build(tokenize_many(list(docs), method=method))
    return np.asarray(index.scores(tokenize(query, method=method)), dtype=np.float64)


def fuse(model_scores: np.ndarray, bm25_scores: np.ndarray, bm25_weight: float) -> np.ndarray:
    return (1.0 - bm25_weight) * _z(model_scores) + bm25_weight * _z(bm25_scores)


def fit_fusion_weight(model_scores: Sequence[np.ndarray], bm25_scores: Sequence[np.ndarray],
                      ndcg_of, *, grid: Sequence[float] = FUSION_GRID) -> tuple[float, float]:
    """(weight, mean NDCG@10) of the grid weight that ranks the given lists best; ``ndcg_of(scores)``
    scores a list of per-list score vectors. Ties go to the smaller BM25 weight."""
    best = (-1.0, 0.0)
    for weight in grid:
        value = ndcg_of([fuse(m, b, weight) for m, b in zip(model_scores, bm25_scores)])
        if value > best[0] + 1e-12:
            best = (value, weight)
    return best[1], best[0]


def _z(values) -> np.ndarray:
    values = np.asarray(values, dtype=np.float64)
    if values.size == 0:
        return values
    spread = values.std()
    return (values - values.mean()) / spread if spread > 1e-12 else np.zeros_like(values)


def _unique(texts) -> dict[str, int]:
    position: dict[str, int] = {}
    for text in texts:
        position.setdefault(text, len(position))
    return position


def _unit(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)

