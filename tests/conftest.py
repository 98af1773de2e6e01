"""Shared fixtures: a real redis-server per test process (xdist-safe: each worker gets its own)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from devstack.redisserver import free_port, redis_url, start_redis


@pytest.fixture(scope="session")
def redis_port(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """Port of a fresh, non-persistent redis-server owned by this test process."""
    port = free_port()
    proc = start_redis(tmp_path_factory.mktemp("redis"), port, persist=False)
    yield port
    proc.terminate()
    proc.wait(timeout=10)


@pytest.fixture(scope="session")
def redis_server_url(redis_port: int) -> str:
    return redis_url(redis_port)


# --- the local cloud -------------------------------------------------------------------------

from dataclasses import dataclass  # noqa: E402

import httpx  # noqa: E402

from devstack.stack import LocalCloud, serve_router, start_local_cloud  # noqa: E402


@pytest.fixture(scope="session")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCloud]:
    """Real Redis + Upstash and Supabase stand-ins (subprocesses) for this test process.

    ``cloud.env`` holds the settings a function or worker needs (names as in .env.example).
    """
    stack = start_local_cloud(tmp_path_factory.mktemp("cloud"), persist=False)
    stack.env["SORASTUDIO_ALLOW_PRIVATE_URLS"] = "true"
    yield stack
    stack.stop()


@dataclass
class Api:
    """The Vercel-style server in front of ``api/`` and ``public/``."""

    url: str
    cloud: LocalCloud

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=30)


@pytest.fixture(scope="session")
def api(cloud: LocalCloud) -> Iterator[Api]:
    router = serve_router(cloud.env)
    yield Api(url=router.url, cloud=cloud)
    router.close()
