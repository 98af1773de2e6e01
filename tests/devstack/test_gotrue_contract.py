"""Contract tests: the official ``supabase`` client against the local Auth (GoTrue) stand-in.

Driven exactly as the serverless functions use it: a fresh client per call, implicit flow, no
auto-refresh, no persisted session. Behaviours checked are GoTrue's (error codes, rotation rules).
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from supabase import Client, ClientOptions, create_client
from supabase_auth.errors import AuthApiError, AuthWeakPasswordError
from supabase_auth.types import Session, SignOutOptions

from devstack.httpkit import serve_in_thread
from devstack.localkeys import LOCAL_JWT_SECRET, anon_key, service_role_key
from devstack.supabase import SupabaseApp, SupabaseKeys, local_keys, make_app

SECRET = "test-only-jwt-secret-" + "x" * 32
PASSWORD = "correct horse"
AUDIENCE = "authenticated"


class Project:
    """A running stand-in: its keys plus the server, so tests can stop and restart it."""

    def __init__(self, data_dir: Path, alg: str = "HS256", reuse_interval: int = 0) -> None:
        self.data_dir, self.alg, self.reuse_interval = data_dir, alg, reuse_interval
        self.start()

    def start(self) -> None:
        self.app: SupabaseApp = make_app(
            self.data_dir,
            jwt_secret=SECRET,
            jwt_alg=self.alg,
            refresh_token_reuse_interval=self.reuse_interval,
        )
        self.server = serve_in_thread(self.app)
        self.keys: SupabaseKeys = local_keys(f"http://127.0.0.1:{self.server.server_port}", SECRET, self.alg)

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.app.close()

    def client(self) -> Client:
        return create_client(
            self.keys.url,
            self.keys.anon_key,
            options=ClientOptions(flow_type="implicit", auto_refresh_token=False, persist_session=False),
        )

    def http(self, method: str, path: str, *, apikey: bool = True, **kw: Any) -> httpx.Response:
        headers = {"apikey": self.keys.anon_key} if apikey else {}
        headers.update(kw.pop("headers", {}))
        return httpx.request(method, self.keys.url + path, headers=headers, timeout=10, **kw)


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Project]:
    # Reuse interval 0 makes refresh-token reuse detection immediate (GoTrue's default is 10 s).
    p = Project(tmp_path_factory.mktemp("supabase"))
    yield p
    p.stop()


@pytest.fixture(scope="module")
def es_project(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Project]:
    p = Project(tmp_path_factory.mktemp("supabase-es"), alg="ES256")
    yield p
    p.stop()


def new_email() -> str:
    return f"user-{uuid.uuid4().hex[:12]}@example.com"


def sign_up(p: Project, email: str | None = None) -> Any:
    return p.client().auth.sign_up({"email": email or new_email(), "password": PASSWORD})


def api_error(fn: Any, *args: Any) -> tuple[str | None, int]:
    """Call ``fn`` expecting an AuthApiError; its (code, status). (The SDK's code Literal lacks some codes.)"""
    with pytest.raises(AuthApiError) as info:
        fn(*args)
    return str(info.value.code) if info.value.code else None, info.value.status


def must(session: Session | None) -> Session:
    assert session is not None
    return session


# -- keys -------------------------------------------------------------------------------------


def test_legacy_keys_are_supabase_demo_keys() -> None:
    # The Supabase CLI's published local keys, minted from its published local secret.
    assert anon_key(LOCAL_JWT_SECRET) == (
        "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJpc3MiOiJzdXBhYmFzZS1kZW1vIiwicm9sZSI6ImFub24i"
        "LCJleHAiOjE5ODM4MTI5OTZ9.CRXP1A7WOeoJeXxjNni43kdQwgnWNReilDMblYTn_I0"
    )
    claims = jwt.decode(service_role_key(SECRET), SECRET, algorithms=["HS256"])
    assert claims == {"iss": "supabase-demo", "role": "service_role", "exp": 1983812996}


# -- sign-up and sign-in ----------------------------------------------------------------------


def test_sign_up_returns_user_and_session_with_supabase_claims(project: Project) -> None:
    email = new_email()
    res = project.client().auth.sign_up({"email": email, "password": PASSWORD, "options": {"data": {"name": "Ada"}}})
    assert res.user is not None and res.session is not None
    user, session = res.user, res.session
    assert user.email == email and user.aud == "authenticated" and user.role == "authenticated"
    assert user.email_confirmed_at is not None and user.last_sign_in_at is not None
    assert user.app_metadata == {"provider": "email", "providers": ["email"]}
    assert user.user_metadata["name"] == "Ada"
    assert user.identities and user.identities[0].provider == "email"
    assert session.user.id == user.id and session.token_type == "bearer"
    assert session.expires_in == 3600 and session.refresh_token

    claims = jwt.decode(session.access_token, SECRET, algorithms=["HS256"], audience="authenticated")
    assert claims["sub"] == user.id
    assert claims["iss"] == f"{project.keys.url}/auth/v1"
    assert claims["exp"] - claims["iat"] == 3600 == session.expires_at - claims["iat"]
    assert claims["role"] == "authenticated" and claims["aal"] == "aal1"
    assert claims["email"] == email and claims["phone"] == ""
    assert claims["is_anonymous"] is False and uuid.UUID(claims["session_id"])
    assert claims["amr"][0]["method"] == "password"
    assert claims["user_metadata"]["name"] == "Ada"
    assert claims["app_metadata"]["provider"] == "email"


def test_duplicate_email_is_user_already_exists(project: Project) -> None:
    email = new_email()
    sign_up(project, email)
    # Emails are case-insensitive.
    assert api_error(sign_up, project, email.upper()) == ("user_already_exists", 422)


def test_password_rules(project: Project) -> None:
    with pytest.raises(AuthWeakPasswordError) as info:
        project.client().auth.sign_up({"email": new_email(), "password": "12345"})
    assert (info.value.code, info.value.status, info.value.reasons) == ("weak_password", 422, ["length"])
    # Over bcrypt's 72 bytes GoTrue answers validation_failed, counting bytes, not characters.
    err = api_error(project.client().auth.sign_up, {"email": new_email(), "password": "é" * 37})
    assert err == ("validation_failed", 400)


@pytest.mark.parametrize("email", ["not-an-email", "a@", "@b.io", "a b@c.io"])
def test_malformed_email_is_validation_failed(project: Project, email: str) -> None:
    err = api_error(project.client().auth.sign_up, {"email": email, "password": PASSWORD})
    assert err == ("validation_failed", 400)


def test_sign_in_with_password(project: Project) -> None:
    email = new_email()
    user = sign_up(project, email).user
    res = project.client().auth.sign_in_with_password({"email": email, "password": PASSWORD})
    assert res.session is not None and res.user is not None and res.user.id == user.id
    for creds in ({"email": email, "password": "wrong password"}, {"email": new_email(), "password": PASSWORD}):
        assert api_error(project.client().auth.sign_in_with_password, creds) == ("invalid_credentials", 400)


# -- refresh tokens ---------------------------------------------------------------------------


def test_refresh_rotates_and_detects_reuse(project: Project) -> None:
    def refresh(token: str) -> Any:
        return project.client().auth.refresh_session(token)

    s0 = must(sign_up(project).session)
    s1 = must(project.client().auth.refresh_session(s0.refresh_token).session)
    assert s1.refresh_token != s0.refresh_token
    assert s1.user.id == s0.user.id
    # GoTrue's allowance: the direct parent of the active token returns that active token.
    again = must(project.client().auth.refresh_session(s0.refresh_token).session)
    assert again.refresh_token == s1.refresh_token
    s2 = must(project.client().auth.refresh_session(s1.refresh_token).session)
    # An older token is now plain reuse: refused, and the whole family is revoked with it.
    assert api_error(refresh, s0.refresh_token) == ("refresh_token_already_used", 400)
    assert api_error(refresh, s2.refresh_token) == ("refresh_token_already_used", 400)
    assert api_error(refresh, "never-issued") == ("refresh_token_not_found", 400)


def test_reuse_interval_allows_a_late_duplicate(tmp_path: Path) -> None:
    p = Project(tmp_path, reuse_interval=60)
    try:
        s0 = must(sign_up(p).session)
        s1 = must(p.client().auth.refresh_session(s0.refresh_token).session)
        p.client().auth.refresh_session(s1.refresh_token)
        late = must(p.client().auth.refresh_session(s0.refresh_token).session)  # within 60 s: swapped
        assert late.refresh_token not in (s0.refresh_token, s1.refresh_token)
    finally:
        p.stop()


def test_concurrent_refreshes_never_fail_the_server(project: Project) -> None:
    token = must(sign_up(project).session).refresh_token
    statuses: list[int] = []

    def refresh() -> None:
        r = project.http("POST", "/auth/v1/token?grant_type=refresh_token", json={"refresh_token": token})
        statuses.append(r.status_code)

    threads = [threading.Thread(target=refresh) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert statuses.count(200) >= 1 and set(statuses) <= {200, 400}


# -- get_user and sign-out ----------------------------------------------------------------------


def test_get_user_checks_the_token(project: Project) -> None:
    session = must(sign_up(project).session)
    got = project.client().auth.get_user(session.access_token)
    assert got is not None and got.user.id == session.user.id

    now = int(time.time())
    base = jwt.decode(session.access_token, SECRET, algorithms=["HS256"], audience=AUDIENCE)
    expired = jwt.encode({**base, "iat": now - 7200, "exp": now - 3600}, SECRET, "HS256")
    forged = jwt.encode(base, "another-secret-that-is-long-enough-123", "HS256")
    for token in (expired, forged, session.access_token + "x", project.keys.anon_key):
        assert api_error(project.client().auth.get_user, token) == ("bad_jwt", 403), token
    ghost = jwt.encode({**base, "sub": str(uuid.uuid4())}, SECRET, "HS256")
    assert api_error(project.client().auth.get_user, ghost) == ("user_not_found", 403)


def signed_in(p: Project, email: str) -> Client:
    c = p.client()
    c.auth.sign_in_with_password({"email": email, "password": PASSWORD})
    return c


def test_sign_out_global_revokes_every_session(project: Project) -> None:
    email = new_email()
    first = must(sign_up(project, email).session)
    client = signed_in(project, email)
    current = must(client.auth.get_session())
    client.auth.sign_out()  # scope=global
    for s in (first, current):
        assert api_error(project.client().auth.refresh_session, s.refresh_token) == ("refresh_token_not_found", 400)
        assert api_error(project.client().auth.get_user, s.access_token) == ("session_not_found", 403)


@pytest.mark.parametrize("options", [{"scope": "local"}, {"scope": "others"}], ids=["local", "others"])
def test_sign_out_local_and_others(project: Project, options: SignOutOptions) -> None:
    email = new_email()
    other = must(sign_up(project, email).session)
    client = signed_in(project, email)
    mine = must(client.auth.get_session())
    client.auth.sign_out(options)
    gone, kept = (mine, other) if options["scope"] == "local" else (other, mine)
    assert api_error(project.client().auth.get_user, gone.access_token) == ("session_not_found", 403)
    assert project.client().auth.get_user(kept.access_token) is not None
    assert project.client().auth.refresh_session(kept.refresh_token).session is not None


# -- ES256 / JWKS -----------------------------------------------------------------------------


def test_hs256_project_publishes_no_keys(project: Project) -> None:
    r = project.http("GET", "/auth/v1/.well-known/jwks.json", apikey=False)
    assert r.status_code == 200 and r.json() == {"keys": []}


def test_es256_tokens_verify_against_the_jwks(es_project: Project) -> None:
    session = must(sign_up(es_project).session)
    header = jwt.get_unverified_header(session.access_token)
    assert header["alg"] == "ES256" and header["kid"]
    # As a function verifies locally: the JWKS URL, no apikey needed.
    signing_key = jwt.PyJWKClient(es_project.keys.jwks_url).get_signing_key_from_jwt(session.access_token)
    claims = jwt.decode(session.access_token, signing_key.key, algorithms=["ES256"], audience=AUDIENCE)
    assert claims["sub"] == session.user.id
    got = es_project.client().auth.get_claims(session.access_token)
    assert got is not None and got["claims"]["sub"] == session.user.id
    assert es_project.client().auth.get_user(session.access_token) is not None
    # The legacy HS256 secret must not mint ES-mode user tokens that pass.
    forged = jwt.encode(claims, SECRET, "HS256", headers={"kid": header["kid"]})
    assert api_error(es_project.client().auth.get_user, forged) == ("bad_jwt", 403)


# -- persistence --------------------------------------------------------------------------------


@pytest.mark.parametrize("alg", ["HS256", "ES256"])
def test_state_survives_a_restart(tmp_path: Path, alg: str) -> None:
    p = Project(tmp_path, alg=alg)
    email = new_email()
    try:
        session = must(sign_up(p, email).session)
        kid = jwt.get_unverified_header(session.access_token).get("kid")
    finally:
        p.stop()
    p.start()  # same data dir, new port
    try:
        assert p.client().auth.get_user(session.access_token) is not None
        assert p.client().auth.refresh_session(session.refresh_token).session is not None
        assert p.client().auth.sign_in_with_password({"email": email, "password": PASSWORD})
        if alg == "ES256":
            keys = httpx.get(p.keys.jwks_url).json()["keys"]
            assert [k["kid"] for k in keys] == [kid]
    finally:
        p.stop()


# -- raw HTTP: gateway, errors, hostile input ---------------------------------------------------


def test_api_key_is_required(project: Project) -> None:
    r = project.http("GET", "/auth/v1/settings", apikey=False)
    assert (r.status_code, r.json()) == (401, {"message": "No API key found in request"})
    r = project.http("GET", "/auth/v1/settings", apikey=False, headers={"apikey": "nope"})
    assert r.status_code == 401 and r.json()["message"] == "Invalid API key"
    service = {"apikey": project.keys.service_role_key}
    assert project.http("GET", "/auth/v1/health", apikey=False, headers=service).status_code == 200
    assert project.http("GET", f"/auth/v1/health?apikey={project.keys.anon_key}", apikey=False).status_code == 200


def test_routes_and_error_shapes(project: Project) -> None:
    assert project.http("GET", "/auth/v1/settings").json()["mailer_autoconfirm"] is True
    assert project.http("GET", "/auth/v1/health").json()["name"] == "GoTrue"
    assert project.http("GET", "/auth/v1/nope").status_code == 404
    r = project.http("GET", "/auth/v1/signup")
    assert r.status_code == 405 and r.headers["allow"] == "POST"
    # Without the API-version header GoTrue answers in its legacy shape.
    r = project.http("POST", "/auth/v1/token?grant_type=password", json={"email": new_email(), "password": PASSWORD})
    assert (r.status_code, r.json()["code"], r.json()["error_code"]) == (400, 400, "invalid_credentials")
    r = project.http(
        "POST", "/auth/v1/token?grant_type=magic", json={}, headers={"X-Supabase-Api-Version": "2024-01-01"}
    )
    assert r.status_code == 400 and r.json()["code"] == "invalid_credentials"
    assert r.headers["x-supabase-api-version"] == "2024-01-01"
    r = project.http("POST", "/auth/v1/token?grant_type=refresh_token", json={})
    assert (r.status_code, r.json()["error"]) == (400, "invalid_request")
    r = project.http("GET", "/auth/v1/user")
    assert (r.status_code, r.json()["error_code"]) == (401, "no_authorization")
    # Gateway: other prefixes, the storage hook, CORS preflight.
    assert project.http("GET", "/rest/v1/tasks").status_code == 404
    r = project.http("GET", "/storage/v1/bucket", apikey=False)
    assert r.status_code == 404 and r.json()["message"] == "storage stand-in not enabled"
    r = project.http("OPTIONS", "/auth/v1/token", apikey=False, headers={"Origin": "http://localhost:3000"})
    assert r.status_code == 200 and r.headers["access-control-allow-origin"]


BAD_BODIES: list[bytes] = [
    b"",
    b"{",
    b"null",
    b"[]",
    b"42",
    b'"x"',
    b"\xff\xfe",
    b'{"email": 1, "password": 2}',
    b'{"email": "a@b.io", "password": ["x"]}',
    b'{"email": "a@b.io", "password": "secret1", "data": "x"}',
    b'{"refresh_token": {}}',
    b'{"email": null, "password": null}',
    b'{"email": "' + b"a" * 300 + b'@b.io", "password": "secret1"}',
    b"{" * 5000,
    b"[" * 100_000,
    b'{"data": ' + b"[" * 100_000 + b"}",
]


def test_hostile_input_gets_4xx_never_500(project: Project) -> None:
    targets = [
        "/auth/v1/signup",
        "/auth/v1/token?grant_type=password",
        "/auth/v1/token?grant_type=refresh_token",
        "/auth/v1/logout",
    ]
    for path in targets:
        for body in BAD_BODIES:
            r = project.http("POST", path, content=body)
            assert 400 <= r.status_code < 500, (path, body[:40], r.status_code, r.text)
            assert r.json()  # always a JSON error
    r = project.http("POST", "/auth/v1/signup", content=b"{" + b" " * (2 << 20) + b"}")
    assert r.status_code == 413
    for auth in ("Bearer", "Bearer a.b.c", "Basic abc", "Bearer " + "e" * 5000):
        r = project.http("GET", "/auth/v1/user", headers={"Authorization": auth})
        assert 400 <= r.status_code < 500, auth[:20]
    r = project.http("POST", "/auth/v1/signup", json={"email": "bad", "password": PASSWORD})
    assert (r.status_code, r.json()["error_code"]) == (400, "validation_failed")
