"""Local stand-in for Supabase Auth (GoTrue): the subset the studio uses, wire-compatible.

Speaks what ``supabase_auth`` 2.x sends and parses, with GoTrue's behaviour where the studio can
observe it: email+password sign-up with autoconfirm (returns a session), the password and
refresh-token grants with rotation and reuse detection, ``GET /user``, ``POST /logout`` with the
three scopes, the JWKS document, ``/health`` and ``/settings``. Errors have GoTrue's two shapes:
``{"code": "<error_code>", "message"}`` when the request carries ``X-Supabase-Api-Version:
2024-01-01`` (the SDK always does; the version is echoed back) and the legacy
``{"code": <status>, "error_code", "msg"}`` otherwise. The ``apikey`` check stands in for
Supabase's API gateway.

State lives in SQLite (``auth.sqlite3`` in the data dir, WAL): one connection behind a lock,
because the HTTP server is threaded and the refresh-token swap must be atomic. Password hashing
(scrypt) runs outside the lock so slow KDF work does not serialise requests.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import secrets
import sqlite3
import time
import uuid
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jwt

from devstack.httpkit import Request, Response
from devstack.localkeys import es256_public_jwk, load_or_create_es256_key
from devstack.sqlitedb import SqliteDb

API_VERSION_HEADER = "X-Supabase-Api-Version"
API_VERSION_2024_01_01 = "2024-01-01"
MAX_BODY_BYTES = 1 << 20  # the stand-in's own cap: nothing the auth API takes comes near it
MIN_PASSWORD_LENGTH = 6  # GoTrue's default GOTRUE_PASSWORD_MIN_LENGTH
MAX_PASSWORD_BYTES = 72  # GoTrue keeps bcrypt's limit, counted in bytes
MAX_EMAIL_LENGTH = 255
NIL_UUID = "00000000-0000-0000-0000-000000000000"
AUDIENCE = "authenticated"

# GoTrue validates with checkmail's pattern; same pattern here so the same inputs pass.
_EMAIL_RE = re.compile(
    r"^[a-zA-Z0-9.!#$%&'*+/=?^_`{|}~-]+@[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?"
    r"(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)*$"
)
_BEARER_RE = re.compile(r"^[Bb]earer (\S+)$")
_API_VERSION_RE = re.compile(r"^2[0-9]{3}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])$")

# scrypt cost: ~16 MiB and tens of ms per hash, the stdlib's strongest KDF at a sane dev cost.
_SCRYPT_N, _SCRYPT_R, _SCRYPT_P = 1 << 14, 8, 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS users (
    id TEXT PRIMARY KEY,
    email TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    identity_id TEXT NOT NULL,
    user_metadata TEXT NOT NULL,
    app_metadata TEXT NOT NULL,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    email_confirmed_at REAL,
    last_sign_in_at REAL
);
CREATE TABLE IF NOT EXISTS sessions (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    amr_method TEXT NOT NULL,
    amr_at INTEGER NOT NULL,
    created_at REAL NOT NULL,
    refreshed_at REAL
);
CREATE INDEX IF NOT EXISTS sessions_user ON sessions(user_id);
CREATE TABLE IF NOT EXISTS refresh_tokens (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    token TEXT NOT NULL UNIQUE,
    session_id TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
    parent TEXT,
    revoked INTEGER NOT NULL DEFAULT 0,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS refresh_tokens_session ON refresh_tokens(session_id);
"""


class AuthError(Exception):
    """A GoTrue ``HTTPError``: rendered in the shape the request's API version asks for."""

    def __init__(self, status: int, code: str, msg: str, extra: dict[str, Any] | None = None) -> None:
        super().__init__(msg)
        self.status, self.code, self.msg, self.extra = status, code, msg, extra or {}


class OAuthError(Exception):
    """GoTrue's OAuth2-shaped error (``{"error", "error_description"}``, always 400)."""

    def __init__(self, error: str, description: str) -> None:
        super().__init__(description)
        self.error, self.description = error, description


@dataclass(frozen=True)
class _Auth:
    claims: dict[str, Any]
    user: sqlite3.Row
    session_id: str | None


def _iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def hash_password(password: str) -> str:
    """``scrypt$N$r$p$salt$hash`` with a fresh 16-byte salt."""
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=_SCRYPT_N, r=_SCRYPT_R, p=_SCRYPT_P, dklen=32)
    return f"scrypt${_SCRYPT_N}${_SCRYPT_R}${_SCRYPT_P}${_b64(salt)}${_b64(digest)}"


