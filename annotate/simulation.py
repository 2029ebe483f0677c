"""Simulated annotators: multi-annotator data with a known truth, for demos, benchmarks and tests.

Each simulated annotator judges the candidates that have a *reference grade* — an imported
non-human Judgment (qrels, labelled files; never click labels, which are weak). Where a candidate has several such sources, the
reference is taken from the first in this order: sources starting with "qrels:", then "labels:",
then any other; ties by source name (so the choice never depends on import order).

Profiles (one per annotator; all "honest" unless `profiles` is given) say how an annotator grades:
  honest        the noise model below, with `noise` and `random_share`;
  plus1         reference + 1, capped at 3 (a lenient annotator, always one higher);
  minus1        reference - 1, floored at 0 (a strict one);
  random        a grade drawn uniformly from 0..3 (a spammer; right by chance a quarter of the time);
  constant[:G]  always grade G (default 0: the "everything is irrelevant" clicker);
  newcomer[:F]  honest, but judging only a share F of the pairs offered to it (default 0.05): an
                annotator with too little data for its reliability to be known.

Coverage: by default every annotator is offered every reference-graded candidate. With `overlap`
K, each candidate is offered to K of the N annotators: a uniformly random K-subset, the K whose
hash of (seed, annotator, query external id, document external id) is lowest. A newcomer offered a
candidate judges it with probability F, so a candidate whose subset holds a newcomer may end with
fewer than K grades.

An honest annotator i gives the reference grade with probability 1 - noise. Otherwise (an *error*) it gives,
with probability 1 - random_share, a neighbouring grade (reference ± 1, one side picked at random,
the only neighbour at 0 or 3), and with probability random_share a grade drawn uniformly from the
three grades other than the reference. Every error differs from the reference, so the observed
error rate estimates `noise` directly.

Determinism: the random draws of annotator i for a candidate come from a hash of (seed, i, query
external id, document external id) — not from a stream over the candidates — so they are the
same whatever the order, whatever else the collection holds, on SQLite and on PostgreSQL.

Idempotence: annotator i is the user `sim-<collection>-<i>`; its parameters (profile, noise, seed,
random share, overlap and, with an overlap, the number of annotators the subsets are drawn from) are
kept in AnnotatorProfile.simulation. A re-run judges only the candidates it has not judged yet (new
candidates), so running twice adds nothing. Re-running with different parameters for an existing
simulated annotator is refused (SimulationError): its judgments were drawn with the old ones, and
silently mixing two noise levels or two profiles would make the "known truth" wrong. Use another
collection, or delete those users first. Without an overlap, adding annotators is allowed (the
existing ones' candidates do not change); with one, it is refused (every subset would change).

Each judgment gets a JudgmentRevision (changed_by = the simulated user, reason "simulated"), like a
person's first grade, so history and "who changed what" look the same for every judgment. Judgments
carry the collection's guideline_version. Simulated judgments do not touch Candidate.coverage:
they never take an assignment slot from a person.

Writes are batched multi-row inserts (annotate.importing.fastinsert), BATCH pairs at a time.
"""
from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from django.contrib.auth import get_user_model
from django.db import connection, transaction
from django.utils import timezone

from .grades import GRADE_MAX, GRADE_MIN, GRADES
from .importing.fastinsert import insert_rows
from .models import (
    CLICK_SOURCE,
    AnnotatorProfile,
    Candidate,
    Collection,
    Judgment,
    JudgmentRevision,
    Membership,
)

BATCH = 20_000
_MASK64 = (1 << 64) - 1


class SimulationError(ValueError):
    """Bad simulation parameters, or parameters that conflict with existing simulated annotators."""


NEWCOMER_SHARE = 0.05
CONSTANT_GRADE = GRADE_MIN
PROFILE_KINDS = ("honest", "plus1", "minus1", "random", "constant", "newcomer")


