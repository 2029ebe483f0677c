"""Click logs as weak labels: does the position-based click model (annotate.clicks.click_model)
recover graded relevance from biased clicks better than raw click-through rate?

Simulation with the reference grades of trec-dl19 as the truth. Per query, ``--sessions``
searches; each shows the top ``--depth`` of the query's judged documents in an order that follows
BM25 (run.bm25.trec) with per-search noise -- score = -log(1 + BM25 rank) + ``--noise`` x Gumbel,
as an engine whose ranking shifts a little between searches -- and a user clicks the document at
position r with probability examination(r) x attraction(grade): examination 1/r^``--eta``
(Joachims et al. 2017), attraction per grade ``--attraction`` (default 0.05, 0.2, 0.5, 0.8, an
"informational" user after Hofmann et al. 2013). Clicks thus depend on relevance *and* on where
BM25 put the document, which is what a real log looks like.

Both estimates -- raw click-through rate (the anchor) and the fitted attractiveness -- are cut
into grades 0-3 the same way (annotate.clicks.click_model.ordinal_grades, at the shares of the
grades among the judged pairs, as the product cuts at the shares among people's grades) and
compared with the reference grades by weighted Cohen's kappa (sklearn), over every pair shown at
least once. Acceptance (#17): kappa of the debiased labels >= kappa of click-through rate + 0.1.

Then one annotator: every pair graded once by an honest simulated annotator
(annotate.simulation.simulated_grades, ``--annotator-noise`` 0.3, the labels issue's profile), and
the exported label (the annotator model's most probable grade, annotate.agreement.annotator_model,
as the export computes it) with and without the click labels as a second, unpooled source (the
pairs with MIN_EXAMINATIONS or more, as annotate.clicks.services writes them), with no gold and
with a ``--gold`` share of gold pairs clamped to their grade (accuracy over the other pairs), and
beside them the ceiling: the Bayes posterior with the true confusions of the person and of the click
labels (read off the reference grades), which no model without gold can be held to -- with one
judge per pair and no gold, a perfect person fits the data as well as an erring one.
Acceptance (#17): the click labels raise exact-label accuracy.

    .venv/bin/python bench/clicks.py [--sessions 300] [--noise 0.5] [--seed 0]
Last line: one JSON object with the figures.
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
from _args import int_at_least, positive_float

ROOT = Path(__file__).resolve().parent.parent
DATASET = ROOT.parent / "shared" / "datasets" / "trec-dl19"
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ.setdefault("DEBUG", "1")


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sessions", type=int_at_least(1), default=300, help="searches per query")
    parser.add_argument("--depth", type=int_at_least(2), default=10, help="results shown per search")
    parser.add_argument("--noise", type=positive_float, default=0.5, help="Gumbel scale of the per-search shuffle")
    parser.add_argument("--eta", type=positive_float, default=1.0, help="examination 1/r^eta")
    parser.add_argument("--attraction", default="0.05,0.2,0.5,0.8", help="click probability per grade 0..3 when examined")
    parser.add_argument("--annotator-noise", type=float, default=0.3, help="the one annotator's error rate")
    parser.add_argument("--gold", type=float, default=0.05, help="share of gold pairs in the second setting")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    attraction = _attraction(parser, args.attraction)

    import django
    from sklearn.metrics import cohen_kappa_score

    django.setup()  # the simulated annotator and the click services live in the Django apps

    from annotate.clicks.click_model import fit_position_based_model, ordinal_grades

    qrels, run = _read_dl19()
    started = time.perf_counter()
    pairs, cells = _simulate(qrels, run, args, attraction)
    simulated_s = time.perf_counter() - started
    keys = list(cells)
    pair, position = np.array([k[0] for k in keys]), np.array([k[1] for k in keys])
    shown, clicked = np.array([cells[k][0] for k in keys]), np.array([cells[k][1] for k in keys])
    started = time.perf_counter()
    model = fit_position_based_model(pair, position, shown, clicked, n_pairs=len(pairs))
    fit_s = time.perf_counter() - started
    truth = np.array([qrels[q][d] for q, d in pairs])
    shares = np.bincount(truth, minlength=4) / truth.size
    figures = {}
    for name, score in (("click_through_rate", model.click_through_rate()), ("position_based_model", model.attractiveness)):
        grades = ordinal_grades(score, shares=shares)
        figures[name] = {"kappa_linear": round(cohen_kappa_score(truth, grades, weights="linear"), 4),
                         "kappa_quadratic": round(cohen_kappa_score(truth, grades, weights="quadratic"), 4),
                         "exact": round(float((grades == truth).mean()), 4)}
    gain = {w: round(figures["position_based_model"][w] - figures["click_through_rate"][w], 4)
            for w in ("kappa_linear", "kappa_quadratic")}
    result = {
        "searches": len(qrels) * args.sessions, "pairs_shown": len(pairs),
        "judged_pairs": sum(len(v) for v in qrels.values()),
        "settings": {"sessions": args.sessions, "depth": args.depth, "noise": args.noise, "eta": args.eta,
                     "attraction": attraction, "seed": args.seed},
        "examination_fitted": [round(float(x), 3) for x in model.relative_examination],
        "examination_true": [round(1 / r ** args.eta, 3) for r in range(1, args.depth + 1)],
        "fit": {"seconds": round(fit_s, 3), "iterations": model.iterations, "converged": model.converged,
                "simulation_seconds": round(simulated_s, 2)},
        **figures, "gain_over_click_through_rate": gain,
        "acceptance": {"kappa_linear_gain_ge_0.1": gain["kappa_linear"] >= 0.1,
                       "kappa_quadratic_gain_ge_0.1": gain["kappa_quadratic"] >= 0.1},
    }
    result["one_annotator"] = _one_annotator(pairs, truth, model, args)
    print(f"click-through rate: weighted kappa {figures['click_through_rate']['kappa_linear']:.3f} (linear)"
          f" {figures['click_through_rate']['kappa_quadratic']:.3f} (quadratic)")
    print(f"position-based model: weighted kappa {figures['position_based_model']['kappa_linear']:.3f} (linear)"
          f" {figures['position_based_model']['kappa_quadratic']:.3f} (quadratic); gain {gain}")
    for setting, row in result["one_annotator"].items():
        print(f"one annotator, {setting}: exact-label accuracy {row['annotator_alone']:.4f} alone, "
              f"{row['with_click_labels']:.4f} with click labels, {row['with_raw_ctr_labels']:.4f} with raw-CTR labels "
              f"(ceiling with the true confusions {row['ceiling_with_click_labels']:.4f})")
    result["acceptance"]["clicks_raise_one_annotator_accuracy"] = all(
        row["with_click_labels"] > row["annotator_alone"] for row in result["one_annotator"].values())
    print(json.dumps(result))
    return result


def _one_annotator(pairs, truth, model, args) -> dict:
    from annotate.agreement.annotator_model import fit_annotator_model
    from annotate.clicks.click_model import ordinal_grades
    from annotate.clicks.services import MIN_EXAMINATIONS
    from annotate.simulation import pair_key, simulated_grades

    keys = np.array([pair_key(q, d) for q, d in pairs], dtype=np.uint64)
    person = simulated_grades(truth, keys, noise=args.annotator_noise, random_share=0.0, seed=args.seed, index=0)
    shares = np.bincount(person, minlength=4) / person.size   # people's shares, as the product cuts
    evidence = np.flatnonzero(model.examinations >= MIN_EXAMINATIONS)
    n = truth.size
    rows = {}
    for setting, share in (("no gold", 0.0), (f"gold {args.gold:.0%}", args.gold)):
        rng = np.random.default_rng(args.seed + 1)
        gold_items = np.flatnonzero(rng.random(n) < share)
        gold = {int(i): int(truth[i]) for i in gold_items}
        scored = np.setdiff1d(np.arange(n), gold_items)

        def accuracy(source=None) -> float:
            items, judges, grades = [np.arange(n)], [np.zeros(n, dtype=np.int64)], [person]
            if source is not None:
                items.append(evidence)
                judges.append(np.ones(evidence.size, dtype=np.int64))
                grades.append(ordinal_grades(source, shares=shares)[evidence])
            fitted = fit_annotator_model(np.concatenate(items), np.concatenate(judges), np.concatenate(grades),
                                         n_items=n, n_judges=len(items), n_grades=4, gold=gold,
                                         pooled=np.array([True, False][: len(items)]))
            return round(float((fitted.labels()[scored] == truth[scored]).mean()), 4)

        rows[setting] = {"gold_pairs": int(gold_items.size), "click_labelled_pairs": int(evidence.size),
                         "annotator_alone": accuracy(), "with_click_labels": accuracy(model.attractiveness),
                         "with_raw_ctr_labels": accuracy(model.click_through_rate()),
                         "annotator_raw": round(float((person[scored] == truth[scored]).mean()), 4),
                         "ceiling_with_click_labels": _ceiling(truth, person, ordinal_grades(model.attractiveness, shares=shares),
                                                               evidence, scored)}
    return rows


def _ceiling(truth, person, click_grades, evidence, scored) -> float:
    """Exact-label accuracy of the Bayes posterior with the *true* class prior and confusions (read
    off the reference grades): the most any model of the person and the click labels can reach.
    With one person per pair and no gold the data cannot tell an erring person from a perfect one
    (a perfect person reproduces the joint of the two judges exactly), so this is the ceiling, not
    a target a model without gold can be held to."""
    prior = np.bincount(truth, minlength=4) + 1.0

    def confusion(reported, items):
        counts = np.ones((4, 4))   # add-one: a grade never seen is unlikely, not impossible
        np.add.at(counts, (truth[items], reported[items]), 1)
        return counts / counts.sum(axis=1, keepdims=True)

    everyone = np.arange(truth.size)
    log_post = np.log(prior / prior.sum())[None, :] + np.log(confusion(person, everyone)[:, person].T)
    clicks_of = np.zeros(truth.size, dtype=bool)
    clicks_of[evidence] = True
    log_post += np.where(clicks_of[:, None], np.log(confusion(click_grades, evidence)[:, click_grades].T), 0.0)
    return round(float((log_post.argmax(axis=1)[scored] == truth[scored]).mean()), 4)


def _attraction(parser, text: str) -> list[float]:
    try:
        values = [float(x) for x in text.split(",")]
    except ValueError:
        parser.error(f"--attraction: {text!r} is not four comma-separated numbers")
    if len(values) != 4 or not all(0 <= v <= 1 for v in values):
        parser.error(f"--attraction: need four probabilities in [0, 1] for grades 0..3, got {text!r}")
    return values


def _read_dl19():
    qrels: dict[str, dict[str, int]] = {}
    with open(DATASET / "qrels.tsv", encoding="utf-8") as handle:
        for row in csv.reader(handle, delimiter="\t"):
            if row and row[0] != "query-id":
                qrels.setdefault(row[0], {})[row[1]] = int(row[2])
    run: dict[str, list[str]] = {}
    with open(DATASET / "run.bm25.trec", encoding="utf-8") as handle:
        for line in handle:
            qid, _q0, doc, _rank, _score, _tag = line.split()
            run.setdefault(qid, []).append(doc)
    return qrels, run


def _simulate(qrels, run, args, attraction):
    """Searches and clicks as described in the module docstring; returns the (query, doc) pairs in
    order of first showing and the cells {(pair index, position): [impressions, clicks]}."""
    rng = np.random.default_rng(args.seed)
    examine = 1.0 / np.arange(1, args.depth + 1) ** args.eta
    attract = np.asarray(attraction)
    pairs: dict[tuple[str, str], int] = {}
    cells: dict[tuple[int, int], list[int]] = {}
    for qid in sorted(qrels):
        judged = qrels[qid]
        in_run = [d for d in run.get(qid, []) if d in judged]
        order = in_run + sorted(set(judged) - set(in_run))   # unranked judged docs after the run's
        base = -np.log1p(np.arange(len(order)))
        grades = np.array([judged[d] for d in order])
        for _ in range(args.sessions):
            top = np.argsort(-(base + args.noise * rng.gumbel(size=len(order))))[: args.depth]
            clicks = rng.random(top.size) < examine[: top.size] * attract[grades[top]]
            for rank, (index, click) in enumerate(zip(top, clicks), start=1):
                key = (pairs.setdefault((qid, order[index]), len(pairs)), rank)
                cell = cells.setdefault(key, [0, 0])
                cell[0] += 1
                cell[1] += int(click)
    return list(pairs), cells


if __name__ == "__main__":
    main()
