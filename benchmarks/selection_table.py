"""The README's selection table from the three suites' JSON (run last by ``make bench-selection``).

Reads ``benchmarks/results/selection_classify.json`` (and its ``_words_cv``, ``_words`` and ``_batch20`` variants,
label-teach's defaults alone at batch 20, and ``unseen_classify/<set>[_batch20]/*.json``: sets nothing was chosen on),
``selection_preference.json`` (and ``selection_preference_smollm2.json`` when present), the repeated-splits runs
``preference_splits_*.json``, ``rewrite_budget.json``, ``rewrite_budget_drafts.json`` and ``rewrite_budget_lora.json``,
writes ``benchmarks/results/selection.json`` (one row per data set: the strategy chosen on the other sets, its
left-out ratio with per-seed interval, accuracy or recall, target, met or not) and prints the rows as Markdown.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"


def _ci(value: Any) -> list[float] | None:
    if isinstance(value, dict):
        value = value.get("ci95")
    return [round(float(v), 2) for v in value] if value else None


def _row(task: str, name: str, chosen: str, ratio: float | None, ci: list[float] | None, target: float,
         detail: str, extra_ok: bool = True) -> dict[str, Any]:
    met = ratio is not None and ratio >= target and ci is not None and ci[0] > 1.0 and extra_ok
    return {"task": task, "set": name, "chosen_on_the_other_sets": chosen,
            "left_out_ratio": None if ratio is None else round(float(ratio), 2), "per_seed_ci95": ci,
            "target": target, "met": met, "detail": detail}


def _per_seed_ci(values: list[float]) -> list[float] | None:
    from curate.bench.label_efficiency_metrics import t_interval

    return _ci(t_interval(values))


def _load(name: str, script: str) -> dict[str, Any] | None:
    path = RESULTS / name
    if not path.exists():
        print(f"note: {path} missing (run {script})", file=sys.stderr)
        return None
    return dict(json.loads(path.read_text()))


def _kind_recall(result: dict[str, Any], strategy: str, kind: str) -> float | None:
    """Mean over seeds of ``strategy``'s recall of damage ``kind`` at the largest budget (None: no such damage)."""
    found = [run[-1]["recall_by_kind"][kind] for run in result["per_seed"][strategy]
             if kind in run[-1]["recall_by_kind"]]
    return sum(found) / len(found) if found else None


def _rewrite_rows(file: str, task: str, flags: str) -> list[dict[str, Any]]:
    data = _load(file, "benchmarks/bench_rewrite_budget.py" + flags)
    out = []
    for name, r in (data or {}).get("leave_one_out", {}).items():
        detail = f"damaged rows found {r['recall_here']:.0%} (random finds the budget's share)"
        drafts = _kind_recall(data["sets"][name], r["chosen_on_the_others"], "draft")  # type: ignore[index]
        if drafts is not None:
            random = _kind_recall(data["sets"][name], "random", "draft")  # type: ignore[index]
            detail += f"; of the drafts {drafts:.0%}" + ("" if random is None else f" (random {random:.0%})")
        out.append(_row(task, name, r["chosen_on_the_others"], r["ratio_here"], _per_seed_ci(r["ratio_per_seed_here"]),
                        2.0, detail))
    return out


SPLITS_FILES = {"ultrafeedback": ("preference_splits_ultrafeedback_smollm2.json",
                                  "preference_splits_ultrafeedback_smollm2_bald_coverage.json",
                                  "preference_splits_ultrafeedback_smollm2_bald_per_prompt.json",
                                  "preference_splits_ultrafeedback_smollm2_epig.json"),
                "alpacaeval": ("preference_splits_alpacaeval_smollm2_bald_coverage.json",
                               "preference_splits_alpacaeval_smollm2_variance_novelty.json",
                               "preference_splits_alpacaeval_smollm2_bald_per_prompt.json",
                               "preference_splits_alpacaeval_smollm2_epig.json")}
