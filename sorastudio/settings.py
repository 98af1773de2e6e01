"""Typed settings read from the environment (names match the managed services' own).

This is a plain pydantic model rather than ``pydantic-settings``: importing pydantic-settings costs
~150 ms more (it pulls in asyncio and pydantic.dataclasses), which every function would pay on each
cold start. Values come from ``os.environ`` only; ``make dev`` and the tests set the environment.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from functools import lru_cache

from pydantic import BaseModel, ConfigDict, Field, field_validator


class Settings(BaseModel):
    """Everything configurable, one object. Field aliases are the environment variable names."""

    model_config = ConfigDict(populate_by_name=True, extra="ignore", frozen=True)

    upstash_url: str = Field("", alias="UPSTASH_REDIS_REST_URL")
    upstash_token: str = Field("", alias="UPSTASH_REDIS_REST_TOKEN")

    supabase_url: str = Field("", alias="SUPABASE_URL")
    supabase_anon_key: str = Field("", alias="SUPABASE_ANON_KEY")
    supabase_service_role_key: str = Field("", alias="SUPABASE_SERVICE_ROLE_KEY")
    supabase_jwt_secret: str = Field("", alias="SUPABASE_JWT_SECRET")
    supabase_jwks_url: str = Field("", alias="SUPABASE_JWKS_URL")

    task_retention_seconds: int = Field(7 * 24 * 3600, alias="TASK_RETENTION_SECONDS", ge=60)
    task_max_attempts: int = Field(3, alias="TASK_MAX_ATTEMPTS", ge=1, le=100)
    idempotency_ttl_seconds: int = Field(24 * 3600, alias="IDEMPOTENCY_TTL_SECONDS", ge=60)

    worker_wake_urls: tuple[str, ...] = Field((), alias="WORKER_WAKE_URLS")
    worker_wake_token: str = Field("", alias="WORKER_WAKE_TOKEN")

    # Local-only relaxation (make dev turns it on): lets workers fetch loopback/private URLs.
    allow_private_urls: bool = Field(False, alias="SORASTUDIO_ALLOW_PRIVATE_URLS")

    @field_validator("worker_wake_urls", mode="before")
    @classmethod
    def _split_urls(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(u.strip().rstrip("/") for u in value.split(",") if u.strip())
        return value

    @field_validator("upstash_url", "supabase_url", mode="after")
    @classmethod
    def _strip_slash(cls, value: str) -> str:
        return value.rstrip("/")

    @property
    def jwks_url(self) -> str:
        """Where the project's public signing keys are published."""
        return self.supabase_jwks_url or f"{self.supabase_url}/auth/v1/.well-known/jwks.json"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Build settings from ``environ`` (default ``os.environ``); empty strings mean unset."""
        source = os.environ if environ is None else environ
        names = {f.alias for f in cls.model_fields.values() if f.alias}
        return cls.model_validate({k: v for k, v in source.items() if k in names and v != ""})


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings (read once; functions are short-lived processes)."""
    return Settings.from_env()
