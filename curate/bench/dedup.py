"""Dedup benchmark: exact duplicates, MinHash near-copies, semantic similarity, and documents per second.

Run it as ``curate bench dedup --exact FILE --minhash FILE --semantic FILE`` (any subset) or through
``benchmarks/bench_dedup.py`` (the shared data sets). Each part runs on its own file:

1. **Exact** (a text file, one row per line; by default SMS Spam Collection, ``label<TAB>text``: the text is the
   tab-separated column ``column``, default the last; or records of any format with ``--exact-field``): the
   expected number of exact duplicates is computed independently as ``len(texts) - len(set(texts))`` over the
   raw texts; "found" is how many of those duplicate
   rows the exact method puts in the cluster of an earlier identical row. The method normalises (case,
   whitespace, punctuation), so it also merges rows that differ only that way: reported as ``extra_merged``.
2. **MinHash** (records in any format ``curate ingest`` reads: JSONL, a JSON array, CSV/TSV, Parquet; by default
   Alpaca, instruction + input + output joined by newlines): originals are drawn with a seeded ``numpy``
   generator from rows that are unique after normalisation; each original gets one variant of each kind (case,
   whitespace, punctuation, typos = 1-3 character edits, small edit = one word inserted/deleted/replaced; see
   :mod:`curate.bench.dedup_variants`); unrelated rows are mixed in. A *group* is an original and its variants;
   unrelated rows are singletons.
   Recall = share of (variant, original) pairs whose two texts land in the same predicted cluster.
   Precision = over every pair of texts in the same predicted cluster (all pairs, after union-find), the share
   whose two texts are in the same group. Settings are tuned on a tuning split (its own originals and unrelated
   rows) — the chosen one is the highest-recall setting with precision >= 0.99 there — and evaluated on a
   disjoint evaluation split.
3. **Semantic** (sentence pairs with a human score 0-5, in any of those formats; by default STS 2012-2016):
   MiniLM cosine of pairs scored 4.5-5 (positives) vs 0-1 (negatives): ROC AUC, and precision / recall at the
   recommended threshold (the lowest cosine at which precision >= 0.99 on these pairs) and at the F1-best threshold.
4. **Throughput**: documents per second of each method (semantic: embedding and the tiled search separately).
"""

from __future__ import annotations

import os
import platform
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np

from curate.bench.dedup_variants import KINDS, make_split, score_clusters
from curate.errors import InputError, SourceNotFoundError
from curate.filters.dedup import MinHashParams, clusters_from_pairs, exact_clusters, normalise_for_dedup
from curate.filters.dedup_minhash import ShingleKind, lsh_pairs, signatures
from curate.filters.dedup_semantic import semantic_pairs
from curate.ingest.readers import read_every_row
from curate.runtime.embeddings import Embedder

Say = Callable[[str], None]
DEFAULT_MINHASH_FIELDS = ("instruction", "input", "output")
DEFAULT_SEMANTIC_FIELDS = ("sentence1", "sentence2", "score")
DEFAULT_SEED = 20240601
SHINGLE_GRID: tuple[tuple[ShingleKind, tuple[int, ...]], ...] = (("char", (3, 4, 5)), ("word", (1, 2)))
PERM_GRID = (128, 256)
THRESHOLD_GRID = (0.3, 0.4, 0.5, 0.6, 0.7, 0.8)


def _quiet(_: str) -> None:
    return None


def _read(path: Path, what: str) -> str:
    if not path.is_file():
        raise SourceNotFoundError(f"{path}: no such file (the {what} data).")
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start}); the {what} data must be "
                         "UTF-8.") from exc


_RECORD_SUFFIXES = (".jsonl", ".ndjson", ".json", ".csv", ".parquet")


