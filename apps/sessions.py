"""Login sessions of the annotation app that expire, and end at once when an account is disabled.

Gradio's built-in login (``POST /login``) puts a random token in ``app.tokens`` (token -> user name) and in the
``access-token-<id>`` cookies, and keeps it in memory until the server stops. :class:`Sessions` gives each token
a lifetime of ``ttl`` seconds, counted from the first request that carries it (the login's client fetches the
config right after logging in) on a monotonic clock. Once a token has expired, or its account was disabled,
the session is *ended*:

- every event handler of the app (the named API endpoints and the UI's events alike, wrapped by
  :meth:`Sessions.protect`) refuses it with ``session expired: log in again`` (or ``account disabled``): a
  ``gr.Error``, so a toast in the browser and an ``AppError`` for API callers;
- :class:`ExpiredSessionMiddleware` hides its login cookies from every other route, so Gradio treats those
  requests as not logged in: config, files, uploads and API info answer 401 and a reload shows the login page;
- once it has been ended for ``grace`` seconds, the next request on any other route (a reload, the session's
  heartbeat) drops the token from ``app.tokens``, and Gradio itself refuses it from then on. Event handlers
  never drop it: the refusal has to reach the client on a stream it opens after submitting the event, which
  Gradio would refuse if the token were already gone.

Logins go through :func:`curate.store.login_guard.attempt_login`: throttled per name and per client address
(the middleware puts each request's client address in :data:`CLIENT_ADDRESS`, since Gradio passes ``auth`` only
the name and password), with a lockout after repeated failures. A throttled login is answered like a wrong one
(HTTP 400, which Gradio's login form shows as "Incorrect Credentials"; the form cannot show another text), with
the reason and a ``Retry-After`` header for API clients.
"""

from __future__ import annotations

import functools
import inspect
import math
import re
import threading
import time
from collections.abc import Awaitable, Callable, Mapping
from contextvars import ContextVar
from typing import Any

import anyio.to_thread
import gradio as gr
from fastapi import HTTPException
from starlette.middleware import Middleware
from starlette.types import ASGIApp, Receive, Scope, Send

from curate.errors import AccessError, InputError
from curate.store.accounts import get_account
from curate.store.database import Store
from curate.store.login_guard import LoginPolicy, LoginThrottled, attempt_login

DEFAULT_SESSION_TTL = 12 * 3600.0
GRACE_SECONDS = 30.0
EXPIRED = "session expired: log in again"
DISABLED = "account disabled: ask an admin (this session has ended)"
NO_SESSION = "not logged in: log in again"
# Requests that start or follow an event: they reach the (wrapped) handler, which refuses with a clear message.
_EVENT_ROUTE = re.compile(r"/gradio_api/(queue/join|queue/data|call/|run/|api/)")
#: The client address of the HTTP request being served (set by :class:`ExpiredSessionMiddleware`), or None.
CLIENT_ADDRESS: ContextVar[str | None] = ContextVar("curate_client_address", default=None)


def now() -> float:
    """The clock sessions are timed with: monotonic seconds (a test may replace it to move time forward)."""
    return time.monotonic()


def login_checker(store: Store, policy: LoginPolicy | None = None) -> Callable[[str, str], Awaitable[bool]]:
    """Gradio's ``auth`` callable: a throttled login (:func:`~curate.store.login_guard.attempt_login`, per name
    and per the client address in :data:`CLIENT_ADDRESS`; ``policy`` defaults to ``LoginPolicy.from_env()``).

    The check (scrypt: tens of milliseconds and 16 MiB of memory) runs in a worker thread. Gradio awaits an async
    ``auth`` but calls a plain one on its event loop, where every login would stall all other requests (20
    people logging in at once froze the app for seconds under load). A throttled attempt is refused with HTTP 400
    (what the login form expects of a failure), its reason and ``Retry-After``.
    """
    limits = policy or LoginPolicy.from_env()

    async def check(name: str, password: str) -> bool:
        login = functools.partial(attempt_login, store, name, password, address=CLIENT_ADDRESS.get(), policy=limits)
        try:
            return await anyio.to_thread.run_sync(login) is not None
        except LoginThrottled as exc:
            raise HTTPException(status_code=400, detail=str(exc),
                                headers={"Retry-After": str(math.ceil(exc.retry_after))}) from None

    return check


