"""Reversible PII redaction on a real SQLite workspace: keys, encrypted originals, --revise, preview, options.

Preference pairs and support tickets with planted names, emails, phones and addresses are ingested through the CLI.
Without a key no byte of any workspace file holds a planted value; with a key the originals are stored encrypted,
decrypt only with that key, and `filter pii --revise` with an allow-list restores the allowed values.
"""

from __future__ import annotations

import gc
import hashlib
import json
import stat
from pathlib import Path

import pytest

pytest.importorskip("presidio_analyzer")

from sqlalchemy import func, select  # noqa: E402
from typer.testing import CliRunner  # noqa: E402

from curate.cli.main import app  # noqa: E402
from curate.errors import AccessError, CurateError  # noqa: E402
from curate.filters.pii_vault import load_key, load_originals  # noqa: E402
from curate.store.audit import verify  # noqa: E402
from curate.store.schema import AuditEvent, PiiOriginal  # noqa: E402
from curate.store.workspace import Workspace  # noqa: E402

PLANTED = {
    "name": "Maria Kovalenko",
    "name2": "Jonas Eberhardt",
    "name3": "Priya Natarajan",
    "email": "maria.kovalenko@example-mail.com",
    "email2": "j.eberhardt@post-example.de",
    "email3": "priya.natarajan@example.org",
    "phone": "+1 (415) 555-0137",
    "phone2": "(212) 555-0199",
    "street": "42 Elm Street",
    "street2": "17 Larkspur Avenue",
}
PUBLIC = ("Larry Page", "Ada Lovelace")  # public figures: redacted by default, allowed later


@pytest.fixture(autouse=True)
def _no_key_from_environment(monkeypatch):
    monkeypatch.delenv("CURATE_PII_KEY", raising=False)
    monkeypatch.delenv("CURATE_PII_KEY_FILE", raising=False)


def _sources(folder: Path) -> list[Path]:
    p = PLANTED
    pairs = [
        {"prompt": "Who is Larry Page?", "chosen": "Larry Page co-founded Google with a fellow Stanford student in "
         "1998 and later led Alphabet.", "rejected": "He is a football player."},
        {"prompt": "Tell me about Ada Lovelace.", "chosen": "Ada Lovelace wrote the first published algorithm, for "
         "Babbage's Analytical Engine.", "rejected": "She was a painter."},
        {"prompt": f"Hi, my name is {p['name']} and I was charged twice. My email is {p['email']}.",
         "chosen": f"Dear {p['name']}, we refunded the charge and will call {p['phone']} tomorrow.",
         "rejected": "Charges are final."},
        {"prompt": "Write a short poem about the sea.", "chosen": "Grey waves fold / over older stones.",
         "rejected": "The sea is wet."},
    ]
    tickets = [
        {"prompt": f"Please ship the replacement to {p['street']}, Springfield. You can call me at {p['phone']}.",
         "completion": "We have sent a replacement; it arrives within three days.", "customer_email": p["email"]},
        {"prompt": f"This is {p['name2']}. My new address is {p['street2']}, Portland; phone {p['phone2']}, email "
                   f"{p['email2']}", "completion": "Thanks, your address is updated.", "customer": p["name3"]},
        {"prompt": f"Customer: {p['name3']} ({p['email3']}) cannot log in since Monday.",
         "completion": "Reset the password from the login page, then clear the browser cache."},
    ]
    out = []
    for name, rows in (("pairs.jsonl", pairs), ("tickets.jsonl", tickets)):
        (folder / name).write_text("".join(json.dumps(r) + "\n" for r in rows))
        out.append(folder / name)
    return out


def _cli(*args: str | Path, fails: bool = False) -> str:
    """The command's output (whitespace folded), or with ``fails`` the message of the CurateError it raised."""
    result = CliRunner().invoke(app, [str(a) for a in args])
    if fails:
        assert isinstance(result.exception, CurateError), (result.exception, result.output)
        return " ".join(str(result.exception).split())
    assert result.exit_code == 0, (result.exception, result.output)
    return " ".join(result.output.split())


def _closed(ws: Path) -> None:
    gc.collect()  # the commands' engines: their pooled SQLite connections close, the -wal is checkpointed
    Workspace.open(ws).store.dispose()


