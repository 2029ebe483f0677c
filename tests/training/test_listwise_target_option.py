"""The listwise target is chosen by TrainConfig.listwise_target / `train_reranker --listwise-target`;
a bad or misplaced value is refused before anything is read or written."""

import pytest
from django.core.management import CommandError, call_command

from training.config import TrainConfig, TrainingParamsError, train_config
from training.losses import build_loss


def test_the_config_builds_the_listwise_loss_with_its_target():
    config = TrainConfig(loss="listwise", listwise_target="expected-gain", loss_config={"temperature": 0.5})
    config.check()

    loss = build_loss(config.loss, **config.loss_options())

    assert loss.get_config_dict() == {"temperature": 0.5, "max_grade": 3.0, "target": "expected-gain"}


@pytest.mark.parametrize(("fields", "message"), [
    ({"listwise_target": "ndcg"}, "listwise_target must be one of label, expected-gain, got 'ndcg'"),
    ({"loss": "pointwise", "listwise_target": "expected-gain"}, "listwise_target applies to the listwise loss only"),
    ({"loss_config": {"target": "expected-gain"}}, "set the listwise target with listwise_target"),
])
def test_a_bad_listwise_target_is_refused(fields, message):
    with pytest.raises(ValueError, match=message):
        TrainConfig(**fields).check()
    with pytest.raises(TrainingParamsError, match=message):
        train_config(fields)


@pytest.mark.parametrize(("args", "message"), [
    (["--loss", "pairwise", "--listwise-target", "expected-gain"], "--listwise-target applies to --loss listwise only"),
    (["--listwise-target", "gain"], "argument --listwise-target: invalid choice: 'gain'"),
])
def test_train_reranker_refuses_a_bad_listwise_target_before_reading_anything(tmp_path, args, message):
    out = tmp_path / "model"
    with pytest.raises(CommandError, match=message):
        call_command("train_reranker", "--train", str(tmp_path / "missing.jsonl"), "--base-model", str(tmp_path),
                     "--out", str(out), *args)
    assert not out.exists()
