"""PII detection over many texts: batched through spaCy's ``nlp.pipe``, cached, resumable.

:func:`detect_many` runs the NER model on a batch of texts at once (Presidio's ``process_batch``, i.e. ``nlp.pipe``)
and then the recognizers on each text's annotations: the findings are those of :func:`curate.filters.pii.detect`.
A :class:`Detector` puts a :class:`FindingsCache` in front of it: findings per text hash and detection settings, in
``<workspace>/cache/pii/findings.sqlite``, written at least every few seconds
(:class:`curate.runtime.checkpoint.Checkpoint`), so an interrupted ingest or ``filter pii`` (whose own changes are
one transaction, rolled back) detects only the rest when it runs again. The cache holds offsets, types and scores,
never a value: the texts themselves stay where they are (redacted, or encrypted with the key).
"""

from __future__ import annotations

import hashlib
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import orjson

from curate.filters.pii import DEFAULT_ENTITIES, DEFAULT_THRESHOLD, Finding, build_analyzer, findings_of, spacy_model
from curate.runtime.checkpoint import Checkpoint

#: Texts per ``nlp.pipe`` batch.
DETECT_BATCH = 32
#: Bump when detection rules change, so cached findings of older rules are not reused.
RULES_VERSION = "2026-12-04"
ProgressFn = Callable[[int, int, int], None]


def detect_many(texts: Sequence[str], *, entities: Sequence[str] = DEFAULT_ENTITIES, allow_list: Iterable[str] = (),
                threshold: float = DEFAULT_THRESHOLD, batch_size: int = DETECT_BATCH) -> Iterator[list[Finding]]:
    """:func:`curate.filters.pii.detect` of each text, in order, with the NER model run ``batch_size`` texts at a
    time (``nlp.pipe``). Yields one list of findings per text as soon as its batch is done."""
    analyzer = build_analyzer()
    allow = tuple(allow_list)
    wanted = list(entities)
    todo = [i for i, t in enumerate(texts) if t.strip()]
    done: dict[int, list[Finding]] = {}
    position = 0
    for start in range(0, len(todo), batch_size):
        part = todo[start : start + batch_size]
        artifacts = analyzer.nlp_engine.process_batch([texts[i] for i in part], language="en", batch_size=batch_size)
        for i, (text, nlp_artifacts) in zip(part, artifacts, strict=True):
            results = analyzer.analyze(text, language="en", entities=wanted, score_threshold=threshold,
                                       nlp_artifacts=nlp_artifacts)
            done[i] = findings_of(text, results, allow)
        while position < len(texts) and (position in done or not texts[position].strip()):
            yield done.pop(position, [])
            position += 1
    while position < len(texts):
        yield done.pop(position, [])
        position += 1


def settings_key(entities: Sequence[str], allow_list: Iterable[str], threshold: float) -> str:
    """Digest of what decides a text's findings: types, allowed strings, threshold, spaCy model, rules version."""
    body = orjson.dumps({"entities": sorted(entities), "allow": sorted({a.strip().lower() for a in allow_list}),
                         "threshold": threshold, "model": spacy_model(), "rules": RULES_VERSION})
    return hashlib.blake2b(body, digest_size=12).hexdigest()


def text_digest(text: str) -> bytes:
    """16-byte BLAKE2b of a text (the cache key; the text is not stored)."""
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).digest()