def _files_holding(root: Path, values) -> dict[str, list[str]]:
    hits: dict[str, list[str]] = {}
    for file in sorted(root.rglob("*")):
        if file.is_file():
            data = file.read_bytes()
            found = [v for v in values if v.encode() in data]
            if found:
                hits[str(file.relative_to(root))] = found
    return hits


def _texts(ws: Path) -> str:
    store = Workspace.open(ws).store
    return " ".join(json.dumps([r.fields, r.meta]) for r in store.iter_records(split=None, status=None))


def _digest(root: Path) -> dict[str, str]:
    return {str(f.relative_to(root)): hashlib.sha256(f.read_bytes()).hexdigest()
            for f in sorted(root.rglob("*")) if f.is_file()}


def test_init_key_writes_0600_and_never_overwrites(tmp_path):
    key_file = tmp_path / "keys" / "pii.key"
    assert "wrote PII key" in _cli("pii", "init-key", key_file)
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    before = key_file.read_bytes()
    out = _cli("pii", "init-key", key_file, fails=True)
    assert "exists already" in out and "never overwrites" in out and key_file.read_bytes() == before
    inside = tmp_path / "ws" / "pii.key"
    _cli("ingest", *_sources(tmp_path), "-w", tmp_path / "ws")  # filter pii needs an existing workspace
    _cli("pii", "init-key", inside)
    out = _cli("filter", "pii", "--key-file", inside, "-w", tmp_path / "ws", fails=True)
    assert "--key-file" in out and "inside the workspace" in out
    key_file.chmod(0o644)
    assert "chmod 600" in _cli("filter", "pii", "--key-file", key_file, "-w", tmp_path / "ws", fails=True)


def test_without_a_key_no_workspace_byte_holds_a_planted_value(tmp_path):
    ws = tmp_path / "ws"
    out = _cli("ingest", *_sources(tmp_path), "--pii", "redact", "-w", ws, "--json", ws / "ingest.json")
    assert "cannot be undone" in out
    texts = _texts(ws)
    assert not [v for v in PLANTED.values() if v in texts] and "<PERSON_1>" in texts
    assert "<LOCATION_1>" in texts and "<PHONE_NUMBER_1>" in texts and "<EMAIL_ADDRESS_1>" in texts
    report = json.loads((ws / "ingest.json").read_text())["sources"]
    assert [r["pii"]["reversible"] for r in report] == [False, False]
    assert [r["pii"]["changed_share"] for r in report] == [0.75, 1.0]  # the sea poem is untouched
    with Workspace.open(ws).store.read() as conn:
        assert conn.scalar(select(func.count()).select_from(PiiOriginal)) == 0
    assert "--revise decrypts" in _cli("filter", "pii", "--revise", "-w", ws, fails=True)
    _closed(ws)
    assert _files_holding(ws, [*PLANTED.values(), *PUBLIC]) == {}


