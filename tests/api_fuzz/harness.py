"""Fuzz the REST API from its served OpenAPI schema with schemathesis, calling the WSGI app in-process.

Shared by tests/api_fuzz/test_api_fuzz.py (a small budget in `make test`) and bench/fuzz.py (a large
one). Every generated request runs as an annotator (a member holding a task) and as staff, over HTTP
Basic auth (the API accepts it; no CSRF dance). Cases are schemathesis' positive and negative
modes mixed. Half of the cases have their path parameters replaced
by ids that exist, so the fuzzer reaches the views' input handling instead of only their 404s.

A problem is a 5xx (other than rerank's documented 503 "no promoted model") or a 4xx whose body is
not JSON naming the problem (an empty body, an HTML page, or JSON with no message in it).
"""
from __future__ import annotations

import base64
import json
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass, field

import hypothesis
from hypothesis import HealthCheck, Phase
from hypothesis import strategies as st

PASSWORD = "fuzz-pass-123456"


@dataclass
class Seeded:
    """Ids of real objects the fuzzer can aim at, and the two callers' credentials."""

    path_values: dict
    users: dict  # role -> username


@dataclass
class Report:
    cases: int = 0
    operations: int = 0
    per_operation: int = 0
    statuses: Counter = field(default_factory=Counter)
    problems: list = field(default_factory=list)  # (role, method, path, status, reason)
    examples: dict = field(default_factory=dict)  # problem -> (curl command, body excerpt), first seen

    def summary(self) -> dict:
        return {"cases": self.cases, "statuses": {str(k): v for k, v in sorted(self.statuses.items())},
                "problems": len(self.problems), "unique_problems": [list(p) for p in sorted(set(self.problems))]}

    def describe(self) -> str:
        lines = []
        for problem, (curl, body) in sorted(self.examples.items()):
            lines.append(" ".join(map(str, problem)) + f"\n    {curl}\n    -> {body!r}")
        return "\n".join(lines)


def seed_world() -> Seeded:
    """A collection with queries, candidates, a task held by the annotator, and one of every job."""
    from django.contrib.auth import get_user_model

    from annotate.judging import assignment
    from annotate.models import (
        ExportSnapshot,
        GuidelineAcknowledgement,
        ImportJob,
        Membership,
    )
    from mining.models import MiningJob
    from tests.workbench.factories import make_collection
    from training.models import TrainingRun

    User = get_user_model()
    collection = make_collection(slug="fuzz", queries=4, candidates=4, k=2)
    annotator = User.objects.create_user("fuzz-annotator", password=PASSWORD)
    staff = User.objects.create_user("fuzz-staff", password=PASSWORD, is_staff=True, is_superuser=True)
    Membership.objects.create(collection=collection, user=annotator)
    for user in (annotator, staff):
        GuidelineAcknowledgement.objects.create(user=user, version=collection.guideline_version or "v1")
    task = assignment.next_task(collection=collection, annotator=annotator)
    snapshot = ExportSnapshot.objects.create(collection=collection, format="listwise")
    run = TrainingRun.objects.create(collection=collection, snapshot=snapshot, base_model="tiny",
                                     status=TrainingRun.Status.DONE)
    values = {
        "slug": collection.slug,
        "task_id": task.pk,
        "query_id": collection.queries.order_by("pk").first().pk,
        "job_id": ImportJob.objects.create(collection=collection).pk,
        "snapshot_id": snapshot.pk,
        "run_id": run.pk,
    }
    # Mining and import job routes both say job_id; the operation's path decides which one is meant.
    values["mining_job_id"] = MiningJob.objects.create(collection=collection, method="bm25").pk
    return Seeded(values, {"annotator": annotator.username, "staff": staff.username})


