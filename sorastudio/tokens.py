"""Verify Supabase access tokens locally with PyJWT (no network round trip per request).

HS256 tokens are checked with ``SUPABASE_JWT_SECRET`` (legacy projects); ES256/RS256 tokens with the
project's JWKS, fetched once and cached. The algorithm is chosen from the token header but only
among the ones that fit the configured key material, so a token can't pick HS256 with a public key.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import jwt

from sorastudio.settings import Settings

AUDIENCE = "authenticated"
ASYMMETRIC = ("ES256", "RS256")
LEEWAY_SECONDS = 10  # clock skew between Supabase and the function host

_jwks_lock = threading.Lock()
_jwks_clients: dict[str, jwt.PyJWKClient] = {}


class TokenError(Exception):
    """The token is missing, malformed, expired or not ours. ``code`` is the API error code."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class User:
    id: str
    email: str | None
    session_id: str | None


def _jwks_client(url: str) -> jwt.PyJWKClient:
    with _jwks_lock:
        client = _jwks_clients.get(url)
        if client is None:
            client = jwt.PyJWKClient(url, cache_keys=True, lifespan=600, timeout=5)
            _jwks_clients[url] = client
        return client


def verify_access_token(token: str, settings: Settings) -> User:
    """Check signature, ``exp`` and ``aud``; return the user named by ``sub``."""
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError as exc:
        raise TokenError("invalid_token", "The access token is malformed.") from exc
    alg = header.get("alg")
    try:
        if alg == "HS256" and settings.supabase_jwt_secret:
            key: object = settings.supabase_jwt_secret
        elif alg in ASYMMETRIC and settings.supabase_url:
            jwk = _jwks_client(settings.jwks_url).get_signing_key_from_jwt(token)
            # The header names the algorithm; the published key must be of that very kind.
            if jwk.algorithm_name != alg:
                raise TokenError("invalid_token", "The access token's algorithm does not match its key.")
            key = jwk.key
        else:
            raise TokenError("invalid_token", "The access token is signed in a way this project does not accept.")
        claims = jwt.decode(
            token,
            key,  # type: ignore[arg-type]
            algorithms=[alg],
            audience=AUDIENCE,
            leeway=LEEWAY_SECONDS,
            options={"require": ["exp", "sub", "aud"]},
        )
    except jwt.ExpiredSignatureError as exc:
        raise TokenError("token_expired", "The access token has expired; log in again or refresh it.") from exc
    except jwt.PyJWKClientConnectionError as exc:  # the JWKS is unreachable: our outage, not a bad token
        raise TokenError("auth_unavailable", "Token verification is unavailable; try again shortly.") from exc
    except jwt.PyJWKClientError as exc:
        raise TokenError("invalid_token", "The access token's signing key is unknown.") from exc
    except (jwt.PyJWTError, TypeError, ValueError) as exc:  # PyJWT raises the latter two for odd keys
        raise TokenError("invalid_token", "The access token is not valid.") from exc
    sub = claims.get("sub")
    if not isinstance(sub, str) or not sub or len(sub) > 128:
        raise TokenError("invalid_token", "The access token names no user.")
    email = claims.get("email") if isinstance(claims.get("email"), str) else None
    session_id = claims.get("session_id") if isinstance(claims.get("session_id"), str) else None
    return User(id=sub, email=email, session_id=session_id)
