"""Reading the export's training targets: soft_label, weight, grade_probs and retrieval_rank per
candidate, each optional, each refused with file:line and the field's name when it is bad."""

import json

import pytest

from training.data import DataFileError, read_data_file


def write(tmp_path, *lines):
    path = tmp_path / "train.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return path


def listwise(*candidates):
    return {"query_id": "q1", "query": "south lake", "candidates": [
        {"doc_id": f"d{i}", "doc": f"document {i}", "label": 0, **fields} for i, fields in enumerate(candidates)]}


def test_each_candidate_keeps_its_soft_label_weight_grade_probs_and_retrieval_rank(tmp_path):
    path = write(tmp_path, listwise(
        {"label": 2, "soft_label": 0.6, "weight": 0.7, "grade_probs": [0.1, 0.1, 0.5, 0.3], "retrieval_rank": 4},
        {"label": 1, "soft_label": 0.4, "weight": 0.9, "retrieval_rank": None},
    ))

    group = read_data_file(path).groups[0]

    assert group.labels == [2.0, 1.0] and group.weights == [0.7, 0.9]
    assert [group.soft_label(i) for i in range(2)] == [0.6, 0.4]
    assert group.probs(0) == pytest.approx((0.1, 0.1, 0.5, 0.3)) and group.probs(1) is None
    assert [group.retrieval_rank(i) for i in range(2)] == [4, None]


def test_without_the_optional_fields_a_candidate_gets_label_over_three_weight_one_and_no_rank(tmp_path):
    group = read_data_file(write(tmp_path, listwise({"label": 2}, {"label": 0}))).groups[0]

    assert [group.soft_label(i) for i in range(2)] == [2 / 3, 0.0]
    assert group.weights == [1.0, 1.0]
    assert [group.probs(i) for i in range(2)] == [None, None]
    assert [group.retrieval_rank(i) for i in range(2)] == [None, None]


def test_pointwise_lines_carry_the_same_optional_fields(tmp_path):
    path = write(tmp_path, {"query": "a", "doc": "x", "label": 3, "soft_label": 0.8, "weight": 0.5,
                            "grade_probs": [0, 0, 0.6, 0.4], "retrieval_rank": 2},
                 {"query": "a", "doc": "y", "label": 0})

    group = read_data_file(path).groups[0]

    assert [group.soft_label(i) for i in range(2)] == [0.8, 0.0]
    assert [group.retrieval_rank(i) for i in range(2)] == [2, None]
    assert group.probs(0) == pytest.approx((0, 0, 0.6, 0.4))


def test_grade_probs_rounded_to_six_digits_are_taken_and_renormalised(tmp_path):
    # What a real export wrote: four probabilities rounded to 6 digits sum to 1.000001.
    group = read_data_file(write(tmp_path, listwise({"grade_probs": [0.0, 0.000133, 0.936175, 0.063693]}))).groups[0]

    assert sum(group.probs(0)) == pytest.approx(1.0, abs=1e-12)


@pytest.mark.parametrize(("fields", "reason"), [
    ({"soft_label": 1.2}, "candidate 1: 'soft_label' must be a number in [0, 1], got 1.2"),
    ({"soft_label": -0.1}, "candidate 1: 'soft_label' must be a number in [0, 1], got -0.1"),
    ({"soft_label": "0.5"}, "candidate 1: 'soft_label' must be a number in [0, 1], got '0.5'"),
    ({"soft_label": None}, "candidate 1: 'soft_label' must be a number in [0, 1], got None"),
    ({"soft_label": True}, "candidate 1: 'soft_label' must be a number in [0, 1], got True"),
    ({"weight": 1.5}, "candidate 1: 'weight' must be a number in [0, 1], got 1.5"),
    ({"weight": -1}, "candidate 1: 'weight' must be a number in [0, 1], got -1"),
    ({"grade_probs": [0.5, 0.5, 0.5, 0.5]}, "candidate 1: 'grade_probs' must be 4 non-negative numbers summing to 1"),
    ({"grade_probs": [0.5, 0.5, 0.0]}, "candidate 1: 'grade_probs' must be 4 non-negative numbers summing to 1"),
    ({"grade_probs": [1.5, -0.5, 0, 0]}, "candidate 1: 'grade_probs' must be 4 non-negative numbers summing to 1"),
    ({"grade_probs": [0.25, 0.25, 0.25, 0.25002]}, "candidate 1: 'grade_probs' must be 4 non-negative"),
    ({"grade_probs": "0,0,0,1"}, "candidate 1: 'grade_probs' must be 4 non-negative numbers summing to 1"),
    ({"retrieval_rank": 0}, "candidate 1: 'retrieval_rank' must be a positive integer (1 = top) or null, got 0"),
    ({"retrieval_rank": 2.5}, "candidate 1: 'retrieval_rank' must be a positive integer (1 = top) or null, got 2.5"),
    ({"retrieval_rank": "3"}, "candidate 1: 'retrieval_rank' must be a positive integer (1 = top) or null, got '3'"),
    ({"retrieval_rank": True}, "candidate 1: 'retrieval_rank' must be a positive integer"),
])
def test_a_bad_value_is_refused_with_file_line_and_field(tmp_path, fields, reason):
    good = listwise({"label": 1})
    bad = listwise({"label": 2}, {"label": 0, **fields})
    bad["query_id"] = "q2"
    path = write(tmp_path, good, bad)

    with pytest.raises(DataFileError) as error:
        read_data_file(path)

    assert str(error.value).startswith(f"{path}:2: ")
    assert reason in str(error.value)


def test_a_bad_value_on_a_pointwise_line_names_the_line(tmp_path):
    path = write(tmp_path, {"query": "a", "doc": "x", "label": 3},
                 {"query": "a", "doc": "y", "label": 0, "retrieval_rank": -2})

    with pytest.raises(DataFileError, match=r":2: 'retrieval_rank' must be a positive integer"):
        read_data_file(path)
