"""Cold start: the first batch, before any model exists, and a check that the seed can support one.

Three ways to seed:

- :func:`stratified_seed`: given gold or weak labels, a random sample per class (proportional, with a minimum).
- :func:`rule_seed`: given a rules file (JSON or TOML) of keywords and regular expressions per class, records that
  match a class's rules are its candidates; a balanced random sample is drawn from them.
- :func:`centroid_seed`: given embeddings, k-means into ``k`` clusters and the record nearest each centroid.

Then :func:`check_seed_model` cross-validates a logistic regression on the labelled seed and warns when its
uncertainty rankings would be noise (too weak, or overfit).

Rules file format (TOML shown; JSON is the same structure)::

    [refund]
    keywords = ["refund", "money back"]        # case-insensitive, whole words
    patterns = ['charge\\s*back', '^return']    # Python regexes, case-insensitive, re.search
"""

from __future__ import annotations

import dataclasses
import json
import re
import tomllib
from collections.abc import Hashable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from curate.errors import InputError, SourceNotFoundError
from curate.selectors._geometry import unit_rows
from curate.selectors.allocation import proportional_targets
from curate.selectors.arrays import as_embeddings, check_metric, check_rng
from curate.selectors.base import FloatArray, Indices
from curate.selectors.cluster import kmeans_labels


def _missing(value: object) -> bool:
    return value is None or (isinstance(value, float) and np.isnan(value))


def stratified_seed(labels: Sequence[Hashable] | npt.ArrayLike, k: int, *, rng: np.random.Generator,
                    minimum: int = 1) -> Indices:
    """A random seed of ``k`` records, stratified by class.

    Each class gets its share of ``k`` in proportion to its size (largest-remainder rounding), but at least
    ``min(minimum, class size)`` (if ``k`` allows: one per class per pass, rarest first; the other classes' shares
    shrink to make room); records are drawn uniformly within each class. ``None`` or NaN labels mean
    "unlabelled" and are never drawn.

    Args:
        labels: Shape ``(n,)``, a gold or weak class per record.
        k: Seed size; more than the labelled records returns all of them.
        rng: Random generator for the draws.
        minimum: Records guaranteed per class.

    Returns:
        Shape ``(min(k, labelled),)`` ``intp`` indices, class by class in label order, random within a class.
    """
    check_rng(rng, "stratified_seed")
    if not isinstance(k, int | np.integer) or k < 0 or not isinstance(minimum, int) or minimum < 0:
        raise InputError(f"stratified_seed: k and minimum must be non-negative integers; got k={k!r}, "
                         f"minimum={minimum!r}")
    raw = np.asarray(labels, dtype=object).reshape(-1)
    known = np.flatnonzero([not _missing(v) for v in raw])
    if k == 0 or known.size == 0:
        return np.empty(0, dtype=np.intp)
    names, gid = np.unique(np.asarray([str(v) for v in raw[known]]), return_inverse=True)
    sizes = np.bincount(gid, minlength=names.size).astype(np.int64)
    budget = min(int(k), known.size)
    alloc = proportional_targets(sizes, budget, minimum)
    parts = [rng.choice(known[gid == g], size=int(alloc[g]), replace=False) for g in range(names.size)]
    return np.concatenate(parts).astype(np.intp)


@dataclasses.dataclass(frozen=True)
class ClassRules:
    """Compiled rules of one class: keywords (whole words) and regular expressions, both case-insensitive."""

    label: str
    keywords: tuple[str, ...]
    patterns: tuple[re.Pattern[str], ...]

    def matches(self, text: str) -> bool:
        """Whether ``text`` matches any keyword or pattern of this class."""
        return any(p.search(text) for p in self.patterns)