@dataclass(frozen=True)
class Profile:
    """How one simulated annotator grades (see the module docstring)."""

    kind: str
    grade: int = CONSTANT_GRADE  # constant: the grade it always gives
    share: float = 1.0  # newcomer: the share of its offered pairs it judges

    @classmethod
    def parse(cls, text: str) -> Profile:
        kind, _, value = text.strip().partition(":")
        if kind not in PROFILE_KINDS:
            raise SimulationError(f"--profiles: unknown profile {text.strip()!r} (known: {', '.join(PROFILE_KINDS)})")
        if value and kind not in ("constant", "newcomer"):
            raise SimulationError(f"--profiles: profile {kind!r} takes no value, got {text.strip()!r}")
        if kind == "constant":
            grade = _number(value, int, text) if value else CONSTANT_GRADE
            if not GRADE_MIN <= grade <= GRADE_MAX:
                raise SimulationError(f"--profiles: constant grade must be within {GRADE_MIN}..{GRADE_MAX}, got {text!r}")
            return cls(kind, grade=grade)
        if kind == "newcomer":
            share = _number(value, float, text) if value else NEWCOMER_SHARE
            if not 0.0 < share <= 1.0:
                raise SimulationError(f"--profiles: newcomer share must be within (0, 1], got {text!r}")
            return cls(kind, share=share)
        return cls(kind)

    @property
    def spec(self) -> str:
        """The canonical text, defaults filled in ("constant" and "constant:0" are the same profile)."""
        if self.kind == "constant":
            return f"constant:{self.grade}"
        return f"newcomer:{self.share!r}" if self.kind == "newcomer" else self.kind


def _number(value: str, kind: type, text: str):
    try:
        return kind(value)
    except ValueError:
        what = "an integer" if kind is int else "a number"
        raise SimulationError(f"--profiles: {value!r} in {text!r} is not {what}") from None


def parse_profiles(text: str) -> tuple[Profile, ...]:
    """`honest,honest,plus1,constant:0` -> one Profile per annotator."""
    if not text.strip():
        raise SimulationError("--profiles: empty list")
    return tuple(Profile.parse(part) for part in text.split(","))


@dataclass(frozen=True)
class SimulationParams:
    annotators: int
    noise: float
    seed: int = 0
    random_share: float = 0.0
    profiles: tuple[Profile, ...] | None = None  # None: every annotator honest
    overlap: int | None = None  # None: every annotator judges every candidate

    def check(self) -> None:
        if not isinstance(self.annotators, int) or not 1 <= self.annotators <= 1000:
            raise SimulationError(f"--annotators must be an integer from 1 to 1000, got {self.annotators!r}")
        if not 0.0 <= self.noise <= 1.0:
            raise SimulationError(f"--noise must be within 0..1, got {self.noise!r}")
        if not 0.0 <= self.random_share <= 1.0:
            raise SimulationError(f"--random-share must be within 0..1, got {self.random_share!r}")
        if not isinstance(self.seed, int) or not 0 <= self.seed < 2**63:
            raise SimulationError(f"--seed must be a non-negative integer, got {self.seed!r}")
        if self.profiles is not None and len(self.profiles) != self.annotators:
            raise SimulationError(f"--annotators ({self.annotators}) must equal the number of --profiles "
                                  f"({len(self.profiles)})")
        if self.overlap is not None and not (isinstance(self.overlap, int) and 1 <= self.overlap <= self.annotators):
            raise SimulationError(f"--overlap must be an integer from 1 to the number of annotators "
                                  f"({self.annotators}), got {self.overlap!r}")

    def annotator_profile(self, index: int) -> Profile:
        return self.profiles[index - 1] if self.profiles is not None else Profile("honest")

    def profile(self, index: int) -> dict:
        """What AnnotatorProfile.simulation keeps: everything that shaped annotator `index`'s grades."""
        return {"profile": self.annotator_profile(index).spec, "noise": self.noise, "seed": self.seed,
                "random_share": self.random_share, "overlap": self.overlap,
                "panel": self.annotators if self.overlap is not None else None, "index": index}


