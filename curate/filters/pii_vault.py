"""Encrypted originals of redacted text: recoverable with a key kept outside the workspace, by no one else.

The key is 32 random bytes (AES-256-GCM, from the ``cryptography`` package) written by :func:`init_key` to a file
the administrator keeps (mode 0600, never inside the workspace). Each redacted field's original text is stored in
the ``pii_originals`` table as ``nonce || ciphertext+tag``, authenticated together with its record id and field
path, so a ciphertext cannot be moved to another record. The workspace remembers only the key's id (an HMAC of a
constant under the key, in ``curate_meta``), so a wrong key is refused with a clear message, never half-used.

>>> key = PiiKey(bytes(32))
>>> key.decrypt(key.encrypt("Ann", record_id="r", field="prompt"), record_id="r", field="prompt")
'Ann'
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import stat
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from sqlalchemy import insert, select

from curate.errors import AccessError, InputError, MissingDependencyError

#: Environment variable naming the key file (what ``--key-file`` gives).
KEY_FILE_ENV: Final = "CURATE_PII_KEY_FILE"
#: Environment variable holding the key itself (the key file's one line), e.g. from a secrets store.
KEY_VALUE_ENV: Final = "CURATE_PII_KEY"
#: ``curate_meta`` key under which a workspace records the id of the key that encrypted its originals.
META_KEY_ID: Final = "pii_key_id"
_PREFIX: Final = "curate-pii-key-v1:"
_AAD: Final = b"curate-pii-original-v1"


@dataclass(frozen=True, repr=False)
class PiiKey:
    """A 32-byte AES-256-GCM key; ``repr`` shows its id, never the key.

    Attributes:
        secret: the 32 key bytes.
        origin: where it was read from (a path or an environment variable), for messages.
    """

    secret: bytes
    origin: str = ""

    def __post_init__(self) -> None:
        if len(self.secret) != 32:
            raise InputError(f"a PII key must be 32 bytes; {self.origin or 'the key given'} holds {len(self.secret)}. "
                             "Create one with: curate pii init-key PATH")

    def __repr__(self) -> str:
        return f"PiiKey(id={self.key_id})"

    @property
    def key_id(self) -> str:
        """16 hex characters naming the key (an HMAC of a constant; reveals nothing about the key)."""
        return hmac.new(self.secret, b"curate pii key id", hashlib.sha256).hexdigest()[:16]

    def _aead(self) -> Any:
        try:
            from cryptography.hazmat.primitives.ciphers.aead import AESGCM
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise MissingDependencyError("cryptography", "pii", "Reversible PII redaction") from exc
        return AESGCM(self.secret)

    def encrypt(self, text: str, *, record_id: str, field: str) -> bytes:
        """``nonce || ciphertext`` of ``text``, bound to ``record_id`` and ``field``."""
        nonce = os.urandom(12)
        return nonce + bytes(self._aead().encrypt(nonce, text.encode("utf-8"), _aad(record_id, field)))

    def decrypt(self, blob: bytes, *, record_id: str, field: str) -> str:
        """The text :meth:`encrypt` sealed for ``record_id`` and ``field``.

        Raises:
            AccessError: another key sealed it, or it was altered.
        """
        from cryptography.exceptions import InvalidTag

        try:
            return bytes(self._aead().decrypt(blob[:12], blob[12:], _aad(record_id, field))).decode("utf-8")
        except InvalidTag as exc:
            raise AccessError(f"the original of {record_id} {field} does not decrypt with key {self.key_id}: it was "
                              "encrypted with another key, or altered. Pass the key file this workspace was "
                              "redacted with (--key-file / $CURATE_PII_KEY_FILE).") from exc


def _aad(record_id: str, field: str) -> bytes:
    return b"\0".join((_AAD, record_id.encode(), field.encode()))


def encode_key(key: PiiKey) -> str:
    """The key as the one line of a key file."""
    return _PREFIX + base64.urlsafe_b64encode(key.secret).decode()


def decode_key(text: str, *, origin: str) -> PiiKey:
    """A key from the line :func:`encode_key` wrote.

    Raises:
        InputError: ``text`` is not such a line.
    """
    line = text.strip()
    if not line.startswith(_PREFIX):
        raise InputError(f"{origin} does not hold a curate PII key (expected one line starting {_PREFIX!r}). "
                         "Create one with: curate pii init-key PATH")
    try:
        secret = base64.urlsafe_b64decode(line[len(_PREFIX):].encode())
    except ValueError as exc:
        raise InputError(f"{origin}: the key is not valid base64. Restore the file from your copy.") from exc
    return PiiKey(secret, origin)


def init_key(path: Path | str) -> PiiKey:
    """Write a new random key to ``path`` (mode 0600; parent folders created 0700). Never overwrites.

    Raises:
        InputError: ``path`` exists already.
    """
    path = Path(path).expanduser()
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    key = PiiKey(os.urandom(32), str(path))
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError as exc:
        raise InputError(f"{path} exists already: curate never overwrites a key (the originals it encrypted would be "
                         "lost). Keep it, or choose another path.") from exc
    with os.fdopen(fd, "w", encoding="ascii") as fh:
        os.fchmod(fh.fileno(), 0o600)  # whatever the umask
        fh.write(encode_key(key) + "\n")
    return key


def load_key(key_file: Path | str | None = None, *, workspace_root: Path | None = None) -> PiiKey | None:
    """The key from ``key_file``, else ``$CURATE_PII_KEY_FILE`` (a path), else ``$CURATE_PII_KEY``; None if unset.

    Raises:
        InputError: the file is missing, unreadable, readable by others, inside the workspace, or not a key.
    """
    if key_file is None and os.environ.get(KEY_FILE_ENV):
        key_file = os.environ[KEY_FILE_ENV]
    if key_file is None:
        value = os.environ.get(KEY_VALUE_ENV)
        return decode_key(value, origin=f"${KEY_VALUE_ENV}") if value else None
    path = Path(key_file).expanduser()
    if not path.is_file():
        raise InputError(f"--key-file {path}: no such file. Create a key with: curate pii init-key {path}")
    if workspace_root is not None and path.resolve().is_relative_to(workspace_root.resolve()):
        raise InputError(f"--key-file {path} lies inside the workspace {workspace_root}: anyone with a copy of the "
                         "workspace could read the originals. Move the key outside it (and keep a backup).")
    if os.name == "posix" and path.stat().st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise InputError(f"--key-file {path} can be read by other users (mode "
                         f"{stat.filemode(path.stat().st_mode)}). Run: chmod 600 {path}")
    return decode_key(path.read_text(encoding="ascii", errors="replace"), origin=str(path))


def bind_key(conn: Any, key: PiiKey) -> None:
    """Record ``key`` as the workspace's key, or check that it is the one recorded.

    Raises:
        AccessError: the workspace's originals were encrypted with another key.
    """
    from curate.store.schema import Meta

    check_key(conn, key)
    if workspace_key_id(conn) is None:
        conn.execute(insert(Meta).values(key=META_KEY_ID, value=key.key_id))


def check_key(conn: Any, key: PiiKey) -> None:
    """Raise :class:`AccessError` if the workspace's originals were encrypted with a key other than ``key``."""
    found = workspace_key_id(conn)
    if found is not None and found != key.key_id:
        raise AccessError(f"this workspace's PII originals are encrypted with key {found}; the key given "
                          f"({key.origin or 'key'}) is {key.key_id}. Pass the workspace's key file (--key-file / "
                          f"${KEY_FILE_ENV}).")


