"""The append-only, hash-chained audit log.

Every state change appends one event: ``(ts, actor, action, model_version, payload)`` where the payload holds
ids, hashes, counts and names, never record text. Each event's ``hash`` is the SHA-256 of the previous event's
hash and the event's canonical JSON, so editing, deleting, inserting or reordering any event breaks the chain
at a point :func:`verify` can name. An attacker who rewrites the whole chain is caught only by comparing the
head hash with a copy kept elsewhere (``curate audit verify --expect-head``).
"""

from __future__ import annotations

import getpass
import hashlib
import os
from dataclasses import dataclass, field
from typing import Any, Literal

import orjson
from sqlalchemy import Connection, insert, or_, select

from curate.errors import AuditError, InputError
from curate.store.audit_links import LinkProblem, check_annotations, snapshot
from curate.store.database import Store
from curate.store.schema import AuditEvent, utcnow

GENESIS = "0" * 64
MAX_PAYLOAD_STRING = 512
Problem = Literal["edited", "deleted", "inserted", "reordered", "head-mismatch"]


def default_actor() -> str:
    """Who is acting: ``$CURATE_ACTOR`` (``curate --actor NAME`` sets it), else the OS user name (also without a
    terminal, from the password database), else ``"unknown"``."""
    actor = os.environ.get("CURATE_ACTOR")
    if actor:
        return actor
    try:
        return getpass.getuser()
    except (OSError, KeyError):  # no user name in the environment nor in the password database
        return "unknown"


def _check_payload(value: Any, path: str = "payload") -> None:
    # Events hold ids, hashes, counts and names; a long string is most likely record text leaking in.
    if isinstance(value, str) and len(value) > MAX_PAYLOAD_STRING:
        raise AuditError(
            f"{path} is a string of {len(value)} characters; audit events hold ids, hashes and counts only "
            f"(at most {MAX_PAYLOAD_STRING} characters), never record text."
        )
    if isinstance(value, dict):
        for key, item in value.items():
            _check_payload(item, f"{path}.{key}")
    elif isinstance(value, list | tuple):
        for i, item in enumerate(value):
            _check_payload(item, f"{path}[{i}]")


def event_hash(prev_hash: str, ts: str, actor: str, action: str, model_version: str | None, payload: str) -> str:
    """SHA-256 (hex) of the previous hash and the event's canonical JSON."""
    body = orjson.dumps(
        {"action": action, "actor": actor, "model_version": model_version, "payload": payload, "ts": ts},
        option=orjson.OPT_SORT_KEYS,
    )
    return hashlib.sha256(prev_hash.encode() + b"\n" + body).hexdigest()


def append(
    conn: Connection,
    action: str,
    payload: dict[str, Any],
    *,
    actor: str | None = None,
    model_version: str | None = None,
) -> str:
    """Append one event inside the caller's write transaction (so it commits with the change it records).

    Returns the new event's hash.
    """
    _check_payload(payload)
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql("SELECT pg_advisory_xact_lock(727272)")  # serialise appends to the chain
    prev = conn.scalar(select(AuditEvent.hash).order_by(AuditEvent.seq.desc()).limit(1)) or GENESIS
    ts, who = utcnow(), actor or default_actor()
    body = orjson.dumps(payload, option=orjson.OPT_SORT_KEYS).decode()
    digest = event_hash(prev, ts, who, action, model_version, body)
    conn.execute(
        insert(AuditEvent).values(
            ts=ts, actor=who, action=action, model_version=model_version, payload=body, prev_hash=prev, hash=digest
        )
    )
    return digest


def record(store: Store, action: str, payload: dict[str, Any], **kwargs: Any) -> str:
    """Append one event in a transaction of its own."""
    with store.write() as conn:
        return append(conn, action, payload, **kwargs)


@dataclass
class Finding:
    """The first place the chain breaks: what happened, at which event, in words."""

    problem: Problem
    seq: int
    message: str


@dataclass
class VerifyReport:
    """Result of :func:`verify`: ``ok`` and, when not, the chain's first :class:`Finding` and/or the annotations
    that do not match their events (:mod:`curate.store.audit_links`)."""

    ok: bool
    n_events: int
    head_seq: int | None
    head_hash: str
    finding: Finding | None = None
    broken_links: int = 0
    edited_events: list[int] = field(default_factory=list)
    annotation_problems: list[LinkProblem] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        out: dict[str, Any] = {
            "ok": self.ok, "events": self.n_events, "head_seq": self.head_seq, "head_hash": self.head_hash,
            "broken_links": self.broken_links, "edited_events": self.edited_events,
            "annotation_problems": [p.as_dict() for p in self.annotation_problems],
        }
        if self.finding:
            out["problem"] = self.finding.problem
            out["seq"] = self.finding.seq
            out["message"] = self.finding.message
        return out


def _describe(ev: Any) -> str:
    return f"event #{ev.seq} ({ev.action} by {ev.actor} at {ev.ts})"


