"""Register and log in through the functions, against the Supabase Auth stand-in."""

from __future__ import annotations

import time

import httpx
import jwt

from tests.api.conftest import Account, sign_up


def test_register_returns_user_and_session(http: httpx.Client) -> None:
    r = http.post("/api/auth/register", json={"email": "New.Person@Example.com", "password": "s3cret-pass"})
    assert r.status_code == 201
    body = r.json()
    assert body["user"]["email"] == "new.person@example.com"
    session = body["session"]
    assert set(session) >= {"accessToken", "refreshToken", "expiresAt"}
    assert time.time() < session["expiresAt"] <= time.time() + 3700
    claims = jwt.decode(session["accessToken"], options={"verify_signature": False})
    assert claims["sub"] == body["user"]["id"] and claims["aud"] == "authenticated"


def test_register_duplicate_email_is_409(http: httpx.Client, alice: Account) -> None:
    r = http.post("/api/auth/register", json={"email": alice.email, "password": "another-pass"})
    assert r.status_code == 409
    assert r.json()["error"]["code"] == "email_taken"


def test_register_weak_password_and_bad_email(http: httpx.Client) -> None:
    r = http.post("/api/auth/register", json={"email": "weak@example.com", "password": "12345"})
    assert r.status_code == 400
    assert r.json()["error"]["code"] == "invalid_request"
    assert r.json()["error"]["fields"][0]["field"] == "password"
    for email in ["not-an-email", "a@b", "@example.com", "a b@example.com"]:
        r = http.post("/api/auth/register", json={"email": email, "password": "long-enough"})
        assert r.status_code == 400, email
        assert r.json()["error"]["fields"][0]["field"] == "email"


def test_login_with_password(http: httpx.Client, alice: Account) -> None:
    r = http.post("/api/auth/login", json={"email": alice.email.upper(), "password": alice.password})
    assert r.status_code == 200
    assert r.json()["user"] == {"id": alice.id, "email": alice.email}
    assert r.json()["session"]["accessToken"]


def test_login_wrong_password_is_invalid_credentials(http: httpx.Client, alice: Account) -> None:
    r = http.post("/api/auth/login", json={"email": alice.email, "password": "wrong password"})
    assert r.status_code == 401
    assert r.json()["error"]["code"] == "invalid_credentials"
    r = http.post("/api/auth/login", json={"email": "nobody-here@example.com", "password": "whatever1"})
    assert r.status_code == 401
    assert r.json()["error"]["code"] == "invalid_credentials"


def test_refresh_gives_a_fresh_session_and_rotates(http: httpx.Client) -> None:
    account = sign_up(http)
    r = http.post("/api/auth/login", json={"refreshToken": account.refresh_token})
    assert r.status_code == 200, r.text
    fresh = r.json()["session"]
    assert fresh["refreshToken"] != account.refresh_token
    # the fresh access token works on a task function
    r = http.get("/api/tasks", headers={"Authorization": f"Bearer {fresh['accessToken']}"})
    assert r.status_code == 200
    # the new refresh token works once more
    r = http.post("/api/auth/login", json={"refreshToken": fresh["refreshToken"]})
    assert r.status_code == 200


def test_refresh_with_unknown_token_is_401(http: httpx.Client) -> None:
    r = http.post("/api/auth/login", json={"refreshToken": "not-a-real-refresh-token"})
    assert r.status_code == 401
    assert r.json()["error"]["code"] == "invalid_refresh_token"


def test_login_needs_both_fields(http: httpx.Client) -> None:
    r = http.post("/api/auth/login", json={"email": "x@example.com"})
    assert r.status_code == 400
    assert [f["field"] for f in r.json()["error"]["fields"]] == ["password"]
    r = http.post("/api/auth/login", json={"refreshToken": ""})
    assert r.status_code == 400
