"""The machine judge's text features (training.judge_features) and the calibration that reads them
beside the score (training.machine_judge.fit_calibration): the text is used where it tells people's
grades apart better than the score does on calibration queries held out, and not otherwise."""
from __future__ import annotations

import random

import numpy as np
import pytest
from sklearn.metrics import cohen_kappa_score

from annotate.importing.beir import read_beir
from annotate.importing.qrels import read_qrels
from annotate.splits import split_for
from training.judge_features import FEATURE_NAMES, TextFeatures, _longest_common_substring, _longest_common_subsequence
from training.machine_judge import (
    MIN_TEXT_CALIBRATION_GRADES,
    SCORE_AND_TEXT,
    SCORE_ONLY,
    fit_calibration,
)

F = {name: i for i, name in enumerate(FEATURE_NAMES)}


def test_the_features_measure_how_much_of_a_chinese_query_the_title_meets():
    titles = ["宝宝十个月没长牙怎么办", "宝宝发烧吃什么药", "成人高血压的饮食注意", "没长牙的原因"]
    text = TextFeatures(titles)
    query = "10个月宝宝没长牙怎么办"
    meets, other_intent, unrelated = (text.of(query, t) for t in titles[:3])
    assert len(meets) == len(FEATURE_NAMES)
    assert meets[F["longest_substring"]] == pytest.approx(len("没长牙怎么办") / len(query))
    assert meets[F["query_covered_idf"]] > other_intent[F["query_covered_idf"]] > unrelated[F["query_covered_idf"]] == 0
    assert unrelated[F["longest_substring"]] == 0 and unrelated[F["query_covered"]] == 0
    # what the title lacks: the unrelated one lacks everything, the right one only 10 (and 个月's word)
    assert meets[F["query_missing_idf"]] < other_intent[F["query_missing_idf"]] < unrelated[F["query_missing_idf"]]


def test_the_features_read_english_words_and_a_rare_missing_word_weighs_more():
    documents = ["how to boil an egg", "boil water fast", "egg salad recipe", "how to cook rice", "how to cook pasta",
                 "how to cook beans", "cook a stew", "boil potatoes"]
    text = TextFeatures(documents)
    full, lacks_rare, lacks_common = (text.of("boil an egg", d) for d in documents[:3])
    assert full[F["query_covered"]] == 1 and full[F["query_words_covered"]] == 1
    assert full[F["longest_substring"]] == 1 and full[F["longest_subsequence"]] == 1
    # "egg" is in 2 of 8 documents and "boil" in 3: lacking egg costs more than lacking boil
    assert lacks_rare[F["query_missing_idf_max"]] > lacks_common[F["query_missing_idf_max"]] > 0


def _dp_subsequence(a, b):
    table = [[0] * (len(b) + 1) for _ in range(len(a) + 1)]
    for i, x in enumerate(a, 1):
        for j, y in enumerate(b, 1):
            table[i][j] = table[i - 1][j - 1] + 1 if x == y else max(table[i - 1][j], table[i][j - 1])
    return table[-1][-1]


def _brute_substring(a, b):
    return max((j - i for i in range(len(a)) for j in range(i + 1, len(a) + 1) if a[i:j] in b), default=0)


def test_the_longest_common_substring_and_subsequence_equal_their_definitions():
    rng = random.Random(0)
    for _ in range(300):
        a = "".join(rng.choice("abc宝牙") for _ in range(rng.randint(0, 9)))
        b = "".join(rng.choice("abc宝牙") for _ in range(rng.randint(0, 14)))
        assert _longest_common_subsequence(a, b) == _dp_subsequence(a, b)
        assert _longest_common_substring(a, b) == _brute_substring(a, b)


def _synthetic(n_queries: int, *, text_tells: bool, seed: int = 0):
    """Per query 6 pairs, grades 0..3; either one text feature or the score carries the grade."""
    rng = np.random.default_rng(seed)
    grades = rng.integers(0, 4, n_queries * 6)
    noise = rng.normal(0, 0.15, grades.size)
    telling = grades / 3 + noise
    features = rng.random((grades.size, len(FEATURE_NAMES)))
    if text_tells:
        features[:, F["query_covered"]] = telling
        scores = rng.normal(size=grades.size)
    else:
        scores = telling
    return scores, features, grades, np.repeat(np.arange(n_queries), 6)


def test_the_calibration_reads_the_text_when_the_text_tells_the_grade_and_the_score_does_not():
    scores, features, grades, queries = _synthetic(80, text_tells=True)
    choice = fit_calibration(scores, features, grades, queries)
    assert choice.calibration.kind == SCORE_AND_TEXT
    assert choice.held_out_log_loss[SCORE_AND_TEXT] < choice.held_out_log_loss[SCORE_ONLY]
    held = _synthetic(40, text_tells=True, seed=1)
    probs = choice.calibration.probabilities(held[0], held[1])
    assert np.allclose(probs.sum(axis=1), 1) and cohen_kappa_score(held[2], probs.argmax(axis=1)) > 0.7


