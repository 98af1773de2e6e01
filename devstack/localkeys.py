"""Local development secrets for the Supabase stand-in. LOCAL ONLY: never use them in production.

They are deterministic so that tokens and keys survive restarts of the local cloud. The JWT
secret is the Supabase CLI's public default, so :func:`anon_key` / :func:`service_role_key`
reproduce the well-known ``supabase-demo`` keys byte for byte (HS256, ``iss: supabase-demo``,
``exp`` in 2032), exactly as legacy Supabase projects mint their API keys.

For JWKS (asymmetric) mode, :func:`load_or_create_es256_key` makes a P-256 key once and keeps it
as PEM under the data dir, so access tokens stay verifiable across restarts.
"""

from __future__ import annotations

import base64
import hashlib
import os
import uuid
from pathlib import Path

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

# LOCAL-ONLY secret (the Supabase CLI's published default). Anyone can mint tokens with it.
LOCAL_JWT_SECRET = "super-secret-jwt-token-with-at-least-32-characters-long"

# The legacy keys' fixed expiry (2032-11-11), as in the Supabase CLI's demo keys.
LEGACY_KEY_EXP = 1983812996

ES256_KEY_FILE = "jwt-es256-private.pem"


def _legacy_key(secret: str, role: str) -> str:
    # Claim order matters for byte-for-byte equality with Supabase's keys: iss, role, exp.
    return jwt.encode({"iss": "supabase-demo", "role": role, "exp": LEGACY_KEY_EXP}, secret, algorithm="HS256")


def anon_key(secret: str = LOCAL_JWT_SECRET) -> str:
    """The project's public ``anon`` API key: an HS256 JWT with ``role: anon``."""
    return _legacy_key(secret, "anon")


def service_role_key(secret: str = LOCAL_JWT_SECRET) -> str:
    """The server-only ``service_role`` API key: an HS256 JWT with ``role: service_role``."""
    return _legacy_key(secret, "service_role")


def load_or_create_es256_key(data_dir: Path) -> ec.EllipticCurvePrivateKey:
    """The ES256 signing key kept at ``data_dir/jwt-es256-private.pem`` (created on first use)."""
    path = Path(data_dir) / ES256_KEY_FILE
    if path.exists():
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise ValueError(f"{path} does not hold an EC private key")
        return key
    path.parent.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    # Write to a temp file then rename: two processes starting at once must not see half a key.
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(pem)
    try:
        os.link(tmp, path)  # fails if another process won the race: use its key instead
    except FileExistsError:
        tmp.unlink()
        return load_or_create_es256_key(data_dir)
    tmp.unlink()
    return key


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def es256_public_jwk(key: ec.EllipticCurvePrivateKey) -> dict[str, object]:
    """The public JWK as Supabase's JWKS endpoint publishes it; ``kid`` derives from the key."""
    numbers = key.public_key().public_numbers()
    x = _b64url(numbers.x.to_bytes(32, "big"))
    y = _b64url(numbers.y.to_bytes(32, "big"))
    # RFC 7638 thumbprint input, shaped into a UUID like Supabase's key ids.
    thumb = hashlib.sha256(f'{{"crv":"P-256","kty":"EC","x":"{x}","y":"{y}"}}'.encode()).digest()
    kid = str(uuid.UUID(bytes=thumb[:16], version=4))
    return {
        "alg": "ES256",
        "crv": "P-256",
        "ext": True,
        "key_ops": ["verify"],
        "kid": kid,
        "kty": "EC",
        "use": "sig",
        "x": x,
        "y": y,
    }
