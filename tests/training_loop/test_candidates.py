"""training.candidates: a run's candidate models, each trained and scored on the same dev queries."""
from __future__ import annotations

import json

import pytest

from training.candidates import (
    BI,
    CANDIDATES,
    CROSS,
    FUSED,
    ZERO_SHOT,
    check_candidates,
    hold_out_dev,
    keep_directory,
    train_candidates,
)
from training.config import TrainConfig, TrainingParamsError, train_config
from training.data import read_data_file
from training.rankers import load_ranker, model_kind

from .conftest import FAST_RUN, synthetic_listwise, write_jsonl
from .test_rankers import tiny_bi_encoder  # noqa: F401 -- fixture


def test_every_candidate_is_trained_scored_and_kept_in_its_own_directory(tiny_bi_encoder, tmp_path):  # noqa: F811
    train = read_data_file(write_jsonl(tmp_path / "train.jsonl", synthetic_listwise(32, seed=1)))
    dev = read_data_file(write_jsonl(tmp_path / "dev.jsonl", synthetic_listwise(12, seed=2))).groups
    config = TrainConfig(**{**FAST_RUN, "epochs": 6})
    found = train_candidates(config=config, train_data=train, dev_groups=dev, base_model=tiny_bi_encoder,
                             out_dir=tmp_path / "run", names=CANDIDATES,
                             bi_encoder_params={"epochs": 6, "learning_rate": 1e-3})
    by_name = {c.name: c for c in found}
    assert list(by_name) == [ZERO_SHOT, BI, CROSS, FUSED]
    assert by_name[ZERO_SHOT].kind == "bi-encoder" and by_name[ZERO_SHOT].directory is None  # not copied yet
    for name, kind in ((BI, "bi-encoder"), (CROSS, "cross-encoder"), (FUSED, "fusion")):
        assert by_name[name].kind == kind and model_kind(by_name[name].directory) == kind
        assert set(by_name[name].per_query) <= {g.query_id for g in dev}
        assert by_name[name].metrics["queries"] == 12
    # Training reads the markers the base cannot: both trained kinds beat the untrained base.
    base = by_name[ZERO_SHOT].metrics["ndcg@10"]
    assert by_name[BI].metrics["ndcg@10"] > base + 0.05 and by_name[CROSS].metrics["ndcg@10"] > base + 0.05
    fused = by_name[FUSED]
    inner = max((c for c in found if c.name != FUSED), key=lambda c: c.metrics["ndcg@10"])
    assert fused.extra["inner"] == inner.name and 0.0 <= fused.extra["bm25_weight"] <= 1.0
    # A trained inner model ranks its train queries too well to fit the weight on: dev, cross-fitted.
    assert "12 dev queries, cross-fitted in 5 folds" in fused.note
    card = json.loads((fused.directory / "ranker.json").read_text())
    assert card["inner_candidate"] == inner.name and card["bm25_weight"] == fused.extra["bm25_weight"]
    assert "distilled from bi-encoder" in by_name[CROSS].note
    assert not (tmp_path / "run" / "candidates" / "cross-encoder-distilled").exists()  # the warm start is gone
    kept = keep_directory(by_name[ZERO_SHOT], tmp_path / "run")
    assert model_kind(kept) == "bi-encoder" and load_ranker(kept).score("query q1", ["w1 best", "w2"]).shape == (2,)


def test_bad_candidate_lists_and_run_params_are_refused_by_name():
    assert check_candidates(["fusion", "bi-encoder"]) == (ZERO_SHOT, BI, FUSED)  # training order, base always
    with pytest.raises(ValueError, match="unknown 'svm'"):
        check_candidates(["svm"])
    with pytest.raises(ValueError, match="non-empty list"):
        check_candidates("fusion")
    for params, message in (({"candidates": []}, "candidates must be a non-empty list"),
                            ({"distil": "yes"}, "distil must be true or false"),
                            ({"min_dev_queries": 0}, "min_dev_queries must be a positive integer"),
                            ({"bi_encoder": {"epochs": 0}}, "epochs must be a positive integer"),
                            ({"bi_encoder": {"lr": 1}}, "bi_encoder: unknown 'lr'"),
                            ({"promotion_margin": 2}, r"promotion_margin must be a number in \(-1, 1\)")):
        with pytest.raises(TrainingParamsError, match=message):
            train_config(params)


def test_dev_is_held_out_by_query_the_same_way_every_time(tmp_path):
    data = read_data_file(write_jsonl(tmp_path / "t.jsonl", synthetic_listwise(20, seed=3)))
    train, dev = hold_out_dev(data, 0.2)
    again = hold_out_dev(data, 0.2)[1]
    assert len(dev) == 4 and [g.query_id for g in dev] == [g.query_id for g in again]
    assert not {g.query_id for g in dev} & {g.query_id for g in train.groups}
    with pytest.raises(ValueError, match="needs at least 2"):
        hold_out_dev(read_data_file(write_jsonl(tmp_path / "one.jsonl", synthetic_listwise(1, seed=3))), 0.2)