def test_with_a_key_originals_are_encrypted_and_revise_restores_allowed_values(tmp_path):
    ws, key_file, other = tmp_path / "ws", tmp_path / "keys" / "pii.key", tmp_path / "keys" / "other.key"
    _cli("pii", "init-key", key_file)
    _cli("pii", "init-key", other)
    out = _cli("ingest", *_sources(tmp_path), "--pii", "redact", "--key-file", key_file, "-w", ws)
    assert "stored encrypted" in out and "cannot be undone" not in out
    texts = _texts(ws)
    assert not [v for v in [*PLANTED.values(), *PUBLIC] if v in texts]
    _closed(ws)
    assert _files_holding(ws, [*PLANTED.values(), *PUBLIC]) == {}  # ciphertexts only

    workspace = Workspace.open(ws)
    key = load_key(key_file, workspace_root=ws)
    with workspace.store.read() as conn:
        assert conn.scalar(select(func.count()).select_from(PiiOriginal)) >= 8
        originals = load_originals(conn, key)
        with pytest.raises(AccessError, match="encrypted with key"):
            load_originals(conn, load_key(other))
    clear = json.dumps(originals)
    assert all(v in clear for v in [*PLANTED.values(), *PUBLIC])
    assert "encrypted with key" in _cli("filter", "pii", "--revise", "--key-file", other, "-w", ws, fails=True)

    allow = tmp_path / "public.txt"
    allow.write_text("# public figures\nLarry Page\n\n")
    out = _cli("filter", "pii", "--revise", "--preview", "9", "--pii-allow-file", allow, "--key-file", key_file,
               "-w", ws)  # the key holder sees the originals with what would be redacted; nothing is written
    assert "nothing changed" in out and PLANTED["street"] in out and "Larry Page" not in out
    assert "Larry Page" not in _texts(ws)
    out = _cli("filter", "pii", "--revise", "--pii-allow-file", allow, "--allow", "Ada Lovelace",
               "--key-file", key_file, "-w", ws)
    texts = _texts(ws)
    assert "Who is Larry Page?" in texts and "Ada Lovelace wrote the first published algorithm" in texts
    assert not [v for v in PLANTED.values() if v in texts]
    assert "<PERSON_1>" in texts and "<EMAIL_ADDRESS_1>" in texts
    record = next(rid for rid, fields in originals.items() if PLANTED["street2"] in json.dumps(fields))
    out = _cli("pii", "reveal", record[:10], "--key-file", key_file, "-w", ws, "--json", tmp_path / "r.json")
    shown = json.loads((tmp_path / "r.json").read_text())
    assert PLANTED["street2"] in shown["fields"]["prompt"] and shown["meta"]["customer"] == PLANTED["name3"]
    with workspace.store.read() as conn:
        events = [json.loads(p) for a, p in conn.execute(select(AuditEvent.action, AuditEvent.payload))
                  if a in ("filter.pii", "pii.reveal")]
    assert events[0]["revise"] is True and events[0]["allow_list"]["size"] == 2 and events[1]["key_id"] == key.key_id
    assert not [v for v in [*PLANTED.values(), *PUBLIC] if v in json.dumps(events)]
    assert verify(workspace.store).ok


def test_preview_stores_and_writes_nothing(tmp_path):
    sources = _sources(tmp_path)
    ws = tmp_path / "ws"
    out = _cli("ingest", *sources, "--pii", "preview", "--pii-samples", "2", "-w", ws)
    assert "<PERSON_1>" in out and "nothing changed" in out and "WARNING" in out and not ws.exists()
    _cli("ingest", *sources, "-w", ws)  # stored in clear, to filter afterwards
    _closed(ws)
    before = _digest(ws)
    out = _cli("filter", "pii", "--preview", "3", "--pii-types", "EMAIL_ADDRESS", "-w", ws,
               "--json", tmp_path / "p.json")
    _closed(ws)
    assert _digest(ws) == before
    assert "<EMAIL_ADDRESS_1>" in out and "nothing changed" in out and "<PERSON_1>" not in out
    figures = json.loads((tmp_path / "p.json").read_text())
    assert set(figures["summary"]["records_by_type"]) == {"EMAIL_ADDRESS"} and len(figures["samples"]) == 3
    assert PLANTED["email"] in _texts(ws)


def test_types_min_scores_and_allow_lists_at_ingest(tmp_path):
    pairs, tickets = _sources(tmp_path)
    only = tmp_path / "only"
    _cli("ingest", tickets, "--pii", "redact", "--pii-types", "EMAIL_ADDRESS", "-w", only)
    texts = _texts(only)
    assert PLANTED["email2"] not in texts and PLANTED["name2"] in texts and PLANTED["phone2"] in texts

    scored = tmp_path / "scored"
    _cli("ingest", tickets, "--pii", "redact", "--pii-min-score", "PERSON=0.99", "-w", scored)
    texts = _texts(scored)
    assert PLANTED["name2"] in texts and PLANTED["email2"] not in texts and PLANTED["street2"] not in texts

    allowed = tmp_path / "allowed"
    (tmp_path / "public.txt").write_text("Larry Page\n")
    _cli("ingest", pairs, "--pii", "redact", "--pii-allow", f"@{tmp_path / 'public.txt'}", "--pii-allow",
         "Ada Lovelace", "-w", allowed)
    texts = _texts(allowed)
    assert "Who is Larry Page?" in texts and "Tell me about Ada Lovelace." in texts and PLANTED["name"] not in texts

    assert "--pii-types" in _cli("ingest", pairs, "--pii", "redact", "--pii-types", "NAMES", "-w", only, fails=True)
    assert "--pii-min-score" in _cli("ingest", pairs, "--pii", "redact", "--pii-min-score", "PERSON=high",
                                     "-w", only, fails=True)
    assert "--pii redact" in _cli("ingest", pairs, "--pii-types", "PERSON", "-w", only, fails=True)
