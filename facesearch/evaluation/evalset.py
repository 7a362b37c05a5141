"""Labelled photo sets for evaluation: a folder per person, and verification pair lists.

Pairs come from an LFW-format ``pairs.txt`` (``name i j`` same person, ``name1 i name2 j``
different people, ``name_NNNN.jpg`` files) or are sampled from the folder with a fixed seed.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import InputError
from ..images import iter_files


@dataclass(frozen=True)
class EvalSet:
    """Photos of a folder-per-person set: ``paths[i]`` shows person ``people[person_of[i]]``."""

    root: Path
    people: tuple[str, ...]
    paths: tuple[Path, ...]
    person_of: np.ndarray

    def __len__(self) -> int:
        return len(self.paths)

    def photos_of(self, person: int) -> np.ndarray:
        return np.flatnonzero(self.person_of == person)


def load_eval_set(folder: str | os.PathLike[str]) -> EvalSet:
    """Every file below ``folder/<person>/`` (a person's photos sorted by path)."""
    root = Path(folder)
    if not root.is_dir():
        raise InputError(f"{root}: no such folder")
    # LFW keeps its person folders under images/; accept the set's root as well.
    if (
        not any(p.is_dir() for p in root.iterdir() if p.name != "images")
        and (root / "images").is_dir()
    ):
        root = root / "images"
    people: list[str] = []
    paths: list[Path] = []
    owner: list[int] = []
    for d in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        files = list(iter_files(d))
        if not files:
            continue
        owner.extend([len(people)] * len(files))
        people.append(d.name)
        paths.extend(files)
    if not people:
        raise InputError(
            f"{root}: no person sub-folders with photos (expected {root}/<name>/*.jpg)"
        )
    return EvalSet(root, tuple(people), tuple(paths), np.array(owner, np.int64))


@dataclass(frozen=True)
class Pairs:
    """Verification pairs as photo indices into an ``EvalSet``, in file (or sampled) order."""

    a: np.ndarray
    b: np.ndarray
    same: np.ndarray
    source: str

    def __len__(self) -> int:
        return len(self.same)


def read_lfw_pairs(path: str | os.PathLike[str], evalset: EvalSet) -> Pairs:
    """An LFW View-2 ``pairs.txt``: header ``folds n`` (or ``n``), then folds of n same + n different."""
    path = Path(path)
    try:
        lines = path.read_text().splitlines()
    except OSError as err:
        raise InputError(f"{path}: cannot read pairs file ({err.strerror})") from err
    except UnicodeDecodeError as err:
        raise InputError(f"{path}: not a text pairs file") from err
    if not lines:
        raise InputError(f"{path}: empty pairs file")
    header = lines[0].split()
    if not 1 <= len(header) <= 2 or not all(x.isdigit() for x in header):
        raise InputError(
            f"{path}:1: expected a header 'FOLDS N' (LFW pairs format), got {lines[0]!r}"
        )
    index = {}
    for i, p in enumerate(evalset.paths):
        stem = p.stem
        person, _, number = stem.rpartition("_")
        if number.isdigit():
            index[(person, int(number))] = i
    a, b, same = [], [], []
    for lineno, line in enumerate(lines[1:], start=2):
        parts = line.split()
        if not parts:
            continue
        try:
            if len(parts) == 3:
                key_a, key_b, s = (parts[0], int(parts[1])), (parts[0], int(parts[2])), True
            elif len(parts) == 4:
                key_a, key_b, s = (parts[0], int(parts[1])), (parts[2], int(parts[3])), False
            else:
                raise ValueError
        except ValueError:
            raise InputError(
                f"{path}:{lineno}: expected 'name i j' or 'name1 i name2 j', got {line!r}"
            ) from None
        for key in (key_a, key_b):
            if key not in index:
                raise InputError(
                    f"{path}:{lineno}: no photo {key[0]}_{key[1]:04d} under {evalset.root}"
                )
        a.append(index[key_a])
        b.append(index[key_b])
        same.append(s)
    if not same:
        raise InputError(f"{path}: no pairs")
    return Pairs(np.array(a), np.array(b), np.array(same), str(path))


def sample_pairs(evalset: EvalSet, n: int = 3000, seed: int = 0) -> Pairs:
    """Up to ``n`` same-person pairs (spread over people) and as many different-person pairs."""
    rng = np.random.default_rng(seed)
    groups = [evalset.photos_of(k) for k in range(len(evalset.people))]
    multi = [g for g in groups if len(g) >= 2]
    if not multi or len(groups) < 2:
        raise InputError(
            f"{evalset.root}: verification needs at least one person with 2 photos and 2 people"
        )
    total = sum(len(g) * (len(g) - 1) // 2 for g in multi)
    if total <= n // 2:
        same_pairs = {(int(i), int(j)) for g in multi for k, i in enumerate(g) for j in g[k + 1 :]}
    else:
        same_pairs = set()
        # round-robin over people so that one person with 100 photos does not dominate
        while len(same_pairs) < n // 2:
            for g in rng.permutation(len(multi)):
                i, j = sorted(rng.choice(multi[g], 2, replace=False))
                same_pairs.add((int(i), int(j)))
                if len(same_pairs) >= n // 2:
                    break
    sizes = np.array([len(g) for g in groups])
    total_diff = (sizes.sum() ** 2 - (sizes**2).sum()) // 2
    owner = evalset.person_of
    diff_pairs: set[tuple[int, int]] = set()
    while len(diff_pairs) < min(len(same_pairs), total_diff):
        i, j = rng.integers(0, len(evalset), 2)
        if owner[i] != owner[j]:
            diff_pairs.add((int(min(i, j)), int(max(i, j))))
    pairs = sorted(same_pairs) + sorted(diff_pairs)
    same = np.array([True] * len(same_pairs) + [False] * len(diff_pairs))
    order = rng.permutation(len(pairs))  # interleave, so contiguous folds mix both kinds
    arr = np.array(pairs)[order]
    return Pairs(arr[:, 0], arr[:, 1], same[order], f"sampled (seed {seed})")