def read_texts(path: Path, column: int = -1, field: str | None = None) -> list[str]:
    """The texts to deduplicate. With ``field``: that field of every record of any file ``curate ingest`` reads
    (records without it, or with empty text, are left out). Without: one text per non-blank line of a plain-text
    or tab-separated file, the tab-separated column ``column`` (default the last)."""
    if field is not None:
        rows = read_objects(path, "exact")
        _check_fields(path, rows, [field], "--exact-field")
        return [t for t in (r.get(field) for r in rows) if isinstance(t, str) and t.strip()]
    if path.name.lower().removesuffix(".gz").endswith(_RECORD_SUFFIXES):
        raise InputError(f"{path} holds records, not one text per line: name the field with the text, e.g. "
                         "--exact-field text (without it, --exact reads plain-text or tab-separated lines).")
    texts: list[str] = []
    for n, line in enumerate(_read(path, "exact").splitlines(), start=1):
        if not line.strip():
            continue
        cells = line.split("\t")
        try:
            texts.append(cells[column])
        except IndexError:
            raise InputError(f"{path}, line {n}: has {len(cells)} tab-separated column(s); --exact-column "
                             f"{column} is out of range. Use -1 for the last column.") from None
    if not texts:
        raise InputError(f"{path}: no rows; expected one text per line (label<TAB>text, or plain text).")
    return texts


def _records(path: Path, what: str) -> list[tuple[int, dict[str, Any]]]:
    """``(line, record)`` of any file ``curate ingest`` reads (JSONL, a JSON array, CSV/TSV with a header line,
    Parquet; ``.gz`` too). A row that cannot be read, or is not a record of named fields, is an error naming its
    line: a benchmark on half a file would report the wrong figure."""
    if not path.is_file():
        raise SourceNotFoundError(f"{path}: no such file (the {what} data).")
    rows: list[tuple[int, dict[str, Any]]] = []
    for line, data in read_every_row(path, f"{what} data"):
        if not isinstance(data, dict):
            raise InputError(f"{path}, line {line}: expected a record with named fields (a JSON object, a CSV "
                             f"row); found {type(data).__name__}.")
        rows.append((line, data))
    if not rows:
        raise InputError(f"{path}: no records.")
    return rows


def read_objects(path: Path, what: str) -> list[dict[str, Any]]:
    """The records of ``path`` (see :func:`_records`), in file order."""
    return [row for _, row in _records(path, what)]


def _check_fields(path: Path, rows: list[dict[str, Any]], fields: Sequence[str], option: str) -> None:
    if not any(f in row for row in rows for f in fields):
        keys = sorted({k for row in rows[:100] for k in row})
        raise InputError(f"{path}: no record has any of the fields {', '.join(fields)} ({option}); the records "
                         f"have {', '.join(keys) or 'no fields'}.")


def bench_exact(path: Path, *, column: int = -1, field: str | None = None) -> dict[str, Any]:
    """Exact duplicates found vs the independent raw-text count, and documents per second (texts as
    :func:`read_texts` reads them)."""
    texts = read_texts(path, column, field)
    expected = len(texts) - len(set(texts))  # independent count: a plain set over the raw texts
    t0 = time.perf_counter()
    ids = exact_clusters(texts)
    seconds = max(time.perf_counter() - t0, 1e-9)
    first_seen: dict[str, int] = {}
    found = 0
    for i, t in enumerate(texts):
        j = first_seen.setdefault(t, i)
        if j != i and ids[i] == ids[j]:
            found += 1
    removed = int(len(texts) - len(set(ids.tolist())))
    return {"file": str(path), "column": column if field is None else field, "rows": len(texts),
            "expected_exact_duplicates": expected,
            "found_exact_duplicates": found, "all_found": found == expected,
            "removed_by_normalised_exact": removed, "extra_merged_by_normalisation": removed - expected,
            "seconds": round(seconds, 4), "docs_per_s": round(len(texts) / seconds)}


def _tune(texts: list[str], group: Any, pairs: Any, say: Say) -> list[dict[str, Any]]:
    grid: list[dict[str, Any]] = []
    for shingle, ks in SHINGLE_GRID:
        for k in ks:
            for num_perm in PERM_GRID:
                mhs, values, _ = signatures(texts, MinHashParams(shingle=shingle, k=k, num_perm=num_perm))
                for thr in THRESHOLD_GRID:
                    p = MinHashParams(shingle=shingle, k=k, num_perm=num_perm, threshold=thr)
                    s = score_clusters(clusters_from_pairs(len(texts), lsh_pairs(mhs, values, p)), group, pairs)
                    grid.append({"shingle": shingle, "k": k, "num_perm": num_perm, "threshold": thr,
                                 "recall": s["recall"], "precision": s["precision"]})
                    say(f"  tune {shingle} k={k} perm={num_perm} thr={thr}: R={s['recall']} P={s['precision']}")
    return grid


