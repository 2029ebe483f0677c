"""Deterministic train/dev/test assignment of queries.

The split is a hash of the query's text, normalised (Unicode NFKC, lower-case, runs of whitespace
collapsed to one space, trimmed), never of its external id, of insertion order or of the other
queries: the same question imported twice under two ids lands in one split, so it cannot be
trained on and evaluated on at once, and adding queries never moves an existing one.

The split is stored on the query when it is created and never recomputed: a query imported while
the split still hashed the external id keeps the split it was trained and evaluated under.
"""
import hashlib
import re
import unicodedata

SPLITS = ("train", "dev", "test")
# Per-mille boundaries: 80% train, 10% dev, 10% test.
_TRAIN_BELOW = 800
_DEV_BELOW = 900
_WHITESPACE = re.compile(r"\s+")


def normalise(text: str) -> str:
    """The form of a query's text that decides its split: NFKC, lower-case, whitespace collapsed."""
    return _WHITESPACE.sub(" ", unicodedata.normalize("NFKC", text).lower()).strip()


def split_for(text: str) -> str:
    """The split of a query with this text."""
    digest = hashlib.sha256(normalise(text).encode("utf-8")).digest()
    bucket = int.from_bytes(digest[:8], "big") % 1000
    if bucket < _TRAIN_BELOW:
        return "train"
    if bucket < _DEV_BELOW:
        return "dev"
    return "test"