def verify_password(password: str, encoded: str) -> bool:
    """Constant-time check of ``password`` against :func:`hash_password` output."""
    try:
        scheme, n, r, p, salt, digest = encoded.split("$")
        if scheme != "scrypt":
            return False
        expected = base64.b64decode(digest)
        got = hashlib.scrypt(
            password.encode(),
            salt=base64.b64decode(salt),
            n=int(n),
            r=int(r),
            p=int(p),
            dklen=len(expected),
        )
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(got, expected)


class AuthApp:
    """The ``/auth/v1`` stand-in; call it with a :class:`Request`. ``close()`` releases SQLite."""

    def __init__(
        self,
        data_dir: Path,
        jwt_secret: str,
        anon_key: str,
        service_role_key: str,
        *,
        jwt_alg: str = "HS256",
        jwt_exp: int = 3600,
        refresh_token_reuse_interval: int = 10,
        issuer: str | None = None,
    ) -> None:
        if jwt_alg not in ("HS256", "ES256"):
            raise ValueError(f"jwt_alg must be HS256 or ES256, not {jwt_alg!r}")
        self.data_dir = Path(data_dir)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.jwt_secret = jwt_secret
        self.jwt_alg = jwt_alg
        self.jwt_exp = jwt_exp
        self.reuse_interval = refresh_token_reuse_interval
        self.issuer = issuer
        self._api_keys = (anon_key, service_role_key)
        self._es_key = load_or_create_es256_key(self.data_dir) if jwt_alg == "ES256" else None
        self._jwk = es256_public_jwk(self._es_key) if self._es_key else None
        self._sql = SqliteDb(self.data_dir / "auth.sqlite3", _SCHEMA)
        self._lock, self._db = self._sql.lock, self._sql.db
        # Unknown emails still pay for one KDF run, so timing doesn't reveal who has an account.
        self._dummy_hash = hash_password(secrets.token_urlsafe(12))
        self._routes: dict[str, dict[str, Callable[[Request], Response]]] = {
            "/signup": {"POST": self._signup},
            "/token": {"POST": self._token},
            "/user": {"GET": self._get_user},
            "/logout": {"POST": self._logout},
            "/.well-known/jwks.json": {"GET": self._jwks},
            "/health": {"GET": self._health},
            "/settings": {"GET": self._settings},
        }
        # Like Supabase's gateway, which routes the JWKS document without key-auth.
        self._open_paths = {"/.well-known/jwks.json"}

    # -- plumbing ---------------------------------------------------------------------------

    def close(self) -> None:
        """Close the SQLite connection (the app must not be called afterwards)."""
        self._sql.close()

    def _tx(self) -> AbstractContextManager[sqlite3.Connection]:
        return self._sql.tx()

    def __call__(self, req: Request) -> Response:
        if req.path != "/auth/v1" and not req.path.startswith("/auth/v1/"):
            return self._error(req, AuthError(404, "not_found", "Path not found"))
        sub = req.path[len("/auth/v1") :] or "/"
        if sub not in self._open_paths:
            denied = self._check_api_key(req)
            if denied is not None:
                return denied
        methods = self._routes.get(sub)
        if methods is None:
            return self._error(req, AuthError(404, "not_found", "Path not found"))
        handler = methods.get(req.method)
        if handler is None:
            resp = self._error(req, AuthError(405, "method_not_allowed", f"Method {req.method} not allowed"))
            resp.headers["Allow"] = ", ".join(sorted(methods))
            return resp
        try:
            return handler(req)
        except AuthError as exc:
            return self._error(req, exc)
        except OAuthError as exc:
            return Response.json({"error": exc.error, "error_description": exc.description}, 400)

    def _check_api_key(self, req: Request) -> Response | None:
        """Supabase's gateway check: the anon or service_role key, as header or query."""
        key = req.header("apikey") or req.query.get("apikey", "")
        if not key:
            return Response.json({"message": "No API key found in request"}, 401)
        if not any(hmac.compare_digest(key.encode(), k.encode()) for k in self._api_keys):
            return Response.json(
                {
                    "message": "Invalid API key",
                    "hint": "Double check your Supabase `anon` or `service_role` API key.",
                },
                401,
            )
        return None

    @staticmethod
    def _versioned(req: Request) -> bool:
        """Whether the request asked for the 2024-01-01 API (GoTrue picks the closest version)."""
        value = req.header(API_VERSION_HEADER)
        return bool(_API_VERSION_RE.match(value)) and value >= API_VERSION_2024_01_01

    def _error(self, req: Request, err: AuthError) -> Response:
        headers = {"x-sb-error-code": err.code}
        body: dict[str, Any]
        if self._versioned(req):
            headers[API_VERSION_HEADER] = API_VERSION_2024_01_01
            body = {"code": err.code, "message": err.msg}
        else:
            body = {"code": err.status, "error_code": err.code, "msg": err.msg}
        body.update(err.extra)
        return Response.json(body, err.status, headers)

    @staticmethod
    def _body(req: Request) -> dict[str, Any]:
        if len(req.body) > MAX_BODY_BYTES:
            raise AuthError(413, "request_too_large", "Request body too large")
        try:
            data = json.loads(req.body) if req.body else None
        except (ValueError, RecursionError) as exc:  # RecursionError: absurdly deep nesting
            raise AuthError(400, "bad_json", f"Could not parse request body as JSON: {exc}") from None
        if not isinstance(data, dict):
            raise AuthError(400, "bad_json", "Could not parse request body as JSON: not an object")
        return data

    @staticmethod
    def _str(body: dict[str, Any], name: str) -> str:
        value = body.get(name)
        if value is None:
            return ""
        if not isinstance(value, str):
            # What Go's json.Unmarshal reports for a mistyped field, as GoTrue passes it on.
            raise AuthError(
                400,
                "bad_json",
                f"Could not parse request body as JSON: field {name!r} must be a string",
            )
        return value

    # -- tokens -----------------------------------------------------------------------------

    def _issuer(self, req: Request) -> str:
        if self.issuer:
            return self.issuer
        proto = req.header("x-forwarded-proto") or "http"
        host = req.header("x-forwarded-host") or req.header("host") or "127.0.0.1"
        return f"{proto}://{host}/auth/v1"

    def _sign(self, claims: dict[str, Any]) -> str:
        if self._es_key is not None and self._jwk is not None:
            return jwt.encode(claims, self._es_key, algorithm="ES256", headers={"kid": str(self._jwk["kid"])})
        return jwt.encode(claims, self.jwt_secret, algorithm="HS256")

    def _token_response(self, req: Request, user: sqlite3.Row, session: sqlite3.Row, refresh_token: str) -> Response:
        now = int(time.time())
        exp = now + self.jwt_exp
        claims = {
            "iss": self._issuer(req),
            "sub": user["id"],
            "aud": AUDIENCE,
            "exp": exp,
            "iat": now,
            "email": user["email"],
            "phone": "",
            "app_metadata": json.loads(user["app_metadata"]),
            "user_metadata": json.loads(user["user_metadata"]),
            "role": "authenticated",
            "aal": "aal1",
            "amr": [{"method": session["amr_method"], "timestamp": session["amr_at"]}],
            "session_id": session["id"],
            "is_anonymous": False,
        }
        return Response.json(
            {
                "access_token": self._sign(claims),
                "token_type": "bearer",
                "expires_in": self.jwt_exp,
                "expires_at": exp,
                "refresh_token": refresh_token,
                "user": self._user_json(user),
            }
        )

    @staticmethod
    def _user_json(user: sqlite3.Row) -> dict[str, Any]:
        confirmed = _iso(user["email_confirmed_at"])
        identity_data = {
            "email": user["email"],
            "email_verified": confirmed is not None,
            "phone_verified": False,
            "sub": user["id"],
        }
        return {
            "id": user["id"],
            "aud": AUDIENCE,
            "role": "authenticated",
            "email": user["email"],
            "email_confirmed_at": confirmed,
            "phone": "",
            "confirmed_at": confirmed,
            "last_sign_in_at": _iso(user["last_sign_in_at"]),
            "app_metadata": json.loads(user["app_metadata"]),
            "user_metadata": json.loads(user["user_metadata"]),
            "identities": [
                {
                    "identity_id": user["identity_id"],
                    "id": user["id"],
                    "user_id": user["id"],
                    "identity_data": identity_data,
                    "provider": "email",
                    "last_sign_in_at": _iso(user["created_at"]),
                    "created_at": _iso(user["created_at"]),
                    "updated_at": _iso(user["created_at"]),
                    "email": user["email"],
                }
            ],
            "created_at": _iso(user["created_at"]),
            "updated_at": _iso(user["updated_at"]),
            "is_anonymous": False,
        }

    def _new_session(self, db: sqlite3.Connection, user_id: str, now: float) -> tuple[str, str]:
        """Create a session and its first refresh token (inside a transaction)."""
        session_id = str(uuid.uuid4())
        db.execute(
            "INSERT INTO sessions (id, user_id, amr_method, amr_at, created_at) VALUES (?, ?, 'password', ?, ?)",
            (session_id, user_id, int(now), now),
        )
        token = self._insert_refresh_token(db, session_id, None, now)
        db.execute(
            "UPDATE users SET last_sign_in_at = ?, updated_at = ? WHERE id = ?",
            (now, now, user_id),
        )
        return session_id, token

    @staticmethod
    def _insert_refresh_token(db: sqlite3.Connection, session_id: str, parent: str | None, now: float) -> str:
        token = secrets.token_urlsafe(24)
        db.execute(
            "INSERT INTO refresh_tokens (token, session_id, parent, created_at, updated_at) VALUES (?, ?, ?, ?, ?)",
            (token, session_id, parent, now, now),
        )
        return token

    def _load(self, sql: str, *args: Any) -> sqlite3.Row | None:
        with self._lock:
            row: sqlite3.Row | None = self._db.execute(sql, args).fetchone()
            return row

    def _authenticate(self, req: Request) -> _Auth:
        """GoTrue's requireAuthentication: bearer JWT, signature and exp, user and session."""
        match = _BEARER_RE.match(req.header("authorization").strip())
        if not match:
            raise AuthError(401, "no_authorization", "This endpoint requires a Bearer token")
        token = match.group(1)
        bad = "invalid JWT: unable to parse or verify signature, "
        try:
            header = jwt.get_unverified_header(token)
            kid, alg = header.get("kid"), header.get("alg")
            key: Any
            if self._jwk is not None and self._es_key is not None and kid == self._jwk["kid"]:
                key, algorithms = self._es_key.public_key(), ["ES256"]
            elif alg == "HS256" and (kid is None or self._jwk is None):
                key, algorithms = self.jwt_secret, ["HS256"]
            else:
                raise AuthError(403, "bad_jwt", bad + "token is unverifiable: invalid kid or alg")
            claims: dict[str, Any] = jwt.decode(token, key, algorithms=algorithms, options={"verify_aud": False})
        except jwt.ExpiredSignatureError:
            raise AuthError(403, "bad_jwt", bad + "token has invalid claims: token is expired") from None
        except jwt.PyJWTError as exc:
            raise AuthError(403, "bad_jwt", bad + str(exc)) from None
        sub = claims.get("sub")
        if not sub or not isinstance(sub, str):
            raise AuthError(403, "bad_jwt", "invalid claim: missing sub claim")
        try:
            uuid.UUID(sub)
        except ValueError:
            raise AuthError(400, "bad_jwt", "invalid claim: sub claim must be a UUID") from None
        user = self._load("SELECT * FROM users WHERE id = ?", sub)
        if user is None:
            raise AuthError(403, "user_not_found", "User from sub claim in JWT does not exist")
        session_id = claims.get("session_id")
        if session_id and session_id != NIL_UUID:
            try:
                uuid.UUID(str(session_id))
            except ValueError:
                raise AuthError(403, "bad_jwt", "invalid claim: session_id claim must be a UUID") from None
            if self._load("SELECT id FROM sessions WHERE id = ?", str(session_id)) is None:
                raise AuthError(403, "session_not_found", "Session from session_id claim in JWT does not exist")
            return _Auth(claims, user, str(session_id))
        return _Auth(claims, user, None)

    # -- endpoints --------------------------------------------------------------------------

    def _signup(self, req: Request) -> Response:
        body = self._body(req)
        email, phone = self._str(body, "email").strip(), self._str(body, "phone").strip()
        password = self._str(body, "password")
        data = body.get("data") or {}
        if not isinstance(data, dict):
            raise AuthError(400, "bad_json", "Could not parse request body as JSON: field 'data' must be an object")
        if email and phone:
            raise AuthError(
                400,
                "validation_failed",
                "Only an email address or phone number should be provided on signup.",
            )
        # GoTrue validates the password before looking at the email.
        if not password:
            raise AuthError(422, "validation_failed", "Signup requires a valid password")
        _check_password_strength(password)
        if phone and not email:
            raise AuthError(400, "phone_provider_disabled", "Phone signups are disabled")
        email = _validate_email(email)

        password_hash = hash_password(password)  # slow: outside the lock on purpose
        now = time.time()
        user_id = str(uuid.uuid4())
        # As GoTrue does: the signup data, then the email identity's claims merged over it.
        metadata = {
            **data,
            "email": email,
            "email_verified": True,
            "phone_verified": False,
            "sub": user_id,
        }
        app_metadata = {"provider": "email", "providers": ["email"]}
        try:
            with self._tx() as db:
                db.execute(
                    "INSERT INTO users (id, email, password_hash, identity_id, user_metadata,"
                    " app_metadata, created_at, updated_at, email_confirmed_at)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        user_id,
                        email,
                        password_hash,
                        str(uuid.uuid4()),
                        json.dumps(metadata),
                        json.dumps(app_metadata),
                        now,
                        now,
                        now,  # autoconfirm: confirmed now
                    ),
                )
                session_id, token = self._new_session(db, user_id, now)
                user = db.execute("SELECT * FROM users WHERE id = ?", (user_id,)).fetchone()
                session = db.execute("SELECT * FROM sessions WHERE id = ?", (session_id,)).fetchone()
        except sqlite3.IntegrityError:
            raise AuthError(422, "user_already_exists", "User already registered") from None
        return self._token_response(req, user, session, token)

    def _token(self, req: Request) -> Response:
        grant = req.query.get("grant_type", "")
        if grant == "password":
            return self._password_grant(req)
        if grant == "refresh_token":
            return self._refresh_grant(req)
        raise AuthError(400, "invalid_credentials", "unsupported_grant_type")

    def _password_grant(self, req: Request) -> Response:
        body = self._body(req)
        email, phone = self._str(body, "email").strip(), self._str(body, "phone").strip()
        password = self._str(body, "password")
        if email and phone:
            raise AuthError(
                400,
                "validation_failed",
                "Only an email address or phone number should be provided on login.",
            )
        if not email and not phone:
            raise AuthError(400, "validation_failed", "missing email or phone")
        user = self._load("SELECT * FROM users WHERE email = ?", email.lower()) if email else None
        ok = verify_password(password, user["password_hash"] if user else self._dummy_hash)
        if user is None or not ok:
            raise AuthError(400, "invalid_credentials", "Invalid login credentials")
        now = time.time()
        with self._tx() as db:
            session_id, token = self._new_session(db, user["id"], now)
            user = db.execute("SELECT * FROM users WHERE id = ?", (user["id"],)).fetchone()
            session = db.execute("SELECT * FROM sessions WHERE id = ?", (session_id,)).fetchone()
        return self._token_response(req, user, session, token)

    def _refresh_grant(self, req: Request) -> Response:
        """Rotation as GoTrue's RefreshTokenGrant does it (rules in :func:`make_auth_app`)."""
        body = self._body(req)
        token_value = self._str(body, "refresh_token")
        if not token_value:
            raise OAuthError("invalid_request", "refresh_token required")
        now = time.time()
        used = False
        with self._tx() as db:
            token = db.execute("SELECT * FROM refresh_tokens WHERE token = ?", (token_value,)).fetchone()
            if token is None:
                raise AuthError(400, "refresh_token_not_found", "Invalid Refresh Token: Refresh Token Not Found")
            issued: str | None = None
            if token["revoked"]:
                active = db.execute(
                    "SELECT * FROM refresh_tokens WHERE session_id = ? AND revoked = 0 ORDER BY id DESC LIMIT 1",
                    (token["session_id"],),
                ).fetchone()
                if active is not None and active["parent"] == token["token"]:
                    # The client lost the previous answer: hand back the active token again.
                    issued = active["token"]
                elif now > token["updated_at"] + self.reuse_interval:
                    # Reuse outside the grace window: revoke the whole family, and keep that
                    # revocation even though the request fails.
                    db.execute(
                        "UPDATE refresh_tokens SET revoked = 1, updated_at = ? WHERE session_id = ? AND revoked = 0",
                        (now, token["session_id"]),
                    )
                    used = True
            if not used:
                if issued is None:
                    db.execute(
                        "UPDATE refresh_tokens SET revoked = 1, updated_at = ? WHERE id = ?",
                        (now, token["id"]),
                    )
                    issued = self._insert_refresh_token(db, token["session_id"], token_value, now)
                db.execute("UPDATE sessions SET refreshed_at = ? WHERE id = ?", (now, token["session_id"]))
                session = db.execute("SELECT * FROM sessions WHERE id = ?", (token["session_id"],)).fetchone()
                user = db.execute("SELECT * FROM users WHERE id = ?", (session["user_id"],)).fetchone()
        if used:
            raise AuthError(400, "refresh_token_already_used", "Invalid Refresh Token: Already Used")
        assert issued is not None
        return self._token_response(req, user, session, issued)

    def _get_user(self, req: Request) -> Response:
        return Response.json(self._user_json(self._authenticate(req).user))

    def _logout(self, req: Request) -> Response:
        auth = self._authenticate(req)
        scope = req.query.get("scope", "") or "global"
        if scope not in ("global", "local", "others"):
            raise AuthError(400, "validation_failed", f'Unsupported logout scope "{scope}"')
        # Deleting sessions cascades to their refresh tokens: later refreshes are "not found".
        if auth.session_id is not None:
            with self._tx() as db:
                if scope == "local":
                    db.execute("DELETE FROM sessions WHERE id = ?", (auth.session_id,))
                elif scope == "others":
                    db.execute(
                        "DELETE FROM sessions WHERE user_id = ? AND id != ?",
                        (auth.user["id"], auth.session_id),
                    )
                else:
                    db.execute("DELETE FROM sessions WHERE user_id = ?", (auth.user["id"],))
        return Response(204)

    def _jwks(self, req: Request) -> Response:
        # Symmetric keys are never published, so HS256 mode serves an empty set like GoTrue.
        keys = [self._jwk] if self._jwk is not None else []
        return Response.json({"keys": keys}, headers={"Cache-Control": "public, max-age=600"})

    def _health(self, req: Request) -> Response:
        return Response.json(
            {
                "version": "devstack",
                "name": "GoTrue",
                "description": "GoTrue is a user registration and authentication API",
            }
        )

    def _settings(self, req: Request) -> Response:
        return Response.json(
            {
                "external": {"email": True, "phone": False, "anonymous_users": False},
                "disable_signup": False,
                "mailer_autoconfirm": True,
                "phone_autoconfirm": False,
                "sms_provider": "",
                "saml_enabled": False,
                "anonymous_users_enabled": False,
            }
        )