class FindingsCache:
    """Findings per (settings, text hash) in a SQLite file of its own (so it can be written while an ingest holds
    the workspace database's write lock)."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._conn = sqlite3.connect(path, timeout=60, isolation_level=None)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("CREATE TABLE IF NOT EXISTS findings (settings TEXT NOT NULL, text_hash BLOB NOT NULL, "
                           "findings BLOB NOT NULL, PRIMARY KEY (settings, text_hash))")

    def get(self, settings: str, hashes: Sequence[bytes]) -> dict[bytes, list[Finding]]:
        """The cached findings of those ``hashes`` that are cached."""
        found: dict[bytes, list[Finding]] = {}
        for start in range(0, len(hashes), 500):
            chunk = list(hashes[start : start + 500])
            sql = (f"SELECT text_hash, findings FROM findings WHERE settings = ? AND text_hash IN "
                   f"({', '.join('?' * len(chunk))})")
            for digest, blob in self._conn.execute(sql, (settings, *chunk)):
                found[bytes(digest)] = [Finding(*f) for f in orjson.loads(blob)]
        return found

    def put(self, settings: str, items: Sequence[tuple[bytes, list[Finding]]]) -> None:
        """Store findings (one transaction; an item already cached is kept)."""
        rows = [(settings, digest, orjson.dumps([[f.entity_type, f.start, f.end, f.score, f.recognizer]
                                                 for f in found])) for digest, found in items]
        with self._conn:
            self._conn.execute("BEGIN")
            self._conn.executemany("INSERT OR IGNORE INTO findings VALUES (?, ?, ?)", rows)

    def close(self) -> None:
        """Close the file."""
        self._conn.close()


class Detector:
    """``detect`` with a memory of the texts it has seen: :meth:`warm` detects a batch of texts (from the cache
    where possible, else with :func:`detect_many`) and calling the detector then answers from memory.

    Args:
        cache: a :class:`FindingsCache`, or ``None`` for memory only.
        entities, allow_list, threshold: the detection settings of :meth:`warm` (a call with other settings is
            answered by :func:`curate.filters.pii.detect`).
    """

    def __init__(self, cache: FindingsCache | None, *, entities: Sequence[str] = DEFAULT_ENTITIES,
                 allow_list: Iterable[str] = (), threshold: float = DEFAULT_THRESHOLD) -> None:
        self.cache = cache
        self.entities = tuple(entities)
        self.allow_list = tuple(allow_list)
        self.threshold = threshold
        self.settings = settings_key(self.entities, self.allow_list, threshold)
        self._memo: dict[bytes, list[Finding]] = {}
        self.detected = 0
        self.from_cache = 0
        self.chars = 0
        self.seconds = 0.0

    def warm(self, texts: Iterable[str], on_progress: Callable[[int, int], None] | None = None) -> None:
        """Detect every text not seen yet; ``on_progress(done, total)`` counts the texts detected in this call."""
        pending: dict[bytes, str] = {}
        for text in texts:
            if isinstance(text, str) and text.strip():
                digest = text_digest(text)
                if digest not in self._memo:
                    pending.setdefault(digest, text)
        if not pending:
            return
        if self.cache is not None:
            hits = self.cache.get(self.settings, list(pending))
            self._memo.update(hits)
            self.from_cache += len(hits)
            for digest in hits:
                del pending[digest]
        keys, todo = list(pending), list(pending.values())
        started = time.perf_counter()
        cache = self.cache

        def write(items: list[tuple[bytes, list[Finding]]]) -> None:
            if cache is not None:
                cache.put(self.settings, items)

        try:
            with Checkpoint(write, "texts checked for PII") as checkpoint:
                found = detect_many(todo, entities=self.entities, allow_list=self.allow_list,
                                    threshold=self.threshold)
                for n, (digest, text, findings) in enumerate(zip(keys, todo, found, strict=True), start=1):
                    self._memo[digest] = findings
                    checkpoint.add([(digest, findings)])
                    self.detected += 1
                    self.chars += len(text)
                    if on_progress and (n % DETECT_BATCH == 0 or n == len(todo)):
                        on_progress(n, len(todo))
        finally:
            self.seconds += time.perf_counter() - started

    def __call__(self, text: str, *, entities: Sequence[str] = DEFAULT_ENTITIES, allow_list: Any = (),
                 threshold: float = DEFAULT_THRESHOLD) -> list[Finding]:
        """The findings of ``text`` (from memory when warmed with these settings)."""
        from curate.filters import pii

        if (isinstance(text, str) and tuple(entities) == self.entities and tuple(allow_list) == self.allow_list
                and threshold == self.threshold):
            if not text.strip():
                return []
            digest = text_digest(text)
            if digest not in self._memo:
                self.warm([text])
            return list(self._memo[digest])
        return pii.detect(text, entities=entities, allow_list=allow_list, threshold=threshold)

    @property
    def chars_per_second(self) -> float:
        """Characters of newly detected text per second of detection."""
        return self.chars / self.seconds if self.seconds > 0 else 0.0

    def stats(self) -> dict[str, Any]:
        """``{"texts_detected", "texts_from_cache", "chars_per_second"}`` for reports."""
        return {"texts_detected": self.detected, "texts_from_cache": self.from_cache,
                "chars_per_second": round(self.chars_per_second, 1)}
