"""Login throttling: exponential back-off per account name and per client address, and a temporary lockout.

The first ``free_attempts`` failed logins of a name (``address_free_attempts`` from one client address) cost
nothing. After that, each further attempt must come at least ``backoff_seconds * 2**k`` after the previous one
(``k`` = failures beyond the free ones, capped at ``max_backoff_seconds``); an earlier one is refused without
checking its password. After ``lockout_after`` consecutive failures a name is locked for ``lockout_seconds``:
even the right password is refused until the lockout ends or an admin runs ``curate users unlock NAME``, and
each failure after it ends locks the name again. A successful login clears the name's count; counts that nothing
added to for ``forget_after_seconds`` start again from zero. Addresses are slowed down, never locked (a whole
office may share one); an IPv6 address counts as its /64 network.

Names that are no account are counted, throttled and locked exactly like accounts, and every attempt that is
let through costs exactly one scrypt check (:func:`curate.store.accounts.check_password`), so neither the answers
nor their timing tell which names exist. An attempt is counted *before* its password is checked (and taken back
if it succeeds), so parallel guesses cannot slip past the limits.

The counts live in the ``login_throttle`` table, so every app process and the CLI share them; names are stored as
hashes (people type passwords into the name field). Every lockout and every unlock is an audit event. The limits
are :class:`LoginPolicy` fields; a deployment sets them with ``CURATE_LOGIN_<FIELD>`` environment variables
(e.g. ``CURATE_LOGIN_LOCKOUT_SECONDS=1800``), read when the app starts.
"""

from __future__ import annotations

import hashlib
import ipaddress
import math
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from typing import Any, Final

from sqlalchemy import Connection, delete, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from curate.errors import AccessError, InputError, StoreError
from curate.store import audit
from curate.store.accounts import Account, check_password, login_row
from curate.store.database import Store
from curate.store.schema import LoginThrottle, User

#: Failed logins of one name that need no waiting.
FREE_ATTEMPTS: Final = 5
#: Failed logins from one client address that need no waiting: more than LOCKOUT_AFTER, so one person who locked
#: their name is not slowed down once an admin unlocks it, and several people may share an address.
ADDRESS_FREE_ATTEMPTS: Final = 30
#: The wait after the first failure beyond the free ones; it doubles with each further failure ...
BACKOFF_SECONDS: Final = 1.0
#: ... up to this.
MAX_BACKOFF_SECONDS: Final = 60.0
#: Consecutive failures of one name that lock it.
LOCKOUT_AFTER: Final = 20
#: How long a lockout lasts (15 minutes).
LOCKOUT_SECONDS: Final = 900.0
#: A count with no attempt for this long starts again from zero (an hour).
FORGET_AFTER_SECONDS: Final = 3600.0
#: Environment variable prefix: ``CURATE_LOGIN_LOCKOUT_AFTER`` sets :attr:`LoginPolicy.lockout_after`, etc.
ENV_PREFIX: Final = "CURATE_LOGIN_"
NAME, ADDRESS = "name", "address"  # the ``scope`` of a login_throttle row
_PRUNE_EVERY = 300.0  # seconds between deletions of forgotten counts (per process)
_last_prune = [0.0]


def now() -> float:
    """The clock throttling is timed with: wall-clock seconds, shared by processes (a test may replace it)."""
    return time.time()


