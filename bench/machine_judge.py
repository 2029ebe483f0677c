"""The machine judge (training.machine_judge) on real grades: how well a model's calibrated scores
agree with people, by Cohen's kappa against the reference grades of queries the calibration never saw.

Data: a BEIR set with graded qrels (default kuake-qtr-train, grades 0-3). Queries split by
annotate.splits.split_for (the studio's split): ``--train`` train queries give the calibration
pairs (their reference grades stand for people's grades; 0 = all), ``--dev`` dev/test queries are
judged and compared (0 = all). Pairs are each query's judged documents. Rows, all in the same run:
- ``machine_judge``: what the studio writes -- training.machine_judge.fit_calibration's choice
  between the score's ordinal isotonic calibration and the score with the text features
  (training.judge_features), by held-out log loss on folds of the calibration queries; the most
  probable grade;
- ``score_only``: the isotonic calibration of the score alone (the judge before the text features);
- ``text_only``: the text features with a constant score (what the words alone tell);
- ``uncalibrated_cut_at_shares``: the anchor, the same scores cut into grades at the train grades'
  shares (annotate.clicks.click_model.ordinal_grades), i.e. ranking without calibration.
Acceptance (#17): kappa >= 0.4 with the reference grades for a model that is good on the collection
(``--model`` a promoted model's directory; the default is the base model zero-shot, what judges
before any promotion).

    .venv/bin/python bench/machine_judge.py [--dataset kuake-qtr-train] [--train 300] [--dev 150] [--model DIR]
A model trained elsewhere (bench/quality.py --parts c --handoff-in ... --judge-scores-out F, here or
on a GPU machine) is judged from its scores on every judged pair instead of being loaded; the
calibration then reads the queries that model trained on (as the studio's judge reads the train
queries it trained on) and the judged ones are the queries it held out (drawn like the train
queries: in part (c), queries with a title graded 2 or 3):
    .venv/bin/python bench/machine_judge.py --scores F --scores-model clean --train 0 --dev 0
``--calibrate-on studio-split`` calibrates and judges as the studio does instead: people's grades of
every train-split query (annotate.splits of the query text; with or without a relevant title)
calibrate, every other query is judged. It needs a model that trained on train-split queries only
(bench/quality.py --kuake-split text) and refuses a scores file whose model trained on any other:
    .venv/bin/python bench/machine_judge.py --scores F --calibrate-on studio-split --train 0 --dev 0
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
    parser.add_argument("--train", type=int_at_least(0), default=300, help="train queries for the calibration (0 = all)")
    parser.add_argument("--dev", type=int_at_least(0), default=150, help="held-out queries judged and compared (0 = all)")
    parser.add_argument("--model", type=Path, default=None, help="model directory (default: BASE_MODEL_DIR)")
    parser.add_argument("--max-length", type=int_at_least(16), default=128)
    parser.add_argument("--scores", type=Path, default=None,
                        help="scores of every judged pair written by bench/quality.py --judge-scores-out (instead of --model)")
    parser.add_argument("--scores-model", default="clean", help="with --scores: which model's scores (clean, majority, weighted)")
    parser.add_argument("--calibrate-on", choices=("trained", "studio-split"), default="trained",
                        help="with --scores: the queries the model trained on (judging those it held out), or the "
                             "studio's train split (judging every other query)")
    args = parser.parse_args(argv)
    if args.scores and args.model:
        parser.error("give --model or --scores, not both")
    if args.calibrate_on != "trained" and not args.scores:
        parser.error("--calibrate-on is for --scores (a loaded --model is calibrated on the studio's split)")

    import django

    django.setup()
    from django.conf import settings
    from sklearn.metrics import cohen_kappa_score

    from annotate.clicks.click_model import ordinal_grades
    from annotate.splits import split_for
    from training.judge_features import TextFeatures
    from training.machine_judge import fit_calibration, fit_ordinal_calibration, fit_text_calibration
    from training.rankers import load_ranker

    corpus, queries, qrels = read_beir(args.dataset)
    ordered = sorted(qrels)
    calibrating = lambda q: split_for(queries[q]) == "train"  # noqa: E731  (the studio's split)
    if args.scores:
        model = Path(f"{args.scores}#{args.scores_model}")
        try:
            written_file = json.loads(args.scores.read_text())
            written = written_file["models"][args.scores_model]
            trained = set(written_file["trained_queries"][args.scores_model])
            held_out = set(written_file["held_out_queries"][args.scores_model])
        except (OSError, ValueError, KeyError, TypeError) as error:
            parser.error(f"--scores: {args.scores}: no scores, trained or held-out queries of model "
                         f"{args.scores_model!r} ({error!r}; a file from before they were written: score again)")
        if trained & held_out:
            parser.error(f"--scores: {args.scores}: {len(trained & held_out)} queries both trained on and held out")
        if args.calibrate_on == "trained":
            calibrating = trained.__contains__  # noqa: E731  (its training queries)
        else:
            off_split = [q for q in sorted(trained) if q in queries and not calibrating(q)]
            if off_split:
                parser.error(f"--calibrate-on studio-split: the model of {args.scores} trained on {len(off_split)} "
                             f"queries outside the studio's train split (e.g. {off_split[0]}): they would be judged; "
                             "train with bench/quality.py --kuake-split text")
    # judged: the queries the scores file holds out, or (the studio's split) every query not calibrating
    only_held_out = args.scores and args.calibrate_on == "trained"
    train = [q for q in ordered if calibrating(q)][: args.train or None]
    dev = [q for q in ordered if not calibrating(q) and (not only_held_out or q in held_out)][: args.dev or None]
    if args.scores:
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
    started = time.perf_counter()
    text = TextFeatures(corpus.values())  # the collection's documents, the studio's default analyser
    features = {q: [text.of(queries[q], corpus[d]) for d in sorted(qrels[q])] for q in train + dev}
    train_features = np.array([f for q in train for f in features[q]])
    dev_features = np.array([f for q in dev for f in features[q]])
    train_groups = [q for q in train for _ in qrels[q]]
    features_s = time.perf_counter() - started
    started = time.perf_counter()
    choice = fit_calibration(train_scores, train_features, train_grades, train_groups)
    judged = choice.calibration.probabilities(dev_scores, dev_features).argmax(axis=1)
    calibration_s = time.perf_counter() - started
    score_only = fit_ordinal_calibration(train_scores, train_grades).probabilities(dev_scores).argmax(axis=1)
    text_only = fit_text_calibration(np.zeros(train_grades.size), train_features, train_grades).probabilities(
        np.zeros(dev_grades.size), dev_features).argmax(axis=1)  # a constant score: the words alone
    shares = np.bincount(train_grades, minlength=4) / train_grades.size
    cut = ordinal_grades(dev_scores, shares=shares)

    def kappas(grades) -> dict:
        return {"kappa": round(float(cohen_kappa_score(dev_grades, grades)), 4),
                "kappa_linear": round(float(cohen_kappa_score(dev_grades, grades, weights="linear")), 4),
                "exact": round(float((grades == dev_grades).mean()), 4)}

    result = {"dataset": args.dataset, "model": str(model),
              "calibrated_on": args.calibrate_on if args.scores else "studio-split",
              "train_queries": len(train), "dev_queries": len(dev),
              "calibration_pairs": int(train_grades.size), "judged_pairs": int(dev_grades.size),
              "reference_grade_shares": np.round(np.bincount(dev_grades, minlength=4) / dev_grades.size, 3).tolist(),
              "calibration": choice.calibration.kind, "held_out_log_loss": choice.held_out_log_loss,
              "machine_judge": kappas(judged), "score_only": kappas(score_only), "text_only": kappas(text_only),
              "uncalibrated_cut_at_shares": kappas(cut), "scoring_seconds": round(scoring_s, 1),
              "text_features_seconds": round(features_s, 1), "calibration_seconds": round(calibration_s, 1)}
    result["acceptance"] = {"kappa_ge_0.4": result["machine_judge"]["kappa"] >= 0.4}
    print(f"machine judge ({model.name}, calibrated from {choice.calibration.kind}): kappa "
          f"{result['machine_judge']['kappa']:.3f} (linear {result['machine_judge']['kappa_linear']:.3f}) on "
          f"{len(dev)} held-out queries; score alone {result['score_only']['kappa']:.3f}, text alone "
          f"{result['text_only']['kappa']:.3f}, uncalibrated cut {result['uncalibrated_cut_at_shares']['kappa']:.3f}")
    print(json.dumps(result, ensure_ascii=False))
    return result


if __name__ == "__main__":
    main()