def _auth(username: str) -> dict:
    token = base64.b64encode(f"{username}:{PASSWORD}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


def readable_reason(status: int, content_type: str, body: bytes) -> str | None:
    """None if the response is fine, else why it is not (a short phrase)."""
    if status >= 500:
        return f"server error {status}"
    if status < 400:
        return None
    if not body:
        return "empty 4xx body"
    if "json" not in content_type:
        return f"4xx body is {content_type or 'untyped'}, not JSON"
    try:
        payload = json.loads(body)
    except ValueError:
        return "4xx body is not valid JSON"
    if not _names_a_problem(payload):
        return "4xx JSON carries no message"
    return None


def _names_a_problem(payload) -> bool:
    """DRF bodies: {"detail": "..."}, {"field": ["..."]}, ["..."], nested per field or item."""
    if isinstance(payload, str):
        return bool(payload.strip())
    if isinstance(payload, list):
        return any(_names_a_problem(item) for item in payload)
    if isinstance(payload, dict):
        return any(_names_a_problem(value) for value in payload.values())
    return False


def _is_documented_unavailable(path: str, status: int, body: bytes) -> bool:
    # POST /api/rerank/ answers 503 with a detail while no model is promoted: by design, not a crash.
    return path == "/api/rerank/" and status == 503 and b"promoted" in body


def _aimed(operation, seeded: Seeded):
    """Strategy: the operation's generated case, with path parameters set to real ids half the time."""
    names = [p.name for p in operation.path_parameters]
    real = {}
    for name in names:
        key = "mining_job_id" if name == "job_id" and "/mining/" in operation.path else name
        if key in seeded.path_values:
            real[name] = seeded.path_values[key]

    def aim(pair):
        case, use_real = pair
        if use_real and real:
            case.path_parameters = {**(case.path_parameters or {}), **real}
        return case

    from schemathesis import GenerationMode

    # Positive cases fit the schema (they reach the views' logic); negative ones break it on purpose
    # (wrong types, missing fields, out-of-range values) and must be refused with a named reason.
    generated = st.one_of(operation.as_strategy(generation_mode=GenerationMode.POSITIVE),
                          operation.as_strategy(generation_mode=GenerationMode.NEGATIVE))
    return st.tuples(generated, st.booleans()).map(aim)


@contextmanager
def connection_kept_open():
    """Like Django's test client: requests must not close the connection holding the test transaction."""
    from django.core.signals import request_finished, request_started
    from django.db import close_old_connections

    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


def fuzz(app, seeded: Seeded, *, cases_per_operation: int | None = None, total_cases: int | None = None,
         seed: int = 0, roles=("annotator", "staff"), on_case=None) -> Report:
    """Run generated requests per operation and role (a fixed number, or a total shared evenly).

    Problems are collected, never raised, so one run reports all of them.
    """
    import schemathesis

    report = Report()
    with connection_kept_open():
        schema = schemathesis.openapi.from_wsgi("/api/schema/?format=json", app, headers=_auth(seeded.users["staff"]))
        report.operations = sum(1 for _ in schema.get_all_operations())
        if cases_per_operation is None:
            cases_per_operation = max(1, total_cases // (report.operations * len(roles)))
        report.per_operation = cases_per_operation
        _fuzz_operations(app, schema, seeded, report, cases_per_operation, seed, roles, on_case)
    return report


def _fuzz_operations(app, schema, seeded, report, cases_per_operation, seed, roles, on_case):
    for result in schema.get_all_operations():
        operation = result.ok()
        for role in roles:
            headers = _auth(seeded.users[role])

            @hypothesis.settings(max_examples=cases_per_operation, deadline=None, database=None,
                                 derandomize=False, phases=[Phase.generate], print_blob=False,
                                 suppress_health_check=list(HealthCheck))
            @hypothesis.seed(seed)
            @hypothesis.given(case=_aimed(operation, seeded))
            def one(case):
                response = case.call(app=app, headers=headers)
                body = response.content or b""
                report.cases += 1
                report.statuses[response.status_code] += 1
                if _is_documented_unavailable(operation.path, response.status_code, body):
                    return
                content_type = (response.headers.get("content-type") or [""])[0]
                reason = readable_reason(response.status_code, content_type, body)
                if reason:
                    problem = (role, operation.method.upper(), operation.path, response.status_code, reason)
                    report.problems.append(problem)
                    report.examples.setdefault(problem, (case.as_curl_command(headers=headers), body[:300]))
                if on_case:
                    on_case(report)

            one()
