"""Login hardening through the running app's real ``POST /login``: the lockout after 20 failures (lifted by time
or by ``curate users unlock`` from the CLI, both audited), the same response time for unknown and known names,
and the per-address limit fed by the middleware."""

from __future__ import annotations

import statistics
import time
from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from curate.cli.main import app as cli
from curate.store import login_guard
from curate.store.schema import AuditEvent
from tests.annotation_setup import PASSWORD, USERS
from tests.app.conftest import RunningApp

WRONG = "wrong-horse-99-guess"
INCORRECT = "Incorrect credentials."  # Gradio's own answer to a wrong password


class Skewed:
    """The login guard's clock: real time plus a skew the test moves forward (no real waiting)."""

    def __init__(self) -> None:
        self.skew = 0.0

    def __call__(self) -> float:
        return time.time() + self.skew


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Skewed:
    skewed = Skewed()
    monkeypatch.setattr(login_guard, "now", skewed)
    return skewed


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=30) as client:
        yield client


def _login(http: httpx.Client, served: RunningApp, name: str, password: str, **headers: str) -> httpx.Response:
    return http.post(served.url + "login", data={"username": name, "password": password}, headers=headers)


def _detail(response: httpx.Response) -> str:
    return str(response.json()["detail"])


def _audit(served: RunningApp) -> list[tuple[str, str, dict[str, Any]]]:
    with served.ws.store.read() as conn:
        rows = conn.execute(select(AuditEvent.action, AuditEvent.actor, AuditEvent.payload)
                            .where(AuditEvent.action.in_(("user.lockout", "user.unlock"))).order_by(AuditEvent.seq))
        return [(action, actor, orjson.loads(payload)) for action, actor, payload in rows]


def _fail_until_locked(http: httpx.Client, served: RunningApp, clock: Skewed, name: str, **headers: str) -> None:
    """20 wrong passwords for ``name``, each waiting out the back-off on the skewed clock."""
    for attempt in range(login_guard.LOCKOUT_AFTER):
        if attempt == login_guard.FREE_ATTEMPTS:  # the back-off starts: an early try is refused unchecked
            early = _login(http, served, name, PASSWORD, **headers)
            assert early.status_code == 400 and "too many failed logins for this name: wait" in _detail(early)
            assert early.headers["retry-after"] == "1" and not early.cookies
        if attempt >= login_guard.FREE_ATTEMPTS:
            clock.skew += login_guard.MAX_BACKOFF_SECONDS
        wrong = _login(http, served, name, WRONG, **headers)
        assert wrong.status_code == 400 and _detail(wrong) == INCORRECT and not wrong.cookies, attempt


def test_twenty_wrong_passwords_lock_the_account_until_it_ends_or_an_admin_unlocks(running_app: RunningApp,
                                                                                     clock: Skewed,
                                                                                     http: httpx.Client) -> None:
    served = running_app
    # Each name from its own address (the loopback client is a trusted proxy for uvicorn, so X-Forwarded-For
    # names the client): the address's own back-off is another test's subject.
    ann, bob = {"X-Forwarded-For": "198.51.100.1"}, {"X-Forwarded-For": "198.51.100.2"}
    _fail_until_locked(http, served, clock, "ann", **ann)
    locked = _login(http, served, "ann", PASSWORD, **ann)
    assert locked.status_code == 400 and not locked.cookies  # the right password is refused, like a wrong one
    assert "locked for 15 minutes" in _detail(locked) and "curate users unlock" in _detail(locked)
    clock.skew += login_guard.LOCKOUT_SECONDS - 60
    assert _login(http, served, "ann", PASSWORD, **ann).status_code == 400  # still locked a minute before the end
    clock.skew += 61
    opened = _login(http, served, "ann", PASSWORD, **ann)
    assert opened.status_code == 200 and opened.json() == {"success": True} and opened.cookies

    _fail_until_locked(http, served, clock, "bob", **bob)
    assert _login(http, served, "bob", PASSWORD, **bob).status_code == 400
    ws = ["--workspace", str(served.ws.root), "--db", served.ws.db_url]
    out = CliRunner().invoke(cli, ["users", "unlock", "bob", *ws])  # another "process": only the database is shared
    assert out.exit_code == 0 and "user bob unlocked (was locked; 20 failed login(s) cleared)" in out.output
    assert _login(http, served, "bob", PASSWORD, **bob).status_code == 200  # at once, no waiting
    out = CliRunner().invoke(cli, ["users", "unlock", "nobody", *ws])
    assert out.exit_code != 0 and "no user called 'nobody'" in str(out.exception)

    events = _audit(served)
    assert [(action, payload.get("user")) for action, _, payload in events] == [
        ("user.lockout", "ann"), ("user.lockout", "bob"), ("user.unlock", "bob")]
    assert events[0][2]["failures"] == 20 and events[0][2]["address"] == "198.51.100.1"
    assert events[2][1] == "tester" and events[2][2] == {"user": "bob", "was_locked": True, "failures": 20}


