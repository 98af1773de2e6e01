"""Local access-token verification (``sorastudio.tokens``): HS256 with the project secret and
ES256 through the JWKS of a Supabase Auth stand-in, and the ways a token must be refused."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization

from devstack.localkeys import ES256_KEY_FILE, LOCAL_JWT_SECRET, anon_key, load_or_create_es256_key
from devstack.redisserver import free_port
from devstack.stack import LocalCloud
from devstack.supabase import start_in_thread
from sorastudio.settings import Settings
from sorastudio.tokens import TokenError, verify_access_token

HS_SETTINGS = Settings(SUPABASE_JWT_SECRET=LOCAL_JWT_SECRET)


def claims(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    base = {"sub": str(uuid.uuid4()), "aud": "authenticated", "exp": now + 600, "iat": now,
            "email": "someone@example.com", "role": "authenticated", "session_id": str(uuid.uuid4())}
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


def hs256(payload: dict[str, Any], secret: str = LOCAL_JWT_SECRET) -> str:
    return jwt.encode(payload, secret, algorithm="HS256")


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def raw_jwt(header: dict[str, Any], payload: dict[str, Any], sign: Any) -> str:
    """A JWT built by hand (PyJWT refuses to make the malicious ones)."""
    signing_input = f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(payload).encode())}"
    return f"{signing_input}.{b64url(sign(signing_input.encode()))}"


def refused(token: str, settings: Settings) -> str:
    with pytest.raises(TokenError) as info:
        verify_access_token(token, settings)
    return info.value.code


# --- HS256 (legacy secret) -------------------------------------------------------------------


def test_hs256_token_from_the_project_secret_verifies() -> None:
    c = claims()
    user = verify_access_token(hs256(c), HS_SETTINGS)
    assert (user.id, user.email, user.session_id) == (c["sub"], c["email"], c["session_id"])


def test_token_issued_by_the_local_auth_stand_in_verifies(cloud: LocalCloud) -> None:
    """A real signup's access token verifies with the settings the functions get."""
    env = cloud.env
    email = f"tok-{uuid.uuid4().hex[:10]}@example.com"
    r = httpx.post(f"{env['SUPABASE_URL']}/auth/v1/signup", json={"email": email, "password": "long-enough-pw"},
                   headers={"apikey": env["SUPABASE_ANON_KEY"], "Authorization": f"Bearer {env['SUPABASE_ANON_KEY']}"})
    assert r.status_code == 200, r.text
    user = verify_access_token(r.json()["access_token"], Settings.from_env(env))
    assert user.id == r.json()["user"]["id"] and user.email == email


def test_expired_token_is_token_expired() -> None:
    past = int(time.time()) - 3600
    assert refused(hs256(claims(exp=past, iat=past - 600)), HS_SETTINGS) == "token_expired"


def test_small_clock_skew_is_tolerated() -> None:
    """A token that expired a few seconds ago still passes (leeway for clock skew)."""
    verify_access_token(hs256(claims(exp=int(time.time()) - 3)), HS_SETTINGS)


@pytest.mark.parametrize(
    ("case", "token"),
    [
        ("wrong secret", hs256(claims(), "another-secret-that-is-also-32-characters-long")),
        ("wrong audience", hs256(claims(aud="someone-else"))),
        ("no audience", hs256(claims(aud=None))),
        ("no subject", hs256(claims(sub=None))),
        ("empty subject", hs256(claims(sub=""))),
        ("no expiry", hs256(claims(exp=None))),
        ("alg none", raw_jwt({"alg": "none", "typ": "JWT"}, claims(), lambda data: b"")),
        ("alg none, upper case", raw_jwt({"alg": "None", "typ": "JWT"}, claims(), lambda data: b"")),
        ("garbage", "not-a-jwt"),
        ("three garbage parts", "abc.def.ghi"),
        ("empty", ""),
        ("anon API key", anon_key(LOCAL_JWT_SECRET)),
    ],
)
def test_bad_tokens_are_invalid_token(case: str, token: str) -> None:
    assert refused(token, HS_SETTINGS) == "invalid_token", case


def test_hs256_is_refused_when_no_secret_is_configured() -> None:
    assert refused(hs256(claims()), Settings()) == "invalid_token"


# --- ES256 (JWKS) ----------------------------------------------------------------------------


