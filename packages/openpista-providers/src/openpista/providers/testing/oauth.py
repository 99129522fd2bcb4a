"""A fake OAuth authorization server on 127.0.0.1 for every sign-in flow, for tests.

It is a real HTTP server in a background thread, so it serves an `openpista auth login`
subprocess as readily as an in-process flow. Each flow lives under its own path prefix,
mirroring the real service's paths (what `OPENPISTA_OAUTH_<FLOW>_BASE` expects):

    /openai/oauth/authorize, /openai/oauth/token               (auth.openai.com)
    /anthropic/oauth/authorize, /anthropic/v1/oauth/token      (claude.ai, console.anthropic.com)
    /openrouter/auth, /openrouter/api/v1/auth/keys             (openrouter.ai)
    /copilot/login/device/code, /copilot/login/oauth/access_token,
    /copilot/copilot_internal/v2/token                         (github.com, api.github.com)

It checks what the real servers check: the PKCE verifier against the challenge, that a code
is used once and with the redirect URI it was issued for, that a rotated refresh token is
not used again. Authorization is approved at once: the authorize URL redirects to the
redirect URI with `code` and `state` (Anthropic's code-display page shows `CODE#STATE`),
and a device code is approved after `device_pending_polls` pending answers.

    with FakeAuthorizationServer(access_token_lifetime_s=60) as auth:
        env.update(auth.env())          # OPENPISTA_OAUTH_* pointing here
        ...                             # sign in; a browser is `BrowserConsole`
        assert auth.refresh_count("openai") == 1
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import html
import itertools
import json
import re
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, cast
from urllib.parse import parse_qs, urlencode, urlsplit

from openpista.providers.signin.endpoints import (
    AnthropicEndpoints,
    CopilotEndpoints,
    OpenAIEndpoints,
    SigninEndpoints,
    base_variable,
    callback_port_variable,
)
from openpista.providers.testing._server import FakeHandler, FakeServer

FLOWS = ("openai", "anthropic", "openrouter", "copilot")
TOKEN_EXCHANGE_GRANT = "urn:ietf:params:oauth:grant-type:token-exchange"
ID_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:id_token"
DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"


@dataclass(frozen=True, slots=True)
class RecordedOAuthRequest:
    """A request the server received."""

    method: str
    path: str
    """Without the query."""
    query: Mapping[str, str]
    headers: Mapping[str, str]
    """Header names lower-cased."""
    body: Mapping[str, Any]
    """The form or JSON body's fields ({} for none)."""
    content_type: str


@dataclass(slots=True)
class _PendingCode:
    flow: str
    client_id: str
    redirect_uri: str
    challenge: str
    method: str
    state: str


@dataclass(slots=True)
class _Device:
    device_code: str
    user_code: str
    polls: int = 0
    slow_downs_left: int = 0
    approved: bool = False
    denied: bool = False


@dataclass(slots=True)
class _Grant:
    """What one refresh token is good for."""

    flow: str
    client_id: str
    account_id: str
    used: bool = False


@dataclass(slots=True)
class _Issued:
    access_tokens: dict[str, tuple[str, float]] = field(default_factory=lambda: {})
    """access token -> (flow, expires_at)"""
    refresh_tokens: dict[str, _Grant] = field(default_factory=lambda: {})
    id_tokens: set[str] = field(default_factory=lambda: set())
    github_tokens: set[str] = field(default_factory=lambda: set())
    api_keys: set[str] = field(default_factory=lambda: set())
    copilot_exchanged: set[str] = field(default_factory=lambda: set())
    """GitHub tokens that have bought a Copilot token already (later ones are refreshes)."""