def _compile_class(path: Path, label: str, spec: object) -> ClassRules:
    if not isinstance(spec, Mapping):
        raise InputError(f"{path}: class {label!r} must be a table with 'keywords' and/or 'patterns' lists; "
                         f"got {type(spec).__name__}")
    unknown = set(spec) - {"keywords", "patterns"}
    if unknown:
        raise InputError(f"{path}: class {label!r} has unknown key(s) {sorted(unknown)}; "
                         "allowed are 'keywords' and 'patterns'")
    compiled: list[re.Pattern[str]] = []
    keywords: list[str] = []
    for field in ("keywords", "patterns"):
        items = spec.get(field, [])
        if not isinstance(items, list):
            raise InputError(f"{path}: class {label!r}: {field!r} must be a list of strings; got {items!r}")
        for rule in items:
            if not isinstance(rule, str) or not rule.strip():
                raise InputError(f"{path}: class {label!r}: bad {field[:-1]} {rule!r}; expected a non-empty string")
            source = rf"(?<!\w){re.escape(rule.strip())}(?!\w)" if field == "keywords" else rule
            try:
                compiled.append(re.compile(source, re.IGNORECASE))
            except re.error as exc:
                raise InputError(f"{path}: class {label!r}: bad pattern {rule!r}: {exc}. "
                                 "Fix the regular expression (TOML literal strings '...' need no escaping).") from None
            if field == "keywords":
                keywords.append(rule.strip())
    if not compiled:
        raise InputError(f"{path}: class {label!r} has no rules; give at least one keyword or pattern")
    return ClassRules(label, tuple(keywords), tuple(compiled))


def load_rules(path: str | Path) -> dict[str, ClassRules]:
    """Read and compile a rules file (``.json`` or ``.toml``; format in the module docstring).

    Raises:
        SourceNotFoundError: The file does not exist.
        InputError: The file does not parse (the message names the file and line), or a class or rule is
            malformed (named with the file, class and rule).
    """
    p = Path(path)
    if not p.is_file():
        raise SourceNotFoundError(f"rules file {p} does not exist; pass the path of a .json or .toml rules file")
    text = p.read_text(encoding="utf-8")
    data: Any
    if p.suffix.lower() == ".toml":
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise InputError(f"{p}: not valid TOML: {exc}") from None
    elif p.suffix.lower() == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InputError(f"{p}: not valid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}") from None
    else:
        raise InputError(f"{p}: rules files must end in .json or .toml; got {p.suffix or 'no suffix'!r}")
    if not isinstance(data, Mapping) or not data:
        raise InputError(f"{p}: expected a table of classes, each with 'keywords' and/or 'patterns'; "
                         f"got {type(data).__name__ if data else 'nothing'}")
    return {str(label): _compile_class(p, str(label), spec) for label, spec in data.items()}


def match_rules(texts: Sequence[str], rules: Mapping[str, ClassRules]) -> dict[str, Indices]:
    """For each class, the indices of ``texts`` (length ``n``) that match its rules, ascending."""
    out: dict[str, Indices] = {}
    for label, rule in rules.items():
        out[label] = np.asarray([i for i, t in enumerate(texts) if rule.matches(str(t))], dtype=np.intp)
    return out


@dataclasses.dataclass(frozen=True)
class RuleSeed:
    """A rule-based seed.

    Attributes:
        indices: Shape ``(m,)`` ``intp`` record indices.
        labels: Shape ``(m,)`` strings: the class whose rules put each record in the seed (a weak label).
        candidates: Per class, how many records matched its rules.
    """

    indices: Indices
    labels: npt.NDArray[np.str_]
    candidates: dict[str, int]


