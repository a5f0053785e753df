"""The dataset card (README.md) written beside every export, and pseudonymous annotator ids.

The card states what a user of the data needs to trust it: counts per split, the label-schema version, the
rounds and strategies the labels came from, how many people labelled (pseudonymous ids, never names), their
agreement, the PII policy applied to the workspace and what it found in the annotators' own texts, the licence and
the content hash.
"""

from __future__ import annotations

import hashlib
import hmac
from collections import Counter
from typing import Any

from sqlalchemy import func, select

from curate.store.workspace import Workspace


def pseudonym(ws: Workspace, name: str) -> str:
    """A stable pseudonymous id for an annotator: ``annotator-`` + 10 hex of an HMAC keyed by the workspace salt."""
    from curate.filters.pii_workspace import workspace_salt

    return "annotator-" + hmac.new(workspace_salt(ws), name.encode(), hashlib.sha256).hexdigest()[:10]


def pii_policy(ws: Workspace) -> str:
    """One line on the PII policy recorded in the workspace (actions and findings by type), or that none was."""
    from curate.store.schema import PiiFinding

    with ws.store.read() as conn:
        rows = conn.execute(select(PiiFinding.action, PiiFinding.entity_type, func.count())
                            .group_by(PiiFinding.action, PiiFinding.entity_type)).all()
    if not rows:
        return "no PII findings recorded (PII filtering was not run, or found nothing)"
    actions = Counter[str]()
    types = Counter[str]()
    for action, entity, n in rows:
        actions[str(action)] += int(n)
        types[str(entity)] += int(n)
    return (", ".join(f"{a}: {n}" for a, n in sorted(actions.items())) + " findings ("
            + ", ".join(f"{t} {n}" for t, n in types.most_common()) + "); values are never stored in clear")


def _agreement_lines(ws: Workspace) -> list[str]:
    from curate.annotate.agreement import agreement_report

    lines = []
    for task_type, fig in agreement_report(ws.store)["agreement"].items():
        kappas = [p["kappa"] for p in fig["pairs"] if p["kappa"] is not None]
        mean = f"{sum(kappas) / len(kappas):.3f}" if kappas else "n/a"
        alpha = "n/a" if fig["alpha"] is None else f"{fig['alpha']:.3f}"
        lines.append(f"| {task_type} | {fig['items']} | {mean} | {alpha} |")
    return lines


def dataset_card(ws: Workspace, manifest: dict[str, Any], provenance: list[dict[str, Any]]) -> str:
    """Markdown card for an export described by ``manifest`` (see :func:`curate.export.writer.export`)."""
    annotators = sorted({p["annotator"] for p in provenance})
    counts = "\n".join(f"| {split} | {n:,} |" for split, n in manifest["counts"].items())
    dropped = ", ".join(f"{k}: {v}" for k, v in sorted(manifest["dropped"].items()) if v) or "none"
    strategies = "\n".join(f"- `{s}`: {n} rows" for s, n in sorted(manifest["strategies"].items())) or "- none"
    random_rows = sum(1 for p in provenance if p["random_mix"])
    agreement = _agreement_lines(ws)
    agreement_table = ("| task type | items with 2+ answers | mean Cohen's kappa | Krippendorff's alpha |\n"
                       "|---|---|---|---|\n" + "\n".join(agreement)) if agreement else "No overlapping answers."
    return f"""---
license: {manifest['license']}
tags: [curate, {manifest['format']}]
---

# curate export: {manifest['format']}

Rows in TRL's column vocabulary ({', '.join(f'`{c}`' for c in manifest['columns'])}), from final annotations only
(a reviewer's decision where answers disagreed). `train` never holds a test or calibration record or a near-copy
of one.

| split | rows |
|---|---|
{counts}

- Label schema: {manifest['label_schema'] or 'none (rank / rewrite guidelines only)'}
- Rounds: {', '.join(map(str, manifest['rounds'])) or 'none'}; rows from the random mix: {random_rows}
- Dropped: {dropped}
- Ties: {manifest['ties']}; candidate orderings: {manifest['pairs']}
- Annotators: {len(annotators)} (pseudonymous ids: {', '.join(annotators) or 'none'})
- PII policy: {pii_policy(ws)}
- PII in annotator texts: {manifest.get('rewrite_pii', {}).get('summary', 'not checked')}
- Licence: {manifest['license']}
- Content hash of the data files: `{manifest['content_hash']}`

## Strategies

{strategies}

## Agreement

{agreement_table}

Provenance of every train row (task, record, annotation, round, strategy, pseudonymous annotator) is in
`provenance.jsonl`, in row order.
"""
