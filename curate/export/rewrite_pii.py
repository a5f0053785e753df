"""PII in what annotators wrote: the rewrites and reviewer decisions an export is about to write.

A workspace's PII policy (``curate ingest --pii ...`` or ``curate filter pii``) cleans the records, but a rewrite
(``{"completion": str, "accepted_as_is": false}``) or a reviewer's merged decision is new text that no filter has
seen. When a policy is in force, :func:`screen_answers` runs the workspace's detector (the same types and minimum
scores, through :class:`curate.filters.pii_workspace.PiiGuard`) over every such text that gives export rows and, by
default (``redact``), writes it with typed placeholders as ingest redaction does; ``keep`` writes it as written.
Both count the findings by type, with the task ids. The stored answers are never changed: the export is derived.

Whether a policy is in force is read from the audit log (:func:`policy_in_force`): every ingest run with ``--pii``
and every ``filter pii`` records its settings in its event, in the transaction that applied them. PII findings rows
are no signal: a policy that found nothing leaves none. A workspace that never ran PII filtering loads no detector.
A rewrite accepted as is exports the record's own (already filtered) completion and is not checked.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from curate.export.rows import RowOptions, training_rows
from curate.ingest.records import Record, as_text
from curate.store.workspace import Workspace

#: ``--pii-rewrites``: ``redact`` annotator texts in the exported files (default), or ``keep`` them as written.
MODES: Final[tuple[str, ...]] = ("redact", "keep")
#: A placeholder already in a text (``<PERSON_1>``): never detected again, and new ones are numbered after it.
_PLACEHOLDER: Final = re.compile(r"<([A-Z][A-Z0-9_]*?)_(\d+)>")
_SHOWN_TASKS: Final = 10


def policy_in_force(ws: Workspace) -> dict[str, Any] | None:
    """The detection settings of the PII policy applied to ``ws``, from its audit log; None when none was.

    Every ingest with ``--pii`` and every ``filter pii`` counts (the records went through all of them), from the
    latest ``filter pii --revise`` on (it starts again from the originals): the union of their types, each type's
    lowest minimum score, the lowest threshold. Allow-lists are stored as a size and digest only, so they cannot be
    applied again (``allow_list_size`` says how many strings were allowed; the export takes them again).
    """
    from curate.filters.pii import DEFAULT_ENTITIES, DEFAULT_THRESHOLD
    from curate.store.audit import recent_events

    applied: list[tuple[int, dict[str, Any]]] = []
    for event in recent_events(ws.store, None, actions=("ingest", "filter.pii")):
        payload = event.payload if isinstance(event.payload, dict) else {}
        if event.action == "filter.pii":
            applied = [*([] if payload.get("revise") else applied), (event.seq, payload)]
        elif event.action == "ingest" and isinstance(payload.get("pii"), dict):
            applied.append((event.seq, payload["pii"]))
    if not applied:
        return None
    types: list[str] = []
    scores: dict[str, float] = {}
    for _, settings in applied:
        chosen = settings.get("types")
        threshold = settings.get("threshold")
        threshold = DEFAULT_THRESHOLD if threshold is None else float(threshold)
        for entity in DEFAULT_ENTITIES if chosen in (None, "default") else chosen:
            types += [] if entity in types else [entity]
            score = float((settings.get("min_scores") or {}).get(entity, threshold))
            scores[entity] = min(score, scores.get(entity, score))
    lowest = min(scores.values())
    return {"action": applied[-1][1].get("action", "redact"), "types": types, "threshold": lowest,
            "min_scores": {t: s for t, s in scores.items() if s != lowest}, "events": [seq for seq, _ in applied],
            "allow_list_size": max(int((s.get("allow_list") or {}).get("size", 0)) for _, s in applied)}


def annotator_text(task_type: str, value: Mapping[str, Any]) -> str | None:
    """The text an annotator or reviewer wrote in an answer, or None (rank and label answers; a rewrite accepted as
    is, which exports the record's own completion)."""
    if task_type != "rewrite" or value.get("accepted_as_is"):
        return None
    text = value.get("completion")
    return text if isinstance(text, str) and text.strip() else None


def _offsets(texts: Iterable[str]) -> dict[str, int]:
    """The highest placeholder number per type in ``texts``: a new value is numbered after those."""
    out: dict[str, int] = {}
    for text in texts:
        for m in _PLACEHOLDER.finditer(text):
            out[m.group(1)] = max(out.get(m.group(1), 0), int(m.group(2)))
    return out


def _redacted(text: str, findings: list[Any], offsets: Mapping[str, int], allow_list: tuple[str, ...]) -> str:
    """``text`` with ``findings`` replaced by typed placeholders numbered after ``offsets`` (a name in a rewrite
    of a record that holds ``<PERSON_1>`` becomes ``<PERSON_2>``)."""
    from curate.filters.pii import Placeholders, record_placeholders, redact

    first = record_placeholders([text], [findings], allow_list=allow_list)
    mapping = {key: f"<{key[0]}_{int(name.rpartition('_')[2][:-1]) + offsets.get(key[0], 0)}>"
               for key, name in first.mapping.items()}
    counts = {t: first.counts.get(t, 0) + offsets.get(t, 0) for t in {*first.counts, *offsets}}
    return redact(text, findings, placeholders=Placeholders(mapping, counts))


@dataclass
class Screened:
    """Annotator texts of an export after the workspace's PII policy.

    Attributes:
        mode: ``redact`` or ``keep``.
        policy: the detection settings (:func:`policy_in_force`); None: no policy, nothing was checked.
        values: task id -> the answer value to export instead of the stored one (texts redacted).
        found: task id -> findings per entity type, for every text checked (empty: none found).
    """

    mode: str
    policy: dict[str, Any] | None
    values: dict[int, dict[str, Any]] = field(default_factory=dict)
    found: dict[int, dict[str, int]] = field(default_factory=dict)

    def report(self, exported: Iterable[int]) -> dict[str, Any]:
        """JSON-ready counts over the tasks in ``exported`` (those whose rows were written), with a one-line
        ``summary`` for consoles and the dataset card."""
        ids = set(exported)
        found = {t: c for t, c in self.found.items() if t in ids}
        hits = sorted(t for t, c in found.items() if c)
        by_type = sum((Counter(found[t]) for t in hits), Counter[str]())
        out = {"checked": self.policy is not None, "mode": self.mode, "texts_checked": len(found),
               "texts_with_pii": len(hits), "redacted": len(hits) if self.mode == "redact" else 0,
               "by_type": dict(sorted(by_type.items())), "task_ids": hits, "policy": self.policy}
        return {**out, "summary": summary(out)}


def summary(report: Mapping[str, Any]) -> str:
    """One line on what :meth:`Screened.report` found and did (what follows "PII in annotator texts: ")."""
    if not report["checked"]:
        return ("not checked: no PII policy was applied to this workspace (rewrites and reviewer decisions are "
                "exported as written)")
    n, hits = report["texts_checked"], report["texts_with_pii"]
    if not hits:
        return f"none found in {n} checked" if n else "none reached this export (nothing to check)"
    types = ", ".join(f"{t} {c}" for t, c in report["by_type"].items())
    tasks = ", ".join(map(str, report["task_ids"][:_SHOWN_TASKS])) + (", ..." if hits > _SHOWN_TASKS else "")
    done = "redacted" if report["mode"] == "redact" else "KEPT AS WRITTEN (--pii-rewrites keep)"
    return f"{hits} of {n} {done}: {types} (task{'s' if hits > 1 else ''} {tasks})"


def screen_answers(ws: Workspace, fmt: str, options: RowOptions, answers: Mapping[int, tuple[str, Any, Any]], *,
                   mode: str = "redact", allow_list: tuple[str, ...] = ()) -> Screened:
    """Check the annotator texts among ``answers`` (task id -> ``(task type, answer value, record fields)``) that
    give ``fmt`` rows, when a PII policy is in force in ``ws``; see the module doc. ``allow_list``: strings never
    treated as PII (the policy's own allow-list is not stored, so give it again)."""
    policy = policy_in_force(ws)
    if policy is not None:
        policy["allow_list_given"] = len(allow_list)
    screened = Screened(mode, policy)
    texts = {tid: text for tid, (task_type, value, fields) in sorted(answers.items())
             if (text := annotator_text(task_type, value)) is not None
             and training_rows(fmt, task_type, fields, value, options)}
    if policy is None or not texts:
        return screened
    from curate.filters.pii_workspace import PiiGuard, PiiOptions, workspace_salt
    from curate.filters.policy import plan_record

    guard = PiiGuard(policy["action"], workspace_salt(ws), allow_list, options=PiiOptions(
        types=tuple(policy["types"]), min_scores=policy["min_scores"], threshold=policy["threshold"]))
    guard.use_cache(ws.cache_dir / "pii")  # batched, and a re-export reads the findings back
    try:
        guard.detector.warm(texts.values())
    finally:
        guard.detector.cache.close()  # the warmed texts are answered from memory
    for tid, text in texts.items():
        plan = plan_record(Record("", "text", {"completion": text}), guard.policy, detector=guard.detector)
        taken = [(m.start(), m.end()) for m in _PLACEHOLDER.finditer(text)]
        findings = [f for f in plan.texts[0].findings if all(f.end <= s or e <= f.start for s, e in taken)]
        screened.found[tid] = dict(Counter(f.entity_type for f in findings))
        if findings and mode == "redact":
            task_type, value, fields = answers[tid]
            offsets = _offsets([text, *(as_text(v) for v in fields.values())])
            screened.values[tid] = {**value, "completion": _redacted(text, findings, offsets, guard.allow_list)}
    return screened
