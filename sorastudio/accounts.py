"""Register, log in and refresh through Supabase Auth with the official ``supabase`` client.

Only the auth functions import this module (``supabase`` costs ~340 ms to import); the task
functions verify tokens locally in :mod:`sorastudio.tokens`. Serverless rules: a client per
request (a shared one would carry the last user's session), implicit flow (PKCE needs state
between calls), no persisted session and no refresh thread.
"""

from __future__ import annotations

from typing import Any

from sorastudio.settings import Settings
from sorastudio.web import ApiError

# GoTrue error code -> (our status, our code, message a person understands)
_AUTH_ERRORS: dict[str, tuple[int, str, str]] = {
    "user_already_exists": (409, "email_taken", "An account with this email already exists; log in instead."),
    "email_exists": (409, "email_taken", "An account with this email already exists; log in instead."),
    "weak_password": (400, "weak_password", "Choose a stronger password (at least 6 characters)."),
    "validation_failed": (400, "invalid_email", "Enter a valid email address."),
    "email_address_invalid": (400, "invalid_email", "Enter a valid email address."),
    "invalid_credentials": (401, "invalid_credentials", "The email or password is wrong."),
    "email_not_confirmed": (403, "email_not_confirmed", "Confirm your email address first (check your inbox)."),
    "refresh_token_not_found": (401, "invalid_refresh_token", "The session has ended; log in again."),
    "refresh_token_already_used": (401, "invalid_refresh_token", "The session has ended; log in again."),
    "session_not_found": (401, "invalid_refresh_token", "The session has ended; log in again."),
    "session_expired": (401, "invalid_refresh_token", "The session has ended; log in again."),
    "over_request_rate_limit": (429, "rate_limited", "Too many attempts; wait a minute and try again."),
    "over_email_send_rate_limit": (429, "rate_limited", "Too many attempts; wait a minute and try again."),
    "signup_disabled": (403, "signup_disabled", "Sign-ups are closed for this studio."),
}


def _client(settings: Settings) -> Any:
    if not settings.supabase_url or not settings.supabase_anon_key:
        raise ApiError(503, "not_configured", "Sign-in is not configured (SUPABASE_URL/SUPABASE_ANON_KEY).")
    from supabase import ClientOptions, create_client

    options = ClientOptions(flow_type="implicit", auto_refresh_token=False, persist_session=False)
    return create_client(settings.supabase_url, settings.supabase_anon_key, options=options)


def _translate(exc: Exception) -> ApiError:
    from supabase_auth.errors import AuthApiError, AuthRetryableError, AuthWeakPasswordError

    if isinstance(exc, AuthWeakPasswordError):
        return ApiError(400, "weak_password", "Choose a stronger password (at least 6 characters).")
    if isinstance(exc, AuthApiError):
        status, code, message = _AUTH_ERRORS.get(str(exc.code), (0, "", ""))
        if status:
            return ApiError(status, code, message)
        if 400 <= exc.status < 500:
            return ApiError(400, "auth_rejected", "Sign-in was refused; check the email and password.")
    if isinstance(exc, AuthRetryableError):
        return ApiError(503, "auth_unavailable", "Sign-in is unavailable right now; try again shortly.")
    return ApiError(502, "auth_unavailable", "Sign-in is unavailable right now; try again shortly.")


def _session(session: Any) -> dict[str, Any] | None:
    if session is None:
        return None
    return {
        "accessToken": session.access_token,
        "refreshToken": session.refresh_token,
        "expiresAt": int(session.expires_at or 0),
        "tokenType": "bearer",
    }


def _user(user: Any) -> dict[str, Any]:
    return {"id": user.id, "email": user.email}


def _call(fn: Any, *args: Any) -> Any:
    from supabase_auth.errors import AuthError

    try:
        return fn(*args)
    except AuthError as exc:
        raise _translate(exc) from None
    except Exception as exc:  # httpx transport errors and the like: the service, not the input
        import httpx

        if isinstance(exc, httpx.HTTPError | OSError):
            raise ApiError(503, "auth_unavailable", "Sign-in is unavailable right now; try again shortly.") from None
        raise


def register(settings: Settings, email: str, password: str) -> dict[str, Any]:
    """Create an account. ``session`` is null when the project requires email confirmation."""
    res = _call(_client(settings).auth.sign_up, {"email": email, "password": password})
    if res.user is None:
        raise ApiError(502, "auth_unavailable", "Sign-up returned no user.")
    # With confirmation on, GoTrue answers a duplicate email with a fake user and no identities.
    if res.session is None and res.user.identities == []:
        raise ApiError(409, "email_taken", "An account with this email already exists; log in instead.")
    return {"user": _user(res.user), "session": _session(res.session)}


def login(settings: Settings, email: str, password: str) -> dict[str, Any]:
    res = _call(_client(settings).auth.sign_in_with_password, {"email": email, "password": password})
    return {"user": _user(res.user), "session": _session(res.session)}


def refresh(settings: Settings, refresh_token: str) -> dict[str, Any]:
    res = _call(_client(settings).auth.refresh_session, refresh_token)
    if res.session is None or res.user is None:
        raise ApiError(401, "invalid_refresh_token", "The session has ended; log in again.")
    return {"user": _user(res.user), "session": _session(res.session)}
