"""Small builders for collections with queries and candidates (tests only)."""
from __future__ import annotations

from django.contrib.auth import get_user_model

from annotate.models import Candidate, Collection, Document, Membership, Query
from annotate.splits import split_for


def make_collection(*, slug="c1", queries=3, candidates=4, k=2, lease_minutes=30) -> Collection:
    collection = Collection.objects.create(slug=slug, name=slug, overlap_k=k, lease_minutes=lease_minutes)
    docs = Document.objects.bulk_create(
        Document(collection=collection, external_id=f"d{i}", text=f"document {i}", content_hash=str(i))
        for i in range(candidates * queries)
    )
    qs = Query.objects.bulk_create(
        Query(collection=collection, external_id=f"q{i}", text=f"query {i}", content_hash=str(i), split=split_for(f"query {i}"))
        for i in range(queries)
    )
    Candidate.objects.bulk_create(
        Candidate(collection=collection, query=q, document=docs[qi * candidates + j])
        for qi, q in enumerate(qs) for j in range(candidates)
    )
    return collection


def make_annotators(collection: Collection, n: int, prefix="a"):
    User = get_user_model()
    users = [User.objects.create_user(f"{prefix}{i}", password="pw-123456789") for i in range(n)]
    Membership.objects.bulk_create(Membership(collection=collection, user=u) for u in users)
    return users