def bench_minhash(path: Path, fields: Sequence[str] = DEFAULT_MINHASH_FIELDS, *, seed: int = DEFAULT_SEED,
                  n_orig: int = 1000, n_unrelated: int = 2000, say: Say = _quiet) -> dict[str, Any]:
    """Tune MinHash settings on one split of synthetic near-copies; recall / precision on a disjoint split."""
    if n_orig < 2 or n_unrelated < 0:
        raise InputError(f"--n-originals must be >= 2 and --n-unrelated >= 0; got {n_orig} and {n_unrelated}.")
    fields = list(fields)
    data = read_objects(path, "minhash")
    _check_fields(path, data, fields, "--minhash-fields")
    rows = ["\n".join(str(r.get(f) or "") for f in fields if r.get(f)) for r in data]
    seen: dict[str, int] = {}
    for i, t in enumerate(rows):
        if t.strip():
            seen.setdefault(normalise_for_dedup(t), i)
    unique = np.array(sorted(seen.values()), dtype=np.intp)
    rng = np.random.default_rng(seed)
    perm = rng.permutation(unique)
    n_tune_o, n_tune_u = n_orig // 2, n_unrelated // 2
    need = n_tune_o + n_tune_u + n_orig + n_unrelated
    if need > len(perm):
        raise InputError(f"--n-originals {n_orig} / --n-unrelated {n_unrelated} need {need} distinct rows (half "
                         f"again for the tuning split); {path} has {len(perm)}. Pass smaller numbers.")
    cuts = np.cumsum([n_tune_o, n_tune_u, n_orig])
    tune = make_split(rows, perm[:cuts[0]], perm[cuts[0]:cuts[1]], rng)
    evaluation = make_split(rows, perm[cuts[1]:cuts[2]], perm[cuts[2]:need], rng)
    grid = _tune(*tune, say)
    ok = [g for g in grid if g["precision"] >= 0.99] or grid
    # ties: the highest threshold (most precision margin), then fewer permutations (faster)
    best = max(ok, key=lambda g: (g["recall"], g["precision"], g["threshold"], -g["num_perm"]))
    chosen = MinHashParams(shingle=best["shingle"], k=best["k"], num_perm=best["num_perm"],
                           threshold=best["threshold"])
    t0 = time.perf_counter()
    mhs, values, _ = signatures(evaluation[0], chosen)
    ids = clusters_from_pairs(len(evaluation[0]), lsh_pairs(mhs, values, chosen))
    seconds = max(time.perf_counter() - t0, 1e-9)
    result = score_clusters(ids, evaluation[1], evaluation[2])
    return {"file": str(path), "seed": seed, "fields": fields,
            "tuning_split": {"originals": n_tune_o, "variants": n_tune_o * len(KINDS), "unrelated": n_tune_u},
            "eval_split": {"originals": n_orig, "variants": n_orig * len(KINDS), "unrelated": n_unrelated,
                           "texts": len(evaluation[0])},
            "chosen": {"shingle": chosen.shingle, "k": chosen.k, "num_perm": chosen.num_perm,
                       "threshold": chosen.threshold, "verify": chosen.verify, "seed": chosen.seed},
            "tuning_at_chosen": best, "eval": result,
            "targets_met": result["recall"] >= 0.95 and result["precision"] >= 0.99,
            "seconds": round(seconds, 3), "docs_per_s": round(len(evaluation[0]) / seconds), "grid": grid}


def read_pairs(path: Path, fields: Sequence[str] = DEFAULT_SEMANTIC_FIELDS) -> list[tuple[str, str, float]]:
    """``(sentence 1, sentence 2, score)`` of every record of ``path`` (JSONL, CSV/TSV, ... as :func:`_records`);
    ``fields`` names those three columns."""
    if len(fields) != 3:
        raise InputError(f"--semantic-fields needs three names (sentence 1, sentence 2, score); got {list(fields)}.")
    s1, s2, sc = fields
    out: list[tuple[str, str, float]] = []
    for n, r in _records(path, "semantic"):
        try:
            out.append((str(r[s1]), str(r[s2]), float(r[sc])))
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError(f"{path}, line {n}: needs the fields {s1}, {s2} (text) and {sc} (a number) "
                             f"(--semantic-fields); {type(exc).__name__}: {exc}") from exc
    return out


