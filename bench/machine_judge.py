"""The machine judge (training.machine_judge) on real grades: how well a model's calibrated scores
agree with people, by Cohen's kappa against the reference grades of queries the calibration never saw.

Data: a BEIR set with graded qrels (default kuake-qtr-train, grades 0-3). Queries split by
annotate.splits.split_for (the studio's split): ``--train`` train queries give the calibration
pairs (their reference grades stand for people's grades), ``--dev`` dev/test queries are judged
and compared. Pairs are each query's judged documents. The judge: the model's score, the ordinal
isotonic calibration of training.machine_judge, the most probable grade. The anchor, measured in
the same run: the same scores cut into grades at the train grades' shares
(annotate.clicks.click_model.ordinal_grades), i.e. ranking without calibration. Acceptance (#17):
kappa >= 0.4 with the reference grades for a model that is good on the collection (``--model`` a
promoted model's directory; the default is the base model zero-shot, what judges before any promotion).

    .venv/bin/python bench/machine_judge.py [--dataset kuake-qtr-train] [--train 300] [--dev 150] [--model DIR]
A model trained elsewhere (a GPU machine: bench/quality.py --handoff-in ... --judge-scores-out F)
is judged from its scores on every judged pair instead of being loaded:
    .venv/bin/python bench/machine_judge.py --scores F --scores-model clean
Last line: one JSON object with the figures.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
from _args import int_at_least
from _quality_common import ROOT, read_beir

sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ.setdefault("DEBUG", "1")
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", default="kuake-qtr-train")
    parser.add_argument("--train", type=int_at_least(10), default=300, help="train queries for the calibration")
    parser.add_argument("--dev", type=int_at_least(10), default=150, help="held-out queries judged and compared")
    parser.add_argument("--model", type=Path, default=None, help="model directory (default: BASE_MODEL_DIR)")
    parser.add_argument("--max-length", type=int_at_least(16), default=128)
    parser.add_argument("--scores", type=Path, default=None,
                        help="scores of every judged pair written by bench/quality.py --judge-scores-out (instead of --model)")
    parser.add_argument("--scores-model", default="clean", help="with --scores: which model's scores (clean, majority, weighted)")
    args = parser.parse_args(argv)
    if args.scores and args.model:
        parser.error("give --model or --scores, not both")

    import django

    django.setup()
    from django.conf import settings
    from sklearn.metrics import cohen_kappa_score

    from annotate.clicks.click_model import ordinal_grades
    from annotate.splits import split_for
    from training.machine_judge import fit_ordinal_calibration
    from training.rankers import load_ranker

    corpus, queries, qrels = read_beir(args.dataset)
    ordered = sorted(qrels)
    train = [q for q in ordered if split_for(queries[q]) == "train"][: args.train]
    dev = [q for q in ordered if split_for(queries[q]) != "train"][: args.dev]
    if args.scores:
        model = Path(f"{args.scores}#{args.scores_model}")
        try:
            written = json.loads(args.scores.read_text())["models"][args.scores_model]
        except (OSError, ValueError, KeyError, TypeError) as error:
            parser.error(f"--scores: {args.scores}: no scores of model {args.scores_model!r} ({error!r})")
        missing = [q for q in train + dev if len(written.get(q, ())) != len(qrels[q])]
        if missing:
            parser.error(f"--scores: {args.scores}: no scores (or a different number) for {len(missing)} queries, "
                         f"e.g. {missing[0]}: written for another data set?")
        score_lists = lambda lists, qids: [written[q] for q in qids]  # noqa: E731
    else:
        model = args.model or Path(settings.BASE_MODEL_DIR)
        if not model.is_dir():
            parser.error(f"--model: {model} is not a directory")
        ranker = load_ranker(model, max_length=args.max_length)
        score_lists = lambda lists, qids: ranker.score_lists(lists)  # noqa: E731

    def scored(qids):
        lists = [(queries[q], [corpus[d] for d in sorted(qrels[q])]) for q in qids]
        scores = score_lists(lists, qids)
        grades = [qrels[q][d] for q in qids for d in sorted(qrels[q])]
        return np.concatenate([np.asarray(s, dtype=float) for s in scores]), np.asarray(grades)

    started = time.perf_counter()
    train_scores, train_grades = scored(train)
    dev_scores, dev_grades = scored(dev)
    scoring_s = time.perf_counter() - started
    calibration = fit_ordinal_calibration(train_scores, train_grades)
    judged = calibration.probabilities(dev_scores).argmax(axis=1)
    shares = np.bincount(train_grades, minlength=4) / train_grades.size
    cut = ordinal_grades(dev_scores, shares=shares)

    def kappas(grades) -> dict:
        return {"kappa": round(float(cohen_kappa_score(dev_grades, grades)), 4),
                "kappa_linear": round(float(cohen_kappa_score(dev_grades, grades, weights="linear")), 4),
                "exact": round(float((grades == dev_grades).mean()), 4)}

    result = {"dataset": args.dataset, "model": str(model), "train_queries": len(train), "dev_queries": len(dev),
              "calibration_pairs": int(train_grades.size), "judged_pairs": int(dev_grades.size),
              "reference_grade_shares": np.round(np.bincount(dev_grades, minlength=4) / dev_grades.size, 3).tolist(),
              "machine_judge": kappas(judged), "uncalibrated_cut_at_shares": kappas(cut),
              "scoring_seconds": round(scoring_s, 1)}
    result["acceptance"] = {"kappa_ge_0.4": result["machine_judge"]["kappa"] >= 0.4}
    print(f"machine judge ({model.name}): kappa {result['machine_judge']['kappa']:.3f} "
          f"(linear {result['machine_judge']['kappa_linear']:.3f}) on {len(dev)} held-out queries; "
          f"uncalibrated cut: kappa {result['uncalibrated_cut_at_shares']['kappa']:.3f}")
    print(json.dumps(result, ensure_ascii=False))
    return result


if __name__ == "__main__":
    main()
