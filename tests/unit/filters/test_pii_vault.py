"""The PII key and the encrypted originals: authenticated, bound to record and field, one key per workspace."""

from __future__ import annotations

import os
import stat

import pytest

from curate.errors import AccessError, InputError
from curate.filters.pii_vault import (
    PiiKey,
    bind_key,
    decode_key,
    encode_key,
    init_key,
    load_key,
    load_originals,
    store_originals,
    workspace_key_id,
)
from curate.store.workspace import Workspace


@pytest.fixture(autouse=True)
def _no_key_from_environment(monkeypatch):
    monkeypatch.delenv("CURATE_PII_KEY", raising=False)
    monkeypatch.delenv("CURATE_PII_KEY_FILE", raising=False)


def test_ciphertext_opens_only_with_its_key_record_and_field():
    key, other = PiiKey(os.urandom(32)), PiiKey(os.urandom(32))
    blob = key.encrypt("Maria Kovalenko", record_id="r1", field="prompt")
    assert b"Maria" not in blob and key.decrypt(blob, record_id="r1", field="prompt") == "Maria Kovalenko"
    for wrong in ({"record_id": "r2", "field": "prompt"}, {"record_id": "r1", "field": "chosen"}):
        with pytest.raises(AccessError, match="does not decrypt"):
            key.decrypt(blob, **wrong)
    with pytest.raises(AccessError, match=f"with key {other.key_id}"):
        other.decrypt(blob, record_id="r1", field="prompt")
    tampered = blob[:-1] + bytes([blob[-1] ^ 1])
    with pytest.raises(AccessError):
        key.decrypt(tampered, record_id="r1", field="prompt")
    assert repr(key) == f"PiiKey(id={key.key_id})" and key.secret.hex() not in repr(key)


def test_key_files_and_environment(tmp_path, monkeypatch):
    path = tmp_path / "keys" / "pii.key"
    key = init_key(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    with pytest.raises(InputError, match="never overwrites"):
        init_key(path)
    assert load_key(path).key_id == key.key_id and load_key() is None
    monkeypatch.setenv("CURATE_PII_KEY_FILE", str(path))
    assert load_key().key_id == key.key_id
    monkeypatch.delenv("CURATE_PII_KEY_FILE")
    monkeypatch.setenv("CURATE_PII_KEY", encode_key(key))
    assert load_key().key_id == key.key_id
    with pytest.raises(InputError, match="no such file"):
        load_key(tmp_path / "missing.key")
    with pytest.raises(InputError, match="inside the workspace"):
        load_key(path, workspace_root=tmp_path)
    with pytest.raises(InputError, match="does not hold a curate PII key"):
        decode_key("hunter2", origin="$CURATE_PII_KEY")
    with pytest.raises(InputError, match="must be 32 bytes"):
        decode_key("curate-pii-key-v1:AAAA", origin="x")


def test_originals_table_keeps_the_first_original_and_one_key(tmp_path):
    ws = Workspace.open(tmp_path / "ws")
    key, other = PiiKey(os.urandom(32)), PiiKey(os.urandom(32))
    with ws.store.write() as conn:
        assert workspace_key_id(conn) is None
        assert store_originals(conn, key, [("r1", "prompt", "Ann Lee"), ("r1", "prompt", "later"),
                                           ("r1", "@meta.email", "ann@example.com")]) == 2
        assert store_originals(conn, key, [("r1", "prompt", "again")]) == 0
        assert workspace_key_id(conn) == key.key_id
        with pytest.raises(AccessError, match="encrypted with key"):
            bind_key(conn, other)
    with ws.store.read() as conn:
        assert load_originals(conn, key) == {"r1": {"prompt": "Ann Lee", "@meta.email": "ann@example.com"}}
        assert load_originals(conn, key, ["r2"]) == {}
        with pytest.raises(AccessError):
            load_originals(conn, other)
    ws.store.dispose()
    assert not [f for f in (tmp_path / "ws").rglob("*") if f.is_file() and b"Ann Lee" in f.read_bytes()]