def bench_semantic(path: Path, fields: Sequence[str] = DEFAULT_SEMANTIC_FIELDS, *, cache_dir: Path | None = None,
                   limit: int | None = None, embedder: Embedder | None = None) -> dict[str, Any]:
    """MiniLM cosine of positive (4.5-5) vs negative (0-1) pairs: ROC AUC, thresholds, documents per second."""
    from sklearn.metrics import precision_recall_curve, precision_score, recall_score, roc_auc_score

    pos_neg = [(a, b, s >= 4.5) for a, b, s in read_pairs(path, fields) if s >= 4.5 or s <= 1.0]
    if limit:
        pos_neg = pos_neg[:limit]
    y = np.array([p[2] for p in pos_neg], dtype=bool)
    if not y.any() or y.all():
        raise InputError(f"{path}: needs pairs scored 4.5-5 and pairs scored 0-1 (on the 0-5 scale); found "
                         f"{int(y.sum())} and {int((~y).sum())}" + (" (raise --semantic-limit)" if limit else ""))
    sentences = sorted({t for a, b, _ in pos_neg for t in (a, b)})
    embedder = embedder or Embedder("minilm", cache_dir=cache_dir)
    t0 = time.perf_counter()
    vectors = embedder.embed_texts(sentences)
    embed_seconds = max(time.perf_counter() - t0, 1e-9)
    row = {t: i for i, t in enumerate(sentences)}
    cos = (vectors[[row[p[0]] for p in pos_neg]] * vectors[[row[p[1]] for p in pos_neg]]).sum(axis=1)
    auc = float(roc_auc_score(y, cos))
    prec, rec, thr = precision_recall_curve(y, cos)
    prec, rec = prec[:-1], rec[:-1]
    f1 = 2 * prec * rec / np.maximum(prec + rec, 1e-12)
    i_f1 = int(np.argmax(f1))
    ok = np.flatnonzero(prec >= 0.99)
    i_rec = int(ok[0]) if ok.size else i_f1  # thresholds ascend: the first index is the lowest threshold
    t0 = time.perf_counter()
    pairs = semantic_pairs(vectors, threshold=float(thr[i_rec]), backend="numpy")
    search_seconds = max(time.perf_counter() - t0, 1e-9)

    def r4(x: Any) -> float:
        return round(float(x), 4)

    return {"file": str(path), "positives (4.5-5)": int(y.sum()), "negatives (0-1)": int((~y).sum()),
            "roc_auc": r4(auc),
            "recommended_threshold": {"cosine": r4(thr[i_rec]), "precision": r4(prec[i_rec]),
                                      "recall": r4(rec[i_rec]), "rule": "lowest cosine with precision >= 0.99"},
            "f1_best_threshold": {"cosine": r4(thr[i_f1]), "precision": r4(prec[i_f1]), "recall": r4(rec[i_f1]),
                                  "f1": r4(f1[i_f1])},
            "at_fixed_thresholds": {f"{t}": {"precision": r4(precision_score(y, cos >= t, zero_division=0)),
                                             "recall": r4(recall_score(y, cos >= t))} for t in (0.8, 0.85, 0.9)},
            "mean_cosine": {"positives": r4(cos[y].mean()), "negatives": r4(cos[~y].mean())},
            "unique_sentences": len(sentences), "embed_seconds": round(embed_seconds, 2),
            "embed_docs_per_s": round(len(sentences) / embed_seconds, 1),
            "search_seconds": round(search_seconds, 3), "search_docs_per_s": round(len(sentences) / search_seconds),
            "search_pairs_found": len(pairs), "embedding_cache": str(cache_dir) if cache_dir else None}