def simulated_username(collection: Collection, index: int) -> str:
    return f"sim-{collection.slug}-{index}"


def source_rank(source: str) -> tuple[int, str]:
    """Which imported source is the reference when a candidate has several (lowest wins)."""
    for rank, prefix in enumerate(("qrels:", "labels:")):
        if source.startswith(prefix):
            return (rank, source)
    return (2, source)


def reference_grades(collection: Collection) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(candidate pks, reference grades, 64-bit pair keys) of every candidate with a reference grade."""
    best: dict[int, tuple[tuple[int, str], int]] = {}
    # Click labels are weak labels, not a reference: a simulated annotator never grades from them.
    rows = (Judgment.objects.filter(collection=collection, annotator__isnull=True).grades()
            .exclude(source=CLICK_SOURCE)
            .values_list("candidate_id", "source", "grade").iterator(chunk_size=BATCH))
    for candidate_id, source, grade in rows:
        rank = source_rank(source)
        prior = best.get(candidate_id)
        if prior is None or rank < prior[0]:
            best[candidate_id] = (rank, grade)
    pks = np.fromiter(sorted(best), dtype=np.int64, count=len(best))
    grades = np.fromiter((best[pk][1] for pk in pks.tolist()), dtype=np.int64, count=len(best))
    keys = np.zeros(len(pks), dtype=np.uint64)
    position = {pk: i for i, pk in enumerate(pks.tolist())}
    names = (Candidate.objects.filter(collection=collection)
             .values_list("pk", "query__external_id", "document__external_id").iterator(chunk_size=BATCH))
    for pk, query_id, doc_id in names:
        at = position.get(pk)
        if at is not None:
            keys[at] = pair_key(query_id, doc_id)
    return pks, grades, keys


def pair_key(query_id: str, doc_id: str) -> int:
    digest = hashlib.blake2b(f"{query_id}\x1f{doc_id}".encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "little")


def _splitmix(values: np.ndarray) -> np.ndarray:
    """SplitMix64's finaliser, vectorised: a well-mixed 64-bit hash of each value."""
    z = values.copy()
    z ^= z >> np.uint64(30)
    z *= np.uint64(0xBF58476D1CE4E5B9)
    z ^= z >> np.uint64(27)
    z *= np.uint64(0x94D049BB133111EB)
    z ^= z >> np.uint64(31)
    return z


def _uniforms(keys: np.ndarray, seed: int, index: int, stream: int) -> np.ndarray:
    """Uniform [0, 1) draws, one per pair key, for (seed, annotator index, stream)."""
    salt = pair_key(f"{seed}:{index}:{stream}", "sim") & _MASK64
    with np.errstate(over="ignore"):
        mixed = _splitmix(keys ^ np.uint64(salt))
    return (mixed >> np.uint64(11)).astype(np.float64) / float(1 << 53)


def simulated_grades(reference: np.ndarray, keys: np.ndarray, *, noise: float, random_share: float,
                     seed: int, index: int) -> np.ndarray:
    """Annotator `index`'s grades for the pairs with these reference grades and keys."""
    is_error = _uniforms(keys, seed, index, 0) < noise
    is_random = _uniforms(keys, seed, index, 1) < random_share
    pick = _uniforms(keys, seed, index, 2)
    # A neighbour: up or down by one at random; at the ends of the scale the only neighbour.
    step = np.where(pick < 0.5, -1, 1)
    step = np.where(reference == GRADE_MIN, 1, np.where(reference == GRADE_MAX, -1, step))
    neighbour = reference + step
    # Uniform over the other grades (three on 0..3): an offset of 1..others modulo the scale's size.
    others = len(GRADES) - 1
    other = (reference + 1 + np.minimum((pick * others).astype(np.int64), others - 1)) % len(GRADES)
    error_grade = np.where(is_random, other, neighbour)
    return np.where(is_error, error_grade, reference).astype(np.int64)