def test_text_that_is_noise_costs_the_judge_nothing():
    """The text classifier reads the score too, so it may win on log loss when the text is noise;
    either way the judge is as good as the score, and the kept calibration is the one that predicted
    the held-out calibration queries better."""
    scores, features, grades, queries = _synthetic(80, text_tells=False)
    choice = fit_calibration(scores, features, grades, queries)
    assert choice.held_out_log_loss[choice.calibration.kind] == min(choice.held_out_log_loss.values())
    held = _synthetic(40, text_tells=False, seed=1)
    assert cohen_kappa_score(held[2], choice.calibration.probabilities(held[0], held[1]).argmax(axis=1)) > 0.7


def test_too_few_grades_for_the_text_calibration_keep_the_score_and_say_why():
    scores, features, grades, queries = _synthetic(10, text_tells=True)
    assert grades.size < MIN_TEXT_CALIBRATION_GRADES
    choice = fit_calibration(scores, features, grades, queries)
    assert choice.calibration.kind == SCORE_ONLY and choice.held_out_log_loss == {}
    assert f"the text calibration needs {MIN_TEXT_CALIBRATION_GRADES} grades" in choice.reason


def test_a_grade_nobody_gave_gets_no_probability_from_the_text_calibration():
    scores, features, grades, queries = _synthetic(80, text_tells=True)
    keep = grades < 3
    choice = fit_calibration(scores[keep], features[keep], grades[keep], queries[keep])
    assert choice.calibration.kind == SCORE_AND_TEXT
    assert np.allclose(choice.calibration.probabilities(scores[:5], features[:5])[:, 3], 0)


def test_a_grade_given_once_does_not_stop_the_judge():
    """sklearn's early stopping draws a stratified tenth, which needs two of every grade: a grade
    people gave once among the calibration grades (or in a fold of them) must still calibrate."""
    scores, features, grades, queries = _synthetic(80, text_tells=True)
    grades = np.where(grades == 3, 2, grades)
    grades[7] = 3                                       # one 3 among 480 grades
    choice = fit_calibration(scores, features, grades, queries)
    probs = choice.calibration.probabilities(scores[:20], features[:20])
    assert choice.calibration.kind == SCORE_AND_TEXT and np.allclose(probs.sum(axis=1), 1)


def test_on_real_kuake_grades_the_text_tells_grades_a_score_that_knows_nothing_cannot(datasets):
    """kuake-qtr-train: 300 train queries' reference grades calibrate, 150 held-out queries are judged;
    the score is constant (a model that knows nothing), so all the judge knows is the text. Measured:
    kappa 0.25 with these counts (bench/machine_judge.py, every query: 0.32)."""
    folder = datasets / "kuake-qtr-train"
    queries = {r.external_id: r.text for r in read_beir(folder / "queries.jsonl", with_title=False)}
    corpus = {r.external_id: r.text for r in read_beir(folder / "corpus.jsonl")}
    qrels: dict[str, dict[str, int]] = {}
    for row in read_qrels(folder / "qrels.tsv"):
        qrels.setdefault(row.query_id, {})[row.doc_id] = row.grade
    ordered = sorted(qrels)
    train = [q for q in ordered if split_for(queries[q]) == "train"][:300]
    dev = [q for q in ordered if split_for(queries[q]) != "train"][:150]
    text = TextFeatures(corpus[d] for q in train + dev for d in qrels[q])

    def pairs(qids):
        rows = [(q, text.of(queries[q], corpus[d]), qrels[q][d]) for q in qids for d in sorted(qrels[q])]
        return [r[0] for r in rows], np.array([r[1] for r in rows]), np.array([r[2] for r in rows])

    train_q, train_x, train_y = pairs(train)
    _, dev_x, dev_y = pairs(dev)
    choice = fit_calibration(np.zeros(len(train_y)), train_x, train_y, train_q)
    assert choice.calibration.kind == SCORE_AND_TEXT
    judged = choice.calibration.probabilities(np.zeros(len(dev_y)), dev_x).argmax(axis=1)
    assert cohen_kappa_score(dev_y, judged) > 0.18


def test_the_features_are_the_same_in_every_process_whatever_its_string_hashing():
    """A set's order follows the process's hash seed; the features must not (an idf sum that moved
    in its last bit moved the classifier's bins, and a rerun in another worker revised grades)."""
    import subprocess
    import sys
    from pathlib import Path

    program = (
        "import json; from training.judge_features import TextFeatures\n"
        "docs = ['宝宝十个月没长牙怎么办', '成人高血压的饮食注意事项和禁忌', 'how to boil an egg in ten minutes',"
        " '新生儿黄疸多少正常 how high is too high', '糖尿病人能吃什么水果']\n"
        "t = TextFeatures(docs)\n"
        "print(json.dumps([t.of(q, d).__repr__() for q in ('10个月宝宝没长牙怎么办', '高血压 饮食 禁忌 egg',"
        " '黄疸 too high') for d in docs]))\n")
    root = Path(__file__).resolve().parents[2]
    outputs = {subprocess.run([sys.executable, "-c", program], cwd=root, capture_output=True, text=True, check=True,
                              env={"PYTHONHASHSEED": str(seed), "PATH": "/usr/bin:/bin"}).stdout
               for seed in (1, 2, 3, 4)}
    assert len(outputs) == 1 and outputs.pop().startswith("[")
