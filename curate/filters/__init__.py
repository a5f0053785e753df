"""Filters applied to a pool before scoring: PII and secrets (redact / drop / flag), and near-duplicates.

Imported lazily, so the dedup functions do not load Presidio and spaCy (the ``pii`` extra).
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    **{name: "pii" for name in ("DEFAULT_ENTITIES", "Finding", "Placeholders", "build_analyzer", "detect", "redact")},
    **{name: "policy" for name in ("PiiPolicy", "PiiReport", "ReportedFinding", "apply_policy", "hash_value")},
    **{name: "secrets" for name in ("SECRET_TYPES", "iban_valid", "luhn_valid")},
    **{name: "dedup" for name in ("DedupResult", "CrossSetResult", "dedup_records", "cross_set_flags",
                                  "cross_set_records", "keep_mask")},
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'curate.filters' has no attribute {name!r}")
    return getattr(importlib.import_module(f"curate.filters.{module}"), name)
