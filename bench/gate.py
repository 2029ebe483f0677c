"""The promotion gate (training/gate.py) on simulated dev sets: how often it promotes a candidate
that is no better than the incumbent, and how often one that is truly better.

Simulation, per trial: the incumbent's per-query NDCG@10 on n dev queries is drawn from
Beta(1.5, 1.5) (mean 0.5, sd 0.25: the spread of per-query NDCG@10 on TREC Deep Learning-like
query sets, where queries range from solved to hopeless); the candidate's is the incumbent's plus
per-query noise N(0, --noise-sd) plus a shift, clipped to [0, 1]. Clipping at 0 and 1 eats part of
a shift, so the shift is solved (bisection on a large sample) such that the candidate's expected
mean NDCG@10 is higher by exactly the stated gain. The gate runs as a training run would call it,
against the incumbent alone, with its defaults (alpha DEFAULT_ALPHA, 0.025, read as the expanded
percentile, 2,000 resamples, margin DEFAULT_PROMOTION_MARGIN, 0), unless told otherwise.

    .venv/bin/python bench/gate.py [--trials 200] [--noise-sd 0.1] [--alpha 0.05] [--margin M]
        [--noise-from per_query.json --noise-rows zero-shot,bi-encoder]

The noise that matters is how much two about equally good models differ query by query. With
``--noise-from`` it is measured, not assumed: the per-query test figures bench/quality.py (b)
writes with ``--per-query-out`` give the spread of the difference between two real rows (by
default the zero-shot base and the same base fine-tuned as a bi-encoder on four folds of
trec-dl19, whose means differ by about nothing).

Reports the promotion rate for gains 0, 0.01, 0.02, 0.03, 0.05 at 20, 50 and 100 dev queries, each
over --trials trials. Acceptance (issue 15): gain 0 promoted in <= 5% of trials, gain 0.03 on 50
queries in >= 80%. The anchor, measured analytically in the same run: the power of the best test
any gate could use at that size (the one-sided z-test on the mean difference with the noise sd
known, Neyman-Pearson), so a figure below 80% there shows the bound is the data's, not the gate's.
Last line: one JSON object.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path
from statistics import NormalDist

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._args import fraction, int_at_least, positive_float  # noqa: E402
from training.config import DEFAULT_PROMOTION_MARGIN  # noqa: E402
from training.gate import DEFAULT_ALPHA, DEFAULT_RESAMPLES, decide_promotion  # noqa: E402

GAINS = (0.0, 0.01, 0.02, 0.03, 0.05)
SIZES = (20, 50, 100)
BETA_SHAPE = 1.5   # Beta(a, a): mean 0.5, sd sqrt(1 / (4 (2a + 1))) = 0.25


def calibrated_shift(gain: float, noise_sd: float, rng: np.random.Generator) -> tuple[float, float]:
    """The shift whose clipped candidate beats the incumbent by ``gain`` in expectation, and the
    sd of the per-query difference it gives (clipping makes it a little under ``noise_sd``)."""
    incumbent = rng.beta(BETA_SHAPE, BETA_SHAPE, 400_000)
    noise = rng.normal(0, noise_sd, incumbent.size)

    def difference(shift: float) -> np.ndarray:
        return np.clip(incumbent + noise + shift, 0, 1) - incumbent

    if gain == 0:
        # Clipping is symmetric around the Beta's mean 0.5: no shift keeps the gain at 0.
        return 0.0, float(difference(0.0).std())
    low, high = gain, 2 * gain + 0.05
    for _ in range(40):
        shift = (low + high) / 2
        low, high = (shift, high) if difference(shift).mean() < gain else (low, shift)
    shift = (low + high) / 2
    return shift, float(difference(shift).std())


def promotion_rate(n: int, shift: float, args, rng: np.random.Generator) -> float:
    promoted = 0
    for trial in range(args.trials):
        incumbent = rng.beta(BETA_SHAPE, BETA_SHAPE, n)
        candidate = np.clip(incumbent + rng.normal(0, args.noise_sd, n) + shift, 0, 1)
        ids = range(n)
        decision = decide_promotion(dict(zip(ids, candidate.tolist())),
                                    {"incumbent": dict(zip(ids, incumbent.tolist()))},
                                    margin=args.margin, alpha=args.alpha, resamples=args.resamples,
                                    seed=trial)
        promoted += decision.promote
    return promoted / args.trials


def best_test_power(gain: float, n: int, noise_sd: float, alpha: float) -> float:
    """Power of the one-sided level-alpha z-test of "mean difference > 0" with the sd of the
    per-query difference known: no test of the same level does better (Neyman-Pearson)."""
    normal = NormalDist()
    return normal.cdf(gain * math.sqrt(n) / noise_sd - normal.inv_cdf(1 - alpha))


def measured_noise(path: str, rows: str, parser) -> tuple[float, dict]:
    """The sd of the per-query NDCG@10 difference of two real models on the same queries."""
    try:
        figures = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as error:
        parser.error(f"--noise-from {path}: {error}")
    names = [name.strip() for name in rows.split(",")]
    if len(names) != 2 or any(name not in figures for name in names):
        parser.error(f"--noise-rows {rows!r}: give two of {', '.join(sorted(figures))}")
    first, second = (figures[name] for name in names)
    queries = [q for q in first if q in second and first[q] is not None and second[q] is not None]
    if len(queries) < 10:
        parser.error(f"--noise-from {path}: only {len(queries)} queries have both rows")
    difference = np.array([first[q] - second[q] for q in queries])
    return float(difference.std(ddof=1)), {"file": path, "rows": names, "queries": len(queries),
                                           "mean_difference": round(float(difference.mean()), 4)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int_at_least(1), default=200)
    parser.add_argument("--noise-sd", type=positive_float, default=0.1, help="per-query noise sd")
    parser.add_argument("--alpha", type=fraction, default=DEFAULT_ALPHA)
    parser.add_argument("--margin", type=float, default=DEFAULT_PROMOTION_MARGIN)
    parser.add_argument("--resamples", type=int_at_least(100), default=DEFAULT_RESAMPLES)
    parser.add_argument("--seed", type=int_at_least(0), default=0)
    parser.add_argument("--noise-from", default="",
                        help="take --noise-sd from real per-query figures: the JSON bench/quality.py --per-query-out "
                             "writes; the sd of the per-query difference between the two --noise-rows")
    parser.add_argument("--noise-rows", default="zero-shot,bi-encoder",
                        help="two rows of --noise-from: two models about equally good (default: the zero-shot base "
                             "and the same base fine-tuned on a few dozen queries)")
    args = parser.parse_args()
    if args.noise_from:
        args.noise_sd, args.noise_source = measured_noise(args.noise_from, args.noise_rows, parser)
    if not 0 < args.alpha < 0.5:
        parser.error(f"--alpha: {args.alpha} is not in (0, 0.5)")
    if not -1 < args.margin < 1:
        parser.error(f"--margin: {args.margin} is not in (-1, 1)")

    started = time.perf_counter()
    rng = np.random.default_rng(args.seed)
    calibrated = {gain: calibrated_shift(gain, args.noise_sd, rng) for gain in GAINS}
    shifts = {gain: shift for gain, (shift, _) in calibrated.items()}
    rates = {}
    print(f"promotion rate over {args.trials} trials (noise sd {args.noise_sd}, alpha {args.alpha}, "
          f"margin {args.margin}, {args.resamples} resamples)")
    print("gain    shift   " + "".join(f"n={n:<8}" for n in SIZES))
    for gain in GAINS:
        rates[str(gain)] = {str(n): promotion_rate(n, shifts[gain], args, rng) for n in SIZES}
        print(f"{gain:<7} {shifts[gain]:.4f}  " + "".join(f"{rates[str(gain)][str(n)]:<10.3f}" for n in SIZES))

    null_worst = max(rates["0.0"].values())
    power = rates["0.03"]["50"]
    best = best_test_power(0.03, 50, calibrated[0.03][1], args.alpha)
    print(f"gain 0: promoted in at most {null_worst:.1%} (acceptance <= 5%); "
          f"gain 0.03 on 50 queries: {power:.1%} (acceptance >= 80%); "
          f"the best level-{args.alpha} test could reach {best:.1%} there")
    print(json.dumps({
        "trials": args.trials, "noise_sd": args.noise_sd, "noise_source": getattr(args, "noise_source", None), "alpha": args.alpha, "margin": args.margin,
        "resamples": args.resamples, "rates": rates,
        "equal_promoted_max": null_worst, "equal_ok": null_worst <= 0.05,
        "gain_0.03_n50_promoted": power, "gain_0.03_n50_ok": power >= 0.80,
        "best_test_power_0.03_n50": round(best, 4), "power_vs_best_test": round(power / best, 3),
        "seconds": round(time.perf_counter() - started, 1),
    }))


if __name__ == "__main__":
    main()
