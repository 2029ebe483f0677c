"""score_pairs computes the model's own scores: its length-sorted batching (why it is faster than
sentence-transformers' predict, bench/train.py) is a speed-up, not a different model -- checked
against CrossEncoder.predict on the same directory."""
from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from training.scoring import load_cross_encoder, score_pairs

from .conftest import FILLER, make_tiny_model


def pairs(n: int, *, seed: int) -> tuple[list[str], list[str]]:
    """Queries and documents of very different lengths, some cut at max_length, so batches hold
    padding, no padding, and truncated rows."""
    rng = random.Random(seed)
    queries = [f"query q{rng.randrange(20)}" + " w1" * rng.randint(0, 3) for _ in range(n)]
    docs = [" ".join(rng.choices(FILLER + ["best", "good", "meh"], k=rng.choice([1, 2, 5, 5, 9, 30, 80])))
            for _ in range(n)]
    return queries, docs


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """The tiny BERT with its weights scaled up: freshly initialised (std 0.02) it scores every
    pair about the same, and a 1e-4 tolerance would then prove nothing."""
    from transformers import AutoModelForSequenceClassification

    directory = make_tiny_model(tmp_path_factory.mktemp("tiny") / "model", seed=3)
    model = AutoModelForSequenceClassification.from_pretrained(directory, local_files_only=True)
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if parameter.dim() == 2 and "LayerNorm" not in name:
                parameter.mul_(6.0)
    model.save_pretrained(directory)
    return directory


@pytest.mark.parametrize("batch_size", [1, 4, 16])
def test_score_pairs_matches_sentence_transformers_predict(tiny, batch_size):
    from sentence_transformers import CrossEncoder

    queries, docs = pairs(53, seed=batch_size)
    model, tokenizer = load_cross_encoder(tiny, device="cpu")
    ours = score_pairs(model, tokenizer, queries, docs, max_length=48, batch_size=batch_size)
    cross_encoder = CrossEncoder(str(tiny), local_files_only=True, device="cpu", max_length=48)
    theirs = cross_encoder.predict(list(zip(queries, docs)), batch_size=batch_size, show_progress_bar=False,
                                   activation_fn=torch.nn.Identity())
    assert ours.shape == (53,)
    np.testing.assert_allclose(ours, theirs, atol=1e-4, rtol=0)
    assert np.std(ours) > 0.01  # scores that differ per pair (100x the tolerance), so the check means something


def test_scoring_leaves_a_training_model_in_training_mode(tiny):
    model, tokenizer = load_cross_encoder(tiny, device="cpu", eval_mode=False)
    model.train()
    queries, docs = pairs(10, seed=1)
    score_pairs(model, tokenizer, queries, docs, max_length=48, batch_size=4)
    assert model.training
