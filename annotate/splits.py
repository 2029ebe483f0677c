"""Deterministic train/dev/test assignment of queries.

The split depends only on the query's external id (a hash), never on insertion order or on the
other queries, so adding queries never moves an existing one across splits and no query leaks.
"""
import hashlib

SPLITS = ("train", "dev", "test")
# Per-mille boundaries: 80% train, 10% dev, 10% test.
_TRAIN_BELOW = 800
_DEV_BELOW = 900


def split_for(external_id: str) -> str:
    digest = hashlib.sha256(external_id.encode("utf-8")).digest()
    bucket = int.from_bytes(digest[:8], "big") % 1000
    if bucket < _TRAIN_BELOW:
        return "train"
    if bucket < _DEV_BELOW:
        return "dev"
    return "test"