def run(*, exact: Path | None = None, minhash: Path | None = None, semantic: Path | None = None,
        exact_column: int = -1, exact_field: str | None = None, minhash_fields: Sequence[str] = DEFAULT_MINHASH_FIELDS,
        semantic_fields: Sequence[str] = DEFAULT_SEMANTIC_FIELDS, seed: int = DEFAULT_SEED, n_originals: int = 1000,
        n_unrelated: int = 2000, semantic_limit: int | None = None, cache_dir: Path | None = None,
        embedder: Embedder | None = None, missing: Literal["skip", "error"] = "skip",
        say: Say = _quiet) -> dict[str, Any]:
    """Run the parts whose file is given; returns the figures (JSON-ready).

    A part without a file is recorded as ``{"skipped": reason}``; so is one whose file does not exist when
    ``missing="skip"`` (with ``"error"`` that raises :class:`~curate.errors.SourceNotFoundError`). ``say`` gets
    one line per step (progress). ``embedder`` replaces MiniLM for the semantic part (tests).
    """
    if exact is None and minhash is None and semantic is None:
        raise InputError("give at least one data file: --exact FILE (one text per line, or records with "
                         "--exact-field), --minhash FILE (records) or --semantic FILE (scored sentence pairs).")
    out: dict[str, Any] = {"machine": {"python": platform.python_version(), "cpus": os.cpu_count()}}
    parts: tuple[tuple[str, Path | None, Callable[[Path], dict[str, Any]]], ...] = (
        ("exact", exact, lambda p: bench_exact(p, column=exact_column, field=exact_field)),
        ("minhash", minhash, lambda p: bench_minhash(p, minhash_fields, seed=seed, n_orig=n_originals,
                                                     n_unrelated=n_unrelated, say=say)),
        ("semantic", semantic, lambda p: bench_semantic(p, semantic_fields, cache_dir=cache_dir,
                                                        limit=semantic_limit, embedder=embedder)),
    )
    for name, path, bench in parts:
        if path is None:
            say(f"[{name}] skipped: no file given")
            out[name] = {"skipped": "no file given"}
        elif not path.exists() and missing == "skip":
            say(f"[{name}] skipped: data file {path} not found")
            out[name] = {"skipped": f"{path} not found"}
        elif not path.exists():
            raise SourceNotFoundError(f"{path}: no such file (--{name}).")
        else:
            say(f"[{name}] running on {path}")
            out[name] = bench(path)
    wanted = {"exact": ("exact", "docs_per_s"), "minhash": ("minhash", "docs_per_s"),
              "semantic_embed_minilm": ("semantic", "embed_docs_per_s"),
              "semantic_search_given_embeddings": ("semantic", "search_docs_per_s")}
    out["docs_per_s"] = {name: out[part][key] for name, (part, key) in wanted.items() if key in out[part]}
    return out


def summary_rows(results: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    """``(part, result, settings, docs/s)`` rows for printing (the tuning grid is left out)."""
    rows: list[tuple[str, str, str, str]] = []
    for part in ("exact", "minhash", "semantic"):
        r = results.get(part)
        if r is None:
            continue
        if "skipped" in r:
            rows.append((part, f"skipped: {r['skipped']}", "", ""))
        elif part == "exact":
            rows.append((part, f"found {r['found_exact_duplicates']:,} / {r['expected_exact_duplicates']:,} exact "
                               f"duplicates ({'all' if r['all_found'] else 'NOT all'}); "
                               f"+{r['extra_merged_by_normalisation']:,} merged by normalisation",
                         f"{r['rows']:,} rows, column {r['column']}", f"{r['docs_per_s']:,}"))
        elif part == "minhash":
            e, c = r["eval"], r["chosen"]
            rows.append((part, f"recall {e['recall']:.4f}, precision {e['precision']:.4f} "
                               f"({'targets met' if r['targets_met'] else 'targets NOT met'})",
                         f"{c['shingle']} k={c['k']}, {c['num_perm']} perm, threshold {c['threshold']}; "
                         f"{r['eval_split']['texts']:,} texts", f"{r['docs_per_s']:,}"))
        else:
            t = r["recommended_threshold"]
            rows.append((part, f"ROC AUC {r['roc_auc']:.4f}; at cosine {t['cosine']:.4f}: precision "
                               f"{t['precision']:.4f}, recall {t['recall']:.4f}",
                         f"{r['positives (4.5-5)']:,} positive / {r['negatives (0-1)']:,} negative pairs",
                         f"embed {r['embed_docs_per_s']:,}, search {r['search_docs_per_s']:,}"))
    return rows