#: Random against random from other streams (``--null-streams``): how far a ratio on these curves goes by chance.
NULL_FILES = {"ultrafeedback": "preference_splits_ultrafeedback_smollm2_null.json",
              "alpacaeval": "preference_splits_alpacaeval_smollm2_null.json"}


def _null_note(name: str, chosen: str, ratio: float | None, random_mean: list[float]) -> str:
    """``; random vs random ...`` for the row of set ``name`` (candidate ``chosen``) when its null file exists and was
    run on the row's random curves (``random_mean``, the pooled mean curve), else ``""``."""
    from curate.bench.label_efficiency_null import mean_random_line, null_spread, p_values

    if name not in NULL_FILES:
        return ""
    data = _load(NULL_FILES[name], "benchmarks/bench_preference_splits.py --null-streams (see the Makefile)")
    if data is None or "null" not in data:
        return ""
    if data["curves"]["random"]["mean"] != random_mean:
        print(f"note: {NULL_FILES[name]} was run on other random curves than the {name} row's; rerun it",
              file=sys.stderr)
        return ""
    null = data["null"]
    p = p_values(null["ratios"], {chosen: ratio})[chosen]
    mean = mean_random_line(null, chosen)
    return (f"; random against random from {null['streams']} other streams reads {null_spread(null)}, its per-seed "
            f"interval above 1 in {null['per_seed_ci_above_1']}: p = {p:.2f} for this ratio" + (f"; {mean}" if mean
                                                                                                 else ""))


def _splits_rows() -> list[dict[str, Any]]:
    """Preference over repeated pool/test splits: each judge set left out, the candidate the suites' rule
    (:func:`curate.bench.classify_suite.choose`) picks on the other one among candidates run on both, and its ratio
    on the left-out set."""
    from curate.bench.classify_suite import choose

    runs: dict[str, dict[str, Any]] = {}
    for name, files in SPLITS_FILES.items():
        for file in files:
            data = _load(file, "benchmarks/bench_preference_splits.py (see the Makefile's bench-selection)")
            if data is None:
                continue
            merged = runs.setdefault(name, {"ratios": {}, "gain": {}, "rises": data["random_curve_rises"],
                                            "shape": f"{len(data['splits'])} splits x {data['seeds_per_split']} seeds",
                                            "random": data["curves"]["random"]["mean"]})
            merged["ratios"].update(data["ratios"])
            merged["gain"].update(data["mean_gain_over_random"])
    out = []
    for left, other in (("alpacaeval", "ultrafeedback"), ("ultrafeedback", "alpacaeval")):
        if left not in runs or other not in runs:
            continue
        shared = [c for c in runs[other]["ratios"] if c in runs[left]["ratios"]]
        chosen = choose({other: {c: runs[other]["ratios"][c]["ratio"] for c in shared}}, [other])["chosen"]
        if chosen == "random":  # every shared candidate lost to random on the other set
            continue
        r, gain = runs[left]["ratios"][chosen], runs[left]["gain"][chosen]
        lo, hi = gain["ci95"]
        out.append(_row("preference, SmolLM2 features, repeated splits", left, chosen, r["ratio"],
                        _ci(r["per_seed_ci"]), 1.5,
                        f"{runs[left]['shape']}; chosen among {', '.join(shared)} (ratio "
                        f"{runs[other]['ratios'][chosen]['ratio']:.2f} on {other}); mean gain over the budgets "
                        f"{gain['mean']:+.3f} [{lo:+.3f}, {hi:+.3f}]" + ("" if runs[left]["rises"] else
                                                                        "; random's curve flat")
                        + _null_note(left, chosen, r["ratio"], runs[left]["random"]),
                        extra_ok=bool(runs[left]["rises"])))
    return out


