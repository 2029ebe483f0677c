"""The annotator model at 1,000,000 judgments: our fit against a plain numpy Dawid–Skene (the anchor)
timed in the same run, and crowd-kit's DawidSkene where it is installed (requirements-dev.txt).

Data (seeded): 250,000 pairs with a hidden true grade 0..3 (shares 0.4/0.3/0.2/0.1), each graded by 4
of 20 annotators picked by activity: 8 honest (grade kept with probability 1-p, p from 0.1 to 0.45,
else a neighbouring grade), 2 always one higher, 2 always one lower (clipped to the scale), 2 random,
2 constant (always 0 / always 2), 4 honest newcomers (p = 0.2) who do 1/50 of a regular's share.

    .venv/bin/python bench/aggregate.py [--pairs 250000] [--per-pair 4] [--seed 0] [--crowdkit-pairs N]

crowd-kit (pandas) takes about 4x our time, so it runs on all pairs by default (about 25 s), or on the
first --crowdkit-pairs pairs (0 skips it; our fit is then timed again on that subsample for its ratio). Each fit reports exact-label
accuracy against the simulated truth (majority vote beside). Acceptance: ours <= 10 s on 1M.
Last line: one JSON object with seconds and ratios.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
# annotate.agreement marks its messages for translation at import: Django's settings must be found.
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ.setdefault("DEBUG", "1")
from annotate.agreement.annotator_model import fit_annotator_model  # noqa: E402
from bench._args import int_at_least  # noqa: E402

K = 4
HONEST_NOISE = (0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45)
PROFILES = [("honest", p) for p in HONEST_NOISE] + [("shift", 1)] * 2 + [("shift", -1)] * 2 + \
    [("random", None)] * 2 + [("constant", 0), ("constant", 2)] + [("newcomer", 0.2)] * 4


def simulate(pairs: int, per_pair: int, seed: int):
    rng = np.random.default_rng(seed)
    truth = rng.choice(K, pairs, p=[0.4, 0.3, 0.2, 0.1])
    activity = np.array([0.02 if kind == "newcomer" else 1.0 for kind, _ in PROFILES])
    # Weighted sampling of per_pair distinct annotators per pair: the top keys of u^(1/w).
    keys = rng.random((pairs, len(PROFILES))) ** (1.0 / activity)
    judges = np.argsort(-keys, axis=1)[:, :per_pair]
    item = np.repeat(np.arange(pairs), per_pair)
    judge = judges.reshape(-1)
    true = truth[item]
    grade = true.copy()
    for index, (kind, setting) in enumerate(PROFILES):
        mine = np.flatnonzero(judge == index)
        if kind in ("honest", "newcomer"):
            wrong = mine[rng.random(mine.size) < setting]
            grade[wrong] = np.clip(true[wrong] + rng.choice([-1, 1], wrong.size), 0, K - 1)
        elif kind == "shift":
            grade[mine] = np.clip(true[mine] + setting, 0, K - 1)
        elif kind == "random":
            grade[mine] = rng.integers(0, K, mine.size)
        else:
            grade[mine] = setting
    return item, judge, grade, truth


def plain_dawid_skene(item, judge, grade, n_items, n_judges, tol=1e-4, max_iter=100):
    """Dawid & Skene (1979) EM, maximum likelihood, majority-vote start, the same stop as ours (no posterior
    moves more than tol in a round); a 1e-6 floor keeps logs finite.
    Vectorised like ours (bincount per grade), so the timing compares the models, not the plumbing."""
    cell = judge * K + grade
    posteriors = np.stack([np.bincount(item, weights=grade == k, minlength=n_items) for k in range(K)], 1) + 1e-3
    posteriors /= posteriors.sum(1, keepdims=True)
    for iteration in range(1, max_iter + 1):
        prior = posteriors.mean(0)
        counts = np.stack([np.bincount(cell, weights=posteriors[item, k], minlength=n_judges * K)
                           for k in range(K)], 1).reshape(n_judges, K, K).transpose(0, 2, 1)
        confusion = counts / np.maximum(counts.sum(2, keepdims=True), 1e-12)
        by_cell = np.log(np.maximum(confusion, 1e-6)).transpose(0, 2, 1).reshape(-1, K)
        log_joint = np.stack([np.bincount(item, weights=by_cell[cell, k], minlength=n_items) for k in range(K)], 1)
        log_joint += np.log(np.maximum(prior, 1e-12))
        updated = np.exp(log_joint - log_joint.max(1, keepdims=True))
        updated /= updated.sum(1, keepdims=True)
        change = np.abs(updated - posteriors).max()
        posteriors = updated
        if change < tol:
            break
    return posteriors, iteration


def majority_vote(item, grade, n_items):
    votes = np.stack([np.bincount(item, weights=grade == k, minlength=n_items) for k in range(K)], 1)
    return np.argmax(votes, 1)


def timed(function):
    start = time.perf_counter()
    result = function()
    return result, time.perf_counter() - start


def crowdkit_figures(item, judge, grade, truth, pairs, ours_on_all):
    try:
        import pandas as pd
        from crowdkit.aggregation import DawidSkene
    except ImportError:
        return None
    keep = item < pairs
    frame = pd.DataFrame({"task": item[keep], "worker": judge[keep], "label": grade[keep]})
    labels, seconds = timed(lambda: DawidSkene(n_iter=100).fit_predict(frame))
    if pairs == truth.size:
        ours, our_seconds = ours_on_all
    else:
        ours, our_seconds = timed(lambda: fit_annotator_model(
            item[keep], judge[keep], grade[keep], n_items=pairs, n_judges=len(PROFILES), n_grades=K))
    accuracy = float((labels.sort_index().to_numpy() == truth[:pairs]).mean())
    return {"pairs": pairs, "judgments": int(keep.sum()), "seconds": round(seconds, 3),
            "accuracy": round(accuracy, 4), "ours_seconds": round(our_seconds, 3),
            "ours_accuracy": round(float((ours.labels() == truth[:pairs]).mean()), 4),
            "ours_over_crowdkit": round(our_seconds / seconds, 4)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int_at_least(1), default=250_000)
    parser.add_argument("--per-pair", type=int_at_least(1), default=4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--crowdkit-pairs", type=int_at_least(0), help="crowd-kit on the first N pairs (default: all)")
    args = parser.parse_args()
    if args.per_pair > len(PROFILES):
        parser.error(f"--per-pair {args.per_pair}: only {len(PROFILES)} annotators")

    item, judge, grade, truth = simulate(args.pairs, args.per_pair, args.seed)
    print(f"{grade.size:,} judgments, {args.pairs:,} pairs, {len(PROFILES)} annotators, {K} grades")
    model, ours = timed(lambda: fit_annotator_model(
        item, judge, grade, n_items=args.pairs, n_judges=len(PROFILES), n_grades=K))
    (anchor_posteriors, anchor_iterations), anchor = timed(
        lambda: plain_dawid_skene(item, judge, grade, args.pairs, len(PROFILES)))
    accuracy = {
        "ours": float((model.labels() == truth).mean()),
        "plain_dawid_skene": float((np.argmax(anchor_posteriors, 1) == truth).mean()),
        "majority_vote": float((majority_vote(item, grade, args.pairs) == truth).mean()),
    }
    print(f"ours:              {ours:7.2f} s, {model.iterations} rounds, judge strength {model.judge_strength:g}, "
          f"accuracy {accuracy['ours']:.4f}")
    print(f"plain Dawid-Skene: {anchor:7.2f} s, {anchor_iterations} rounds, accuracy {accuracy['plain_dawid_skene']:.4f}")
    print(f"majority vote:     accuracy {accuracy['majority_vote']:.4f}")
    for index, (kind, setting) in enumerate(PROFILES):
        print(f"  annotator {index:2d} {kind:8s} {setting!s:5s} judgments {model.judgments_per_judge[index]:7d} "
              f"informativeness {model.informativeness[index]:.3f} expected accuracy {model.expected_accuracy[index]:.3f}")
    crowdkit_pairs = args.pairs if args.crowdkit_pairs is None else min(args.crowdkit_pairs, args.pairs)
    crowdkit = crowdkit_figures(item, judge, grade, truth, crowdkit_pairs, (model, ours)) if crowdkit_pairs else None
    if crowdkit is None and crowdkit_pairs:
        print("crowd-kit is not installed (requirements-dev.txt): no crowd-kit figure")
    if crowdkit:
        print(f"crowd-kit DawidSkene on the first {crowdkit['pairs']:,} pairs: {crowdkit['seconds']:.2f} s, "
              f"accuracy {crowdkit['accuracy']:.4f} (ours on the same: {crowdkit['ours_seconds']:.2f} s, "
              f"accuracy {crowdkit['ours_accuracy']:.4f})")
    print(json.dumps({
        "judgments": int(grade.size), "pairs": args.pairs, "annotators": len(PROFILES),
        "ours_seconds": round(ours, 3), "plain_dawid_skene_seconds": round(anchor, 3),
        "ours_over_plain": round(ours / anchor, 3), "iterations": model.iterations,
        "accuracy": {name: round(value, 4) for name, value in accuracy.items()},
        "crowdkit": crowdkit, "within_10_s": ours <= 10.0,
    }))


if __name__ == "__main__":
    main()
