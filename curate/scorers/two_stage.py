"""Two-stage scoring: a cheap proxy ranks the whole pool, the exact scorer scores only the proxy's short list.

Stage one: the exact scorer scores a seeded random sample of the pool (cached like any score). A ridge regression on
cheap features (:mod:`curate.scorers.proxy`: hashed TF-IDF of prompt and answer, lengths, prompt-answer overlap,
and optionally the cosine of their sentence embeddings) learns the ranks of those scores on 80% of the sample; its
Spearman rank correlation with the exact scores, and how many of the exact top 1% / 5% it would short-list, are
measured on the other 20%. Stage two: the proxy, refitted on the whole sample, scores every record; the exact
scorer then scores the proxy's top ``shortlist`` fraction and a random ``check`` slice (where the proxy's misses
show). Selection sees exact scores only: a record the exact scorer never scored is NaN.

The proxy is a function of the scorer's key, the sample's record ids, the feature settings and the seed; its key
(:attr:`TwoStageReport.proxy_key`) changes when any of them does, and is recorded in the audit log with the figures.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np
from scipy.stats import spearmanr

from curate.errors import InputError
from curate.ingest.records import Record
from curate.scorers.base import Scorer, Scores
from curate.scorers.cache import cache_key, load_cached, load_metadata, save_metadata, score_records
from curate.scorers.proxy import Proxy, ProxySettings, relevance
from curate.store import audit
from curate.store.database import Store

HELDOUT_SHARE = 0.2


@dataclass
class TwoStageReport:
    """What one two-stage run did and how far its proxy can be trusted (figures from the held-out 20%)."""

    scorer_key: str
    proxy_key: str
    records: int
    sample: int
    shortlisted: int
    checked: int
    exact_scored: int
    spearman_heldout: float
    recall_top1_heldout: float
    recall_top5_heldout: float
    seconds: float
    records_per_hour: float
    exact_seconds_per_record: float | None = None
    budget_seconds: float | None = None
    budget_limited: bool = False
    proxy_features: str = ""  # ProxySettings.describe() of the proxy used
    embed_seconds: float = 0.0  # embedding prompts and answers for the proxy's cosine


def proxy_key(scorer_key: str, sample_ids: Sequence[str], settings: ProxySettings, seed: int) -> str:
    """``proxy(<features>)@<digest>``: changes with the scorer, the sampled ids, the features or the seed."""
    h = hashlib.blake2b(digest_size=8)
    for part in (scorer_key, settings.describe(), str(seed), *sorted(sample_ids)):
        h.update(part.encode())
        h.update(b"\0")
    return f"proxy({settings.describe()})@{h.hexdigest()}"


def _recall(exact: np.ndarray, predicted: np.ndarray, top: float, shortlist: float) -> float:
    """Of the exact top ``top`` share of ``exact``, the share the proxy ranks in its top ``shortlist`` share."""
    n = len(exact)
    k_true, k_short = max(1, math.ceil(top * n)), max(1, math.ceil(shortlist * n))
    truth = set(np.argsort(-exact, kind="stable")[:k_true].tolist())
    picked = set(np.argsort(-predicted, kind="stable")[:k_short].tolist())
    return len(truth & picked) / len(truth)


ExactFn = Callable[[Sequence[Record], "Callable[[int, int], None] | None"], tuple[np.ndarray, int]]
Progress = Callable[[str, int, int], None]  # (stage, done, total): "sample", "embed" or "short list"


def two_stage_scores(store: Store, scorer: Scorer, records: Sequence[Record], *, shortlist: float = 0.05,
                     sample: int = 2000, check: float = 0.01, seed: int = 0,
                     settings: ProxySettings = ProxySettings(), embed: Callable[..., np.ndarray] | None = None,
                     budget_seconds: float | None = None,
                     on_progress: Progress | None = None) -> tuple[Scores, TwoStageReport]:
    """Exact scores of the proxy's short list (and of the sample and a random check slice); NaN elsewhere.

    Exact scores go through the workspace's score cache (:func:`curate.scorers.cache.score_records`). With
    ``budget_seconds`` the short list shrinks to what fits the time left after the sample (and the embeddings),
    at the exact rate measured on the sample (the check slice is kept, and counted in the budget). With
    ``settings.embedder``, ``embed`` embeds prompts and answers (:func:`curate.scorers.proxy.relevance`).

    Returns:
        ``(scores, report)``: ``(n,)`` float64 aligned with ``records`` (higher = more worth labeling; NaN = not
        scored exactly, or unscorable) and a :class:`TwoStageReport`, also kept as the ``two_stage`` metadata of
        the exact scores' cache key (:func:`curate.scorers.cache.load_metadata`). One ``score.two_stage`` audit event.

    Raises:
        InputError: a fraction outside (0, 1], a sample too small to learn from, or a set-dependent scorer (its
            scores depend on the scored set, so a sample's scores would not stand for the pool's).
    """
    if getattr(scorer, "set_dependent", False):
        raise InputError(f"{scorer.name} scores depend on the scored set; score it exactly (without --two-stage)")

    def exact(chosen: Sequence[Record], progress: Callable[[int, int], None] | None) -> tuple[np.ndarray, int]:
        values, report = score_records(store, scorer, chosen, on_progress=progress)
        return values, report.computed

    key = cache_key(scorer, records)
    out, report = run_two_stage(records, exact, scorer_key=key, shortlist=shortlist, sample=sample, check=check,
                                seed=seed, settings=settings, embed=embed, budget_seconds=budget_seconds,
                                on_progress=on_progress)
    with store.write() as conn:
        audit.append(conn, "score.two_stage", asdict(report))
    save_metadata(store, key, "two_stage", asdict(report))
    return out, report


EMBED_BUDGET_SHARE = 0.5


def _cosine(records: Sequence[Record], in_sample: np.ndarray, settings: ProxySettings,
            embed: Callable[..., np.ndarray] | None, budget_left: float | None,
            on_progress: Callable[[int, int], None] | None) -> tuple[np.ndarray | None, ProxySettings]:
    """The proxy's prompt-answer cosine of every record (``(n,)``), or ``None`` for a text-only proxy.

    The sample is embedded first; when the rate measured there says the rest of the pool would take more than
    half the time left in the budget, the proxy drops the cosine (returned settings without an embedder) and the
    time goes to the short list instead."""
    if not settings.embedder or embed is None:
        return None, replace(settings, embedder=None)
    started = time.perf_counter()
    first = relevance([records[i] for i in in_sample], embed)
    per_record = (time.perf_counter() - started) / max(len(in_sample), 1)
    if budget_left is not None and per_record * (len(records) - len(in_sample)) > EMBED_BUDGET_SHARE * budget_left:
        return None, replace(settings, embedder=None)
    rest = np.setdiff1d(np.arange(len(records)), in_sample)
    cosine = np.empty(len(records))
    cosine[in_sample] = first
    cosine[rest] = relevance([records[i] for i in rest], embed, on_progress=on_progress)
    return cosine, settings


def run_two_stage(records: Sequence[Record], exact: ExactFn, *, scorer_key: str, shortlist: float = 0.05,
                  sample: int = 2000, check: float = 0.01, seed: int = 0, settings: ProxySettings = ProxySettings(),
                  embed: Callable[..., np.ndarray] | None = None, budget_seconds: float | None = None,
                  on_progress: Progress | None = None) -> tuple[Scores, TwoStageReport]:
    """The two stages with any exact scoring function ``exact(records, on_progress) -> (scores, n_computed)``
    (``n_computed``: how many were computed rather than read back, for the rate); see :func:`two_stage_scores`."""
    started = time.perf_counter()
    n = len(records)
    if not 0 < shortlist <= 1 or not 0 <= check <= 1:
        raise InputError(f"--shortlist must be in (0, 1] and the check slice in [0, 1]; got {shortlist}, {check}")
    if sample < 20:
        raise InputError(f"the proxy needs a sample of at least 20 exactly scored records; got {sample}")
    if settings.embedder and embed is None:
        raise ValueError(f"a proxy with the {settings.embedder} cosine needs an embed function")

    def stage(name: str) -> Callable[[int, int], None] | None:
        return None if on_progress is None else lambda done, total: on_progress(name, done, total)

    rng = np.random.default_rng(seed)
    in_sample = np.sort(rng.choice(n, size=min(sample, n), replace=False))
    sampled = [records[i] for i in in_sample]
    sample_started = time.perf_counter()
    exact_sample, computed = exact(sampled, stage("sample"))
    per_record = (time.perf_counter() - sample_started) / computed if computed >= 10 else None
    embed_started = time.perf_counter()
    left = None if budget_seconds is None else budget_seconds - (embed_started - started)
    cosine, settings = _cosine(records, in_sample, settings, embed, left, stage("embed"))
    embed_seconds = time.perf_counter() - embed_started
    sampled_cosine = None if cosine is None else cosine[in_sample]
    valid = np.flatnonzero(np.isfinite(exact_sample))
    if len(valid) < 20:
        raise InputError(f"only {len(valid)} of the {len(sampled)} sampled records could be scored exactly; the "
                         "proxy needs at least 20")
    order = rng.permutation(valid)
    n_test = max(5, int(round(HELDOUT_SHARE * len(order))))
    test, train = order[:n_test], order[n_test:]
    part = (lambda rows: None) if sampled_cosine is None else (lambda rows: sampled_cosine[rows])
    held = Proxy(settings).fit([sampled[i] for i in train], exact_sample[train], part(train))
    predicted = held.predict([sampled[i] for i in test], part(test))
    rho = float(spearmanr(exact_sample[test], predicted).statistic)
    recall1 = _recall(exact_sample[test], predicted, 0.01, shortlist)
    recall5 = _recall(exact_sample[test], predicted, 0.05, shortlist)
    proxy = Proxy(settings).fit([sampled[i] for i in valid], exact_sample[valid], part(valid))
    ranked = proxy.predict(records, cosine)
    n_short, n_check = math.ceil(shortlist * n), math.ceil(check * n) if check else 0
    limited = False
    if budget_seconds is not None and per_record is not None:
        affordable = max(0, int((budget_seconds - (time.perf_counter() - started)) / per_record))
        if affordable < n_short + n_check:
            n_check = min(n_check, affordable // 5)  # a fifth of what is left checks the proxy, at most the asked
            n_short, limited = affordable - n_check, True
    short = np.argsort(-ranked, kind="stable")[:n_short]
    rest = np.setdiff1d(np.arange(n), short)
    checked = rng.choice(rest, size=min(len(rest), n_check), replace=False) if n_check else rest[:0]
    wanted = np.setdiff1d(np.union1d(short, checked), in_sample)
    exact_rest, _ = exact([records[i] for i in wanted], stage("short list"))
    out = np.full(n, math.nan)
    out[in_sample] = exact_sample
    out[wanted] = exact_rest
    seconds = time.perf_counter() - started
    report = TwoStageReport(
        scorer_key=scorer_key, proxy_key=proxy_key(scorer_key, [r.id for r in sampled], settings, seed), records=n,
        sample=len(sampled), shortlisted=len(short), checked=len(checked), exact_scored=len(in_sample) + len(wanted),
        spearman_heldout=round(rho, 4), recall_top1_heldout=round(recall1, 4), recall_top5_heldout=round(recall5, 4),
        seconds=round(seconds, 3), records_per_hour=round(3600 * n / seconds, 1) if seconds > 0 else math.inf,
        exact_seconds_per_record=None if per_record is None else round(per_record, 5),
        budget_seconds=budget_seconds, budget_limited=limited, proxy_features=settings.describe(),
        embed_seconds=round(embed_seconds, 3))
    return out, report


def exactly_scored(store: Store, scorer: Scorer, pool: Sequence[Record]) -> tuple[list[Record], dict[str, Any] | None]:
    """After a two-stage run of ``scorer``: the records of ``pool`` it scored exactly (the sample, short list and
    check slice), and that run's report; ``(pool, None)`` when the scorer's scores do not come from one.

    This is what selection takes from two-stage scores: scoring the rest would run the exact scorer on the whole
    pool, the work two-stage scoring avoids."""
    key = cache_key(scorer, pool)
    report = load_metadata(store, key).get("two_stage")
    if report is None:
        return list(pool), None
    cached = load_cached(store, key, [r.id for r in pool])
    return [r for r in pool if r.id in cached], report