DBAL = "prefilter-centroid-margin"
#: label-teach's strategy alone against random at its own 20 labels per round, one file per set.
DEFAULT_BATCH20 = ("banking77", "trec6", "ag_news")
#: Classification sets no default or classifier was chosen on, run once through ``curate bench label-efficiency``.
UNSEEN = {"trec50": "TREC fine labels (47 classes; TREC-6's questions)", "sms_spam": "SMS spam (2 classes)"}


def _default_rows() -> list[dict[str, Any]]:
    """label-teach's defaults at 20 labels per round: the only candidate, so these rows are not left-out choices."""
    out = []
    for name in DEFAULT_BATCH20:
        data = _load(f"selection_classify_words_cv_batch20_{name}.json",
                     "benchmarks/bench_selection_classify.py (see the Makefile's bench-selection)")
        r = (data or {}).get("default", {}).get("per_set", {}).get(name)
        if r is None:
            continue
        out.append(_row("classify, label-teach's defaults at its 20 labels per round (the only candidate)", name,
                        f"{data['default']['chosen']} (not chosen: run alone)", r["ratio"],  # type: ignore[index]
                        _ci(r["per_seed_ci"]), 2.0,
                        f"final accuracy {r['final_accuracy']:.3f} vs random {r['random_final_accuracy']:.3f}; "
                        f"mean gain over the budgets {r['mean_gain_over_random']:+.3f}"))
    return out


def _unseen_rows() -> list[dict[str, Any]]:
    """label-teach's strategy and features on sets nothing was chosen on (``benchmarks/results/unseen_classify``)."""
    out = []
    for name, what in UNSEEN.items():
        for suffix, batch in (("", 100), ("_batch20", 20)):
            data = _load(f"unseen_classify/{name}{suffix}/label_efficiency_classify_minilm+words.json",
                         "the Makefile's bench-selection")
            if data is None:
                continue
            run = data["runs"]["noise_0"]
            r, gain = run["ratios"][DBAL], run["mean_gain_over_random"][DBAL]
            final, curves = run["final_accuracy"], run["curves"]
            first = curves[DBAL]["mean"][1] - curves["random"]["mean"][1]  # the first round after the seed set
            out.append(_row(f"classify, a set nothing was chosen on, batch {batch} (`curate bench label-efficiency`)",
                            f"{name}: {what}", "label-teach's (prefilter-centroid-margin, minilm+words)",
                            r["ratio"], _ci(r["per_seed_ci"]), 2.0,
                            f"{data['config']['seeds']} seeds; final accuracy {final[DBAL]['mean']:.3f} vs random "
                            f"{final['random']['mean']:.3f} (whole pool {run['full_pool_accuracy']:.3f}); mean gain "
                            f"over the budgets {gain['mean']:+.3f}; at the first round ({run['budgets'][1]} labels) "
                            f"{first:+.3f}"))
    return out