def profile_grades(profile: Profile, reference: np.ndarray, keys: np.ndarray, *, noise: float,
                   random_share: float, seed: int, index: int) -> np.ndarray:
    """Annotator `index`'s grades under its profile, for the pairs with these reference grades and keys."""
    if profile.kind in ("honest", "newcomer"):
        return simulated_grades(reference, keys, noise=noise, random_share=random_share, seed=seed, index=index)
    if profile.kind == "plus1":
        return np.minimum(reference + 1, GRADE_MAX).astype(np.int64)
    if profile.kind == "minus1":
        return np.maximum(reference - 1, GRADE_MIN).astype(np.int64)
    if profile.kind == "random":
        draw = (_uniforms(keys, seed, index, 2) * len(GRADES)).astype(np.int64)
        return GRADE_MIN + np.minimum(draw, len(GRADES) - 1)
    return np.full(len(reference), profile.grade, dtype=np.int64)


def offered(keys: np.ndarray, *, annotators: int, overlap: int | None, seed: int) -> np.ndarray:
    """(pairs x annotators) booleans: which annotators each pair is offered to (K of them per pair)."""
    if overlap is None or overlap >= annotators:
        return np.ones((len(keys), annotators), dtype=bool)
    # The K lowest of N independent uniform draws are a uniformly random K-subset.
    draws = np.column_stack([_uniforms(keys, seed, index, 3) for index in range(1, annotators + 1)])
    chosen = np.argpartition(draws, overlap - 1, axis=1)[:, :overlap]
    mask = np.zeros((len(keys), annotators), dtype=bool)
    np.put_along_axis(mask, chosen, True, axis=1)
    return mask


def judges(profile: Profile, keys: np.ndarray, offered_to: np.ndarray, *, seed: int, index: int) -> np.ndarray:
    """Which of the pairs offered to annotator `index` it judges (a newcomer only a share of them)."""
    if profile.kind != "newcomer":
        return offered_to
    return offered_to & (_uniforms(keys, seed, index, 4) < profile.share)


@dataclass
class SimulationReport:
    annotators: list[str]
    created_annotators: int
    judgments_added: int
    reference_pairs: int
    profiles: list[str]

    def as_dict(self) -> dict:
        return {"annotators": self.annotators, "profiles": self.profiles, "created_annotators": self.created_annotators,
                "judgments_added": self.judgments_added, "reference_pairs": self.reference_pairs}


@transaction.atomic
def simulate_annotators(*, collection: Collection, params: SimulationParams,
                        progress: Callable[[int], None] | None = None) -> SimulationReport:
    """Create (or reuse) the simulated annotators and add their missing judgments."""
    params.check()
    users, created = _simulated_users(collection, params)
    pks, reference, keys = reference_grades(collection)
    panel = offered(keys, annotators=params.annotators, overlap=params.overlap, seed=params.seed)
    added = 0
    for index, user in enumerate(users, start=1):
        profile = params.annotator_profile(index)
        grades = profile_grades(profile, reference, keys, noise=params.noise, random_share=params.random_share,
                                seed=params.seed, index=index)
        mine = judges(profile, keys, panel[:, index - 1], seed=params.seed, index=index)
        judged = set(Judgment.objects.filter(collection=collection, annotator=user)
                     .values_list("candidate_id", flat=True).iterator(chunk_size=BATCH))
        todo = [(pk, grade) for pk, grade in zip(pks[mine].tolist(), grades[mine].tolist()) if pk not in judged]
        for start in range(0, len(todo), BATCH):
            batch = todo[start:start + BATCH]
            _insert_judgments(collection, user, batch)
            added += len(batch)
            if progress:
                progress(len(batch))
    profiles = [params.annotator_profile(index).spec for index in range(1, params.annotators + 1)]
    return SimulationReport([u.username for u in users], created, added, len(pks), profiles)