def account_checker(store: Store) -> Callable[[str], bool]:
    """``is_active(name)`` for :class:`Sessions`: whether ``name`` is an active account of ``store``."""

    def is_active(name: str) -> bool:
        try:
            get_account(store, name)
        except AccessError:
            return False
        return True

    return is_active


class Sessions:
    """Expiry for the login tokens of one running Gradio app (attach it to the app once it is launched).

    Args:
        ttl: a session's lifetime in seconds (default 12 hours).
        is_active: whether an account may still act (see :func:`account_checker`); None skips the check.
        grace: seconds an ended session's token stays known (refused with the reason) before it is dropped.
        clock: seconds on a monotonic clock (default: :func:`now`, looked up at each call).
    """

    def __init__(self, ttl: float = DEFAULT_SESSION_TTL, *, is_active: Callable[[str], bool] | None = None,
                 grace: float = GRACE_SECONDS, clock: Callable[[], float] | None = None) -> None:
        if not ttl > 0:
            raise InputError(f"session_ttl must be a positive number of seconds; got {ttl!r}")
        self.ttl = float(ttl)
        self.grace = float(grace)
        self.is_active = is_active
        self.clock = clock or (lambda: now())
        self.app: Any = None
        self._first_seen: dict[str, float] = {}
        self._ended: dict[str, tuple[str, float]] = {}  # token -> (why, when)
        self._lock = threading.Lock()

    def attach(self, app: Any) -> None:
        """Use ``app.tokens`` and ``app.cookie_id`` of the launched Gradio app (``demo.launch()[0]``)."""
        self.app = app

    def middleware(self) -> Middleware:
        """The middleware entry for ``demo.launch(app_kwargs={"middleware": [...]})``."""
        return Middleware(ExpiredSessionMiddleware, sessions=self)

    def token(self, cookies: Mapping[str, str] | Any) -> str | None:
        """The login token in a request's cookies (Gradio sets a secure and an unsecure copy)."""
        if self.app is None or cookies is None:
            return None
        cookie_id = self.app.cookie_id
        found = cookies.get(f"access-token-{cookie_id}") or cookies.get(f"access-token-unsecure-{cookie_id}")
        return str(found) if found else None

    def ended(self, token: str, *, drop: bool = False) -> str | None:
        """Why the session of ``token`` has ended (:data:`EXPIRED` or :data:`DISABLED`), or None if it is live.

        The first call for a token starts its clock. With ``drop``, a token ended more than ``grace`` seconds ago
        is dropped (never from an event handler: the refusal still has to reach the client on Gradio's stream).
        """
        if self.app is None or token not in self.app.tokens:
            return None  # unknown to Gradio (never issued, logged out or dropped): Gradio refuses it itself
        t = self.clock()
        with self._lock:
            first = self._first_seen.setdefault(token, t)
            if token not in self._ended and t - first > self.ttl:
                self._ended[token] = (EXPIRED, t)
            why, when = self._ended.get(token, (None, t))
            if first == t and len(self._first_seen) > 1000:
                self._prune(t)
        if drop and why is not None and t - when > self.grace:
            self.drop(token)
        return why

    def end_user(self, name: str, why: str = DISABLED) -> None:
        """End every session of ``name`` now (each is refused with ``why``, then dropped after the grace)."""
        if self.app is None:
            return
        t = self.clock()
        with self._lock:
            for token, user in list(self.app.tokens.items()):
                if user == name:
                    self._ended.setdefault(token, (why, t))

    def drop(self, token: str) -> None:
        """Forget ``token`` here and in Gradio (which then refuses it like any unknown token)."""
        with self._lock:
            self._first_seen.pop(token, None)
            self._ended.pop(token, None)
        if self.app is not None:
            self.app.tokens.pop(token, None)

    def _prune(self, t: float) -> None:
        # Called with the lock held: forget logged-out tokens, drop the expired ones nobody came back with.
        live = self.app.tokens if self.app is not None else {}
        for token, first in list(self._first_seen.items()):
            if token not in live or t - first > self.ttl + self.grace:
                del self._first_seen[token]
                self._ended.pop(token, None)
                live.pop(token, None)

    def check(self, request: gr.Request | None) -> None:
        """Refuse (``gr.Error``) a call whose session has expired or whose account is disabled."""
        if self.app is None:  # not launched yet: Gradio's own login check is all there is
            return
        token = self.token(getattr(request, "cookies", None)) if request is not None else None
        if token is None:
            raise gr.Error(NO_SESSION, print_exception=False)
        why = self.ended(token)
        name = getattr(request, "username", None)
        if why is None and name and self.is_active is not None and not self.is_active(str(name)):
            self.end_user(str(name))
            why = DISABLED
        if why is not None:
            raise gr.Error(why, print_exception=False)

    def guard(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        """``fn`` preceded by :meth:`check` (its signature is kept, so Gradio still passes the request)."""
        if inspect.isgeneratorfunction(fn):
            @functools.wraps(fn)
            def checked_gen(*args: Any, **kwargs: Any) -> Any:
                self.check(_request_of(args, kwargs))
                yield from fn(*args, **kwargs)
            return checked_gen
        if inspect.iscoroutinefunction(fn):
            @functools.wraps(fn)
            async def checked_async(*args: Any, **kwargs: Any) -> Any:
                self.check(_request_of(args, kwargs))
                return await fn(*args, **kwargs)
            return checked_async

        @functools.wraps(fn)
        def checked(*args: Any, **kwargs: Any) -> Any:
            self.check(_request_of(args, kwargs))
            return fn(*args, **kwargs)
        return checked

    def protect(self, demo: gr.Blocks) -> None:
        """Guard every event handler of ``demo`` (call once, before launching it)."""
        for block_fn in demo.fns.values():
            if block_fn.fn is not None and not getattr(block_fn.fn, "_session_guarded", False):
                block_fn.fn = self.guard(block_fn.fn)
                block_fn.fn._session_guarded = True  # type: ignore[attr-defined]


def _request_of(args: tuple[Any, ...], kwargs: dict[str, Any]) -> gr.Request | None:
    """The ``gr.Request`` Gradio passed to a handler (or set as the event's context)."""
    for value in (*args, *kwargs.values()):
        if isinstance(value, gr.Request):
            return value
    from gradio.context import LocalContext

    found = LocalContext.request.get(None)
    return found if isinstance(found, gr.Request) else None


class ExpiredSessionMiddleware:
    """Requests of ended sessions reach every route that does not run an event handler as not logged in; every
    HTTP request's client address is in :data:`CLIENT_ADDRESS` while it is served (for the login throttle)."""

    def __init__(self, app: ASGIApp, sessions: Sessions) -> None:
        self.app = app
        self.sessions = sessions

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if not _EVENT_ROUTE.search(scope["path"]):
            if self.sessions.app is None and "app" in scope:
                self.sessions.attach(scope["app"])
            if self.sessions.app is not None:
                scope = {**scope, "headers": without_ended_logins(
                    scope["headers"], lambda token: self.sessions.ended(token, drop=True))}
        # The TCP peer as uvicorn reports it (it trusts X-Forwarded-For only from $FORWARDED_ALLOW_IPS, by
        # default 127.0.0.1: a TLS proxy on the same machine passes the real client's address).
        client = scope.get("client")
        token = CLIENT_ADDRESS.set(str(client[0]) if client else None)
        try:
            await self.app(scope, receive, send)
        finally:
            CLIENT_ADDRESS.reset(token)


def without_ended_logins(headers: list[tuple[bytes, bytes]], ended: Callable[[str], str | None]
                         ) -> list[tuple[bytes, bytes]]:
    """Request headers without the ``access-token-*`` cookies whose session has ``ended``."""
    out = []
    for name, value in headers:
        if name.lower() == b"cookie" and b"access-token-" in value:
            kept = []
            for part in value.split(b";"):
                key, _, token = part.strip().partition(b"=")
                if not (key.startswith(b"access-token-") and ended(token.decode("latin-1").strip('"'))):
                    kept.append(part)
            if not kept:
                continue
            value = b";".join(kept)
        out.append((name, value))
    return out
