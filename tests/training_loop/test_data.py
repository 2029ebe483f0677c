"""Reading training files and building fixed-size groups."""
from __future__ import annotations

import pytest

from training.batching import encode_pairs, padding_chunks, training_groups
from training.data import DataFileError, read_data_file

from .conftest import write_jsonl


def test_listwise_file_keeps_ids_labels_weights_and_split(tmp_path):
    path = write_jsonl(tmp_path / "l.jsonl", [
        {"query_id": "q1", "query": "南京旅游", "split": "dev",
         "candidates": [{"doc_id": "d1", "doc": "中山陵", "label": 2, "soft_label": 0.7, "weight": 0.8},
                        {"doc_id": "d2", "doc": "玄武湖", "label": 0}]},
    ])
    data = read_data_file(path)
    group = data.groups[0]
    assert data.format == "listwise" and len(data.sha256) == 64
    assert (group.query_id, group.split, group.doc_ids) == ("q1", "dev", ["d1", "d2"])
    assert group.labels == [2.0, 0.0] and group.weights == [0.8, 1.0]


def test_pointwise_lines_are_grouped_by_query(tmp_path):
    path = write_jsonl(tmp_path / "p.jsonl", [
        {"query": "a", "doc": "x", "label": 3}, {"query": "b", "doc": "y", "label": 0},
        {"query": "a", "doc": "z", "label": 1, "weight": 0.5},
    ])
    groups = read_data_file(path).groups
    assert [(g.query, g.docs, g.labels, g.weights) for g in groups] == [
        ("a", ["x", "z"], [3.0, 1.0], [1.0, 0.5]), ("b", ["y"], [0.0], [1.0])]


def test_pairwise_grades_documents_by_their_share_of_wins(tmp_path):
    path = write_jsonl(tmp_path / "pw.jsonl", [
        {"query": "a", "positive": "best", "negative": "mid"},
        {"query": "a", "positive": "mid", "negative": "worst"},
    ])
    group = read_data_file(path).groups[0]
    assert dict(zip(group.docs, group.labels)) == {"best": 3.0, "mid": 1.5, "worst": 0.0}


@pytest.mark.parametrize("lines, reason", [
    (['{"query": "a", "candidates": []}'], ":1: 'candidates' must be a non-empty list"),
    (['{"query": "a", "doc": "x", "label": 1}', "{not json"], ":2: not valid JSON"),
    (['{"query": "a", "doc": "x", "label": 4}'], ":1: 'label' must be a number in [0, 3], got 4"),
    (['{"query": "a", "candidates": [{"doc": "x", "label": 1, "weight": 2}]}'], ":1: candidate 0: 'weight'"),
    (['{"query": "", "doc": "x", "label": 1}'], ":1: 'query' must be a non-empty string"),
    (['{"query": "a", "candidates": [{"doc": "x", "label": 1}]}',
      '{"query": "a", "candidates": [{"doc": "y", "label": 1}]}'], ":2: query 'a' repeats line 1"),
    (['{"query": "a", "doc": "x", "label": 1}', '{"query": "a", "positive": "x", "negative": "y"}'],
     ":2: pointwise line needs 'doc' and 'label'"),
    (['{"text": "a"}'], ":1: unknown format"),
    (['[1, 2]'], ":1: expected a JSON object"),
    ([""], ":1: the file holds no records"),
])
def test_a_bad_file_names_the_file_line_and_reason(tmp_path, lines, reason):
    path = tmp_path / "bad.jsonl"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataFileError) as error:
        read_data_file(path)
    assert str(error.value).startswith(str(path)) and reason in str(error.value)


def test_missing_file_is_named(tmp_path):
    with pytest.raises(DataFileError, match="no such file"):
        read_data_file(tmp_path / "nope.jsonl")


def test_groups_put_positives_first_then_hard_negatives_and_drop_queries_without_positive(tmp_path):
    path = write_jsonl(tmp_path / "l.jsonl", [
        {"query": "a", "candidates": [{"doc": f"d{i}", "label": g} for i, g in enumerate([0, 1, 3, 0, 2, 1, 0])]},
        {"query": "b", "candidates": [{"doc": "x", "label": 1}, {"doc": "y", "label": 0}]},
        {"query": "c", "candidates": [{"doc": "x", "label": 2}, {"doc": "y", "label": 0}]},
    ])
    groups, without_positive = training_groups(read_data_file(path).groups, group_size=4)
    assert without_positive == 1
    assert groups[0].docs == ["d2", "d4", "d1", "d5"]  # grade 3, 2, then the grade-1 near misses
    assert groups[1].docs == ["x", "y"]  # short groups are padded (masked) by the batcher


def test_the_document_is_cut_never_the_query(tiny_model):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    query = "query q1 q2 q3"
    long_doc = " ".join(["w1"] * 100)
    encoded = encode_pairs(tokenizer, [query], [long_doc], max_length=16)
    ids = encoded["input_ids"][0]
    assert len(ids) == 16
    assert tokenizer.decode(ids[1:5]) == query
    # A query longer than half the budget is cut too rather than failing.
    huge = encode_pairs(tokenizer, ["query " + "q1 " * 40], ["w1 w2"], max_length=16)
    assert len(huge["input_ids"][0]) == 16


def _cost(lengths, chunks, chunk_cost):
    return sum(max(lengths[i] for i in chunk) * len(chunk) + chunk_cost for chunk in chunks)


def _cheapest_by_brute_force(lengths, chunk_cost):
    """Every way to cut the length-sorted rows into contiguous runs."""
    import itertools

    ordered = sorted(lengths, reverse=True)
    n = len(ordered)
    best = None
    for cuts in itertools.product([False, True], repeat=n - 1):
        runs, start = [], 0
        for i, cut in enumerate(cuts, start=1):
            if cut:
                runs.append(ordered[start:i])
                start = i
        runs.append(ordered[start:])
        cost = sum(run[0] * len(run) + chunk_cost for run in runs)
        best = cost if best is None else min(best, cost)
    return best


@pytest.mark.parametrize("seed", range(12))
def test_padding_chunks_are_the_cheapest_cut_and_hold_every_row_once(seed):
    import random

    rng = random.Random(seed)
    lengths = [rng.randint(4, 128) for _ in range(rng.randint(1, 9))]
    chunk_cost = rng.choice([0, 16, 64, 256, 10_000])
    chunks = padding_chunks(lengths, chunk_cost=chunk_cost)
    assert sorted(i for chunk in chunks for i in chunk) == list(range(len(lengths)))
    assert _cost(lengths, chunks, chunk_cost) == _cheapest_by_brute_force(lengths, chunk_cost)


def test_padding_chunks_split_where_it_pays_and_not_elsewhere():
    lengths = [10, 120, 11, 118, 12, 119]
    # Three long and three short rows: two passes save 3 * ~108 padded tokens.
    assert padding_chunks(lengths, chunk_cost=64) == [[1, 5, 3], [4, 2, 0]]
    assert padding_chunks(lengths, chunk_cost=1000) == [[1, 5, 3, 4, 2, 0]]
    assert padding_chunks([], chunk_cost=0) == []
