"""The judging load bench's data (bench/annotate_load.py): the bench database, bulk-loaded
collections and signed-up annotators."""
from __future__ import annotations

import os
import random
import time
from urllib.parse import urlparse

DEFAULT_DB = "postgres://postgres@127.0.0.1:5432/rs_bench"
CANDIDATES_PER_QUERY = 20
PASSWORD = "bench-pass-123"
WORDS = ("relevance search ranking query document passage answer river city weather pizza python list "
         "travel museum history recipe price review guide health sleep baby tooth doctor train ticket").split()


def recreate_database(url: str) -> None:
    import psycopg

    parsed = urlparse(url)
    name = parsed.path.lstrip("/")
    admin = parsed._replace(path="/postgres").geturl().replace("postgres://", "postgresql://", 1)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def setup_django(url: str) -> None:
    os.environ["DATABASE_URL"] = url
    os.environ.setdefault("SECRET_KEY", "bench-only-secret")
    os.environ.setdefault("ALLOWED_HOSTS", "127.0.0.1,localhost")
    os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings"
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def sentence(rng: random.Random, n: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n))


def build_collection(slug: str, n_candidates: int, k: int, seed: int = 0) -> int:
    """Bulk-load a collection with COPY: n_candidates over queries of 20 candidates each."""
    from django.db import connection

    from annotate.models import Collection
    from annotate.splits import split_for

    rng = random.Random(seed)
    collection = Collection.objects.create(slug=slug, name=slug, overlap_k=k)
    n_queries = max(1, n_candidates // CANDIDATES_PER_QUERY)
    n_docs = max(CANDIDATES_PER_QUERY, n_candidates // 10)
    connection.ensure_connection()
    raw = connection.connection
    with raw.cursor() as cur:
        with cur.copy("COPY annotate_document (collection_id, external_id, title, text, metadata, content_hash, "
                      "created_at, updated_at) FROM STDIN") as copy:
            for i in range(n_docs):
                copy.write_row((collection.pk, f"d{i}", "", sentence(rng, 30), "{}", str(i), "now", "now"))
        with cur.copy("COPY annotate_query (collection_id, external_id, text, metadata, content_hash, split, holders, "
                      "shuffle_key, created_at, updated_at) FROM STDIN") as copy:
            for i in range(n_queries):
                copy.write_row((collection.pk, f"q{i}", sentence(rng, 4), "{}", str(i), split_for(f"q{i}"), 0,
                                rng.getrandbits(62), "now", "now"))
        cur.execute("SELECT min(id) FROM annotate_document WHERE collection_id = %s", (collection.pk,))
        first_doc = cur.fetchone()[0]
        cur.execute("SELECT min(id) FROM annotate_query WHERE collection_id = %s", (collection.pk,))
        first_query = cur.fetchone()[0]
        with cur.copy("COPY annotate_candidate (collection_id, query_id, document_id, sources, is_gold, coverage, "
                      "created_at) FROM STDIN") as copy:
            for q in range(n_queries):
                for j, d in enumerate(rng.sample(range(n_docs), CANDIDATES_PER_QUERY)):
                    sources = f'{{"bm25": {{"rank": {j + 1}, "score": {20 - j}.0}}}}'
                    copy.write_row((collection.pk, first_query + q, first_doc + d, sources, False, 0, "now"))
    raw.commit()
    raw.autocommit = True  # as Django expects it again
    # The judging order (the default strategy, pooled), as the import worker computes it.
    from annotate.judging.priorities import refresh_all

    started = time.perf_counter()
    refreshed = refresh_all(collection)
    print(f"{slug}: judging order of {refreshed} queries computed in {time.perf_counter() - started:.1f} s",
          flush=True)
    # What autovacuum would have done to tables this size before anyone judged: statistics for the
    # planner, hint bits and the visibility map (else the first reads of each page write it).
    with raw.cursor() as cur:
        cur.execute("VACUUM (ANALYZE) annotate_document, annotate_query, annotate_candidate")
    raw.autocommit = False
    return collection.pk


def create_annotators(collection_ids: list[int], n: int) -> list[str]:
    from django.contrib.auth import get_user_model
    from django.contrib.auth.hashers import make_password

    from annotate.models import Collection, GuidelineAcknowledgement, Membership

    User = get_user_model()
    password = make_password(PASSWORD)
    users = User.objects.bulk_create(User(username=f"bench{i:03d}", password=password) for i in range(n))
    for collection in Collection.objects.filter(pk__in=collection_ids):
        Membership.objects.bulk_create(Membership(collection=collection, user=u) for u in users)
        GuidelineAcknowledgement.objects.bulk_create(
            [GuidelineAcknowledgement(user=u, version=collection.guideline_version) for u in users], ignore_conflicts=True
        )
    return [u.username for u in users]


def collections_in_place(sizes: list[int], n_annotators: int) -> dict[int, int] | None:
    """With --reuse-db: the collections and annotators of an earlier run, if they are all there."""
    from django.contrib.auth import get_user_model

    from annotate.models import Candidate, Collection

    found = {}
    for size in sizes:
        collection = Collection.objects.filter(slug=f"load-{size}").first()
        if collection is None or Candidate.objects.filter(collection=collection).count() != size:
            return None
        found[size] = collection.pk
    if get_user_model().objects.filter(username__startswith="bench").count() < n_annotators:
        return None
    return found
