"""`python manage.py aggregate --ratings F.csv [--scale MIN-MAX] [--gold G.csv] --out F.jsonl [--json]`:
the annotator model (annotate/agreement/annotator_model.py) fitted to a CSV of grades, one label per item.

F.csv has the header `item,annotator,grade` (the `agreement --ratings` format: an empty grade is a
missing judgment; `--scale`, default 0-3, fixes the integer grade scale). F.jsonl gets one line per
item, in the order items first appear:
    {"item": id, "label": most probable grade, "soft_label": (E[grade] - MIN) / (MAX - MIN),
     "weight": posterior probability of label, "probs": [P(grade = MIN), ..., P(grade = MAX)]}
written to a temporary file beside it and renamed into place, so a failed run leaves nothing.
`--gold G.csv` (header `item,grade`) only *evaluates*: it prints the accuracy of the model and of
majority vote on the items with a reference grade; those grades are not clamped into the fit.
A bad file ends with `error: <file>:<line>: <reason>` and a non-zero exit, nothing written.
`--json` prints the figures as one JSON object on the last line of stdout.
"""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from annotate.agreement.annotator_model import (
    AnnotatorModel,
    fit_annotator_model,
    majority_vote,
)
from annotate.agreement.ratings import (
    Ratings,
    RatingsError,
    Scale,
    parse_scale,
    plain_label,
)
from annotate.agreement.ratings_csv import (
    RatingsFileError,
    read_gold_csv,
    read_ratings_csv,
)


class error(CommandError):  # noqa: N801
    """Django prints a failed command as "<class name>: <message>": this reads `error: ...`."""


class Command(BaseCommand):
    help = ("Fit the annotator model (Dawid-Skene with priors) to a CSV of item,annotator,grade and write "
            "one label, soft label, weight and grade probabilities per item as JSON lines.")

    def add_arguments(self, parser):
        parser.add_argument("--ratings", required=True, help="CSV file with the header item,annotator,grade")
        parser.add_argument("--scale", help=f"grade scale MIN-MAX (default {Scale()})")
        parser.add_argument("--gold", help="CSV file with the header item,grade: reference grades used ONLY to "
                            "report the accuracy of the model and of majority vote (never clamped into the fit)")
        parser.add_argument("--out", required=True, help="the JSON-lines file to write (replaced atomically)")
        parser.add_argument("--json", action="store_true", help="print the figures as JSON on the last line")

    def handle(self, *args, ratings, scale, gold, out, **options):
        try:
            grade_scale = parse_scale(scale) if scale is not None else Scale()
        except RatingsError as failure:
            raise error(f"--scale: {failure}") from None
        out = Path(out)
        if not out.parent.is_dir():
            raise error(f"--out {out}: the folder {out.parent} does not exist")
        try:
            judged = read_ratings_csv(ratings, scale=grade_scale)
            reference = read_gold_csv(gold, scale=grade_scale) if gold else None
        except RatingsFileError as failure:
            raise error(str(failure)) from None
        if judged.n_judgments == 0:
            raise error(f"{ratings}:1: no grades after the header")
        model = fit_annotator_model(
            judged.item, judged.annotator, judged.grade - grade_scale.low,
            n_items=judged.n_items, n_judges=judged.n_annotators, n_grades=grade_scale.size,
        )
        try:
            _write_atomically(out, _item_lines(judged, model))
        except OSError as failure:
            raise error(f"--out {out}: cannot write ({failure.strerror or failure}); the file was left as it was") from None
        figures = _figures(judged, model, reference, out)
        self._print(figures, as_json=options["json"])

    def _print(self, figures: dict, *, as_json: bool) -> None:
        if as_json:
            self.stdout.write(json.dumps(figures, ensure_ascii=False))
            return
        self.stdout.write(
            f"{figures['judgments']} grades, {figures['items']} items, {figures['annotators']} annotators, "
            f"scale {figures['scale']}: {figures['iterations']} EM rounds "
            f"({'converged' if figures['converged'] else 'stopped at the limit'}), "
            f"judge prior strength {figures['judge_strength']:g}; wrote {figures['out']}"
        )
        evaluation = figures["gold"]
        if evaluation is not None:
            self.stdout.write(
                f"gold: {evaluation['items']} items with a reference grade "
                f"({evaluation['not_rated']} more were not in the ratings)"
            )
            if evaluation["items"]:
                self.stdout.write(f"  model accuracy:         {evaluation['model_accuracy']:.4f}")
                self.stdout.write(f"  majority vote accuracy: {evaluation['majority_vote_accuracy']:.4f}")


def _item_lines(judged: Ratings, model: AnnotatorModel):
    low = judged.scale.low
    labels, soft, weights = model.labels(), model.soft_labels(), model.weights()
    for index, item_id in enumerate(judged.item_ids):
        yield json.dumps({
            "item": plain_label(item_id),
            "label": int(labels[index]) + low,
            "soft_label": round(float(soft[index]), 6),
            "weight": round(float(weights[index]), 6),
            "probs": [round(float(p), 6) for p in model.posteriors[index]],
        }, ensure_ascii=False)


def _write_atomically(out: Path, lines) -> None:
    """A temporary file in the target's folder, renamed over it only once it is complete."""
    handle = tempfile.NamedTemporaryFile("w", encoding="utf-8", dir=out.parent, prefix=f".{out.name}.",
                                         suffix=".tmp", delete=False)
    try:
        with handle:
            for line in lines:
                handle.write(line + "\n")
        os.replace(handle.name, out)
    except BaseException:
        Path(handle.name).unlink(missing_ok=True)
        raise


def _figures(judged: Ratings, model: AnnotatorModel, reference: dict[str, int] | None, out: Path) -> dict:
    strength = model.judge_strength
    return {
        "judgments": judged.n_judgments, "items": judged.n_items, "annotators": judged.n_annotators,
        "scale": str(judged.scale), "iterations": model.iterations, "converged": model.converged,
        "judge_strength": strength, "log_likelihood": round(model.log_likelihood, 4), "out": str(out),
        "gold": None if reference is None else _evaluation(judged, model, reference),
        "annotator_figures": [
            {"annotator": plain_label(name), "judgments": int(model.judgments_per_judge[index]),
             "informativeness": round(float(model.informativeness[index]), 4),
             "expected_accuracy": round(float(model.expected_accuracy[index]), 4)}
            for index, name in enumerate(judged.annotator_ids)
        ],
    }


def _evaluation(judged: Ratings, model: AnnotatorModel, reference: dict[str, int]) -> dict:
    """Accuracy of the model's label and of majority vote (ties to the lower grade) on gold items."""
    position = {str(plain_label(item_id)): index for index, item_id in enumerate(judged.item_ids)}
    rated = [(position[item], grade - judged.scale.low) for item, grade in reference.items() if item in position]
    voted = majority_vote(judged.item, judged.grade - judged.scale.low,
                          n_items=judged.n_items, n_grades=judged.scale.size)
    labels = model.labels()
    n = len(rated)
    return {
        "items": n, "not_rated": len(reference) - n,
        "model_accuracy": sum(int(labels[i] == g) for i, g in rated) / n if n else None,
        "majority_vote_accuracy": sum(int(voted[i] == g) for i, g in rated) / n if n else None,
    }
