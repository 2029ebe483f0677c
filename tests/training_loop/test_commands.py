"""train_reranker and evaluate_reranker: JSON on the last line, one-line errors."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from training.evaluation import METRIC_KEYS

REPO = Path(__file__).resolve().parents[2]


def run_command(*args) -> dict:
    out = StringIO()
    call_command(*args, stdout=out, stderr=StringIO())
    return json.loads(out.getvalue().strip().splitlines()[-1])


def test_train_then_evaluate_prints_json_metrics(tiny_model, task_files, tmp_path):
    train_file, dev_file = task_files
    trained = run_command("train_reranker", "--train", str(train_file), "--dev", str(dev_file),
                          "--base-model", str(tiny_model), "--out", str(tmp_path / "m"), "--epochs", "4",
                          "--batch-size", "4", "--group-size", "6", "--max-length", "32", "--lr", "1e-3",
                          "--candidates", "cross-encoder", "--no-distil")
    assert trained["steps"] == 48 and trained["train_queries"] == 48
    off = run_command("train_reranker", "--train", str(train_file), "--base-model", str(tiny_model),
                      "--out", str(tmp_path / "off"), "--no-add-cjk-vocab", "--max-length", "32",
                      "--candidates", "cross-encoder", "--no-distil")
    assert json.loads((tmp_path / "off" / "training_info.json").read_text())["parameters"]["add_cjk_vocab"] is False
    assert off["steps"] > 0
    assert trained["dev"]["ndcg@10"] > trained["base"]["ndcg@10"]
    evaluated = run_command("evaluate_reranker", "--model", str(tmp_path / "m"), "--data", str(dev_file), "--json")
    assert tuple(evaluated) == METRIC_KEYS
    assert evaluated["ndcg@10"] == pytest.approx(trained["dev"]["ndcg@10"], abs=1e-6)
    for ranker in ("bm25", "none"):
        assert tuple(run_command("evaluate_reranker", "--model", ranker, "--data", str(dev_file), "--json")) == METRIC_KEYS


def test_without_dev_a_share_is_held_out_and_the_kept_model_is_written(tiny_model, task_files, tmp_path):
    train_file, _ = task_files
    out, err = StringIO(), StringIO()
    call_command("train_reranker", "--train", str(train_file), "--base-model", str(tiny_model),
                 "--out", str(tmp_path / "m"), "--max-length", "32", "--epochs", "2", "--lr", "1e-3",
                 "--batch-size", "4", "--group-size", "6", stdout=out, stderr=err)
    result = json.loads(out.getvalue().strip().splitlines()[-1])
    assert "no --dev: holding out 10 of 48 train queries" in err.getvalue()
    assert result["train_queries"] == 38 and result["dev_queries"] <= 10
    assert list(result["candidates"]) == ["zero-shot", "bi-encoder", "fusion"]  # the run's defaults
    assert result["promoted"] is False and "not enough dev queries" in result["reason"]
    kept = result["candidate"]
    assert result["dev"]["ndcg@10"] == max(c["ndcg@10"] for c in result["candidates"].values())
    card = json.loads((tmp_path / "m" / "ranker.json").read_text())
    assert card["kind"] == result["kind"] == {"zero-shot": "cross-encoder", "bi-encoder": "bi-encoder",
                                              "fusion": "fusion"}[kept]
    evaluated = run_command("evaluate_reranker", "--model", str(tmp_path / "m"), "--data", str(train_file), "--json")
    assert evaluated["queries"] == 48
    assert not list(tmp_path.glob(".m.training"))  # the candidates' staging directory is gone


def test_none_keeps_the_file_order(tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_text(json.dumps({"query": "q", "candidates": [
        {"doc": "a", "label": 0}, {"doc": "b", "label": 3}]}) + "\n")
    metrics = run_command("evaluate_reranker", "--model", "none", "--data", str(path), "--json")
    assert metrics["mrr@10"] == 0.5 and metrics["queries"] == 1


@pytest.mark.parametrize("args, message", [
    (["evaluate_reranker", "--model", "none", "--data", "missing.jsonl", "--json"], "missing.jsonl: no such file"),
    (["evaluate_reranker", "--model", "/no/such/dir", "--data", "{dev}", "--json"], "not a directory"),
    (["train_reranker", "--train", "{dev}", "--base-model", "{tmp}", "--out", "{tmp}/o"], "not a model directory"),
    (["train_reranker", "--train", "{dev}", "--out", "{tmp}/o", "--epochs", "0"], "epochs must be a positive integer"),
    (["train_reranker", "--train", "{dev}", "--out", "{dev}"], "exists and is not empty"),
    (["train_reranker", "--train", "{dev}", "--out", "{tmp}/o", "--in-batch-negatives", "-1"],
     "in_batch_negatives must be a non-negative integer"),
])
def test_bad_arguments_raise_one_line_naming_the_problem(task_files, tmp_path, args, message):
    args = [a.format(dev=task_files[1], tmp=tmp_path) for a in args]
    with pytest.raises(CommandError) as error:
        call_command(*args, stdout=StringIO(), stderr=StringIO())
    assert message in str(error.value) and "\n" not in str(error.value)


def test_a_bad_line_exits_non_zero_with_file_and_line(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"query": "q", "candidates": [{"doc": "a", "label": 0}]}\n{"query": "r", "candidates": [{"doc": "a", "label": "x"}]}\n')
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings_test", "DATA_DIR": str(tmp_path)}
    done = subprocess.run([sys.executable, "manage.py", "evaluate_reranker", "--model", "none", "--data", str(bad), "--json"],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode != 0 and done.stdout == ""
    assert done.stderr.strip().splitlines() == [f"CommandError: {bad}:2: candidate 0: 'label' must be a number in [0, 3], got 'x'"]
