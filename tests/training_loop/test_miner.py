"""training.miner: after a promotion, dense mining uses the promoted model's bi-encoder -- the model
itself when it is one, else one distilled from its scores over the collection's candidate pools."""
from __future__ import annotations

import random

import numpy as np
import pytest

from annotate.models import Candidate, Collection, Document, Query
from training import registry
from training.encoders import BiEncoder
from training.miner import collection_pools, distil_miner, miner_dir
from training.models import ModelVersion
from training.rankers import load_ranker, model_kind

from .conftest import FILLER, MARKERS
from .test_rankers import tiny_bi_encoder  # noqa: F401 -- fixture

pytestmark = pytest.mark.django_db


@pytest.fixture
def collection():
    """12 queries, each with 8 candidates whose marker word says how relevant they are."""
    collection = Collection.objects.create(slug="mine", name="mine", tokenizer="whitespace")
    rng = random.Random(4)
    for q in range(12):
        query = Query.objects.create(collection=collection, external_id=f"q{q}", text=f"query q{q}",
                                     content_hash=f"q{q}")
        for d in range(8):
            words = rng.sample(FILLER, 5)
            grade = d % 4
            if grade:
                words.insert(2, MARKERS[grade])
            text = " ".join(words)
            document = Document.objects.create(collection=collection, external_id=f"q{q}d{d}", text=text,
                                               content_hash=f"q{q}d{d}")
            Candidate.objects.create(collection=collection, query=query, document=document)
    return collection


def spearman(a, b) -> float:
    ra, rb = np.argsort(np.argsort(a)), np.argsort(np.argsort(b))
    return float(np.corrcoef(ra, rb)[0, 1])


def agreement(student_dir, teacher, groups) -> float:
    student = load_ranker(student_dir)
    lists = [(g.query, g.docs) for g in groups]
    return float(np.mean([spearman(s, t) for s, t in zip(student.score_lists(lists), teacher.score_lists(lists))]))


def test_a_promoted_bi_encoder_is_its_own_miner(collection, tiny_bi_encoder):  # noqa: F811
    assert miner_dir(collection) is None  # nothing promoted: the base model mines
    version = registry.promote(version=ModelVersion.objects.create(collection=collection, path=str(tiny_bi_encoder)))
    assert distil_miner(version=version) == tiny_bi_encoder
    assert miner_dir(collection) == tiny_bi_encoder


def test_a_promoted_cross_encoder_is_distilled_into_the_miner(collection, trained_model, tiny_bi_encoder,  # noqa: F811
                                                               settings):
    settings.BASE_MODEL_DIR = tiny_bi_encoder
    groups = collection_pools(collection)
    assert len(groups) == 12 and all(len(g) == 8 for g in groups)
    teacher = load_ranker(trained_model)
    before = agreement(tiny_bi_encoder, teacher, groups)
    version = registry.promote(version=ModelVersion.objects.create(collection=collection, path=str(trained_model)))
    from training.config import TrainConfig

    miner = distil_miner(version=version, config=TrainConfig(epochs=30, batch_size=4, group_size=8, max_length=32,
                                                             learning_rate=2e-3, add_cjk_vocab=False))
    assert miner.name == f"miner-v{version.pk}" and model_kind(miner) == "bi-encoder"
    assert miner_dir(collection) == miner
    after = agreement(miner, teacher, groups)
    assert after > before + 0.2, (before, after)
    stamp = (miner / "model.safetensors").stat().st_mtime_ns
    version.refresh_from_db()
    assert distil_miner(version=version) == miner  # twice: nothing is trained again
    assert (miner / "model.safetensors").stat().st_mtime_ns == stamp
    assert BiEncoder(miner).encode(["query q1"]).shape == (1, 32)


def test_dense_mining_reads_the_promoted_models_miner(collection, tiny_bi_encoder):  # noqa: F811
    from mining.pipeline import resolve_settings
    from mining.services import load_resources

    registry.promote(version=ModelVersion.objects.create(collection=collection, path=str(tiny_bi_encoder),
                                                         miner_path=str(tiny_bi_encoder)))
    resources = load_resources(collection, resolve_settings(method="dense", depth=5, negatives=2, params={}))
    assert resources.encoder.model_dir == tiny_bi_encoder.resolve()
