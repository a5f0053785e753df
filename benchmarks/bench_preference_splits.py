"""Preference acquisition vs random over repeated pool/test splits (see :mod:`curate.bench.preference_splits`).

The preference suite measures on one seeded split per set; on UltraFeedback's 250 test pairs that split alone moves
a curve by more than random gains over its budget. This runs the candidates on ``--splits`` seeded splits, ``--seeds``
loop seeds each, and pools the curves. Finished splits are kept in ``--resume-dir``: a rerun (or one after Ctrl-C)
runs only the rest. Writes ``benchmarks/results/preference_splits_<set>_<features>.json`` and a plot beside it.

Usage::

    .venv/bin/python benchmarks/bench_preference_splits.py [--set ultrafeedback] [--splits 10] [--seeds 3]
        [--candidates all|novelty,variance-novelty(1),...] [--features smollm2|tfidf] [--null-streams 20]
        [--only-splits 3,4]

``--null-streams N`` runs random sampling N more times from other random streams (same splits, seeds and seed sets)
and reports the ratio each reads against random: the ratio's null distribution on this set, and each candidate's
p-value in it. On flat curves a ratio far from 1 can be chance; this says how far chance goes. ``--curves-from
EARLIER.json`` pools an earlier run's candidates (same set, splits and seeds; random's curves must be identical) with
this run's, so they are read against its null streams too, without running their loops again.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

DATA = ROOT.parent / "shared" / "data"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--set", default="ultrafeedback", help="one of the preference suite's sets")
    parser.add_argument("--splits", type=int, default=10, help="seeded pool/test splits (split seeds 0..N-1)")
    parser.add_argument("--only-splits", default=None,
                        help="comma list of split seeds to run now, e.g. 3,4 in a second process; finished splits "
                             "are kept in --resume-dir, and the run without it reads them back and pools them")
    parser.add_argument("--seeds", type=int, default=3, help="loop seeds per split")
    parser.add_argument("--candidates", default="all",
                        help="comma list of the preference suite's candidate names (or of MORE_CANDIDATES, e.g. "
                             "bald-coverage(3)), or all of the suite's (default)")
    parser.add_argument("--features", default="smollm2", choices=("tfidf", "smollm2"))
    parser.add_argument("--null-streams", type=int, default=0,
                        help="random sampling again from N other streams: random vs random, the ratio's null")
    parser.add_argument("--curves-from", type=Path, default=None,
                        help="an earlier run's JSON (same set, splits and seeds): its candidates are pooled too, "
                             "read against this run's null streams without running their loops again")
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--cache-dir", type=Path, default=ROOT / ".bench-cache")
    parser.add_argument("--resume-dir", type=Path, default=ROOT / ".bench-cache" / "preference_splits")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()

    from threadpoolctl import threadpool_limits

    from curate.bench.label_efficiency import rich_progress
    from curate.bench.label_efficiency_plot import plot_report
    from curate.bench.preference_splits import add_curves, as_report, pool_splits, run_splits
    from curate.bench.preference_suite import CANDIDATES, MORE_CANDIDATES, shared_preference_set

    pset, skipped = shared_preference_set(args.data, args.set)
    if pset is None:
        print(skipped)
        return
    names = list(CANDIDATES) if args.candidates == "all" else [c.strip() for c in args.candidates.split(",")
                                                                 if c.strip()]
    known = {**CANDIDATES, **MORE_CANDIDATES}
    unknown = [c for c in names if c not in known]
    if unknown:
        sys.exit(f"--candidates: unknown {', '.join(unknown)}; choose from {', '.join(known)}.")
    out = args.out or ROOT / "benchmarks" / "results" / f"preference_splits_{pset.name}_{args.features}.json"
    with threadpool_limits(limits=1), rich_progress(transient=True) as progress:
        splits = [int(x) for x in args.only_splits.split(",")] if args.only_splits else list(range(args.splits))
        reports = run_splits(pset, {c: known[c] for c in names}, splits=splits,
                             seeds=args.seeds, features=args.features, cache_dir=args.cache_dir,
                             resume_dir=args.resume_dir, progress=progress, say=print,
                             null_streams=args.null_streams)
    if args.only_splits:
        print(f"ran splits {args.only_splits}; kept in {args.resume_dir} (pool them with a run without --only-splits)")
        return
    if args.curves_from is not None:
        reports = add_curves(reports, json.loads(args.curves_from.read_text(encoding="utf-8")))
    pooled = pool_splits(reports)
    pooled["command"] = ".venv/bin/python " + shlex.join(
        [str(Path(sys.argv[0]).resolve().relative_to(ROOT)), *sys.argv[1:]])
    written = plot_report(as_report(pooled), out.with_suffix(".png")).resolve()
    pooled["plot"] = str(written.relative_to(ROOT) if written.is_relative_to(ROOT) else written)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(pooled, indent=1) + "\n", encoding="utf-8")
    rise = pooled["random_rise"]
    print(f"{pset.name}, {len(reports)} splits x {args.seeds} seeds: random rises {rise['mean']:+.4f} over the "
          f"second half (95% CI {rise.get('ci95')}; rises: {pooled['random_curve_rises']})")
    for name, r in pooled["ratios"].items():
        gain = pooled["mean_gain_over_random"][name]
        ratio = "never reached" if r["ratio"] is None else f"{r['ratio']:.2f}"
        print(f"  {name}: ratio {ratio} (per-seed CI {r['per_seed_ci'].get('ci95')}), mean gain "
              f"{gain['mean']:+.4f} {gain.get('ci95')}; per split {pooled['per_split_ratio'][name]}"
              + (f"; p = {pooled['null']['p_value'][name]} against the null" if "null" in pooled else ""))
    if "null" in pooled:
        null = pooled["null"]
        from curate.bench.label_efficiency_null import mean_random_line, null_spread

        print(f"  random vs random, {null['streams']} streams: ratios {null_spread(null)}, "
              f"mean gains {null['mean_gain_range'][0]:+.4f} to {null['mean_gain_range'][1]:+.4f}; per-seed interval "
              f"above 1 in {null['per_seed_ci_above_1']} of {null['streams']}")
        for name in null.get("mean_random", {}).get("ratios", {}):
            print(f"  {mean_random_line(null, name)}")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