class FakeAuthorizationServer(FakeServer[RecordedOAuthRequest]):
    """Every sign-in flow's server on 127.0.0.1 (a free port unless told), in a thread.

    `access_token_lifetime_s` is the `expires_in` of OpenAI and Anthropic access tokens,
    `copilot_token_lifetime_s` the lifetime of Copilot tokens; `fail_refresh` = (status,
    message) makes every refresh fail that way; `api_key_exchange` False makes OpenAI's
    id_token -> API key exchange refuse (an account with no API organisation).
    """

    def __init__(
        self,
        *,
        access_token_lifetime_s: float = 3600.0,
        copilot_token_lifetime_s: float = 1800.0,
        account_id: str = "acct-fake-0001",
        device_pending_polls: int = 1,
        device_slow_downs: int = 0,
        device_interval_s: int = 0,
        api_key_exchange: bool = True,
        fail_refresh: tuple[int, str] | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.access_token_lifetime_s = access_token_lifetime_s
        self.copilot_token_lifetime_s = copilot_token_lifetime_s
        self.account_id = account_id
        self.device_pending_polls = device_pending_polls
        self.device_slow_downs = device_slow_downs
        self.device_interval_s = device_interval_s
        self.api_key_exchange = api_key_exchange
        self.fail_refresh = fail_refresh
        super().__init__(_Handler, host=host, port=port, thread_name="fake-oauth")
        self._codes: dict[str, _PendingCode] = {}
        self._devices: dict[str, _Device] = {}
        self._issued = _Issued()
        self._refreshes: dict[str, int] = {}
        self._serial = itertools.count(1)

    # -- where the flows live --------------------------------------------------------------

    def flow_base(self, flow: str) -> str:
        """What OPENPISTA_OAUTH_<FLOW>_BASE is set to for `flow`."""
        return f"{self.base_url}/{flow}"

    def env(self) -> dict[str, str]:
        """The OPENPISTA_OAUTH_* variables pointing every flow here, callbacks on free ports."""
        variables = {base_variable(flow): self.flow_base(flow) for flow in FLOWS}
        variables[callback_port_variable("openai")] = "0"
        variables[callback_port_variable("openrouter")] = "0"
        return variables

    def endpoints(self) -> SigninEndpoints:
        """SigninEndpoints pointing every flow here, callbacks on free ports."""
        return SigninEndpoints.from_env(self.env())

    # -- what happened ---------------------------------------------------------------------

    def requests_to(self, path_end: str) -> list[RecordedOAuthRequest]:
        """The recorded requests whose path ends with `path_end` (e.g. "/oauth/token")."""
        return [request for request in self.recorded if request.path.endswith(path_end)]

    def refresh_count(self, flow: str) -> int:
        """Refreshes granted for `flow` (copilot: token exchanges after the first)."""
        with self._lock:
            return self._refreshes.get(flow, 0)

    def is_valid_access_token(self, token: str, flow: str | None = None) -> bool:
        """Whether `token` was issued here (for `flow`) and has not expired: what a fake API
        server asks before it accepts a bearer token."""
        with self._lock:
            found = self._issued.access_tokens.get(token)
        if found is None:
            return False
        issued_flow, expires_at = found
        return (flow is None or issued_flow == flow) and expires_at > time.time()

    def is_issued_api_key(self, key: str) -> bool:
        with self._lock:
            return key in self._issued.api_keys

    def approve_device(self, user_code: str) -> None:
        """Approve a device code at once (as a user entering it on github.com/login/device)."""
        with self._lock:
            for device in self._devices.values():
                if device.user_code == user_code:
                    device.approved = True

    # -- issuing ---------------------------------------------------------------------------

    def _token(self, prefix: str) -> str:
        return f"{prefix}-{next(self._serial)}-{secrets.token_urlsafe(16)}"

    def _issue_tokens(self, flow: str, client_id: str) -> dict[str, Any]:
        access = self._token(f"fake-{flow}-access")
        refresh = self._token(f"fake-{flow}-refresh")
        lifetime = self.access_token_lifetime_s
        with self._lock:
            self._issued.access_tokens[access] = (flow, time.time() + lifetime)
            self._issued.refresh_tokens[refresh] = _Grant(flow, client_id, self.account_id)
        answer: dict[str, Any] = {
            "access_token": access,
            "refresh_token": refresh,
            "token_type": "Bearer",
            "expires_in": lifetime,
        }
        if flow == "openai":
            answer["id_token"] = self._id_token(client_id)
        return answer

    def _id_token(self, client_id: str) -> str:
        now = int(time.time())
        claims = {
            "iss": self.base_url + "/openai",
            "aud": [client_id],
            "sub": "user-fake",
            "email": "someone@example.com",
            "iat": now,
            "exp": now + 3600,
            "https://api.openai.com/auth": {
                "chatgpt_account_id": self.account_id,
                "chatgpt_plan_type": "plus",
            },
        }
        token = ".".join(
            [_b64json({"alg": "none", "typ": "JWT"}), _b64json(claims), ""]
        )  # unsigned: alg none, empty signature
        with self._lock:
            self._issued.id_tokens.add(token)
        return token

    def _count_refresh(self, flow: str) -> None:
        with self._lock:
            self._refreshes[flow] = self._refreshes.get(flow, 0) + 1

    # -- endpoints (called by the handler) -------------------------------------------------

    def _authorize(self, flow: str, query: Mapping[str, str]) -> _Answer:
        client_id = query.get("client_id", "")
        redirect_uri = query.get("redirect_uri", "")
        challenge = query.get("code_challenge", "")
        method = query.get("code_challenge_method", "")
        state = query.get("state", "")
        expected = {"openai": OpenAIEndpoints(), "anthropic": AnthropicEndpoints()}[flow]
        if query.get("response_type") != "code":
            return _Answer.page(400, "response_type must be code")
        if client_id != expected.client_id:
            return _Answer.page(400, f"unknown client_id {client_id!r}")
        if not redirect_uri or not challenge or method != "S256" or not state:
            return _Answer.page(
                400, "redirect_uri, code_challenge, code_challenge_method=S256 and state needed"
            )
        scope = set(query.get("scope", "").split())
        if not set(expected.scope.split()) <= scope:
            return _Answer.page(400, f"scope must include {expected.scope}")
        code = self._token(f"fake-{flow}-code")
        with self._lock:
            self._codes[code] = _PendingCode(
                flow, client_id, redirect_uri, challenge, method, state
            )
        if flow == "anthropic":
            if query.get("code") != "true":
                return _Answer.page(400, "code=true is required")
            # The code-display page: the user copies CODE#STATE from it.
            return _Answer.page(
                200,
                'Paste this code into the application: <code id="code">'
                f"{html.escape(code)}#{html.escape(state)}</code>",
            )
        separator = "&" if "?" in redirect_uri else "?"
        location = redirect_uri + separator + urlencode({"code": code, "state": state})
        return _Answer.redirect(location)

    def _take_code(
        self, flow: str, code: str, client_id: str, redirect_uri: str, verifier: str
    ) -> _Answer | None:
        """Check an authorization code exchange; None when it is good (the code is spent)."""
        with self._lock:
            pending = self._codes.pop(code, None)
        if pending is None or pending.flow != flow:
            return _Answer.oauth_error(400, "invalid_grant", "unknown or already used code")
        if pending.client_id != client_id:
            return _Answer.oauth_error(400, "invalid_client", "client_id does not match")
        if pending.redirect_uri != redirect_uri:
            return _Answer.oauth_error(400, "invalid_grant", "redirect_uri does not match")
        if not _verifier_matches(verifier, pending.challenge):
            return _Answer.oauth_error(400, "invalid_grant", "PKCE verification failed")
        return None

    def _openai_token(self, body: Mapping[str, Any], is_form: bool) -> _Answer:
        if not is_form:
            return _Answer.oauth_error(400, "invalid_request", "expected a form body")
        grant = body.get("grant_type", "")
        client_id = str(body.get("client_id", ""))
        if client_id != OpenAIEndpoints().client_id:
            return _Answer.oauth_error(401, "invalid_client", "unknown client_id")
        if grant == "authorization_code":
            refused = self._take_code(
                "openai",
                str(body.get("code", "")),
                client_id,
                str(body.get("redirect_uri", "")),
                str(body.get("code_verifier", "")),
            )
            return refused or _Answer.json(200, self._issue_tokens("openai", client_id))
        if grant == "refresh_token":
            return self._refresh("openai", str(body.get("refresh_token", "")), client_id)
        if grant == TOKEN_EXCHANGE_GRANT:
            if body.get("requested_token") != "openai-api-key":
                return _Answer.oauth_error(400, "invalid_request", "requested_token unsupported")
            if body.get("subject_token_type") != ID_TOKEN_TYPE:
                return _Answer.oauth_error(400, "invalid_request", "subject_token_type")
            with self._lock:
                known = body.get("subject_token") in self._issued.id_tokens
            if not known:
                return _Answer.oauth_error(401, "invalid_grant", "unknown id_token")
            if not self.api_key_exchange:
                return _Answer.oauth_error(
                    401, "invalid_subject_token", "this account has no API organization"
                )
            key = self._token("sk-fake-exchanged")
            with self._lock:
                self._issued.api_keys.add(key)
            return _Answer.json(200, {"access_token": key, "issued_token_type": "openai-api-key"})
        return _Answer.oauth_error(400, "unsupported_grant_type", f"grant_type {grant!r}")

    def _anthropic_token(self, body: Mapping[str, Any], is_form: bool) -> _Answer:
        if is_form:
            return _Answer.oauth_error(400, "invalid_request", "expected a JSON body")
        grant = body.get("grant_type", "")
        client_id = str(body.get("client_id", ""))
        if client_id != AnthropicEndpoints().client_id:
            return _Answer.oauth_error(401, "invalid_client", "unknown client_id")
        if grant == "authorization_code":
            code = str(body.get("code", ""))
            with self._lock:
                pending = self._codes.get(code)
            if pending is not None and not hmac.compare_digest(
                str(body.get("state", "")).encode(), pending.state.encode()
            ):
                return _Answer.oauth_error(400, "invalid_grant", "state does not match")
            refused = self._take_code(
                "anthropic",
                code,
                client_id,
                str(body.get("redirect_uri", "")),
                str(body.get("code_verifier", "")),
            )
            return refused or _Answer.json(200, self._issue_tokens("anthropic", client_id))
        if grant == "refresh_token":
            return self._refresh("anthropic", str(body.get("refresh_token", "")), client_id)
        return _Answer.oauth_error(400, "unsupported_grant_type", f"grant_type {grant!r}")

    def _refresh(self, flow: str, refresh_token: str, client_id: str) -> _Answer:
        if self.fail_refresh is not None:
            status, message = self.fail_refresh
            return _Answer.oauth_error(status, "invalid_grant", message)
        with self._lock:
            grant = self._issued.refresh_tokens.get(refresh_token)
            reused = grant is not None and grant.used
            if grant is not None:
                grant.used = True
        if grant is None or grant.flow != flow or grant.client_id != client_id:
            return _Answer.oauth_error(400, "invalid_grant", "unknown refresh token")
        if reused:
            return _Answer.oauth_error(400, "invalid_grant", "refresh token already used")
        self._count_refresh(flow)
        return _Answer.json(200, self._issue_tokens(flow, client_id))

    def _openrouter_authorize(self, query: Mapping[str, str]) -> _Answer:
        callback = query.get("callback_url", "")
        challenge = query.get("code_challenge", "")
        if not callback.startswith(("http://localhost:", "https://")):
            return _Answer.page(400, "callback_url must be https or http://localhost")
        if not challenge or query.get("code_challenge_method") != "S256":
            return _Answer.page(400, "code_challenge with code_challenge_method=S256 needed")
        code = self._token("fake-openrouter-code")
        with self._lock:
            self._codes[code] = _PendingCode("openrouter", "", callback, challenge, "S256", "")
        separator = "&" if "?" in callback else "?"
        return _Answer.redirect(callback + separator + urlencode({"code": code}))

    def _openrouter_keys(self, body: Mapping[str, Any], is_form: bool) -> _Answer:
        if is_form:
            return _Answer.json(400, {"error": {"code": 400, "message": "expected JSON"}})
        code = str(body.get("code", ""))
        with self._lock:
            pending = self._codes.pop(code, None)
        if pending is None or pending.flow != "openrouter":
            return _Answer.json(403, {"error": {"code": 403, "message": "Invalid code"}})
        if body.get("code_challenge_method") != "S256" or not _verifier_matches(
            str(body.get("code_verifier", "")), pending.challenge
        ):
            return _Answer.json(
                403, {"error": {"code": 403, "message": "Invalid code_verifier or method"}}
            )
        key = self._token("sk-or-v1-fake")
        with self._lock:
            self._issued.api_keys.add(key)
        return _Answer.json(200, {"key": key, "user_id": "user-fake"})

    def _device_code(self, body: Mapping[str, Any]) -> _Answer:
        if body.get("client_id") != CopilotEndpoints().client_id:
            return _Answer.json(400, {"error": "incorrect_client_credentials"})
        device_code = self._token("fake-device")
        user_code = f"{secrets.randbelow(10000):04d}-{secrets.randbelow(10000):04d}"
        with self._lock:
            self._devices[device_code] = _Device(
                device_code, user_code, slow_downs_left=self.device_slow_downs
            )
        return _Answer.json(
            200,
            {
                "device_code": device_code,
                "user_code": user_code,
                "verification_uri": self.flow_base("copilot") + "/login/device",
                "expires_in": 900,
                "interval": self.device_interval_s,
            },
        )

    def _device_token(self, body: Mapping[str, Any]) -> _Answer:
        # GitHub answers the pending states with 200 and an `error` field.
        if body.get("grant_type") != DEVICE_GRANT:
            return _Answer.json(200, {"error": "unsupported_grant_type"})
        with self._lock:
            device = self._devices.get(str(body.get("device_code", "")))
            if device is None:
                return _Answer.json(200, {"error": "bad_verification_code"})
            device.polls += 1
            if device.slow_downs_left > 0:
                device.slow_downs_left -= 1
                return _Answer.json(
                    200, {"error": "slow_down", "interval": self.device_interval_s + 5}
                )
            if device.denied:
                return _Answer.json(200, {"error": "access_denied"})
            if not device.approved and device.polls <= self.device_pending_polls:
                return _Answer.json(200, {"error": "authorization_pending"})
            del self._devices[device.device_code]
            token = self._token("gho_fake")
            self._issued.github_tokens.add(token)
        return _Answer.json(
            200, {"access_token": token, "token_type": "bearer", "scope": "read:user"}
        )

    def _copilot_token(self, headers: Mapping[str, str]) -> _Answer:
        scheme, _, github_token = headers.get("authorization", "").partition(" ")
        if scheme.lower() != "token":
            return _Answer.json(401, {"message": "Bad credentials"})
        if not headers.get("editor-version"):
            return _Answer.json(400, {"message": "Editor-Version header required"})
        if self.fail_refresh is not None and self._github_token_used(github_token):
            status, message = self.fail_refresh
            return _Answer.json(status, {"message": message})
        with self._lock:
            known = github_token in self._issued.github_tokens
        if not known:
            return _Answer.json(401, {"message": "Bad credentials"})
        if self._github_token_used(github_token):
            self._count_refresh("copilot")
        token = self._token("tid=fake-copilot")
        expires_at = int(time.time() + self.copilot_token_lifetime_s)
        with self._lock:
            self._issued.access_tokens[token] = ("copilot", float(expires_at))
            self._issued.copilot_exchanged.add(github_token)
        return _Answer.json(
            200,
            {
                "token": token,
                "expires_at": expires_at,
                "refresh_in": int(self.copilot_token_lifetime_s) - 300,
                "endpoints": {"api": self.base_url + "/copilot-api"},
            },
        )

    def _github_token_used(self, github_token: str) -> bool:
        with self._lock:
            return github_token in self._issued.copilot_exchanged

    def _route(
        self,
        method: str,
        path: str,
        query: Mapping[str, str],
        headers: Mapping[str, str],
        body: Mapping[str, Any],
        is_form: bool,
    ) -> _Answer:
        routes: dict[tuple[str, str], Any] = {
            ("GET", "/openai/oauth/authorize"): lambda: self._authorize("openai", query),
            ("POST", "/openai/oauth/token"): lambda: self._openai_token(body, is_form),
            ("GET", "/anthropic/oauth/authorize"): lambda: self._authorize("anthropic", query),
            ("POST", "/anthropic/v1/oauth/token"): lambda: self._anthropic_token(body, is_form),
            ("GET", "/openrouter/auth"): lambda: self._openrouter_authorize(query),
            ("POST", "/openrouter/api/v1/auth/keys"): lambda: self._openrouter_keys(body, is_form),
            ("POST", "/copilot/login/device/code"): lambda: self._device_code(body),
            ("GET", "/copilot/login/device"): lambda: _Answer.page(
                200, "Enter the code shown by your device (approved automatically here)."
            ),
            ("POST", "/copilot/login/oauth/access_token"): lambda: self._device_token(body),
            ("GET", "/copilot/copilot_internal/v2/token"): lambda: self._copilot_token(headers),
        }
        handler = routes.get((method, path))
        if handler is None:
            return _Answer.json(404, {"error": "not_found", "error_description": path})
        return cast(_Answer, handler())


@dataclass(frozen=True, slots=True)
class _Answer:
    status: int
    body: bytes
    content_type: str
    location: str = ""

    @classmethod
    def json(cls, status: int, data: Mapping[str, Any]) -> _Answer:
        return cls(status, json.dumps(data).encode(), "application/json")

    @classmethod
    def oauth_error(cls, status: int, error: str, description: str) -> _Answer:
        return cls.json(status, {"error": error, "error_description": description})

    @classmethod
    def page(cls, status: int, text: str) -> _Answer:
        body = f"<!doctype html><html><body><p>{text}</p></body></html>"
        return cls(status, body.encode(), "text/html; charset=utf-8")

    @classmethod
    def redirect(cls, location: str) -> _Answer:
        return cls(302, b"", "text/plain", location)


def _verifier_matches(verifier: str, challenge: str) -> bool:
    if not 43 <= len(verifier) <= 128 or not re.fullmatch(r"[A-Za-z0-9\-._~]+", verifier):
        return False
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    computed = base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")
    return hmac.compare_digest(computed.encode(), challenge.encode())


def _b64json(data: Mapping[str, Any]) -> str:
    raw = json.dumps(data, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


class _Handler(FakeHandler[FakeAuthorizationServer]):
    server_version = "openpista-fake-oauth/1"

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def _handle(self, method: str) -> None:
        fake = self.fake
        url = urlsplit(self.path)
        query = {name: values[0] for name, values in parse_qs(url.query).items()}
        headers = {name.lower(): value for name, value in self.headers.items()}
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        content_type = headers.get("content-type", "").split(";")[0].strip()
        is_form = content_type == "application/x-www-form-urlencoded"
        body: dict[str, Any] = {}
        if is_form:
            body = {name: values[0] for name, values in parse_qs(raw.decode()).items()}
        elif raw:
            with contextlib.suppress(ValueError):
                parsed = json.loads(raw)
                if isinstance(parsed, dict):
                    body = cast(dict[str, Any], parsed)
        fake._record(  # pyright: ignore[reportPrivateUsage]
            RecordedOAuthRequest(method, url.path, query, headers, body, content_type)
        )
        answer = fake._route(  # pyright: ignore[reportPrivateUsage]
            method, url.path, query, headers, body, is_form
        )
        location = {"Location": answer.location} if answer.location else None
        self._send_bytes(answer.status, answer.body, answer.content_type, location)


# -- a browser and a person, for driving the flows in tests ------------------------------------


class BrowserConsole:
    """A SigninConsole that behaves like a person with a browser, for tests.

    `open_browser` visits the URL as a browser would: follows redirects (to the local
    callback server), and keeps a code shown on the page (Anthropic's code display) as the
    answer to the next `ask`. `answers` are given to `ask` before that. Everything said is
    kept in `said`; `visited` holds the final response of every visit.
    """

    def __init__(self, answers: list[str] | None = None, *, open_browser: bool = True) -> None:
        self.answers = list(answers or [])
        self.said: list[str] = []
        self.asked: list[str] = []
        self.visited: list[Any] = []
        self.opens_browser = open_browser

    def say(self, text: str) -> None:
        self.said.append(text)

    def ask(self, prompt: str) -> str:
        self.asked.append(prompt)
        return self.answers.pop(0) if self.answers else ""

    def open_browser(self, url: str) -> bool:
        if not self.opens_browser:
            return False
        response = visit(url)
        self.visited.append(response)
        shown = re.search(r'<code id="code">([^<]*)</code>', response.text)
        if shown:
            self.answers.append(html.unescape(shown.group(1)))
        return True


def visit(url: str) -> Any:
    """GET `url` as a browser does, following redirects; returns the final httpx.Response."""
    import httpx

    with httpx.Client(follow_redirects=True, timeout=30) as client:
        return client.get(url)