def rule_seed(texts: Sequence[str], rules: Mapping[str, ClassRules] | str | Path, k: int, *,
              rng: np.random.Generator) -> RuleSeed:
    """Up to ``k`` records, balanced across classes, drawn from each class's rule matches.

    Each class gets ``k // classes`` (the first ``k % classes`` classes in label order one more), drawn uniformly
    from its candidates; records matching exactly one class are preferred over ambiguous ones (which match
    several), and no record is drawn twice. Budget a class cannot use (too few matches) goes unused: the seed is
    smaller rather than unbalanced.

    Args:
        texts: The record texts, length ``n``.
        rules: Compiled rules (:func:`load_rules`) or the path of a rules file.
        k: Seed size.
        rng: Random generator for the draws.
    """
    check_rng(rng, "rule_seed")
    compiled = load_rules(rules) if isinstance(rules, str | Path) else dict(rules)
    matches = match_rules(texts, compiled)
    hits = np.zeros(len(texts), dtype=np.int64)
    for idx in matches.values():
        hits[idx] += 1
    labels = sorted(matches)
    share = [k // len(labels) + (1 if i < k % len(labels) else 0) for i in range(len(labels))] if labels else []
    used = np.zeros(len(texts), dtype=bool)
    picked: list[Indices] = []
    tags: list[str] = []
    for label, want in zip(labels, share, strict=True):
        cand = matches[label][~used[matches[label]]]
        clear, ambiguous = cand[hits[cand] == 1], cand[hits[cand] > 1]
        take = rng.permutation(clear)[:want]
        take = np.concatenate([take, rng.permutation(ambiguous)[: want - take.size]]).astype(np.intp)
        used[take] = True
        picked.append(take)
        tags.extend([label] * take.size)
    indices = np.concatenate(picked).astype(np.intp) if picked else np.empty(0, dtype=np.intp)
    return RuleSeed(indices, np.asarray(tags, dtype=np.str_), {lab: int(matches[lab].size) for lab in labels})


def centroid_seed(embeddings: FloatArray, k: int, *, rng: np.random.Generator, metric: str = "euclidean") -> Indices:
    """The record nearest each of ``k`` k-means centroids (representative, spread-out seed).

    Each centroid is represented by the member of its cluster nearest to it, so the picks are distinct; clusters
    left empty by k-means are skipped and the batch is topped up with the records farthest from their centroid
    among the remaining ones (outliers the clustering represents worst).

    Args:
        embeddings: Shape ``(n, d)``; ``metric="cosine"`` clusters the unit-normalised rows.
        k: Seed size; ``k >= n`` returns every row.
        rng: Seeds k-means.
        metric: ``"euclidean"`` or ``"cosine"``.

    Returns:
        Shape ``(min(k, n),)`` ``intp`` indices, in cluster order.
    """
    check_rng(rng, "centroid_seed")
    check_metric(metric, "centroid_seed")
    x = as_embeddings(embeddings, "centroid_seed")
    n = len(x)
    if not isinstance(k, int | np.integer) or k < 0:
        raise InputError(f"centroid_seed: k must be a non-negative integer; got {k!r}")
    if k == 0 or n == 0:
        return np.empty(0, dtype=np.intp)
    if k >= n:
        return np.arange(n, dtype=np.intp)
    if metric == "cosine":
        x = unit_rows(x)
    labels, centroids = kmeans_labels(x, int(k), rng=rng)
    dist = np.empty(n, dtype=np.float64)
    for start in range(0, n, 16_384):
        block = x[start:start + 16_384]
        diff = block - centroids[labels[start:start + 16_384]]
        dist[start:start + 16_384] = np.einsum("ij,ij->i", diff, diff)
    order = np.lexsort((dist, labels))  # by cluster, nearest first
    _, first = np.unique(labels[order], return_index=True)
    picks = order[first]
    if picks.size < k:
        rest = np.setdiff1d(np.arange(n), picks)
        rest = rest[np.argsort(-dist[rest], kind="stable")][: k - picks.size]
        picks = np.concatenate([picks, rest])
    return picks.astype(np.intp)


WEAK_MARGIN = 0.10
MAX_GAP = 0.20


@dataclasses.dataclass(frozen=True)
class SeedModelReport:
    """Cross-validated quality of a logistic regression trained on the seed.

    Attributes:
        n_samples: Labelled seed records.
        n_classes: Distinct classes in the seed.
        cv_folds: Stratified folds actually used (``min(cv, smallest class size)``).
        cv_accuracy_mean: Mean held-out accuracy over the folds.
        cv_accuracy_std: Standard deviation of the held-out accuracy over the folds.
        train_accuracy_mean: Mean accuracy on the training part of each fold.
        gap: ``train_accuracy_mean - cv_accuracy_mean`` (the train-vs-cv gap).
        chance_accuracy: Accuracy of always predicting the most frequent class.
        weak_margin: Threshold: warn "too weak" if ``cv_accuracy_mean < chance_accuracy + weak_margin``.
        max_gap: Threshold: warn "overfit" if ``gap > max_gap``.
        warnings: Human-readable warnings; empty when the seed model looks usable.
    """

    n_samples: int
    n_classes: int
    cv_folds: int
    cv_accuracy_mean: float
    cv_accuracy_std: float
    train_accuracy_mean: float
    gap: float
    chance_accuracy: float
    weak_margin: float
    max_gap: float
    warnings: tuple[str, ...]

    @property
    def ok(self) -> bool:
        """True when there is no warning: the model's uncertainty rankings are worth using."""
        return not self.warnings

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict (for ``--json`` output and the audit log)."""
        out = dataclasses.asdict(self)
        out["warnings"] = list(self.warnings)
        out["ok"] = self.ok
        return out


def check_seed_model(x: FloatArray, y: Sequence[Hashable] | npt.ArrayLike, *, rng: np.random.Generator,
                     cv: int = 5, weak_margin: float = WEAK_MARGIN, max_gap: float = MAX_GAP,
                     c: float = 1.0) -> SeedModelReport:
    """Cross-validate a logistic regression on the seed; warn if its uncertainty would mean nothing.

    The model is ``StandardScaler`` + ``LogisticRegression(C=c)``; folds are stratified and shuffled with a seed
    drawn from ``rng``. Two warnings, with thresholds stored in the report:

    - too weak: ``cv_accuracy_mean < chance_accuracy + weak_margin`` (default 0.10 above always guessing the
      majority class), i.e. near chance: its "uncertain" records are random ones;
    - overfit: ``train_accuracy_mean - cv_accuracy_mean > max_gap`` (default 0.20): it memorises the seed, and its
      confidence on unseen records is not calibrated.

    Args:
        x: Features of the seed records, shape ``(n, d)`` (e.g. sentence embeddings).
        y: Their labels, shape ``(n,)``.
        rng: Random generator for the fold split.
        cv: Number of folds wanted (at least 2); lowered to the size of the smallest class.
        weak_margin: See above.
        max_gap: See above.
        c: Inverse regularisation strength of the logistic regression.

    Raises:
        InputError: Shapes do not match, fewer than two classes, or a class with a single example.
    """
    import warnings

    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_validate
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    who = "check_seed_model"
    check_rng(rng, who)
    features = as_embeddings(x, who)
    labels = np.asarray([str(v) for v in np.asarray(y, dtype=object).reshape(-1)])
    if labels.shape != (len(features),):
        raise InputError(f"{who}: y must have one label per row of x, shape ({len(features)},); got {labels.shape}")
    if not isinstance(cv, int) or cv < 2:
        raise InputError(f"{who}: cv must be an integer >= 2; got {cv!r}")
    names, counts = np.unique(labels, return_counts=True)
    if names.size < 2:
        raise InputError(f"{who}: the seed has {names.size} class(es); a classifier needs at least 2. "
                         "Label seed records of at least two classes.")
    if counts.min() < 2:
        rare = [str(n) for n, c_ in zip(names, counts, strict=True) if c_ < 2]
        raise InputError(f"{who}: class(es) {rare} have a single labelled example; cross-validation needs at "
                         "least 2 per class. Label more seed records of those classes.")
    folds = int(min(cv, counts.min()))
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=int(rng.integers(0, 2**31 - 1)))
    model = make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=2000))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        result = cross_validate(model, features, labels, cv=splitter, scoring="accuracy", return_train_score=True)
    test, train = np.asarray(result["test_score"]), np.asarray(result["train_score"])
    mean, std, train_mean = float(test.mean()), float(test.std()), float(train.mean())
    chance = float(counts.max() / counts.sum())
    found: list[str] = []
    if mean < chance + weak_margin:
        found.append(f"too weak: cross-validated accuracy {mean:.3f} is within {weak_margin:.2f} of chance "
                     f"({chance:.3f}, always the majority class); its uncertainty rankings are close to random. "
                     "Label a larger or cleaner seed, or use better features, before uncertainty sampling.")
    if train_mean - mean > max_gap:
        found.append(f"overfit: training accuracy {train_mean:.3f} exceeds cross-validated accuracy {mean:.3f} by "
                     f"{train_mean - mean:.3f} (> {max_gap:.2f}); its confidence on unseen records is unreliable. "
                     "Label more seed records or regularise more (smaller c).")
    return SeedModelReport(len(features), int(names.size), folds, mean, std, train_mean, train_mean - mean, chance,
                           float(weak_margin), float(max_gap), tuple(found))
