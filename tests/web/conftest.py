"""Fixtures for the web tests: a small collection with a member, and small uploadable files."""
from __future__ import annotations

import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from annotate.models import Membership

from ..workbench.factories import make_collection

CORPUS = [{"_id": f"d{i}", "title": f"title {i}", "text": f"document text number {i}"} for i in range(6)]
QUERIES = [{"_id": f"q{i}", "text": f"query number {i}"} for i in range(3)]
QRELS = [("q0", "d0", 3), ("q0", "d1", 0), ("q1", "d2", 2), ("q2", "d3", 1), ("q2", "d4", 2)]


def jsonl(rows: list[dict]) -> bytes:
    return "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows).encode()


def qrels_tsv(rows) -> bytes:
    return ("query-id\tcorpus-id\tscore\n" + "".join(f"{q}\t{d}\t{g}\n" for q, d, g in rows)).encode()


def upload(name: str, content: bytes) -> SimpleUploadedFile:
    return SimpleUploadedFile(name, content, content_type="application/octet-stream")


def small_upload() -> dict[str, SimpleUploadedFile]:
    """A corpus, its queries and graded qrels: 6 documents, 3 queries, 5 judged pairs."""
    return {"corpus": upload("corpus.jsonl", jsonl(CORPUS)), "queries": upload("queries.jsonl", jsonl(QUERIES)),
            "qrels": upload("qrels.tsv", qrels_tsv(QRELS))}


@pytest.fixture
def collection(db):
    return make_collection(slug="web", queries=2, candidates=3, k=2)


@pytest.fixture
def member(collection, annotator):
    Membership.objects.create(collection=collection, user=annotator)
    return annotator


@pytest.fixture
def as_staff(client, staff_user):
    client.force_login(staff_user)
    return client


@pytest.fixture
def as_annotator(client, member):
    client.force_login(member)
    return client
