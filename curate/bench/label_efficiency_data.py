"""Data for the label-efficiency benchmark: labelled files in, a frozen pool / test / calibration split out.

Any source :func:`curate.ingest.readers.read_rows` reads (CSV, TSV, JSONL, JSON, Parquet, ``.gz``) works, with columns
renamed by ``--map target=source`` as in ``curate ingest``. Rows become records through
:func:`curate.ingest.formats.row_to_record`, so HH-RLHF transcripts are split into prompt + responses and pairs whose
implicit prompt differs between chosen and rejected are dropped (and counted) like any unreadable row.

* ``classify`` needs ``text`` and ``label``; ``preference`` needs ``chosen`` and ``rejected`` (``prompt`` is
  optional: without it the shared prefix of the two is the prompt).
* The test set is frozen: a separate file, or a seeded split (by prompt for preferences, so no prompt is on
  both sides). Pool records that copy a test record (same record id) are removed from the pool.
* The calibration slice is drawn at random from the pool and removed from it (never labelled by a strategy).
* The simulated oracle answers with the gold label, except for an exact fraction of flipped answers.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from curate.errors import InputError, RecordError
from curate.ingest.formats import header_hint, row_to_record
from curate.ingest.mapping import check_columns
from curate.ingest.raw_rows import RawRow, places
from curate.ingest.readers import read_rows
from curate.ingest.records import as_text

IntArray = npt.NDArray[np.intp]
TASKS = ("classify", "preference")
REQUIRED = {"classify": ("text", "label"), "preference": ("chosen", "rejected")}
MAX_SKIPPED_SHOWN = 20


@dataclass
class LabelledSet:
    """Rows of one file as parallel lists (one entry per kept row).

    Attributes:
        ids: record ids (content hashes), one per row.
        texts: ``classify``: the text; ``preference``: the prompt as plain text ("" when there is none).
        labels: ``classify``: the gold class name; ``preference``: unused (empty).
        chosen / rejected: ``preference``: the two responses as plain text; ``classify``: empty.
        skipped: ``(line, reason, element)`` of rows that could not be used (the first few kept for the report;
            ``element``: the row's position in a JSON array, else None).
        n_skipped: how many rows were skipped in all.
        n_duplicates: rows dropped because an earlier row had the same record id.
        skip_reasons: every skipped row's reason with its count.
    """

    source: str
    ids: list[str] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)
    labels: list[str] = field(default_factory=list)
    chosen: list[str] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)
    skipped: list[tuple[int, str, int | None]] = field(default_factory=list)
    n_skipped: int = 0
    n_duplicates: int = 0
    skip_reasons: dict[str, int] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.ids)

    def take(self, indices: npt.ArrayLike) -> LabelledSet:
        """A new set with the rows at ``indices`` (shape ``(m,)``), in that order."""
        idx = [int(i) for i in np.asarray(indices, dtype=np.intp)]

        def pick(xs: list[str]) -> list[str]:
            return [xs[i] for i in idx] if xs else []

        return LabelledSet(self.source, pick(self.ids), pick(self.texts), pick(self.labels), pick(self.chosen),
                           pick(self.rejected))

    def summary(self) -> dict[str, Any]:
        """Counts and the first skipped rows, for the JSON report."""
        return {"source": self.source, "rows": len(self), "skipped": self.n_skipped,
                "duplicates_dropped": self.n_duplicates, "skip_reasons": dict(self.skip_reasons),
                "skipped_examples": [{"line": line, "reason": reason, **({"element": element} if element else {})}
                                     for line, reason, element in self.skipped]}


def _missing_column_error(path: Path, task: str, target: str, row: Mapping[str, Any]) -> InputError:
    names = sorted(map(str, row))
    columns = ", ".join(names) or "(none)"
    return InputError(f"{path}: the {task} benchmark needs a column {target!r}, which is not in the file "
                      f"(columns: {columns}). Name the column that holds it with --map {target}=COLUMN"
                      f"{header_hint(names)}.")


def _check_columns(path: Path, task: str, row: Mapping[str, Any], mapping: Mapping[str, str]) -> None:
    """Raise a clear error when a required column that no ``--map`` names is absent from the first row (the ``--map``
    sources are checked by ingest's :func:`curate.ingest.mapping.check_columns`). A preference pair comes from
    ``chosen``/``rejected`` or from ``--map responses=A,B --map preferred=WINNER``."""
    if task == "preference" and "responses" in mapping:
        if "preferred" not in mapping:
            raise InputError(f"{path}: --map responses={mapping['responses']} needs --map preferred=COLUMN (the "
                             "column that says which response won: a/b, 0/1 or a column name) to make preference "
                             "pairs; without it the responses are candidates to rank, not pairs")
        return
    for target in REQUIRED[task]:
        if target not in mapping and target not in row:
            raise _missing_column_error(path, task, target, row)


def load_labelled(path: Path, task: str, *, mapping: Mapping[str, str] | None = None,
                  columns: Sequence[str] | None = None, encoding: str = "utf-8") -> LabelledSet:
    """Read ``path`` for ``task`` (``"classify"`` or ``"preference"``) with the column ``mapping``; ``columns``
    names the columns of a CSV/TSV file without a header line; ``encoding`` is that of a text file.

    Rows that cannot become a record (empty text, no label, a preference pair whose prompts differ, broken JSON)
    are skipped and counted with their line numbers; a row repeating an earlier record id is dropped.

    Raises:
        InputError: unknown task, missing file, a required column absent, or no usable row at all.
    """
    if task not in TASKS:
        raise InputError(f"--task must be one of {', '.join(TASKS)}; got {task!r}.")
    mapping = dict(mapping or {})
    out = LabelledSet(str(path))
    seen: set[str] = set()
    checked = False
    for raw in check_columns(read_rows(path, columns=columns, encoding=encoding), mapping, str(path)):
        if raw.error is not None or not isinstance(raw.data, Mapping):
            reason = raw.error or f"expected a row with named fields; got {type(raw.data).__name__}"
            _skip(out, raw, reason)
            continue
        if not checked:
            _check_columns(path, task, raw.data, mapping)
            checked = True
        try:
            rec = row_to_record(raw.data, kind="text" if task == "classify" else "preference", mapping=mapping,
                                source=str(path), line=raw.line)
            if task == "classify" and rec.label is None:
                raise RecordError("field 'label' is empty; every row needs its gold class")
        except RecordError as exc:
            _skip(out, raw, str(exc))
            continue
        if rec.id in seen:
            out.n_duplicates += 1
            continue
        seen.add(rec.id)
        out.ids.append(rec.id)
        if task == "classify":
            out.texts.append(as_text(rec.fields["text"]))
            out.labels.append(str(rec.label))
        else:
            out.texts.append(as_text(rec.fields.get("prompt")))
            out.chosen.append(as_text(rec.fields["chosen"]))
            out.rejected.append(as_text(rec.fields["rejected"]))
    if not out.ids:
        first = out.skipped[0][1] if out.skipped else ""
        about_columns = "field" in first or "shape" in first or not first  # else the reason says what to do
        raise InputError(f"{path}: no usable {task} row ({out.n_skipped} skipped"
                         + (f"; first: {places([(out.skipped[0][0], out.skipped[0][2])])}: {first}"
                            if out.skipped else "") + ")."
                         + (f" The {task} benchmark needs columns {' and '.join(REQUIRED[task])} (use --map)."
                            if about_columns else ""))
    return out


def _skip(out: LabelledSet, raw: RawRow, reason: str) -> None:
    out.n_skipped += 1
    out.skip_reasons[reason] = out.skip_reasons.get(reason, 0) + 1
    if len(out.skipped) < MAX_SKIPPED_SHOWN:
        out.skipped.append((raw.line, reason, raw.element))


# --------------------------------------------------------------------------------------------- splits


@dataclass
class Split:
    """A frozen split: ``pool`` (selectable), ``test`` (evaluation) and ``calibration`` (ECE) label sets."""

    pool: LabelledSet
    test: LabelledSet
    calibration: LabelledSet
    removed_overlap: int = 0

    def summary(self) -> dict[str, int]:
        """Sizes, for the JSON report."""
        return {"pool": len(self.pool), "test": len(self.test), "calibration": len(self.calibration),
                "pool_rows_removed_as_copies_of_test": self.removed_overlap}


def resolve_size(size: float | None, n: int, default: float) -> int:
    """A size given as a fraction (``< 1``) or a count (``>= 1``) of ``n`` items; ``None`` means ``default``.

    >>> resolve_size(None, 1000, 0.2), resolve_size(0.1, 1000, 0.2), resolve_size(50, 1000, 0.2)
    (200, 100, 50)
    """
    value = default if size is None else size
    if value < 0:
        raise InputError(f"a split size must be >= 0 (a fraction < 1 or a count); got {value!r}.")
    return min(n, int(round(value * n)) if value < 1 else int(value))


def _groups(data: LabelledSet, task: str) -> list[IntArray]:
    """Row groups that must stay on one side of a split: one per prompt (preference) or per row (classify)."""
    if task == "classify":
        return [np.array([i], dtype=np.intp) for i in range(len(data))]
    by_prompt: dict[str, list[int]] = {}
    for i, prompt in enumerate(data.texts):
        by_prompt.setdefault(prompt.strip(), []).append(i)
    return [np.array(v, dtype=np.intp) for v in by_prompt.values()]


def take_groups(groups: list[IntArray], n_items: int, *, rng: np.random.Generator) -> tuple[IntArray, IntArray]:
    """Shuffle ``groups`` and take whole groups until at least ``n_items`` rows: ``(taken, rest)`` row indices."""
    taken: list[IntArray] = []
    rest: list[IntArray] = []
    count = 0
    for g in rng.permutation(len(groups)):
        if count < n_items:
            taken.append(groups[g])
            count += len(groups[g])
        else:
            rest.append(groups[g])
    return _cat(taken), _cat(rest)


def _cat(parts: list[IntArray]) -> IntArray:
    return np.sort(np.concatenate(parts)).astype(np.intp) if parts else np.zeros(0, dtype=np.intp)


def make_split(data: LabelledSet, task: str, *, test: LabelledSet | None = None, test_size: float | None = None,
               calibration_size: float | None = None, seed: int = 0) -> Split:
    """Hold out a frozen test set and a random calibration slice; the rest is the pool.

    Args:
        data: the labelled rows (the pool file).
        task: ``"classify"`` or ``"preference"`` (preference splits keep each prompt on one side).
        test: a separate test file's rows; else ``test_size`` of ``data`` is held out (default 20% for
            classify; for preference 500 pairs, or a quarter of a file under 2,000 pairs).
        test_size: fraction (< 1) or count of rows for the held-out test set.
        calibration_size: fraction of the test set's size (< 1) or a count; default 10% of the test size.
        seed: the split's seed (fixed across the benchmark's seeds, so the test set never moves).

    Raises:
        InputError: the pool would be empty.
    """
    rng = np.random.default_rng(seed)
    groups = _groups(data, task)
    removed = 0
    if test is None:
        default = 0.2 if task == "classify" else (500 if len(data) >= 2000 else 0.25)
        n_test = resolve_size(test_size, len(data), default)
        test_idx, pool_idx = take_groups(groups, n_test, rng=rng)
        test = data.take(test_idx)
    else:
        blocked = set(test.ids)
        if task == "preference":
            blocked_prompts = {p.strip() for p in test.texts}
            keep = [i for i in range(len(data)) if data.ids[i] not in blocked
                    and data.texts[i].strip() not in blocked_prompts]
        else:
            keep = [i for i in range(len(data)) if data.ids[i] not in blocked]
        removed = len(data) - len(keep)
        pool_idx = np.array(keep, dtype=np.intp)
    pool = data.take(pool_idx)
    frac_or_count = 0.1 if calibration_size is None else calibration_size
    n_cal = resolve_size(frac_or_count, len(test), 0.1) if frac_or_count < 1 else int(frac_or_count)
    n_cal = min(n_cal, max(len(pool) - 1, 0))
    cal_idx, rest_idx = take_groups(_groups(pool, task), n_cal, rng=rng)
    calibration, pool = pool.take(cal_idx), pool.take(rest_idx)
    if len(pool) == 0:
        raise InputError(f"{data.source}: nothing is left for the pool after holding out {len(test)} test and "
                         f"{len(calibration)} calibration rows. Lower --test-size / --calibration-size.")
    return Split(pool=pool, test=test, calibration=calibration, removed_overlap=removed)


# --------------------------------------------------------------------------------------------- oracle


def flip_mask(n: int, noise: float, *, rng: np.random.Generator) -> npt.NDArray[np.bool_]:
    """``(n,)`` bool: exactly ``round(noise * n)`` items chosen at random are answered wrongly.

    >>> int(flip_mask(200, 0.1, rng=np.random.default_rng(0)).sum())
    20
    """
    if not 0.0 <= noise <= 1.0 or math.isnan(noise):
        raise InputError(f"--oracle-noise must be a fraction in [0, 1]; got {noise!r}.")
    mask = np.zeros(n, dtype=bool)
    mask[rng.choice(n, size=int(round(noise * n)), replace=False)] = True
    return mask


def noisy_class_answers(gold: IntArray, n_classes: int, noise: float, *, rng: np.random.Generator) -> IntArray:
    """The simulated annotators' class codes ``(n,)``: gold, with ``round(noise * n)`` moved to another class.

    A flipped answer is drawn uniformly from the ``n_classes - 1`` classes other than the gold one.
    """
    gold = np.asarray(gold, dtype=np.intp)
    flips = flip_mask(len(gold), noise, rng=rng)
    answers = gold.copy()
    if n_classes > 1 and flips.any():
        shift = rng.integers(1, n_classes, size=int(flips.sum()))
        answers[flips] = (gold[flips] + shift) % n_classes
    return answers


def noisy_preference_answers(n: int, noise: float, *, rng: np.random.Generator) -> npt.NDArray[np.bool_]:
    """``(n,)`` bool: True where the simulated annotator prefers ``rejected`` (chosen/rejected swapped)."""
    return flip_mask(n, noise, rng=rng)


def budget_steps(start: int, batch: int, budget: int) -> list[int]:
    """``start, start + batch, ...`` below ``budget``, then ``budget`` itself.

    >>> budget_steps(154, 100, 500)
    [154, 254, 354, 454, 500]
    """
    if start >= budget:
        raise InputError(f"the seed set already has {start} labels, which is not below --budget {budget}; "
                         "raise --budget or lower --start-per-class.")
    return [*range(start, budget, batch), budget]


def budget_for_pool(budget: int, n_pool: int, *, asked: bool) -> tuple[int, list[str]]:
    """The last label budget to run and warnings about it for a pool of ``n_pool`` records.

    At the whole pool every strategy holds the same labels, so curves meet and no ratio above 1 can show there: a
    default budget (``asked`` False) that would label the whole pool becomes half the pool; an asked one is kept,
    with a warning; a last budget over half the pool is kept with a warning (the curves converge as the pool runs
    out, so ratios shrink towards 1).

    >>> budget_for_pool(1500, 466, asked=False)[0]
    233
    """
    half = max(1, n_pool // 2)
    if budget >= n_pool and not asked:
        return half, [f"the default budget ({budget:,} labels) would label the whole pool ({n_pool:,} records), where "
                      f"every strategy holds the same labels: running to half the pool ({half:,}); pass --budget to "
                      "choose"]
    if budget >= n_pool:
        return budget, [f"--budget {budget:,} labels the whole pool ({n_pool:,} records): every strategy ends on the "
                        f"same labels, so no ratio above 1 can show at the last budget; --budget {half:,} (half the "
                        "pool) leaves room"]
    if budget > n_pool / 2:
        return budget, [f"the last budget ({budget:,}) labels {budget / n_pool:.0%} of the pool ({n_pool:,} records): "
                         f"curves converge as the pool runs out, so ratios shrink towards 1; --budget {half:,} (half "
                         "the pool) leaves room"]
    return budget, []


def check_test_labels(pool: LabelledSet, test: LabelledSet) -> list[str]:
    """Warnings about a separate test file's classes: test rows whose class the pool never has cannot be learnt.

    Raises:
        InputError: no test row has a class of the pool (e.g. the pool's labels are names and the test's numbers).
    """
    classes = set(pool.labels)
    unseen: dict[str, int] = {}
    for label in test.labels:
        if label not in classes:
            unseen[label] = unseen.get(label, 0) + 1
    if not unseen:
        return []

    def show(labels: Sequence[str]) -> str:
        return ", ".join(repr(x) for x in sorted(labels)[:6]) + (", ..." if len(labels) > 6 else "")

    if sum(unseen.values()) == len(test):
        numbers = [all(x.strip().lstrip("-").isdigit() for x in side) for side in (classes, unseen)]
        hint = (" One file's labels are numbers and the other's are names: give both the same kind (e.g. map the "
                "numbers to the data set's class names)." if numbers[0] != numbers[1] else "")
        raise InputError(f"{test.source}: none of its labels is a class of the pool file {pool.source} (test: "
                         f"{show(list(unseen))}; pool: {show(list(classes))}), so every accuracy would be 0.{hint}")
    n = sum(unseen.values())
    return [f"{n:,} of {len(test):,} test rows ({n / len(test):.0%}) have a class the pool never has "
            f"({', '.join(f'{k!r}: {v}' for k, v in sorted(unseen.items(), key=lambda kv: -kv[1])[:6])}): no strategy "
            f"can learn them, so every curve stays below {1 - n / len(test):.3f}"]


def curve_warnings(split: Split, task: str, *, start: int, batch: int, budget: int) -> list[str]:
    """A warning when the seed set leaves fewer than 3 points on each curve (``start`` labels per class for
    classify, ``start`` pairs for preference), with what to change."""
    if task == "classify":
        counts: dict[str, int] = {}
        for label in split.pool.labels:
            counts[label] = counts.get(label, 0) + 1
        initial = sum(min(start, c) for c in counts.values())
    else:
        initial = min(start, len(split.pool))
    last = min(budget, len(split.pool))
    points = len(range(initial, last, batch)) + 1
    if initial >= last or points >= 3:  # a seed set at the budget is an error of its own (budget_steps)
        return []
    what = f"{start} per class over {len(counts)} classes" if task == "classify" else f"{start} pairs"
    return [f"the seed set ({initial:,} labels: {what}) leaves {points} points on each curve up to the last budget "
            f"({last:,}), too few for a ratio: lower --start-per-class or --batch, or use a larger pool "
            f"({len(split.pool):,} records)"]