def workspace_key_id(conn: Any) -> str | None:
    """The id of the key that encrypted the workspace's originals, or None if it holds none."""
    from curate.store.schema import Meta

    value = conn.scalar(select(Meta.value).where(Meta.key == META_KEY_ID))
    return None if value is None else str(value)


def store_originals(conn: Any, key: PiiKey, originals: Iterable[tuple[str, str, str]]) -> int:
    """Encrypt and store ``(record_id, field, original text)`` rows not stored yet; the first original wins.

    Returns:
        How many were stored.
    """
    from curate.store.schema import PiiOriginal

    rows = list(originals)
    if not rows:
        return 0
    bind_key(conn, key)
    known = {(r, f) for r, f in conn.execute(select(PiiOriginal.record_id, PiiOriginal.field).where(
        PiiOriginal.record_id.in_(sorted({r for r, _, _ in rows})))).all()}
    new: dict[tuple[str, str], str] = {}
    for r, f, t in rows:
        if (r, f) not in known:
            new.setdefault((r, f), t)
    if new:
        conn.execute(insert(PiiOriginal), [
            {"record_id": r, "field": f, "key_id": key.key_id, "ciphertext": key.encrypt(t, record_id=r, field=f)}
            for (r, f), t in new.items()])
    return len(new)


def load_originals(conn: Any, key: PiiKey, record_ids: Sequence[str] | None = None) -> dict[str, dict[str, str]]:
    """Decrypted originals: record id -> field path -> text (all records when ``record_ids`` is None).

    Raises:
        AccessError: ``key`` is not the workspace's key.
    """
    from curate.store.schema import PiiOriginal

    check_key(conn, key)
    stmt = select(PiiOriginal.record_id, PiiOriginal.field, PiiOriginal.ciphertext)
    out: dict[str, dict[str, str]] = {}
    chunks = [None] if record_ids is None else [record_ids[i : i + 500] for i in range(0, len(record_ids), 500)]
    for chunk in chunks:
        query = stmt if chunk is None else stmt.where(PiiOriginal.record_id.in_(chunk))
        for rid, field, blob in conn.execute(query).all():
            out.setdefault(rid, {})[field] = key.decrypt(bytes(blob), record_id=rid, field=field)
    return out

