"""Who reaches what: every URL pattern and API route, for each role, including other people's objects.

Roles: anonymous; an outsider (an annotator who is not a member of the collection); an annotator
who is a member (but does not own the task under test); staff. Each route has a rule; a route
added to the urlconf without a rule fails `test_every_route_has_a_rule`, so access is decided
when the route is written, not discovered later.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import pytest
from django.contrib.auth import get_user_model
from django.urls import URLResolver, get_resolver, reverse

from annotate.judging import assignment
from annotate.models import GuidelineAcknowledgement, Membership

from .workbench.factories import make_annotators, make_collection

ROLES = ("anonymous", "outsider", "annotator", "staff")
LOGIN = "login"          # pages: 302 to the login page
DENIED = "denied"        # API: 401/403 for an anonymous caller
FORBIDDEN = "forbidden"  # 403
HIDDEN = "hidden"        # 404: the object is not shown to exist
OK = "ok"                # reached the view: 2xx, 3xx other than to login, or a 4xx about the input


@dataclass
class Rule:
    method: str
    kwargs: Callable[["World"], dict] = lambda world: {}
    expect: dict = field(default_factory=dict)  # role -> outcome
    data: dict | None = None


def slug(world: "World") -> dict:
    return {"slug": world.collection.slug}


def task(world: "World") -> dict:
    return {"task_id": world.owners_task.pk}


def import_job(world: "World") -> dict:
    from annotate.models import ImportJob

    return {"job_id": ImportJob.objects.create(collection=world.collection).pk}


def mining_job(world: "World") -> dict:
    from mining.models import MiningJob

    return {"job_id": MiningJob.objects.create(collection=world.collection, method="bm25").pk}


def training_run(world: "World") -> dict:
    from annotate.models import ExportSnapshot
    from training.models import TrainingRun

    snapshot = ExportSnapshot.objects.create(collection=world.collection, format="listwise")
    run = TrainingRun.objects.create(collection=world.collection, snapshot=snapshot, base_model="tiny",
                                     status=TrainingRun.Status.DONE)
    return {"run_id": run.pk}


def model_version_with_slug(world: "World") -> dict:
    from training.models import ModelVersion

    version = ModelVersion.objects.create(collection=world.collection, path="/nonexistent/model")
    return {**slug(world), "version_id": version.pk}


def run_with_slug(world: "World") -> dict:
    return {**slug(world), **training_run(world)}


PUBLIC = {role: OK for role in ROLES}
PAGE_MEMBERS = {"anonymous": LOGIN, "outsider": HIDDEN, "annotator": OK, "staff": OK}
API_MEMBERS = {"anonymous": DENIED, "outsider": HIDDEN, "annotator": OK, "staff": OK}
API_STAFF = {"anonymous": DENIED, "outsider": FORBIDDEN, "annotator": FORBIDDEN, "staff": OK}
API_TASK_OWNER_ONLY = {"anonymous": DENIED, "outsider": HIDDEN, "annotator": HIDDEN, "staff": HIDDEN}
API_LOGGED_IN = {"anonymous": DENIED, "outsider": OK, "annotator": OK, "staff": OK}
PAGE_STAFF = {"anonymous": LOGIN, "outsider": FORBIDDEN, "annotator": FORBIDDEN, "staff": OK}

RULES: dict[str, Rule] = {
    "login": Rule("GET", expect=PUBLIC),
    "favicon": Rule("GET", expect=PUBLIC),
    "choose-language": Rule("POST", expect=PUBLIC),  # a 400 for the missing language: reached the view
    "logout": Rule("POST", expect={role: LOGIN for role in ROLES}),  # everyone lands on the login page
    "home": Rule("GET", expect={"anonymous": LOGIN, "outsider": OK, "annotator": OK, "staff": OK}),
    "api-schema": Rule("GET", expect=API_LOGGED_IN),
    # The docs are pages for people: an anonymous visitor is sent to log in, not answered 403.
    "api-docs": Rule("GET", expect={"anonymous": LOGIN, "outsider": OK, "annotator": OK, "staff": OK}),
    "api-redoc": Rule("GET", expect={"anonymous": LOGIN, "outsider": OK, "annotator": OK, "staff": OK}),
    "judge": Rule("GET", slug, PAGE_MEMBERS),
    "guidelines": Rule("GET", slug, PAGE_MEMBERS),
    "acknowledge-guidelines": Rule("POST", slug, PAGE_MEMBERS),
    "members": Rule("GET", slug, PAGE_STAFF),
    "collection-overview": Rule("GET", slug, PAGE_STAFF),
    "collection-settings": Rule("GET", slug, PAGE_STAFF),
    "collection-new": Rule("GET", expect=PAGE_STAFF),
    "member-remove": Rule("POST", lambda w: {"slug": w.collection.slug, "user_id": w.users["annotator"].pk},
                          PAGE_STAFF),
    "api-next-task": Rule("POST", slug, API_MEMBERS),
    "api-acknowledge-guidelines": Rule("POST", slug, API_MEMBERS),
    "api-pins": Rule("POST", slug, API_STAFF, data={}),
    "api-task": Rule("GET", task, API_TASK_OWNER_ONLY),
    "api-task-judgments": Rule("POST", task, API_TASK_OWNER_ONLY, data={}),
    "api-task-annotations": Rule("POST", task, API_TASK_OWNER_ONLY, data={}),
    "api-task-undo": Rule("POST", task, API_TASK_OWNER_ONLY, data={}),
    "api-task-finish": Rule("POST", task, API_TASK_OWNER_ONLY),
    "api-task-release": Rule("POST", task, API_TASK_OWNER_ONLY),
    # Exports are staff only (annotate/export/): the download page, the job API and its file.
    "exports": Rule("GET", slug, PAGE_STAFF),
    "export-download": Rule("GET", lambda w: {"slug": w.collection.slug, "format": "listwise"},
                            {"anonymous": LOGIN, "outsider": FORBIDDEN, "annotator": FORBIDDEN, "staff": OK}),
    "api-export-start": Rule("POST", slug, API_STAFF, data={}),
    "api-export": Rule("GET", lambda w: {"snapshot_id": w.collection.export_snapshots.create(format="listwise").pk}, API_STAFF),
    "api-export-file": Rule("GET", lambda w: {"snapshot_id": w.collection.export_snapshots.create(format="listwise").pk},
                            API_STAFF),
    # Import (staff)
    "import-new": Rule("GET", expect=PAGE_STAFF),
    "import-job": Rule("GET", import_job, PAGE_STAFF),
    "api-collections": Rule("GET", expect=API_LOGGED_IN),
    "api-collection": Rule("GET", slug, API_MEMBERS),
    "api-collection-imports": Rule("POST", slug, API_STAFF, data={}),
    "api-import-job": Rule("GET", import_job, API_STAFF),
    # Mining (staff)
    "mining-jobs": Rule("GET", expect=PAGE_STAFF),
    "mining-settings": Rule("GET", slug, PAGE_STAFF),
    "mining-job": Rule("GET", mining_job, PAGE_STAFF),
    "mining-job-progress": Rule("GET", mining_job, PAGE_STAFF),
    "mining-job-cancel": Rule("POST", mining_job, PAGE_STAFF),
    "api-mining-jobs": Rule("POST", expect=API_STAFF, data={}),
    "api-mining-job": Rule("GET", mining_job, API_STAFF),
    "api-mining-job-cancel": Rule("POST", mining_job, API_STAFF),
    # Training and serving
    "training-runs": Rule("GET", slug, PAGE_STAFF),
    "training-run-cancel": Rule("POST", run_with_slug, PAGE_STAFF),
    "training-run": Rule("GET", run_with_slug, PAGE_STAFF),
    "training-run-override": Rule("POST", run_with_slug, PAGE_STAFF),
    "retrain-schedule": Rule("GET", slug, PAGE_STAFF),
    "machine-judge-now": Rule("POST", slug, PAGE_STAFF),
    "model-version-serve": Rule("POST", model_version_with_slug, PAGE_STAFF),
    "search-preview": Rule("GET", slug, PAGE_STAFF),
    "api-training-run-start": Rule("POST", slug, API_STAFF, data={}),
    "api-training-run": Rule("GET", training_run, API_STAFF),
    "api-training-run-cancel": Rule("POST", training_run, API_STAFF),
    "api-training-run-override": Rule("POST", training_run, API_STAFF, data={}),
    "api-rerank": Rule("POST", expect=API_LOGGED_IN, data={}),
    # Quality control (staff): dashboard, adjudication, gold marks; everyone else 403.
    "quality-dashboard": Rule("GET", slug, PAGE_STAFF),
    "quality-recompute": Rule("POST", slug, PAGE_STAFF),
    "adjudication-queue": Rule("GET", slug, PAGE_STAFF),
    "adjudication-query": Rule("GET", lambda w: {**slug(w), "query_id": w.collection.queries.first().pk}, PAGE_STAFF),
    "api-quality-report": Rule("GET", slug, API_STAFF),
    "api-adjudication-query": Rule("GET", lambda w: {**slug(w), "query_id": w.collection.queries.first().pk}, API_STAFF),
    "api-adjudications": Rule("POST", slug, API_STAFF, data={}),
    "api-gold": Rule("POST", slug, API_STAFF, data={}),
}
# Django's admin guards itself (staff only, its own login); checked once below through its index.
IGNORED_NAMESPACES = {"admin"}


def all_routes(patterns=None, prefix="", namespace=None):
    patterns = get_resolver().url_patterns if patterns is None else patterns
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            yield from all_routes(pattern.url_patterns, prefix + str(pattern.pattern), pattern.namespace or namespace)
        else:
            yield prefix + str(pattern.pattern), pattern.name, namespace


@dataclass
class World:
    collection: object
    other_collection: object
    owners_task: object
    users: dict


@pytest.fixture
def world(db, django_user_model):
    collection = make_collection(slug="c1", queries=2, candidates=2, k=2)
    other = make_collection(slug="c2", queries=1, candidates=2, k=2)
    owner, member = make_annotators(collection, 2, prefix="member")
    outsider = django_user_model.objects.create_user("outsider", password="pw-123456789")
    Membership.objects.create(collection=other, user=outsider)
    staff = django_user_model.objects.create_user("boss", password="pw-123456789", is_staff=True)
    for user in (owner, member, outsider, staff):
        GuidelineAcknowledgement.objects.create(user=user, version="v1")
    owners_task = assignment.next_task(collection=collection, annotator=owner)
    return World(collection, other, owners_task, {"anonymous": None, "outsider": outsider, "annotator": member,
                                                   "staff": staff, "owner": owner})


def outcome(response, *, is_api: bool) -> str:
    code = response.status_code
    if code == 302 and "/accounts/login/" in response.get("Location", ""):
        return LOGIN
    if code in (401, 403):
        if is_api and code == 401:
            return DENIED
        return DENIED if is_api and response.wsgi_request.user.is_anonymous else FORBIDDEN
    if code == 404:
        return HIDDEN
    assert code < 500, f"{response.wsgi_request.path}: HTTP {code}"
    return OK


def call(client, user, rule: Rule, url: str):
    client.logout()
    if user is not None:
        client.force_login(user)
    if rule.method == "GET":
        return client.get(url)
    return client.post(url, rule.data or {}, content_type="application/json")


def test_every_route_has_a_rule():
    missing = sorted(
        f"{path} (name={name!r})" for path, name, namespace in all_routes()
        if namespace not in IGNORED_NAMESPACES and name not in RULES
    )
    assert not missing, "routes without an access rule in tests/test_role_matrix.py: " + ", ".join(missing)


@pytest.mark.parametrize("name", sorted(RULES))
def test_role_matrix(client, world, name):
    rule = RULES[name]
    url = reverse(name, kwargs=rule.kwargs(world))
    is_api = url.startswith("/api/")
    for role in ROLES:
        got = outcome(call(client, world.users[role], rule, url), is_api=is_api)
        assert got == rule.expect[role], f"{rule.method} {url} as {role}: expected {rule.expect[role]}, got {got}"


@pytest.mark.parametrize("name", sorted(n for n, r in RULES.items() if r.kwargs is slug))
def test_a_member_of_one_collection_cannot_reach_another(client, world, name):
    rule = RULES[name]
    url = reverse(name, kwargs={"slug": world.other_collection.slug})
    got = outcome(call(client, world.users["annotator"], rule, url), is_api=url.startswith("/api/"))
    assert got in (HIDDEN, FORBIDDEN), f"{url}: a non-member got {got}"


@pytest.mark.parametrize("name", sorted(n for n, r in RULES.items() if r.kwargs is task))
def test_the_owner_reaches_their_own_task(client, world, name):
    rule = RULES[name]
    url = reverse(name, kwargs=task(world))
    assert outcome(call(client, world.users["owner"], rule, url), is_api=True) == OK


def test_admin_is_staff_only(client, world):
    for role, expected in {"anonymous": 302, "annotator": 302, "outsider": 302, "staff": 200}.items():
        assert call(client, world.users[role], Rule("GET"), "/admin/").status_code == expected, role
    staff = world.users["staff"]
    assert get_user_model().objects.get(pk=staff.pk).is_staff