@dataclass(frozen=True, slots=True)
class LoginPolicy:
    """The limits of :func:`attempt_login` (defaults: the module's constants)."""

    free_attempts: int = FREE_ATTEMPTS
    address_free_attempts: int = ADDRESS_FREE_ATTEMPTS
    backoff_seconds: float = BACKOFF_SECONDS
    max_backoff_seconds: float = MAX_BACKOFF_SECONDS
    lockout_after: int = LOCKOUT_AFTER
    lockout_seconds: float = LOCKOUT_SECONDS
    forget_after_seconds: float = FORGET_AFTER_SECONDS

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if not (isinstance(value, int | float) and math.isfinite(value) and value >= 0):
                raise InputError(f"login policy: {f.name} must be a number >= 0; got {value!r}")
        if self.lockout_after < 1:
            raise InputError(f"login policy: lockout_after must be at least 1; got {self.lockout_after}")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> LoginPolicy:
        """The defaults, overridden by ``CURATE_LOGIN_<FIELD>`` variables (``CURATE_LOGIN_FREE_ATTEMPTS=10``)."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for f in fields(cls):
            raw = env.get(ENV_PREFIX + f.name.upper(), "").strip()
            if not raw:
                continue
            kind: type[int] | type[float] = int if isinstance(f.default, int) else float
            try:
                values[f.name] = kind(raw)
            except ValueError:
                raise InputError(f"{ENV_PREFIX}{f.name.upper()}={raw!r}: expected "
                                 f"{'a whole number' if kind is int else 'a number of seconds'}") from None
        return cls(**values)

    def delay(self, failures: int, *, address: bool = False) -> float:
        """Seconds an attempt must wait after the previous one, once ``failures`` attempts in a row have failed."""
        extra = failures - (self.address_free_attempts if address else self.free_attempts)
        if extra < 0:
            return 0.0
        return min(self.backoff_seconds * 2.0 ** min(extra, 64), self.max_backoff_seconds)


class LoginThrottled(AccessError):
    """A login refused before its password was checked: too many failures for the name or from the address.

    ``retry_after`` is the number of seconds until an attempt will be checked again; ``locked`` whether the
    name is locked (rather than slowed down).
    """

    def __init__(self, message: str, retry_after: float, *, locked: bool) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        self.locked = locked


def name_key(name: str) -> str:
    """How a name is stored in ``login_throttle``: a SHA-256 hex digest (never the text typed)."""
    return hashlib.sha256(b"curate-login\0" + name.encode("utf-8", "surrogatepass")).hexdigest()


def address_key(address: str) -> str:
    """How an address is counted: an IPv4 address as it is, an IPv6 one as its /64 network."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return address[:64]
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)


def _wait_text(seconds: float) -> str:
    seconds = math.ceil(seconds)
    return f"{seconds} s" if seconds < 120 else f"{math.ceil(seconds / 60)} minutes"


def attempt_login(store: Store, name: str, password: str, *, address: str | None = None,
                  policy: LoginPolicy | None = None, clock: Callable[[], float] | None = None) -> Account | None:
    """The account if ``name``/``password`` match an active user and neither the name nor ``address`` (the
    client's, None to count names only) is throttled; None for a wrong password, an unknown name or a disabled
    account, each counted as a failure.

    Raises:
        LoginThrottled: too many recent failures for the name or from the address; the password was not checked.
    """
    policy = policy or LoginPolicy()
    t = (clock or now)()
    keys = [(NAME, name_key(name))] + ([(ADDRESS, address_key(address))] if address else [])
    _prune(store, t, policy)
    with store.write() as conn:
        failures = _claim(conn, keys, t, policy)
        row = login_row(conn, name)
    account = check_password(row, password)
    if account is not None:
        with store.write() as conn:
            _succeeded(conn, keys)
    elif failures >= policy.lockout_after:
        with store.write() as conn:
            _lock(conn, keys[0][1], name if row is not None else None, address, t, policy)
    return account


def _claim(conn: Connection, keys: list[tuple[str, str]], t: float, policy: LoginPolicy) -> int:
    """Count one attempt for each key, or raise :class:`LoginThrottled`; returns the name's count after it."""
    insert = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
    new = [{"scope": s, "key": k, "failures": 0, "last_attempt": t, "locked_until": None} for s, k in sorted(keys)]
    conn.execute(insert(LoginThrottle).values(new).on_conflict_do_nothing(index_elements=["scope", "key"]))
    rows = conn.execute(select(LoginThrottle.scope, LoginThrottle.key, LoginThrottle.failures,
                               LoginThrottle.last_attempt, LoginThrottle.locked_until)
                        .where(or_(*((LoginThrottle.scope == s) & (LoginThrottle.key == k) for s, k in keys)))
                        .order_by(LoginThrottle.scope, LoginThrottle.key).with_for_update()).all()
    counts: dict[str, int] = {}
    refusal: LoginThrottled | None = None
    for r in rows:
        if r.scope == NAME and r.locked_until is not None and r.locked_until > t:
            raise LoginThrottled(
                f"too many failed logins for this name: it is locked for {_wait_text(r.locked_until - t)} (an "
                "admin can lift this with `curate users unlock NAME`)", r.locked_until - t, locked=True)
        counts[r.scope] = 0 if t - r.last_attempt > policy.forget_after_seconds else int(r.failures)
        delay = policy.delay(counts[r.scope], address=r.scope == ADDRESS)
        # No delay owed: never refuse, even if a concurrent attempt that read the clock later got the lock first
        # (its last_attempt is then a little after this attempt's t).
        wait = r.last_attempt + delay - t if delay > 0 else 0.0
        if wait > 0 and (refusal is None or wait > refusal.retry_after):
            whose = "from this address" if r.scope == ADDRESS else "for this name"
            refusal = LoginThrottled(f"too many failed logins {whose}: wait {_wait_text(wait)} and try again",
                                     wait, locked=False)
    if refusal is not None:
        raise refusal
    for scope, key in keys:
        conn.execute(update(LoginThrottle).where(LoginThrottle.scope == scope, LoginThrottle.key == key)
                     .values(failures=counts.get(scope, 0) + 1, last_attempt=t))
    return counts.get(NAME, 0) + 1


