"""Accounts: people who annotate, review or administer a workspace, with scrypt-hashed passwords.

Roles nest: a ``reviewer`` can do everything an ``annotator`` can plus adjudicate and see the dashboard; an
``admin`` can also manage accounts and round settings. Passwords are hashed with scrypt (a memory-hard KDF from
the standard library) and a random salt per account; only the hash is stored.

>>> verify_password("s3cret-pass", hash_password("s3cret-pass"))
True
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from typing import Final

from sqlalchemy import Connection, Row, insert, select, update

from curate.errors import AccessError, InputError
from curate.store import audit
from curate.store.database import Store
from curate.store.schema import User

ROLES: Final[tuple[str, ...]] = ("annotator", "reviewer", "admin")
_RANK: Final = {role: i for i, role in enumerate(ROLES)}
MIN_PASSWORD_LENGTH: Final = 8
_NAME_RE: Final = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$")
# scrypt cost: n=2**14, r=8 -> 16 MiB and ~50 ms per check on this machine.
_SCRYPT_N, _SCRYPT_R, _SCRYPT_P = 2**14, 8, 1


@dataclass(frozen=True, slots=True)
class Account:
    """A user as the app sees it (never the hash)."""

    name: str
    role: str
    active: bool

    def can(self, role: str) -> bool:
        """Whether this account has ``role`` or a higher one."""
        return self.active and _RANK[self.role] >= _RANK[role]


def hash_password(password: str) -> str:
    """``scrypt$n$r$p$salt$hash`` (base64 fields) for ``password``."""
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=_SCRYPT_N, r=_SCRYPT_R, p=_SCRYPT_P, dklen=32)
    b64 = base64.b64encode
    return f"scrypt${_SCRYPT_N}${_SCRYPT_R}${_SCRYPT_P}${b64(salt).decode()}${b64(digest).decode()}"


def verify_password(password: str, stored: str) -> bool:
    """Whether ``password`` matches ``stored`` (constant-time comparison); False for a malformed hash."""
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        expected = base64.b64decode(digest)
        got = hashlib.scrypt(password.encode(), salt=base64.b64decode(salt), n=int(n), r=int(r), p=int(p),
                             dklen=len(expected))
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(got, expected)


def check_role(role: str) -> str:
    """``role`` if it is one of :data:`ROLES`; raises InputError otherwise."""
    if role not in ROLES:
        raise InputError(f"role must be one of {', '.join(ROLES)}; got {role!r}")
    return role


def add_user(store: Store, name: str, role: str, password: str, *, actor: str | None = None,
             replace: bool = False) -> Account:
    """Create an account (or, with ``replace``, reset its role and password); audited without the password.

    Raises:
        InputError: a bad name, role or too short password, or the name exists and ``replace`` is False.
    """
    if not _NAME_RE.match(name):
        raise InputError(f"user name {name!r}: use 1-64 letters, digits, '_', '.', '@' or '-', starting with a "
                         "letter or digit")
    check_role(role)
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InputError(f"password for {name!r} is too short: use at least {MIN_PASSWORD_LENGTH} characters")
    hashed = hash_password(password)
    with store.write() as conn:
        exists = conn.scalar(select(User.name).where(User.name == name)) is not None
        if exists and not replace:
            raise InputError(f"user {name!r} already exists; pass --replace to reset their role and password")
        if exists:
            conn.execute(update(User).where(User.name == name).values(role=role, password_hash=hashed, active=True))
        else:
            conn.execute(insert(User).values(name=name, role=role, password_hash=hashed, active=True))
        audit.append(conn, "user.replace" if exists else "user.add", {"user": name, "role": role}, actor=actor)
    return Account(name, role, True)


def deactivate_user(store: Store, name: str, *, actor: str | None = None) -> None:
    """Disable an account (its annotations stay); raises InputError if there is no such user."""
    with store.write() as conn:
        if conn.execute(update(User).where(User.name == name).values(active=False)).rowcount == 0:
            raise InputError(f"no user called {name!r}")
        audit.append(conn, "user.deactivate", {"user": name}, actor=actor)


@functools.cache
def dummy_hash() -> str:
    """A hash no password matches, computed once: checked in place of a missing account's hash, so an unknown
    name costs exactly one scrypt, as a known one does."""
    return hash_password(secrets.token_urlsafe(32))


def login_row(conn: Connection, name: str) -> Row[str, str, str, bool] | None:
    """The ``users`` row (name, role, password hash, active) :func:`check_password` needs, or None."""
    return conn.execute(select(User.name, User.role, User.password_hash, User.active)
                        .where(User.name == name)).first()


def check_password(row: Row[str, str, str, bool] | None, password: str) -> Account | None:
    """The account if ``password`` matches ``row`` and it is active, else None. Always exactly one scrypt check
    (against :func:`dummy_hash` for a missing account), so the time taken does not tell which names exist."""
    ok = verify_password(password, row.password_hash if row is not None else dummy_hash())
    if row is None or not ok or not row.active:
        return None
    return Account(row.name, row.role, True)


def authenticate(store: Store, name: str, password: str) -> Account | None:
    """The account if ``name``/``password`` match an active user, else None (the same cost either way).

    Not throttled: the app logs people in through :func:`curate.store.login_guard.attempt_login`.
    """
    with store.read() as conn:
        row = login_row(conn, name)
    return check_password(row, password)


def get_account(store: Store, name: str | None) -> Account:
    """The active account called ``name``; raises AccessError if there is none (or ``name`` is None)."""
    if name:
        with store.read() as conn:
            row = conn.execute(select(User.name, User.role, User.active).where(User.name == name)).first()
        if row is not None and row.active:
            return Account(row.name, row.role, True)
    raise AccessError("not logged in (or the account is disabled): log in again")


def require(store: Store, name: str | None, role: str) -> Account:
    """The account ``name`` if it has ``role`` or higher; raises AccessError otherwise."""
    account = get_account(store, name)
    if not account.can(role):
        raise AccessError(f"{account.name} is {account.role}; this needs the {role} role")
    return account


def list_users(store: Store) -> list[Account]:
    """Every account, by name."""
    with store.read() as conn:
        rows = conn.execute(select(User.name, User.role, User.active).order_by(User.name)).all()
    return [Account(r.name, r.role, bool(r.active)) for r in rows]


def has_users(store: Store) -> bool:
    """Whether any active account exists."""
    with store.read() as conn:
        return conn.scalar(select(User.name).where(User.active.is_(True)).limit(1)) is not None
