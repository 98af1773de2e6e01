"""Helpers for driving the functions over real HTTP through the local Vercel-style server."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
from upstash_redis import Redis

from tests.conftest import Api


@dataclass
class Account:
    """A signed-up user with a live session."""

    id: str
    email: str
    password: str
    access_token: str
    refresh_token: str

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.access_token}"}


def sign_up(http: httpx.Client) -> Account:
    email = f"user-{uuid.uuid4().hex[:12]}@example.com"
    password = "correct horse battery"
    r = http.post("/api/auth/register", json={"email": email, "password": password})
    assert r.status_code == 201, r.text
    body = r.json()
    return Account(body["user"]["id"], email, password,
                   body["session"]["accessToken"], body["session"]["refreshToken"])


@pytest.fixture
def http(api: Api) -> Iterator[httpx.Client]:
    with api.client() as client:
        yield client


@pytest.fixture
def alice(http: httpx.Client) -> Account:
    return sign_up(http)


@pytest.fixture
def bob(http: httpx.Client) -> Account:
    return sign_up(http)


@pytest.fixture(scope="session")
def redis(api: Api) -> Redis:
    """The official SDK on the same store the functions use (to look behind the API)."""
    env = api.cloud.env
    return Redis(url=env["UPSTASH_REDIS_REST_URL"], token=env["UPSTASH_REDIS_REST_TOKEN"], allow_telemetry=False)


def analysis(url: str = "https://videos.example.com/clip.mp4") -> dict[str, object]:
    return {"type": "video_analysis", "payload": {"videoUrl": url}}


def create(http: httpx.Client, who: Account, url: str = "https://videos.example.com/clip.mp4",
           headers: dict[str, str] | None = None) -> dict[str, object]:
    r = http.post("/api/task", json=analysis(url), headers={**who.auth, **(headers or {})})
    assert r.status_code == 201, r.text
    return r.json()  # type: ignore[no-any-return]