def _succeeded(conn: Connection, keys: list[tuple[str, str]]) -> None:
    """A login worked: clear the name's count and take this attempt back from the address's."""
    for scope, key in keys:
        where = (LoginThrottle.scope == scope, LoginThrottle.key == key)
        if scope == NAME:
            conn.execute(delete(LoginThrottle).where(*where))
        else:
            conn.execute(update(LoginThrottle).where(*where, LoginThrottle.failures > 0)
                         .values(failures=LoginThrottle.failures - 1))


def _lock(conn: Connection, key: str, user: str | None, address: str | None, t: float,
          policy: LoginPolicy) -> None:
    """Lock the name ``key`` (``user`` when it is an account) unless it is locked already; audited."""
    row = conn.execute(select(LoginThrottle.failures, LoginThrottle.locked_until)
                       .where(LoginThrottle.scope == NAME, LoginThrottle.key == key).with_for_update()).first()
    if row is None or row.failures < policy.lockout_after or (row.locked_until or 0.0) > t:
        return  # unlocked, or locked by a parallel attempt, meanwhile
    until = t + policy.lockout_seconds
    conn.execute(update(LoginThrottle).where(LoginThrottle.scope == NAME, LoginThrottle.key == key)
                 .values(locked_until=until))
    # An unknown name is recorded by its hash only: it may be a password typed into the name field.
    audit.append(conn, "user.lockout", {
        "user": user, "name_hash": key[:16], "account": user is not None, "failures": int(row.failures),
        "seconds": policy.lockout_seconds, "address": address_key(address) if address else None,
    })


def _prune(store: Store, t: float, policy: LoginPolicy) -> None:
    """Delete forgotten counts (at most every few minutes per process; a failure here never blocks a login)."""
    if t - _last_prune[0] < _PRUNE_EVERY:
        return
    _last_prune[0] = t
    try:
        with store.write() as conn:
            conn.execute(delete(LoginThrottle).where(
                LoginThrottle.last_attempt < t - policy.forget_after_seconds,
                or_(LoginThrottle.locked_until.is_(None), LoginThrottle.locked_until < t)))
    except StoreError:
        pass


@dataclass(frozen=True, slots=True)
class LoginState:
    """What :func:`login_state` and :func:`unlock` report about one name."""

    name: str
    failures: int
    locked_until: float | None

    def locked(self, t: float | None = None) -> bool:
        """Whether the name is locked at ``t`` (default: now)."""
        return self.locked_until is not None and self.locked_until > (now() if t is None else t)


def login_state(store: Store, name: str) -> LoginState:
    """The failed-login count and lockout of ``name`` (zero and None when nothing is counted)."""
    with store.read() as conn:
        row = conn.execute(select(LoginThrottle.failures, LoginThrottle.locked_until)
                           .where(LoginThrottle.scope == NAME, LoginThrottle.key == name_key(name))).first()
    return LoginState(name, int(row.failures) if row else 0, row.locked_until if row else None)


def unlock(store: Store, name: str, *, actor: str | None = None, clock: Callable[[], float] | None = None
           ) -> LoginState:
    """Lift the lockout of ``name`` and clear its failed-login count (audited); returns the state before.

    Raises:
        InputError: there is no account called ``name`` and nothing is counted for it.
    """
    key = name_key(name)
    with store.write() as conn:
        exists = conn.scalar(select(User.name).where(User.name == name)) is not None
        row = conn.execute(select(LoginThrottle.failures, LoginThrottle.locked_until)
                           .where(LoginThrottle.scope == NAME, LoginThrottle.key == key).with_for_update()).first()
        if not exists and row is None:
            raise InputError(f"no user called {name!r} (and no failed logins under that name)")
        before = LoginState(name, int(row.failures) if row else 0, row.locked_until if row else None)
        conn.execute(delete(LoginThrottle).where(LoginThrottle.scope == NAME, LoginThrottle.key == key))
        was_locked = before.locked((clock or now)())
        audit.append(conn, "user.unlock", {"user": name, "was_locked": was_locked, "failures": before.failures},
                     actor=actor)
    return before
