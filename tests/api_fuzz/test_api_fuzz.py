"""Schemathesis against the served schema, in-process over WSGI on the real test database.

A small budget (FUZZ_CASES per operation and role, default 5) keeps `make test` quick; bench/fuzz.py
runs the same harness with thousands of cases.
"""
import os

import pytest

from .harness import fuzz, seed_world

CASES = int(os.environ.get("FUZZ_CASES", "5"))


@pytest.mark.django_db
def test_no_server_errors_and_every_4xx_names_its_problem():
    from django.core.handlers.wsgi import WSGIHandler

    report = fuzz(WSGIHandler(), seed_world(), cases_per_operation=CASES, seed=1)
    assert report.operations >= 27  # the schema was read whole
    assert report.cases >= report.operations * 2  # every operation ran, for both roles
    assert not report.problems, f"{len(report.problems)} bad responses:\n{report.describe()}"
