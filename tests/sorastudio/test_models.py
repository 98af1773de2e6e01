"""Input models, task ids and settings (``sorastudio.models``, ``sorastudio.settings``)."""

from __future__ import annotations

import time

import pytest
from pydantic import ValidationError

from sorastudio.models import (
    MAX_URL_LENGTH,
    CreateTaskRequest,
    Task,
    TaskStatus,
    VideoAnalysisPayload,
    is_task_id,
    new_task_id,
    now_iso,
)
from sorastudio.settings import Settings

# --- videoUrl --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "https://videos.example.com/clip.mp4",
        "http://127.0.0.1:8080/v.webm?x=1#t=2",
        "HTTPS://Example.COM/a%20b.mp4",
        "https://[::1]/v.mp4",
        "https://example.com/" + "a" * (MAX_URL_LENGTH - len("https://example.com/")),
    ],
)
def test_video_url_accepts_absolute_http_urls(url: str) -> None:
    assert VideoAnalysisPayload.model_validate({"videoUrl": url}).video_url == url


@pytest.mark.parametrize(
    ("case", "url"),
    [
        ("file scheme", "file:///etc/passwd"),
        ("ftp scheme", "ftp://example.com/v.mp4"),
        ("javascript", "javascript:alert(1)"),
        ("data url", "data:video/mp4;base64,AAAA"),
        ("gopher", "gopher://127.0.0.1:6379/_FLUSHALL"),
        ("no scheme", "example.com/v.mp4"),
        ("scheme-relative", "//example.com/v.mp4"),
        ("no host", "http:///v.mp4"),
        ("empty", ""),
        ("user and password", "https://user:pw@example.com/v.mp4"),
        ("user only", "https://user@example.com/v.mp4"),
        ("empty user", "https://@example.com/v.mp4"),
        ("credentials hiding the host", "https://example.com:443@evil.test/v.mp4"),
        ("too long", "https://example.com/" + "a" * MAX_URL_LENGTH),
        ("leading space", " https://example.com/v.mp4"),
        ("trailing newline", "https://example.com/v.mp4\n"),
        ("inner space", "https://example.com/a b.mp4"),
        ("tab", "https://example.com/\tv.mp4"),
        ("no-break space", "https://example.com/\u00a0v.mp4"),
        ("control char", "https://example.com/\x00v.mp4"),
        ("bad port", "https://example.com:99999/v.mp4"),
        ("non-numeric port", "https://example.com:http/v.mp4"),
    ],
)
def test_video_url_refuses_unsafe_or_malformed_urls(case: str, url: str) -> None:
    with pytest.raises(ValidationError):
        VideoAnalysisPayload.model_validate({"videoUrl": url})


def test_video_url_must_be_a_string() -> None:
    with pytest.raises(ValidationError):
        VideoAnalysisPayload.model_validate({"videoUrl": 42})


# --- request bodies --------------------------------------------------------------------------


def test_create_task_request_validates_its_payload_canonically() -> None:
    body = CreateTaskRequest.model_validate({"type": "video_analysis", "payload": {"videoUrl": "https://e.com/v"}})
    assert body.validated_payload() == {"videoUrl": "https://e.com/v"}


