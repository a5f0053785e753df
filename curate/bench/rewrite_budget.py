"""Rewrite budget: which prompt-completion rows deserve an expert's rewrite? Damage a share of a pool the way scraped
or model-drafted data is damaged, let each strategy rank the rows, and count the damaged rows in its first k.

Damage (one kind per damaged row, drawn at random; the clean completion is kept as the expert's rewrite):

* ``swapped``: the completion of another prompt of the pool;
* ``truncated``: the first 20-50% of the completion's words, cut mid-sentence;
* ``generic``: a short non-answer of the kind chat models and scrapers leave behind ("I'm sorry, but I can't help
  with that.", "Here is the answer:", ...);
* ``draft`` (opt-in, needs a language model): a weak model's answer to the prompt, the packaged SmolLM2's greedy
  draft by default (:mod:`curate.bench.rewrite_drafts`): fluent, on topic, and often wrong, repetitive or cut off.

Strategies score every row, higher = rewrite first: ``random``; ``diversity`` (greedy k-center order on MiniLM
embeddings); any scorer of the catalog, e.g. ``perplexity`` and ``ifd`` (SmolLM2), ``longest`` (the "Long Is More"
baseline) and ``shortest``, ``relevance`` (1 - cosine of the MiniLM embeddings of prompt and completion: an answer to
another question is far from its prompt), ``rewrite_need`` (:mod:`curate.scorers.rewrite`); and any rank-average of
them written ``a+b`` (each score turned into its rank, ties averaged, then averaged); and any catalog scorer
scored in two stages, written ``ifd@two-stage`` or, with its own short-list share, ``ifd@two-stage:0.2``
(``ifd@two-stage-text:0.2``: the proxy without the prompt-answer embedding cosine)
(:func:`curate.scorers.two_stage.run_two_stage`: the exact scorer
on a random sample, a proxy trained on it ranks the rest, the exact scorer on the proxy's short list; unscored rows
rank last, so the first k come from exact scores only).

Figures per budget k (a share of the pool): the damaged-row recall (share of the damaged rows among the first k) and
precision, per damage kind, and the budget ratio against random at equal recall: random finds ``k/n`` of the damaged
rows in expectation, so it needs ``recall * n`` rows to find what the strategy found in k (ratio = ``recall * n /
k``, at most ``n / k``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from curate.errors import InputError
from curate.ingest.raw_rows import RawRow, places
from curate.ingest.records import Record, record_id
from curate.scorers.rewrite import rank_average

DAMAGES: tuple[str, ...] = ("swapped", "truncated", "generic")  # the default kinds (no model needed)
DRAFT = "draft"
ALL_DAMAGES: tuple[str, ...] = (*DAMAGES, DRAFT)
GENERIC_ANSWERS: tuple[str, ...] = (
    "I'm sorry, but I can't help with that.",
    "As an AI language model, I cannot answer this question.",
    "Here is the answer:",
    "I don't know.",
    "Sure! Let me know if you have any other questions.",
    "That is a great question. It depends on many factors.",
    "Please provide more details so I can help you.",
    "The answer is yes.",
)
FloatArray = npt.NDArray[np.float64]
TWO_STAGE = "@two-stage"
Embed = Callable[[list[str]], npt.NDArray[Any]]
DraftFn = Callable[[list[str]], list[str]]  # prompts -> a weak model's completions, one each


@dataclass
class DamagedPool:
    """``n`` rows: prompts, the completions as the pool has them, the clean ones (the rewrites), and the damage of
    each row (``None`` = clean)."""

    prompts: list[str]
    completions: list[str]
    clean: list[str]
    damage: list[str | None]

    @property
    def damaged(self) -> npt.NDArray[np.bool_]:
        """Shape ``(n,)``: which rows were damaged."""
        return np.array([d is not None for d in self.damage], dtype=bool)

    def records(self) -> list[Record]:
        """The pool as ``example`` records (prompt, damaged completion)."""
        return [Record(id=record_id("example", {"prompt": p, "completion": c, "row": i}), kind="example",
                       fields={"prompt": p, "completion": c}) for i, (p, c) in enumerate(zip(self.prompts,
                                                                                           self.completions,
                                                                                           strict=True))]


def damage_pool(rows: Sequence[tuple[str, str]], *, share: float, rng: np.random.Generator,
                kinds: Sequence[str] = DAMAGES, draft: DraftFn | None = None) -> DamagedPool:
    """Damage ``round(share * n)`` of the ``(prompt, completion)`` rows, one kind each (drawn uniformly).

    ``draft``: writes the ``draft`` kind's completions (all in one call); a draft that comes back empty or equal to
    the clean completion is replaced by a generic non-answer (and counted as one).
    """
    if not 0 < share < 1:
        raise InputError(f"--damage-share must be between 0 and 1; got {share}")
    unknown = sorted(set(kinds) - set(ALL_DAMAGES))
    if unknown or not kinds:
        raise InputError(f"unknown damage kind(s) {unknown or 'none given'}; choose from {', '.join(ALL_DAMAGES)}")
    if DRAFT in kinds and draft is None:
        raise InputError("the draft damage needs a language model to write the drafts; leave 'draft' out of the "
                         "damage kinds, or pass a draft writer (curate.bench.rewrite_drafts.lm_drafts)")
    n = len(rows)
    if n < 4:
        raise InputError(f"the pool needs at least 4 prompt-completion rows; got {n}")
    prompts = [p for p, _ in rows]
    clean = [c for _, c in rows]
    completions = list(clean)
    damage: list[str | None] = [None] * n
    picked = rng.choice(n, size=max(1, round(share * n)), replace=False)
    for i in picked:
        kind = str(kinds[int(rng.integers(len(kinds)))])
        if kind == "swapped":
            j = int(rng.integers(n - 1))
            completions[i] = clean[j if j < i else j + 1]
        elif kind == "truncated":
            words = clean[i].split()
            keep = max(1, int(len(words) * rng.uniform(0.2, 0.5)))
            if keep >= len(words):  # a one-word answer cannot be cut: give it a non-answer instead
                kind, completions[i] = "generic", GENERIC_ANSWERS[int(rng.integers(len(GENERIC_ANSWERS)))]
            else:
                completions[i] = " ".join(words[:keep])
        elif kind == "generic":
            completions[i] = GENERIC_ANSWERS[int(rng.integers(len(GENERIC_ANSWERS)))]
        damage[i] = kind
    drafted = [int(i) for i in picked if damage[i] == DRAFT]
    if drafted:
        assert draft is not None
        texts = draft([prompts[i] for i in drafted])
        if len(texts) != len(drafted):
            raise InputError(f"the draft writer returned {len(texts)} drafts for {len(drafted)} prompts")
        for i, text in zip(drafted, texts, strict=True):
            if text.strip() and text.strip() != clean[i].strip():
                completions[i] = text.strip()
            else:
                damage[i], completions[i] = "generic", GENERIC_ANSWERS[int(rng.integers(len(GENERIC_ANSWERS)))]
    return DamagedPool(prompts, completions, clean, damage)


@dataclass
class StrategyScorer:
    """Scores a :class:`DamagedPool` by a named strategy, computing each base strategy once (higher = rewrite
    first). ``build(name)`` builds a catalog scorer; ``embed(texts)`` gives unit-norm embeddings."""

    pool: DamagedPool
    rng: np.random.Generator
    build: Callable[[str], Any]
    embed: Embed
    cache: dict[str, FloatArray] = field(default_factory=dict)
    two_stage: tuple[float, float] = (0.2, 0.1)  # (sample, short list), as shares of the pool
    two_stage_reports: dict[str, dict[str, Any]] = field(default_factory=dict)
    proxy_embedder: str | None = "minilm"  # the two-stage proxy's prompt-answer cosine, as `curate score` does

    def __call__(self, name: str) -> FloatArray:
        """Scores of strategy ``name`` (a base strategy or ``a+b+...``), shape ``(n,)``."""
        if name not in self.cache:
            parts = name.split("+")
            found = rank_average([self(p) for p in parts]) if len(parts) > 1 else self._base(name)
            self.cache[name] = np.asarray(found, dtype=np.float64)
        scores: FloatArray = self.cache[name]
        return scores

    def _base(self, name: str) -> FloatArray:
        pool = self.pool
        n = len(pool.prompts)
        if TWO_STAGE in name:
            base, _, rest = name.partition(TWO_STAGE)
            text_only = rest.startswith("-text")
            shortlist = rest.removeprefix("-text")
            return self._two_stage(base, float(shortlist[1:]) if shortlist.startswith(":") else self.two_stage[1],
                                   embedder=None if text_only else self.proxy_embedder)
        if name == "random":
            return self.rng.random(n)
        if name == "diversity":
            from curate.selectors import KCenterGreedy

            vectors = self.embed([f"{p}\n\n{c}" for p, c in zip(pool.prompts, pool.completions, strict=True)])
            order = KCenterGreedy(metric="cosine").select(np.zeros(n), n, embeddings=vectors,
                                                          rng=np.random.default_rng(0))
            scores = np.empty(n, dtype=np.float64)
            scores[np.asarray(order)] = -np.arange(n, dtype=np.float64)  # picked first = highest
            return scores
        return np.asarray(self.build(name).score(pool.records()), dtype=np.float64)


    def _two_stage(self, base: str, shortlist: float, embedder: str | None) -> FloatArray:
        """Two-stage scores of ``base``: its exact scores where the two-stage path scores exactly, NaN elsewhere.

        The exact scores of all rows are computed once (``self(base)``) and looked up for the rows the two-stage
        path asks for, as its score cache would return them; the choice of rows is the two-stage path's own.
        """
        from dataclasses import asdict

        from curate.scorers.proxy import ProxySettings
        from curate.scorers.two_stage import run_two_stage

        exact_all = self(base)
        records = self.pool.records()
        row_of = {id(r): i for i, r in enumerate(records)}

        def exact(chosen: Sequence[Record], _progress: Any) -> tuple[FloatArray, int]:
            return exact_all[[row_of[id(r)] for r in chosen]], len(chosen)

        n = len(records)
        sample = self.two_stage[0]
        scores, report = run_two_stage(records, exact, scorer_key=base, sample=max(20, math.ceil(sample * n)),
                                       shortlist=shortlist, check=0.0, seed=int(self.rng.integers(2**31)),
                                       settings=ProxySettings(embedder=embedder),
                                       embed=self.embed if embedder else None)
        self.two_stage_reports[f"{base}{TWO_STAGE}{'' if embedder else '-text'}:{shortlist:g}"] = asdict(report)
        return scores


def recall_at(scores: FloatArray, damaged: npt.NDArray[np.bool_], damage: Sequence[str | None],
              budgets: Sequence[int]) -> list[dict[str, Any]]:
    """Per budget k: the damaged rows among the k highest scores (ties broken by row order), recall, precision,
    recall per damage kind and the budget ratio against random (module docstring)."""
    n, total = len(scores), int(damaged.sum())
    order = np.argsort(-np.nan_to_num(scores, nan=-np.inf), kind="stable")
    kinds = sorted({d for d in damage if d is not None})
    out = []
    for k in budgets:
        top = order[:k]
        found = int(damaged[top].sum())
        recall = found / total if total else 0.0
        per_kind = {kind: round(sum(1 for i in top if damage[i] == kind)
                                / max(1, sum(1 for d in damage if d == kind)), 4) for kind in kinds}
        out.append({"k": int(k), "found": found, "recall": round(recall, 4), "precision": round(found / k, 4),
                    "recall_by_kind": per_kind, "ratio_vs_random": round(min(recall * n / k, n / k), 3)})
    return out


def run_rewrite_budget(rows: Sequence[tuple[str, str]], strategies: Sequence[str], *, share: float = 0.3,
                       budgets: Sequence[float] = (0.05, 0.1, 0.2, 0.3), seeds: Sequence[int] = (0,),
                       build: Callable[[str], Any], embed: Embed, two_stage: tuple[float, float] = (0.2, 0.1),
                       say: Callable[[str], None] = lambda _: None, kinds: Sequence[str] = DAMAGES,
                       draft: DraftFn | None = None) -> dict[str, Any]:
    """The figures of every strategy on a damaged copy of ``rows`` per seed, and their means over seeds
    (``two_stage``: the sample and short-list shares of ``...@two-stage`` strategies; their proxies' figures are
    reported per seed; ``kinds`` / ``draft``: the damage, as :func:`damage_pool`)."""
    if not seeds:
        raise InputError("--seeds must be at least 1 (the damaged copies of the pool); got 0")
    bad = [b for b in budgets if not 0 < b <= 1]
    if bad or not budgets:
        raise InputError(f"--budgets are shares of the pool, each above 0 and at most 1 (e.g. 0.05,0.1,0.2); got "
                         f"{', '.join(f'{b:g}' for b in bad) or 'none'}")
    n = len(rows)
    ks = sorted({max(1, min(n, math.ceil(b * n))) for b in budgets})
    per_seed: dict[str, list[list[dict[str, Any]]]] = {s: [] for s in strategies}
    pools = []
    for seed in seeds:
        rng = np.random.default_rng(seed)
        pool = damage_pool(rows, share=share, rng=rng, kinds=kinds, draft=draft)
        seen = dict.fromkeys([*kinds, *(d for d in pool.damage if d)])  # a failed draft counts as generic
        pools.append({"seed": seed, "damaged": int(pool.damaged.sum()),
                      "by_kind": {k: pool.damage.count(k) for k in seen}})
        scorer = StrategyScorer(pool, np.random.default_rng(seed + 1000), build, embed, two_stage=two_stage)
        for name in strategies:
            say(f"rewrite budget: seed {seed}, {name}")
            per_seed[name].append(recall_at(scorer(name), pool.damaged, pool.damage, ks))
        if scorer.two_stage_reports:
            pools[-1]["two_stage"] = scorer.two_stage_reports
    summary = {}
    for name, runs in per_seed.items():
        summary[name] = [{"k": ks[j], "recall": round(float(np.mean([r[j]["recall"] for r in runs])), 4),
                          "ratio_vs_random": round(float(np.mean([r[j]["ratio_vs_random"] for r in runs])), 3),
                          "ratio_per_seed": [r[j]["ratio_vs_random"] for r in runs]} for j in range(len(ks))]
    return {"rows": n, "damage_share": share, "damage_kinds": list(kinds), "budgets": ks, "seeds": list(seeds),
            "pools": pools,
            "strategies": list(strategies), "per_seed": per_seed, "summary": summary}


def two_stage_vs_exact(result: dict[str, Any]) -> dict[str, Any]:
    """Per ``X@two-stage...`` strategy and budget, against exact ``X`` on the same pools: the mean per-seed
    difference of budget ratios (two-stage - exact), its standard deviation over seeds, exact's own per-seed
    standard deviation (the per-seed noise), and whether the two-stage path loses no more than that noise."""
    out: dict[str, Any] = {}
    per_seed = result["per_seed"]
    for name in per_seed:
        base = name.split("@two-stage")[0]
        if "@two-stage" not in name or base not in per_seed:
            continue
        rows = []
        for j, k in enumerate(result["budgets"]):
            exact = np.array([run[j]["ratio_vs_random"] for run in per_seed[base]])
            two = np.array([run[j]["ratio_vs_random"] for run in per_seed[name]])
            diff = two - exact
            noise = float(exact.std(ddof=1)) if len(exact) > 1 else 0.0
            rows.append({"k": k, "exact_mean": round(float(exact.mean()), 3),
                         "two_stage_mean": round(float(two.mean()), 3),
                         "mean_difference": round(float(diff.mean()), 3),
                         "difference_sd": round(float(diff.std(ddof=1)) if len(diff) > 1 else 0.0, 3),
                         "exact_per_seed_sd": round(noise, 3), "within_noise": bool(-diff.mean() <= noise)})
        out[name] = rows
    return out


class PairRows(list[tuple[str, str]]):
    """``(prompt, completion)`` rows read by :func:`load_pairs`, with the rows it could not use: ``skipped`` maps
    each reason to its count, ``skipped_lines`` to its first few source lines (``skipped_where``: the same as
    text, with a JSON array's element numbers); ``read`` counts the rows seen."""

    def __init__(self) -> None:
        super().__init__()
        self.skipped: dict[str, int] = {}
        self.skipped_places: dict[str, list[tuple[int, int | None]]] = {}  # reason -> first (line, element)s
        self.read = 0

    def skip(self, raw: RawRow, reason: str) -> None:
        """Count a row that gave no pair."""
        self.skipped[reason] = self.skipped.get(reason, 0) + 1
        found = self.skipped_places.setdefault(reason, [])
        if len(found) < 5:
            found.append((raw.line, raw.element))

    @property
    def skipped_lines(self) -> dict[str, list[int]]:
        """Each reason's first few source lines."""
        return {reason: [line for line, _ in found] for reason, found in self.skipped_places.items()}

    @property
    def skipped_where(self) -> dict[str, str]:
        """Each reason's first few rows, as text: ``lines 4, 9`` or ``elements 2, 57 on line 1``."""
        return {reason: places(found) for reason, found in self.skipped_places.items()}

    def subset(self, indices: Sequence[int]) -> PairRows:
        """The rows at ``indices``, with this file's skipped-row counts."""
        out = PairRows()
        out.extend(self[int(i)] for i in indices)
        out.skipped, out.skipped_places, out.read = self.skipped, self.skipped_places, self.read
        return out

    def summary(self) -> str:
        """``N of M rows skipped: 3 x reason (lines 4, 9); ...``, or "" when none was."""
        total = sum(self.skipped.values())
        if not total:
            return ""
        where = self.skipped_where
        parts = [f"{n:,} x {reason} ({where[reason]}{', ...' if n > 5 else ''})"
                 for reason, n in sorted(self.skipped.items(), key=lambda kv: -kv[1])[:4]]
        return f"{total:,} of {self.read:,} rows skipped: " + "; ".join(parts)


def load_pairs(path: Any, mapping: dict[str, str] | None = None, *, limit: int | None = None,
               seed: int = 0, columns: Sequence[str] | None = None, encoding: str = "utf-8") -> PairRows:
    """``(prompt, completion)`` of every row of ``path`` that reads as a prompt-completion example (any format and
    ``--map`` that ``curate ingest`` takes; Alpaca's instruction/input/output too; chat ``messages`` split at their
    last assistant turn, the turns before it joined as the prompt), a seeded sample of ``limit``;
    ``columns`` names the columns of a CSV/TSV file without a header line; ``encoding`` is that of a text file.
    The rows that give no pair are counted with their reasons (:class:`PairRows`)."""
    from pathlib import Path

    from curate.errors import RecordError
    from curate.ingest.formats import header_hint, row_to_record
    from curate.ingest.mapping import check_columns
    from curate.ingest.readers import read_rows
    from curate.ingest.records import as_text
    from curate.scorers.causal_lm import prompt_and_completion

    source = Path(path)
    out = PairRows()
    first_columns: list[str] = []
    rows = check_columns(read_rows(source, columns=columns, encoding=encoding), mapping, str(source))
    for n, raw in enumerate(rows, start=1):
        out.read += 1
        if raw.error is not None or not isinstance(raw.data, dict):
            out.skip(raw, raw.error or "not a row of fields")
            continue
        first_columns = first_columns or [str(k) for k in raw.data]
        try:
            rec = row_to_record(raw.data, source=str(source), line=raw.line, row_number=n, mapping=mapping)
        except RecordError as exc:
            out.skip(raw, str(exc))
            continue
        split = prompt_and_completion(rec) if rec.kind == "example" else None  # chat rows: at the last answer
        if split is None:
            out.skip(raw, f"a {rec.kind} record, not a prompt and its completion" if rec.kind != "example"
                     else "no assistant answer to split the chat at")
            continue
        prompt, completion = as_text(split[0]).strip(), as_text(split[1]).strip()
        if prompt and completion:
            out.append((prompt, completion))
        else:
            out.skip(raw, "empty " + ("prompt" if not prompt else "completion"))
    if len(out) < 4:
        skipped = out.summary()
        raise InputError(f"{source}: {len(out)} prompt-completion rows" + (f" ({skipped})" if skipped else "")
                         + "; the rewrite budget needs at least 4. Map the columns with --map prompt=COLUMN --map "
                         "completion=COLUMN (or --map messages=COLUMN for chats)"
                         + (f"; the file's columns: {', '.join(first_columns[:30])}" if first_columns else "")
                         + f"{header_hint(first_columns)}.")
    if limit is not None and limit < len(out):
        out = out.subset(np.sort(np.random.default_rng(seed).choice(len(out), size=limit, replace=False)).tolist())
    return out
