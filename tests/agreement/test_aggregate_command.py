"""`manage.py aggregate --ratings F.csv [--scale MIN-MAX] [--gold G.csv] --out F.jsonl [--json]`."""
from __future__ import annotations

import json
from io import StringIO
from pathlib import Path

import numpy as np
import pytest
from django.core.management import CommandError, call_command

from tests.conftest import DATASETS

SNOW = DATASETS / "crowd-snow2008"


def aggregate(*args: str) -> dict:
    out = StringIO()
    call_command("aggregate", *args, "--json", stdout=out, stderr=StringIO())
    return json.loads(out.getvalue().strip().splitlines()[-1])


def read_lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_real_crowd_labels_with_gold_report_model_and_majority_vote_accuracy(tmp_path):
    out = tmp_path / "rte.jsonl"
    figures = aggregate("--ratings", str(SNOW / "rte.ratings.csv"), "--scale", "0-1",
                        "--gold", str(SNOW / "rte.gold.csv"), "--out", str(out))
    assert figures["gold"]["items"] == 800
    assert figures["gold"]["model_accuracy"] >= figures["gold"]["majority_vote_accuracy"]
    lines = read_lines(out)
    assert len(lines) == figures["items"] == 800
    gold = dict(line.split(",") for line in (SNOW / "rte.gold.csv").read_text().splitlines()[1:])
    right = np.mean([int(gold[line["item"]]) == line["label"] for line in lines])
    assert right == pytest.approx(figures["gold"]["model_accuracy"])


def test_each_line_holds_label_soft_label_weight_and_probs_on_the_files_scale(tmp_path):
    out = tmp_path / "temp.jsonl"
    aggregate("--ratings", str(SNOW / "temp.ratings.csv"), "--scale", "1-2", "--out", str(out))
    for line in read_lines(out):
        assert set(line) == {"item", "label", "soft_label", "weight", "probs"}
        probs = np.array(line["probs"])
        assert probs.size == 2 and probs.sum() == pytest.approx(1.0, abs=1e-5)
        assert line["label"] == 1 + int(np.argmax(probs))  # grades are 1..2, so index 0 is grade 1
        assert line["weight"] == pytest.approx(probs.max(), abs=1e-6)
        assert line["soft_label"] == pytest.approx(probs[1], abs=1e-5)  # (E[grade] - 1) / (2 - 1)


def test_gold_only_evaluates_and_never_changes_the_labels(tmp_path):
    ratings = write(tmp_path / "r.csv", "item,annotator,grade\n" + "".join(
        f"q{i},{name},{grade}\n" for i in range(20) for name, grade in (("ann", 1), ("bo", 1), ("cy", 2))))
    contrary = write(tmp_path / "g.csv", "item,grade\n" + "".join(f"q{i},3\n" for i in range(20)))
    aggregate("--ratings", str(ratings), "--out", str(tmp_path / "plain.jsonl"))
    figures = aggregate("--ratings", str(ratings), "--gold", str(contrary), "--out", str(tmp_path / "gold.jsonl"))
    assert read_lines(tmp_path / "plain.jsonl") == read_lines(tmp_path / "gold.jsonl")
    assert figures["gold"] == {"items": 20, "not_rated": 0, "model_accuracy": 0.0, "majority_vote_accuracy": 0.0}


def test_help_says_gold_is_not_clamped():
    from annotate.management.commands.aggregate import Command

    text = " ".join(Command().create_parser("manage.py", "aggregate").format_help().split())
    assert "never clamped into the fit" in text


@pytest.mark.parametrize("text, where, problem", [
    ("", "r.csv:1", "empty file"),
    ("item,judge,grade\nq1,a,1\n", "r.csv:1", "header"),
    ("item,annotator,grade\n", "r.csv:1", "no grades"),
    ("item,annotator,grade\nq1,a,1\nq1,b,4\n", "r.csv:3", "outside the scale 0-3"),
    ("item,annotator,grade\nq1,a,1\nq1,b,high\n", "r.csv:3", "not an integer"),
    ("item,annotator,grade\nq1,a,1\nq2,a,2\nq1,a,3\n", "r.csv:4", "repeated (item, annotator) pair"),
])
def test_bad_ratings_file_names_file_and_line_and_writes_nothing(tmp_path, text, where, problem):
    out = write(tmp_path / "labels.jsonl", "earlier output\n")
    ratings = write(tmp_path / "r.csv", text)
    with pytest.raises(CommandError) as failure:
        aggregate("--ratings", str(ratings), "--out", str(out))
    assert f"{where}:" in str(failure.value) and problem in str(failure.value)
    assert out.read_text() == "earlier output\n"


def test_a_failure_while_writing_keeps_the_previous_output_and_leaves_no_temporary_file(tmp_path, monkeypatch):
    from annotate.management.commands import aggregate as command

    folder = tmp_path / "labels"
    folder.mkdir()
    out = write(folder / "labels.jsonl", "earlier output\n")
    ratings = write(tmp_path / "r.csv", "item,annotator,grade\nq1,a,1\nq2,a,2\n")

    def broken_lines(judged, model):
        yield "{}"
        raise OSError("disk full")

    monkeypatch.setattr(command, "_item_lines", broken_lines)
    with pytest.raises(CommandError, match="cannot write .disk full"):
        aggregate("--ratings", str(ratings), "--out", str(out))
    assert out.read_text() == "earlier output\n"
    assert [p.name for p in folder.iterdir()] == ["labels.jsonl"]


@pytest.mark.parametrize("text, where, problem", [
    ("item,label\nq1,1\n", "g.csv:1", "header"),
    ("item,grade\nq1,1\nq1,2\n", "g.csv:3", "repeated"),
    ("item,grade\nq1,9\n", "g.csv:2", "outside the scale"),
    ("item,grade\n", "g.csv:1", "no reference grades"),
])
def test_bad_gold_file_names_file_and_line_and_writes_nothing(tmp_path, text, where, problem):
    ratings = write(tmp_path / "r.csv", "item,annotator,grade\nq1,a,1\nq1,b,2\n")
    gold = write(tmp_path / "g.csv", text)
    out = tmp_path / "labels.jsonl"
    with pytest.raises(CommandError) as failure:
        aggregate("--ratings", str(ratings), "--gold", str(gold), "--out", str(out))
    assert f"{where}:" in str(failure.value) and problem in str(failure.value)
    assert not out.exists()


def test_bad_scale_and_missing_output_folder_are_refused(tmp_path):
    ratings = write(tmp_path / "r.csv", "item,annotator,grade\nq1,a,1\n")
    with pytest.raises(CommandError, match="--scale"):
        aggregate("--ratings", str(ratings), "--scale", "3-0", "--out", str(tmp_path / "o.jsonl"))
    with pytest.raises(CommandError, match="does not exist"):
        aggregate("--ratings", str(ratings), "--out", str(tmp_path / "missing" / "o.jsonl"))