def test_an_unknown_name_is_refused_exactly_like_a_known_one(running_app: RunningApp, clock: Skewed,
                                                             http: httpx.Client) -> None:
    """The same answers for a name that is no account: wrong, then slowed down, then locked."""
    served = running_app
    answers = {}
    for name in ("ann", "nosuchuser"):
        seen = [_detail(_login(http, served, name, WRONG)) for _ in range(login_guard.FREE_ATTEMPTS)]
        seen.append(_detail(_login(http, served, name, WRONG)))
        answers[name] = [text.split(": wait")[0] for text in seen]
    assert answers["ann"] == answers["nosuchuser"] == [INCORRECT] * 5 + ["too many failed logins for this name"]


@pytest.fixture
def unthrottled(monkeypatch: pytest.MonkeyPatch) -> None:
    """No back-off for the app launched after this fixture (it reads the limits from the environment)."""
    monkeypatch.setenv("CURATE_LOGIN_FREE_ATTEMPTS", "1000000")
    monkeypatch.setenv("CURATE_LOGIN_ADDRESS_FREE_ATTEMPTS", "1000000")


def test_unknown_and_known_names_take_the_same_time(unthrottled: None, running_app: RunningApp,
                                                    http: httpx.Client) -> None:
    """30 wrong passwords each, alternating an account and a name that is none; throttling is moved out of the way
    (the counting still runs, for both), so what is measured is the password check itself."""
    served = running_app
    known, unknown = list(USERS), ["anne", "bobby", "rito", "adam"]

    def timed(name: str) -> float:
        start = time.perf_counter()
        response = _login(http, served, name, WRONG)
        elapsed = time.perf_counter() - start
        assert response.status_code == 400 and _detail(response) == INCORRECT
        return elapsed

    for name in known[:2] + unknown[:2]:  # warm up (connections, the dummy hash)
        timed(name)
    times: dict[str, list[float]] = {"known": [], "unknown": []}
    for i in range(30):
        times["known"].append(timed(known[i % len(known)]))
        times["unknown"].append(timed(unknown[i % len(unknown)]))
    # Lower quartiles: a busy machine (other test workers, a benchmark) only adds time, in spikes. A name that skipped
    # the hash would answer 10x faster than one that ran it, so half the time apart still catches the leak.
    known_q, unknown_q = (statistics.quantiles(times[k], n=4)[0] for k in ("known", "unknown"))
    assert abs(known_q - unknown_q) < 0.5 * min(known_q, unknown_q), times
    assert known_q > 0.005  # a real scrypt check ran (the throttle did not answer early)


def test_the_address_limit_applies_to_the_client_address_the_app_sees(running_app: RunningApp, clock: Skewed,
                                                                      http: httpx.Client) -> None:
    """Guesses spread over many names from one address are slowed down; other addresses are not. The loopback
    client is a trusted proxy for uvicorn, so ``X-Forwarded-For`` stands for the client's address."""
    served = running_app
    sprayer, other = {"X-Forwarded-For": "203.0.113.7"}, {"X-Forwarded-For": "203.0.113.8"}
    for i in range(login_guard.ADDRESS_FREE_ATTEMPTS):
        assert _detail(_login(http, served, f"guess{i}", WRONG, **sprayer)) == INCORRECT
    slowed = _login(http, served, "ann", PASSWORD, **sprayer)
    assert slowed.status_code == 400 and "too many failed logins from this address: wait 1 s" in _detail(slowed)
    assert _login(http, served, "ann", PASSWORD, **other).status_code == 200
    clock.skew += 1.0
    assert _login(http, served, "ann", PASSWORD, **sprayer).status_code == 200  # after the wait, it is checked