def rows() -> list[dict[str, Any]]:
    """Every left-out row the three suites' JSON files hold (missing files are skipped with a note)."""
    out: list[dict[str, Any]] = []
    for file, task in (("selection_classify.json", "classify"),
                       ("selection_classify_words_cv.json",
                        "classify, `--embedder minilm+words`, words read where they help (label-teach's default)"),
                       ("selection_classify_words.json", "classify, `--embedder minilm+words`, words always read "
                                                         "(until 2026-12-06)"),
                       ("selection_classify_batch20.json", "classify, 20 labels per round (label-teach's)")):
        data = _load(file, "benchmarks/bench_selection_classify.py (see the Makefile's bench-selection)")
        for name, r in (data or {}).get("leave_one_out", {}).items():
            out.append(_row(task, name, r["chosen"], r["ratio"], _ci(r.get("per_seed_ci")), 2.0,
                            f"final accuracy {r['final_accuracy']:.3f} vs random {r['random_final_accuracy']:.3f}; "
                            f"mean gain over the budgets {r['mean_gain_over_random']:+.3f}"))
    out += _default_rows()
    out += _unseen_rows()
    for file, task, extra in (("selection_preference.json", "preference", ""),
                              ("selection_preference_smollm2.json", "preference, SmolLM2 features",
                               " --features smollm2")):
        data = _load(file, "benchmarks/bench_selection_preference.py" + extra)
        for name, r in (data or {}).get("leave_one_out", {}).items():
            role = "" if data["sets"][name].get("judge", True) else " (noisy control)"  # type: ignore[index]
            flat = "; random's curve flat" if r["random_curve_flat"] else ""
            seeds = data["sets"][name]["config"]["seeds"]  # type: ignore[index]
            out.append(_row(task, name + role, r["chosen"], r["ratio"], _ci(r.get("per_seed_ci")), 1.5,
                            f"{seeds} seeds; final accuracy {r['final_accuracy']:.3f} vs random "
                            f"{r['random_final_accuracy']:.3f}; mean gain over the budgets "
                            f"{r['mean_gain_over_random']:+.3f}{flat}", extra_ok=not r["random_curve_flat"]))
    out += _splits_rows()
    out += _rewrite_rows("rewrite_budget.json", "rewrite budget", "")
    out += _rewrite_rows("rewrite_budget_drafts.json", "rewrite budget, a weak model's drafts among the damage",
                         " --damage-kinds swapped,truncated,generic,draft")
    data = _load("rewrite_budget_lora.json", "benchmarks/bench_rewrite_budget_lora.py")
    for name, cells in (data or {}).get("summary", {}).items():
        cell, curves = cells[-1], data["random_curve"]  # type: ignore[index]
        runs = data["per_seed"][name]  # type: ignore[index]
        capped = sum(run["cells"][-1]["capped"] for run in runs)
        below = sum(run["cells"][-1]["loss"] < run["cells"][-1]["random_loss"] for run in runs)
        rose = [s for s, c in curves.items() if any(b[1] > a[1] for a, b in zip(c, c[1:], strict=False))]
        costs = ", ".join(f"{c[0][1] - c[-1][1]:.4f}" for c in curves.values())
        out.append(_row("rewrite budget, LoRA held-out loss", "alpaca_5000", f"{name} (the sft-select default)",
                        cell["ratio_vs_random"], _per_seed_ci(cell["ratio_per_seed"]), 2.0,
                        f"{len(curves)} seeds; loss after {cell['k']} rewrites {cell['loss']:.4f} vs random's "
                        f"{cell['random_loss']:.4f}, lower than random's at {cell['k']} in {below} of {len(runs)}; at "
                        f"the cap (below random's every-row-rewritten loss) in {capped} of {len(curves)}; the damage "
                        f"costs {costs} nats of held-out loss per seed"
                        + (f"; random's curve rises with k in seed {', '.join(rose)}: noise above the damage's "
                           "cost" if rose else ""), extra_ok=not rose))
    return out


def markdown(table: list[dict[str, Any]]) -> str:
    """The rows as a Markdown table."""
    lines = ["| task | data set (left out) | chosen on the others | ratio vs random | per-seed 95% CI | target | "
             "met | detail |", "|---|---|---|---|---|---|---|---|"]
    for r in table:
        ratio = "never reached" if r["left_out_ratio"] is None else f"{r['left_out_ratio']:.2f}"
        lines.append(f"| {r['task']} | {r['set']} | {r['chosen_on_the_other_sets']} | {ratio} | "
                     f"{r['per_seed_ci95']} | {r['target']} | {'yes' if r['met'] else '**no**'} | {r['detail']} |")
    return "\n".join(lines)


def main() -> None:
    sys.path.insert(0, str(RESULTS.parents[1]))
    table = rows()
    (RESULTS / "selection.json").write_text(json.dumps({"rows": table, "markdown": markdown(table)}, indent=1) + "\n")
    print(markdown(table))


if __name__ == "__main__":
    main()