@pytest.mark.parametrize(
    "data",
    [
        {"type": "text_to_speech", "payload": {}},
        {"type": "", "payload": {}},
        {"type": None, "payload": {}},
        {"payload": {"videoUrl": "https://e.com/v"}},
        {"type": "video_analysis"},
        {"type": "video_analysis", "payload": "https://e.com/v"},
        {"type": "video_analysis", "payload": {"videoUrl": "https://e.com/v"}, "owner": "someone-else"},
        {"type": "video_analysis", "payload": {"videoUrl": "https://e.com/v"}, "status": "done"},
    ],
)
def test_create_task_request_refuses_unknown_types_and_extra_fields(data: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        CreateTaskRequest.model_validate(data)


@pytest.mark.parametrize(
    "payload",
    [
        {},
        {"videoUrl": "ftp://e.com/v"},
        {"videoUrl": "https://e.com/v", "extra": 1},
    ],
)
def test_payload_is_checked_against_its_type(payload: dict[str, object]) -> None:
    body = CreateTaskRequest.model_validate({"type": "video_analysis", "payload": payload})
    with pytest.raises(ValidationError):
        body.validated_payload()


# --- task documents --------------------------------------------------------------------------


def test_task_json_is_camel_case_and_round_trips() -> None:
    now = now_iso()
    task = Task(id=new_task_id(), type="video_analysis", payload={"videoUrl": "https://e.com/v"}, owner="u",
                created_at=now, updated_at=now)
    raw = task.to_json()
    assert '"createdAt"' in raw and '"cancelRequested"' in raw and "created_at" not in raw
    assert Task.model_validate_json(raw) == task
    assert task.public(3)["queuePosition"] == 3
    running = task.model_copy(update={"status": TaskStatus.RUNNING})
    assert "queuePosition" not in running.public(3)


def test_now_iso_is_utc_with_milliseconds() -> None:
    value = now_iso()
    assert value.endswith("Z") and len(value) == len("2025-01-01T00:00:00.000Z")


# --- task ids --------------------------------------------------------------------------------

CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def ulid_ms(task_id: str) -> int:
    """The 48-bit millisecond timestamp in the first 10 characters of a ULID."""
    value = 0
    for c in task_id[:10]:
        value = value * 32 + CROCKFORD.index(c)
    return value


def test_task_ids_are_26_char_crockford_ulids_carrying_the_time() -> None:
    before = int(time.time() * 1000)
    task_id = new_task_id()
    after = int(time.time() * 1000)
    assert len(task_id) == 26 and is_task_id(task_id)
    assert set(task_id) <= set(CROCKFORD)
    assert task_id[0] in "01234567"  # 128 bits: the first character holds only 3
    assert before <= ulid_ms(task_id) <= after


def test_later_task_ids_sort_after_earlier_ones() -> None:
    """The per-user index pages by id, so ids from later milliseconds must sort later."""
    ids = []
    for _ in range(5):
        ids.append(new_task_id())
        time.sleep(0.002)
    assert ids == sorted(ids)
    assert len(set(ids)) == len(ids)


def test_is_task_id_rejects_other_strings() -> None:
    good = new_task_id()
    for bad in ["", good[:-1], good + "0", good.lower(), good[:-1] + "U", good[:-1] + "I", "../" + good[3:]]:
        assert not is_task_id(bad), bad


# --- settings --------------------------------------------------------------------------------


def test_settings_read_the_service_names_from_the_environment() -> None:
    settings = Settings.from_env({
        "UPSTASH_REDIS_REST_URL": "https://eu1.upstash.io/",
        "UPSTASH_REDIS_REST_TOKEN": "tok",
        "SUPABASE_URL": "https://abc.supabase.co/",
        "SUPABASE_ANON_KEY": "anon",
        "SUPABASE_SERVICE_ROLE_KEY": "service",
        "SUPABASE_JWT_SECRET": "secret",
        "TASK_RETENTION_SECONDS": "120",
        "TASK_MAX_ATTEMPTS": "5",
        "SORASTUDIO_ALLOW_PRIVATE_URLS": "true",
        "UNRELATED": "ignored",
    })
    assert settings.upstash_url == "https://eu1.upstash.io"
    assert settings.upstash_token == "tok"
    assert settings.supabase_url == "https://abc.supabase.co"
    assert (settings.supabase_anon_key, settings.supabase_service_role_key) == ("anon", "service")
    assert settings.supabase_jwt_secret == "secret"
    assert (settings.task_retention_seconds, settings.task_max_attempts) == (120, 5)
    assert settings.allow_private_urls is True
    assert settings.jwks_url == "https://abc.supabase.co/auth/v1/.well-known/jwks.json"


def test_settings_split_worker_wake_urls() -> None:
    settings = Settings.from_env({"WORKER_WAKE_URLS": " https://a.hf.space/ , ,https://b.example.com:8443/wake/,"})
    assert settings.worker_wake_urls == ("https://a.hf.space", "https://b.example.com:8443/wake")


def test_settings_treat_empty_strings_as_unset() -> None:
    settings = Settings.from_env({
        "TASK_RETENTION_SECONDS": "", "TASK_MAX_ATTEMPTS": "", "WORKER_WAKE_URLS": "",
        "SORASTUDIO_ALLOW_PRIVATE_URLS": "", "SUPABASE_URL": "",
    })
    assert settings == Settings()
    assert settings.task_retention_seconds == 7 * 24 * 3600 and settings.worker_wake_urls == ()
    assert settings.allow_private_urls is False


def test_settings_refuse_out_of_range_values() -> None:
    for env in ({"TASK_RETENTION_SECONDS": "5"}, {"TASK_MAX_ATTEMPTS": "0"}, {"TASK_MAX_ATTEMPTS": "many"}):
        with pytest.raises(ValidationError):
            Settings.from_env(env)


def test_settings_are_read_from_os_environ_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SUPABASE_JWKS_URL", "https://keys.example.com/jwks.json")
    assert Settings.from_env().jwks_url == "https://keys.example.com/jwks.json"