@dataclass
class Es256Project:
    url: str
    anon_key: str
    data_dir: Path

    @property
    def settings(self) -> Settings:
        return Settings(SUPABASE_URL=self.url)

    def sign_up(self) -> dict[str, Any]:
        r = httpx.post(f"{self.url}/auth/v1/signup",
                       json={"email": f"es-{uuid.uuid4().hex[:10]}@example.com", "password": "long-enough-pw"},
                       headers={"apikey": self.anon_key, "Authorization": f"Bearer {self.anon_key}"})
        assert r.status_code == 200, r.text
        return r.json()  # type: ignore[no-any-return]

    def jwk(self) -> dict[str, Any]:
        keys = httpx.get(f"{self.url}/auth/v1/.well-known/jwks.json").json()["keys"]
        assert len(keys) == 1
        return keys[0]  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def es256(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Es256Project]:
    data_dir = tmp_path_factory.mktemp("es256-auth")
    server, keys = start_in_thread(data_dir, jwt_alg="ES256")
    yield Es256Project(keys.url, keys.anon_key, data_dir)
    server.shutdown()
    server.server_close()


def test_es256_token_verifies_through_the_jwks(es256: Es256Project) -> None:
    session = es256.sign_up()
    assert jwt.get_unverified_header(session["access_token"])["alg"] == "ES256"
    user = verify_access_token(session["access_token"], es256.settings)
    assert user.id == session["user"]["id"] and user.email == session["user"]["email"]


def test_expired_es256_token_is_token_expired(es256: Es256Project) -> None:
    key = load_or_create_es256_key(es256.data_dir)
    assert (es256.data_dir / ES256_KEY_FILE).exists()
    past = int(time.time()) - 3600
    token = jwt.encode(claims(exp=past, iat=past - 600), key, algorithm="ES256", headers={"kid": es256.jwk()["kid"]})
    assert refused(token, es256.settings) == "token_expired"


def test_es256_token_with_an_unknown_key_is_refused(es256: Es256Project, tmp_path: Path) -> None:
    stranger = load_or_create_es256_key(tmp_path)
    token = jwt.encode(claims(), stranger, algorithm="ES256", headers={"kid": es256.jwk()["kid"]})
    assert refused(token, es256.settings) == "invalid_token"
    token = jwt.encode(claims(), stranger, algorithm="ES256", headers={"kid": "no-such-key"})
    assert refused(token, es256.settings) == "invalid_token"


def test_es256_token_is_refused_by_an_hs256_only_project(es256: Es256Project) -> None:
    assert refused(es256.sign_up()["access_token"], HS_SETTINGS) == "invalid_token"


def test_hs256_signed_with_the_public_key_is_refused(es256: Es256Project) -> None:
    """Algorithm confusion: the published public key used as an HMAC secret must not verify."""
    public_key = jwt.PyJWK(es256.jwk()).key
    pem = public_key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    for header in ({"alg": "HS256", "typ": "JWT"}, {"alg": "HS256", "typ": "JWT", "kid": es256.jwk()["kid"]}):
        token = raw_jwt(header, claims(), lambda data: hmac.new(pem, data, hashlib.sha256).digest())
        assert refused(token, es256.settings) == "invalid_token"


def test_header_naming_another_algorithm_for_the_key_is_refused(es256: Es256Project) -> None:
    """An RS256 header pointing at the EC key is refused as invalid_token, not a crash."""
    key = load_or_create_es256_key(es256.data_dir)
    good = jwt.encode(claims(), key, algorithm="ES256", headers={"kid": es256.jwk()["kid"]})
    signing_input, _, signature = good.rpartition(".")
    _, _, payload = signing_input.partition(".")
    header = b64url(json.dumps({"alg": "RS256", "typ": "JWT", "kid": es256.jwk()["kid"]}).encode())
    assert refused(f"{header}.{payload}.{signature}", es256.settings) == "invalid_token"


def test_unreachable_jwks_is_auth_unavailable_not_a_bad_token(es256: Es256Project) -> None:
    """When the key set can't be fetched the token isn't known to be bad: web.py answers 503 for
    ``auth_unavailable`` instead of a 401 that would log the user out."""
    token = es256.sign_up()["access_token"]
    nowhere = Settings(SUPABASE_URL=f"http://127.0.0.1:{free_port()}")
    assert refused(token, nowhere) == "auth_unavailable"
