"""Login throttling on a real workspace database: the back-off arithmetic, the per-name and per-address limits,
the lockout and unlock (audited), unknown names treated like accounts, and one scrypt check per attempt."""

from __future__ import annotations

import hashlib
import threading
from typing import Any

import orjson
import pytest
from sqlalchemy import select

from curate.errors import InputError
from curate.store import accounts
from curate.store import login_guard as guard
from curate.store.accounts import add_user, authenticate, deactivate_user
from curate.store.login_guard import LoginPolicy, LoginThrottled, address_key, attempt_login, login_state, unlock
from curate.store.schema import AuditEvent, LoginThrottle
from curate.store.workspace import Workspace

PASSWORD = "correct-horse-42"
WRONG = "wrong-horse-99-guess"


class Clock:
    """Wall-clock seconds that a test moves forward."""

    def __init__(self, t: float = 1_000_000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def store(workspace: Workspace) -> Any:
    add_user(workspace.store, "ann", "annotator", PASSWORD)
    add_user(workspace.store, "bob", "annotator", PASSWORD)
    return workspace.store


def _events(store: Any, action: str) -> list[dict[str, Any]]:
    with store.read() as conn:
        return [orjson.loads(p) for p in conn.scalars(select(AuditEvent.payload).where(AuditEvent.action == action)
                                                      .order_by(AuditEvent.seq))]


def _try(store: Any, name: str, password: str, clock: Clock, policy: LoginPolicy | None = None,
         address: str | None = "192.0.2.1") -> str:
    """``"ok"``, ``"wrong"``, ``"slowed"`` or ``"locked"``."""
    try:
        found = attempt_login(store, name, password, address=address, policy=policy or LoginPolicy(), clock=clock)
    except LoginThrottled as exc:
        return "locked" if exc.locked else "slowed"
    return "ok" if found is not None else "wrong"


def test_back_off_doubles_after_the_free_attempts_up_to_the_cap():
    policy = LoginPolicy(free_attempts=5, address_free_attempts=20, backoff_seconds=1.0, max_backoff_seconds=60.0)
    assert [policy.delay(n) for n in range(12)] == [0, 0, 0, 0, 0, 1, 2, 4, 8, 16, 32, 60]
    assert policy.delay(10_000) == 60.0  # no overflow however many failures
    assert [policy.delay(n, address=True) for n in (19, 20, 21, 22)] == [0, 1, 2, 4]
    assert LoginPolicy(backoff_seconds=0).delay(50) == 0.0  # back-off off: only the lockout is left


def test_the_policy_comes_from_the_environment_and_refuses_nonsense():
    env = {"CURATE_LOGIN_LOCKOUT_AFTER": "10", "CURATE_LOGIN_LOCKOUT_SECONDS": "1800", "CURATE_LOGIN_FREE_ATTEMPTS": ""}
    assert LoginPolicy.from_env(env) == LoginPolicy(lockout_after=10, lockout_seconds=1800.0)
    assert LoginPolicy.from_env({}) == LoginPolicy()
    with pytest.raises(InputError, match="CURATE_LOGIN_LOCKOUT_AFTER='many': expected a whole number"):
        LoginPolicy.from_env({"CURATE_LOGIN_LOCKOUT_AFTER": "many"})
    with pytest.raises(InputError, match="must be a number >= 0"):
        LoginPolicy(backoff_seconds=-1)
    with pytest.raises(InputError, match="lockout_after must be at least 1"):
        LoginPolicy(lockout_after=0)


def test_attempts_beyond_the_free_ones_wait_and_early_ones_are_refused_unchecked(store, monkeypatch):
    clock, checks = Clock(), []
    real_check = guard.check_password
    monkeypatch.setattr(guard, "check_password", lambda row, pw: checks.append(1) or real_check(row, pw))
    assert [_try(store, "ann", WRONG, clock) for _ in range(5)] == ["wrong"] * 5
    assert _try(store, "ann", PASSWORD, clock) == "slowed" and len(checks) == 5  # refused before any scrypt
    clock.t += 0.9
    assert _try(store, "ann", PASSWORD, clock) == "slowed"
    with pytest.raises(LoginThrottled, match=r"for this name: wait 1 s") as refused:
        attempt_login(store, "ann", PASSWORD, policy=LoginPolicy(), clock=clock)
    assert 0 < refused.value.retry_after <= 0.1 + 1e-6
    clock.t += 0.1
    assert _try(store, "ann", WRONG, clock) == "wrong"  # the 6th failure: the next one waits 2 s
    clock.t += 1.5
    assert _try(store, "ann", PASSWORD, clock) == "slowed"
    clock.t += 0.5
    assert _try(store, "ann", PASSWORD, clock) == "ok"
    assert login_state(store, "ann").failures == 0  # a success clears the count ...
    assert [_try(store, "ann", WRONG, clock) for _ in range(5)] == ["wrong"] * 5  # ... so the free tries are back
    assert _try(store, "bob", PASSWORD, clock) == "ok"  # other names are not affected


def test_twenty_failures_lock_the_name_until_the_lockout_ends_or_an_admin_unlocks(store):
    clock, policy = Clock(), LoginPolicy(backoff_seconds=0.0, lockout_seconds=900.0)
    assert [_try(store, "ann", WRONG, clock, policy) for _ in range(20)] == ["wrong"] * 20
    assert _try(store, "ann", PASSWORD, clock, policy) == "locked"
    with pytest.raises(LoginThrottled, match="locked for 15 minutes .*curate users unlock"):
        attempt_login(store, "ann", PASSWORD, policy=policy, clock=clock)
    assert login_state(store, "ann").locked(clock.t)
    clock.t += 899
    assert _try(store, "ann", PASSWORD, clock, policy) == "locked"
    clock.t += 2
    assert _try(store, "ann", WRONG, clock, policy) == "wrong"  # over: but one more failure locks it again
    assert _try(store, "ann", PASSWORD, clock, policy) == "locked"
    events = _events(store, "user.lockout")
    assert [(e["user"], e["account"], e["failures"]) for e in events] == [("ann", True, 20), ("ann", True, 21)]
    assert events[0]["address"] == "192.0.2.1" and events[0]["seconds"] == 900.0
    before = unlock(store, "ann", actor="ada", clock=clock)
    assert before.failures == 21 and before.locked(clock.t)
    assert _try(store, "ann", PASSWORD, clock, policy) == "ok"
    assert _events(store, "user.unlock") == [{"user": "ann", "was_locked": True, "failures": 21}]
    with store.read() as conn:
        actors = conn.execute(select(AuditEvent.action, AuditEvent.actor).where(AuditEvent.action == "user.unlock"))
        assert actors.all() == [("user.unlock", "ada")]
    with pytest.raises(InputError, match="no user called 'nobody'"):
        unlock(store, "nobody")


def test_unknown_and_disabled_names_are_counted_and_locked_like_accounts(store):
    clock, policy = Clock(), LoginPolicy(backoff_seconds=0.0)
    deactivate_user(store, "bob")
    outcomes = {name: [_try(store, name, PASSWORD if name == "bob" else WRONG, clock, policy) for _ in range(21)]
                for name in ("ann", "ghost", "bob")}
    assert outcomes["ann"] == outcomes["ghost"] == outcomes["bob"] == ["wrong"] * 20 + ["locked"]
    events = _events(store, "user.lockout")
    assert [(e["user"], e["account"]) for e in events] == [("ann", True), (None, False), ("bob", True)]
    assert "ghost" not in orjson.dumps(events).decode()  # a name that is no account may be a mistyped password
    with store.read() as conn:
        keys = set(conn.scalars(select(LoginThrottle.key)))
    assert "ghost" not in keys and guard.name_key("ghost") in keys
    assert unlock(store, "ghost").failures == 20  # an admin can clear it too


def test_the_address_limit_slows_guessing_across_names(store):
    clock = Clock()
    policy = LoginPolicy(free_attempts=5, address_free_attempts=20, backoff_seconds=1.0)
    spray = [_try(store, f"user{i}", WRONG, clock, policy, address="198.51.100.7") for i in range(20)]
    assert spray == ["wrong"] * 20  # each name failed once: only the address counts up
    with pytest.raises(LoginThrottled, match="from this address: wait 1 s"):
        attempt_login(store, "ann", PASSWORD, address="198.51.100.7", policy=policy, clock=clock)
    assert _try(store, "ann", PASSWORD, clock, policy, address="198.51.100.8") == "ok"  # another address is fine
    assert _try(store, "bob", PASSWORD, clock, policy, address=None) == "ok"  # no address: names only
    clock.t += 1.0
    assert _try(store, "ann", PASSWORD, clock, policy, address="198.51.100.7") == "ok"
    clock.t += 0.5  # a success is not counted against the address (only failures are) ...
    assert _try(store, "user99", WRONG, clock, policy, address="198.51.100.7") == "slowed"
    clock.t += 0.5  # ... and it does not clear the address's failures either
    assert _try(store, "user99", WRONG, clock, policy, address="198.51.100.7") == "wrong"
    clock.t += 1.5
    assert _try(store, "ann", PASSWORD, clock, policy, address="198.51.100.7") == "slowed"  # now 2 s
    clock.t += policy.forget_after_seconds + 1  # a quiet hour: forgotten
    assert [_try(store, f"x{i}", WRONG, clock, policy, address="198.51.100.7") for i in range(20)] == ["wrong"] * 20


def test_addresses_are_counted_per_ipv4_address_and_per_ipv6_network():
    assert address_key("192.0.2.1") == "192.0.2.1"
    assert address_key("2001:db8:1:2::5") == address_key("2001:db8:1:2:ffff::1") == "2001:db8:1:2::/64"
    assert address_key("2001:db8:1:3::5") != address_key("2001:db8:1:2::5")
    assert address_key("::ffff:192.0.2.1") == "192.0.2.1"
    assert address_key("fe80::1%eth0") == "fe80::/64"
    assert address_key("testclient") == "testclient"


def test_parallel_guesses_cannot_slip_past_the_limit(store):
    clock, results = Clock(), []
    barrier = threading.Barrier(10)

    def guess() -> None:
        barrier.wait()
        results.append(_try(store, "ann", WRONG, clock))

    threads = [threading.Thread(target=guess) for _ in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == ["slowed"] * 5 + ["wrong"] * 5


def test_every_attempt_costs_exactly_one_scrypt_check(store, monkeypatch):
    accounts.dummy_hash()  # computed once, before the first unknown name arrives
    calls = []
    real_scrypt = hashlib.scrypt
    monkeypatch.setattr(hashlib, "scrypt", lambda *a, **k: calls.append(1) or real_scrypt(*a, **k))
    deactivate_user(store, "bob")
    for name, password in (("ann", PASSWORD), ("ann", WRONG), ("ghost", WRONG), ("bob", PASSWORD)):
        calls.clear()
        authenticate(store, name, password)
        assert len(calls) == 1, name
        calls.clear()
        _try(store, name, password, Clock(), LoginPolicy(free_attempts=100))
        assert len(calls) == 1, name


def test_an_attempt_that_read_the_clock_before_a_concurrent_one_is_not_slowed(store):
    # Two logins from one address at once: the one that read the clock later took the lock first, so the stored
    # last attempt is after the other's time. With no delay owed, the other must still be checked (CI saw "wait 1 s").
    assert _try(store, "ann", PASSWORD, Clock(1_000_000.5)) == "ok"
    assert _try(store, "bob", PASSWORD, Clock(1_000_000.0)) == "ok"
    assert _try(store, "bob", WRONG, Clock(1_000_000.6)) == "wrong"
    assert _try(store, "bob", PASSWORD, Clock(1_000_000.1)) == "ok"