def _check_password_strength(password: str) -> None:
    """GoTrue's checkPasswordStrength with the default config (min length 6, no char classes)."""
    if len(password.encode()) > MAX_PASSWORD_BYTES:
        raise AuthError(
            400,
            "validation_failed",
            f"Password cannot be longer than {MAX_PASSWORD_BYTES} characters",
        )
    if len(password) < MIN_PASSWORD_LENGTH:
        raise AuthError(
            422,
            "weak_password",
            f"Password should be at least {MIN_PASSWORD_LENGTH} characters.",
            {"weak_password": {"reasons": ["length"]}},
        )


def _validate_email(email: str) -> str:
    """GoTrue's validateEmail: required, at most 255 chars, checkmail's format; lower-cased."""
    if not email:
        raise AuthError(400, "validation_failed", "An email address is required")
    if len(email) > MAX_EMAIL_LENGTH:
        raise AuthError(400, "validation_failed", "An email address is too long")
    if not _EMAIL_RE.match(email):
        raise AuthError(400, "validation_failed", "Unable to validate email address: invalid format")
    return email.lower()


def make_auth_app(
    data_dir: Path,
    jwt_secret: str,
    anon_key: str,
    service_role_key: str,
    *,
    jwt_alg: str = "HS256",
    jwt_exp: int = 3600,
    refresh_token_reuse_interval: int = 10,
    issuer: str | None = None,
) -> AuthApp:
    """Build the GoTrue stand-in serving ``/auth/v1/*`` with state under ``data_dir``.

    ``refresh_token_reuse_interval`` is GoTrue's GOTRUE_SECURITY_REFRESH_TOKEN_REUSE_INTERVAL
    (10 s by default): within it a revoked refresh token may still be swapped; after it, reuse
    revokes the session's token family and fails with ``refresh_token_already_used``. Reusing
    the direct parent of the active token always returns that active token (GoTrue's allowance
    for a client that lost the refresh answer). ``issuer`` defaults to ``<request host>/auth/v1``.
    """
    return AuthApp(
        data_dir,
        jwt_secret,
        anon_key,
        service_role_key,
        jwt_alg=jwt_alg,
        jwt_exp=jwt_exp,
        refresh_token_reuse_interval=refresh_token_reuse_interval,
        issuer=issuer,
    )