def _simulated_users(collection: Collection, params: SimulationParams) -> tuple[list, int]:
    User = get_user_model()
    users, created = [], 0
    for index in range(1, params.annotators + 1):
        username = simulated_username(collection, index)
        user = User.objects.filter(username=username).first()
        wanted = params.profile(index)
        if user is None:
            user = User(username=username)
            user.set_unusable_password()
            user.save()
            AnnotatorProfile.objects.create(user=user, is_simulated=True, simulation=wanted)
            created += 1
        profile = AnnotatorProfile.objects.filter(user=user).first()
        if profile is None or not profile.is_simulated:
            raise SimulationError(f"user '{username}' exists and is not a simulated annotator")
        elif _differs(profile.simulation, wanted):
            raise SimulationError(
                f"simulated annotator '{username}' was made with {_describe(profile.simulation)}; refusing to add "
                f"judgments with {_describe(wanted)} (use the same parameters, or another collection)"
            )
        Membership.objects.get_or_create(collection=collection, user=user)
        users.append(user)
    return users, created


# What shaped a simulated annotator's grades, with the value meant when an older run did not record it.
_SHAPING = {"profile": "honest", "noise": None, "seed": None, "random_share": None, "overlap": None, "panel": None}


def _differs(old: dict, new: dict) -> bool:
    return any(old.get(key, default) != new[key] for key, default in _SHAPING.items())


def _describe(simulation: dict) -> str:
    return ", ".join(f"{key}={simulation.get(key, default)}" for key, default in _SHAPING.items())


def _insert_judgments(collection: Collection, user, batch: list[tuple[int, int]]) -> None:
    if connection.vendor == "postgresql":
        return _copy_judgments(collection, user, batch)
    rows = [(collection.pk, candidate_pk, user.pk, grade, collection.guideline_version) for candidate_pk, grade in batch]
    newest = Judgment.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
    insert_rows(Judgment, ("collection_id", "candidate_id", "annotator_id", "grade", "guideline_version"), rows)
    # SQLite returns no ids: the new rows are this (simulated, so only ours) user's above the old maximum.
    returned = list(Judgment.objects.filter(annotator=user, pk__gt=newest).values_list("pk", "grade"))
    revisions = [(judgment_pk, user.pk, grade, "simulated") for judgment_pk, grade in returned]
    insert_rows(JudgmentRevision, ("judgment_id", "changed_by_id", "new_grade", "reason"), revisions)


def _copy_judgments(collection: Collection, user, batch: list[tuple[int, int]]) -> None:
    """PostgreSQL: COPY, several times faster than multi-row INSERTs at a million judgments."""
    now = timezone.now()
    version = collection.guideline_version
    with connection.cursor() as cursor:
        raw = cursor.cursor
        raw.execute(f"SELECT COALESCE(MAX(id), 0) FROM {Judgment._meta.db_table} WHERE annotator_id = %s", [user.pk])
        newest = raw.fetchone()[0]
        with raw.copy(f"COPY {Judgment._meta.db_table} (collection_id, candidate_id, annotator_id, source, grade, "
                      "skipped, skip_reason, flagged, withdrawn, note, guideline_version, created_at, updated_at) "
                      "FROM STDIN") as copy:
            for candidate_pk, grade in batch:
                copy.write_row((collection.pk, candidate_pk, user.pk, "", grade, False, "", False, False, "", version,
                                now, now))
        # Only this process writes this simulated user's judgments: the new rows are those above `newest`.
        raw.execute(f"SELECT id, grade FROM {Judgment._meta.db_table} WHERE annotator_id = %s AND id > %s",
                    [user.pk, newest])
        returned = raw.fetchall()
        with raw.copy(f"COPY {JudgmentRevision._meta.db_table} (judgment_id, changed_by_id, changed_by_source, "
                      "changed_at, new_grade, old_skipped, new_skipped, reason, idempotency_key) FROM STDIN") as copy:
            for judgment_pk, grade in returned:
                copy.write_row((judgment_pk, user.pk, "", now, grade, False, False, "simulated", ""))
