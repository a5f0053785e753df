"""False positives of PII detection on text with little or no real PII (model outputs, public prompts).

Figures per analyzer, counted over the entity types curate reports by default (``DEFAULT_ENTITIES``) for both:
placeholders per 1,000 words (every finding becomes one placeholder), the share of records that redaction would
change, counts per type, and a seeded sample of up to ``sample_per_type`` findings per type with their context.
A person's verdict per sampled finding is read from a verdicts file (``{key: {"verdict", "note"}}``, key =
:func:`finding_key`), so the checked sample travels with the results; findings not yet checked say so.

Verdicts: ``pii`` (a private person's data), ``not_private`` (a real name or place, but public: a famous person, a
fictional character, a country), ``wrong`` (not a name/place/number of that type at all: a common word, a
product, a technical term, a mistyped span).
"""

from __future__ import annotations

import hashlib
import json
import random
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from curate.bench.pii_data import Span

VERDICTS = ("pii", "not_private", "wrong")


def finding_key(corpus: str, text: str, span: Span) -> str:
    """A stable key of one finding: the corpus name, a hash of the text, the type and the offsets."""
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()[:12]
    return f"{corpus}:{digest}:{span[0]}:{span[1]}-{span[2]}"


def load_verdicts(path: Path | None) -> dict[str, dict[str, str]]:
    """The verdicts file (empty if None or missing)."""
    if path is None or not path.exists():
        return {}
    data = json.loads(path.read_text(encoding="utf-8"))
    return {k: v for k, v in data.items() if isinstance(v, dict)}


def measure(corpus: str, texts: Sequence[str], predict: Callable[[str], list[Span]], types: Sequence[str], *,
            sample_per_type: int = 100, seed: int = 0, verdicts: dict[str, dict[str, str]] | None = None
            ) -> dict[str, Any]:
    """False-positive figures of one analyzer on ``texts`` (see the module docstring)."""
    wanted = set(types)
    words = sum(len(t.split()) for t in texts)
    found: list[tuple[int, Span]] = []
    changed = 0
    for i, text in enumerate(texts):
        spans = [s for s in predict(text) if s[0] in wanted]
        found += [(i, s) for s in spans]
        changed += bool(spans)
    per_type = Counter(s[0] for _, s in found)
    rng = random.Random(seed)
    samples: dict[str, list[dict[str, Any]]] = {}
    verdicts = verdicts or {}
    for entity in sorted(per_type):
        pool = [(i, s) for i, s in found if s[0] == entity]
        picked = sorted(rng.sample(pool, min(sample_per_type, len(pool))))
        rows = []
        for i, s in picked:
            text = texts[i]
            key = finding_key(corpus, text, s)
            v = verdicts.get(key, {})
            rows.append({"key": key, "value": text[s[1]:s[2]],
                         "context": text[max(0, s[1] - 60):s[2] + 60].replace("\n", " "),
                         "verdict": v.get("verdict", "unchecked"), "note": v.get("note", "")})
        tally = Counter(r["verdict"] for r in rows)
        samples[entity] = [{"verdicts": dict(tally)}, *rows]
    return {"records": len(texts), "words": words, "findings": len(found),
            "per_1000_words": round(1000 * len(found) / max(words, 1), 2),
            "records_changed": round(changed / max(len(texts), 1), 4), "per_type": dict(per_type.most_common()),
            "sample": samples}