def _classify(events: list[Any], i: int, self_ok: list[bool], position: dict[str, int]) -> Finding:
    """Name what happened at the first event ``i`` whose link or hash is wrong."""
    ev = events[i]
    expected = events[i - 1].hash if i else GENESIS
    target = position.get(ev.prev_hash)
    if target is not None and target > i:
        return Finding(
            "reordered", ev.seq, f"{_describe(ev)} is out of order: it belongs after event #{events[target].seq}"
        )
    if i + 1 < len(events) and events[i + 1].prev_hash == expected:
        return Finding("inserted", ev.seq, f"{_describe(ev)} was inserted: the next event links past it")
    if ev.prev_hash == expected:  # linked to its predecessor, so its own content was changed
        return Finding("edited", ev.seq, f"{_describe(ev)} was edited: its hash no longer matches its content")
    if target is not None and target == i - 2:
        prev = events[i - 1]
        return Finding("inserted", prev.seq, f"{_describe(prev)} was inserted: the next event links past it")
    if target is not None:
        return Finding(
            "reordered", ev.seq,
            f"{_describe(ev)} is out of order: it belongs after event #{events[target].seq}",
        )
    if not self_ok[i]:
        return Finding("edited", ev.seq, f"{_describe(ev)} was edited: its hash fields were changed")
    if i and ev.seq - events[i - 1].seq > 1:
        return Finding(
            "deleted", ev.seq,
            f"event(s) #{events[i - 1].seq + 1}..#{ev.seq - 1} were deleted: {_describe(ev)} links to an event "
            "that is no longer in the log",
        )
    where = f"before {_describe(ev)}"
    return Finding(
        "deleted", ev.seq,
        f"an event {where} was deleted (or the event before it was edited and re-hashed): "
        "it links to an event that is no longer in the log",
    )


def verify(store: Store, *, expect_head: str | None = None, annotations: bool = True) -> VerifyReport:
    """Recompute the chain and name the first event that was edited, deleted, inserted or reordered; then check
    every annotation against the event that recorded it (:func:`curate.store.audit_links.check_annotations`).

    Args:
        store: the workspace database.
        expect_head: a head hash recorded earlier (e.g. by a previous ``verify``); when given, the chain must
            still contain it, which also catches deleted trailing events and a fully rewritten chain.
        annotations: also cross-check the annotations table (in the same snapshot as the chain).
    """
    with snapshot(store) as conn:
        events: list[Any] = list(conn.execute(select(AuditEvent).order_by(AuditEvent.seq)).all())
        problems = check_annotations(conn) if annotations else []
    self_ok = [
        event_hash(e.prev_hash, e.ts, e.actor, e.action, e.model_version, e.payload) == e.hash for e in events
    ]
    position = {e.hash: i for i, e in enumerate(events)}
    finding: Finding | None = None
    broken = 0
    for i, ev in enumerate(events):
        linked = ev.prev_hash == (events[i - 1].hash if i else GENESIS)
        if linked and self_ok[i]:
            continue
        broken += 0 if linked else 1
        if finding is None:
            finding = _classify(events, i, self_ok, position)
    head_seq = events[-1].seq if events else None
    head_hash = events[-1].hash if events else GENESIS
    if finding is None and expect_head and expect_head != head_hash and expect_head not in position:
        finding = Finding(
            "head-mismatch", head_seq or 0,
            f"the expected head {expect_head[:16]}... is not in the log: events after it were deleted or the "
            "chain was rewritten",
        )
    return VerifyReport(
        ok=finding is None and not problems, n_events=len(events), head_seq=head_seq, head_hash=head_hash,
        finding=finding, broken_links=broken,
        edited_events=[e.seq for e, ok in zip(events, self_ok, strict=False) if not ok],
        annotation_problems=problems,
    )


@dataclass(frozen=True)
class AuditEntry:
    """One event as stored: its place in the chain, who did what, and the payload parsed from its JSON."""

    seq: int
    ts: str
    actor: str
    action: str
    model_version: str | None
    payload: Any
    hash: str
    prev_hash: str

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form (every field; the payload as parsed JSON)."""
        return {"seq": self.seq, "ts": self.ts, "actor": self.actor, "action": self.action,
                "model_version": self.model_version, "payload": self.payload, "hash": self.hash,
                "prev_hash": self.prev_hash}


def _parsed(raw: str) -> Any:
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:  # an edited row; `curate audit verify` names it, the log still shows it
        return raw


def recent_events(store: Store, limit: int | None = 20, *, actions: tuple[str, ...] | list[str] = (),
                  actors: tuple[str, ...] | list[str] = ()) -> list[AuditEntry]:
    """The latest ``limit`` events (None: all) that match the filters, oldest first.

    Args:
        limit: how many of the newest matching events; None or 0 for every one.
        actions: keep events whose action is one of these, or starts with one followed by a dot (``filter``
            matches ``filter.dedup`` and ``filter.pii``); empty keeps every action.
        actors: keep events recorded for one of these names; empty keeps every actor.
    """
    if limit is not None and limit < 0:
        raise InputError(f"limit must be 0 (every event) or a positive number of events; got {limit}")
    query = select(AuditEvent).order_by(AuditEvent.seq.desc())
    if actions:
        query = query.where(or_(*(or_(AuditEvent.action == a, AuditEvent.action.startswith(a + ".", autoescape=True))
                                  for a in actions)))
    if actors:
        query = query.where(AuditEvent.actor.in_(list(actors)))
    if limit:
        query = query.limit(limit)
    with store.read() as conn:
        rows = conn.execute(query).all()
    return [AuditEntry(int(r.seq), r.ts, r.actor, r.action, r.model_version, _parsed(r.payload), r.hash, r.prev_hash)
            for r in reversed(rows)]
