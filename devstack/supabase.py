"""The local Supabase project: one server standing for a project URL.

Routes ``/auth/v1/*`` to the GoTrue stand-in (:mod:`devstack.gotrue`) and ``/storage/v1/*`` to the
Storage stand-in (:mod:`devstack.storage`, on by default in :func:`start_in_thread` and :func:`main`),
and answers CORS preflights like Supabase's gateway. Run it with::

    python -m devstack.supabase --port 54321 --data-dir .data/supabase [--jwt-alg ES256]
"""

from __future__ import annotations

import argparse
import signal
import sys
from dataclasses import dataclass
from http.server import ThreadingHTTPServer
from pathlib import Path

from devstack.gotrue import AuthApp, make_auth_app
from devstack.httpkit import App, Request, Response, make_server, serve_in_thread
from devstack.localkeys import (
    LOCAL_JWT_SECRET,
    anon_key,
    es256_public_jwk,
    load_or_create_es256_key,
    service_role_key,
)
from devstack.storage import make_storage_app

# Request bodies the server accepts: the uploads bucket takes videos up to 500 MB, plus multipart framing.
MAX_BODY = 600 * 1024 * 1024

_CORS_METHODS = "GET, POST, PUT, PATCH, DELETE, OPTIONS, HEAD"
_CORS_HEADERS = (
    "authorization, x-client-info, apikey, content-type, x-supabase-api-version, x-upsert,"
    " cache-control, tus-resumable, upload-length, upload-metadata, upload-offset"
)


@dataclass(frozen=True)
class SupabaseKeys:
    """What a client of the local project needs (names match ``.env.example``)."""

    url: str
    anon_key: str
    service_role_key: str
    jwt_secret: str
    jwt_alg: str = "HS256"

    @property
    def jwks_url(self) -> str:
        return f"{self.url}/auth/v1/.well-known/jwks.json"

    def env(self) -> dict[str, str]:
        """The settings as environment variables for the functions and the worker."""
        return {
            "SUPABASE_URL": self.url,
            "SUPABASE_ANON_KEY": self.anon_key,
            "SUPABASE_SERVICE_ROLE_KEY": self.service_role_key,
            # Asymmetric projects verify through the JWKS, so the secret is left out for them.
            "SUPABASE_JWT_SECRET": self.jwt_secret if self.jwt_alg == "HS256" else "",
            "SUPABASE_JWKS_URL": self.jwks_url,
        }


def local_keys(url: str, jwt_secret: str = LOCAL_JWT_SECRET, jwt_alg: str = "HS256") -> SupabaseKeys:
    """The keys of the local project served at ``url`` (derived from the secret: deterministic)."""
    return SupabaseKeys(
        url=url.rstrip("/"),
        anon_key=anon_key(jwt_secret),
        service_role_key=service_role_key(jwt_secret),
        jwt_secret=jwt_secret,
        jwt_alg=jwt_alg,
    )


def storage_not_enabled(req: Request) -> Response:
    """The default storage hook: storage-api's error shape, saying the stand-in is off."""
    return Response.json({"statusCode": "404", "error": "not_found", "message": "storage stand-in not enabled"}, 404)


def _under(path: str, prefix: str) -> bool:
    return path == prefix or path.startswith(prefix + "/")


class SupabaseApp:
    """The gateway: routes by path prefix, answers CORS preflights. ``close()`` frees SQLite."""

    def __init__(self, auth: AuthApp, storage: App) -> None:
        self.auth = auth
        self.storage = storage

    def close(self) -> None:
        self.auth.close()
        close = getattr(self.storage, "close", None)
        if callable(close):
            close()

    def __call__(self, req: Request) -> Response:
        if _under(req.path, "/auth/v1"):
            inner: App = self.auth
        elif _under(req.path, "/storage/v1"):
            inner = self.storage
        else:
            return Response.json({"message": "no Route matched with those values"}, 404)
        # Browsers preflight without the apikey, so the gateway answers before any key check.
        if req.method == "OPTIONS":
            return Response(
                200,
                b"",
                {
                    "Access-Control-Allow-Origin": req.header("origin") or "*",
                    "Access-Control-Allow-Methods": _CORS_METHODS,
                    "Access-Control-Allow-Headers": req.header("access-control-request-headers") or _CORS_HEADERS,
                    "Access-Control-Max-Age": "3600",
                    "Vary": "Origin",
                },
            )
        resp = inner(req)
        resp.headers.setdefault("Access-Control-Allow-Origin", "*")
        return resp


def make_app(
    data_dir: Path,
    *,
    jwt_secret: str,
    jwt_alg: str = "HS256",
    jwt_exp: int = 3600,
    refresh_token_reuse_interval: int = 10,
    storage_app: App | None = None,
    storage: bool = False,
) -> SupabaseApp:
    """The whole local project as one app; auth and storage state live under ``data_dir``.

    ``storage_app`` receives every ``/storage/v1/*`` request unchanged (path included); the
    gateway does no apikey check for it, because signed URLs are fetched without one. With
    ``storage=True`` (and no ``storage_app``) it is the Storage stand-in on the same data dir and
    secret; otherwise storage answers "not enabled".
    ``refresh_token_reuse_interval``: see :func:`devstack.gotrue.make_auth_app`.
    """
    auth = make_auth_app(
        Path(data_dir),
        jwt_secret,
        anon_key(jwt_secret),
        service_role_key(jwt_secret),
        jwt_alg=jwt_alg,
        jwt_exp=jwt_exp,
        refresh_token_reuse_interval=refresh_token_reuse_interval,
    )
    if storage_app is None and storage:
        # ES256 projects sign user tokens with the auth key; storage verifies them via its JWK.
        jwks = {"keys": [es256_public_jwk(load_or_create_es256_key(Path(data_dir)))]} if jwt_alg == "ES256" else None
        storage_app = make_storage_app(Path(data_dir), jwt_secret, jwt_alg=jwt_alg, jwks=jwks)
    return SupabaseApp(auth, storage_app or storage_not_enabled)


def start_in_thread(
    data_dir: Path,
    *,
    jwt_secret: str = LOCAL_JWT_SECRET,
    jwt_alg: str = "HS256",
    host: str = "127.0.0.1",
    port: int = 0,
    storage_app: App | None = None,
    storage: bool = True,
) -> tuple[ThreadingHTTPServer, SupabaseKeys]:
    """Serve the local project (Storage included unless ``storage=False``) on a daemon thread.

    Returns the server and the client keys.
    """
    server = serve_in_thread(
        make_app(data_dir, jwt_secret=jwt_secret, jwt_alg=jwt_alg, storage_app=storage_app, storage=storage),
        host,
        port,
        max_body=MAX_BODY,
    )
    return server, local_keys(f"http://{host}:{server.server_port}", jwt_secret, jwt_alg)


def main(argv: list[str] | None = None) -> None:
    """``python -m devstack.supabase --port N --data-dir DIR [--jwt-secret S] [--jwt-alg A]``."""
    parser = argparse.ArgumentParser(description="Local Supabase stand-in (Auth and Storage)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=54321)
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--jwt-secret", default=LOCAL_JWT_SECRET)
    parser.add_argument("--jwt-alg", choices=("HS256", "ES256"), default="HS256")
    args = parser.parse_args(argv)
    if len(args.jwt_secret) < 32:
        parser.error("--jwt-secret must be at least 32 characters")
    app = make_app(args.data_dir, jwt_secret=args.jwt_secret, jwt_alg=args.jwt_alg, storage=True)
    server = make_server(app, args.host, args.port, max_body=MAX_BODY)
    print(f"supabase stand-in on http://{args.host}:{server.server_port}", flush=True)

    def _stop(signum: int, frame: object) -> None:
        raise KeyboardInterrupt  # a launcher's terminate() then closes SQLite cleanly

    signal.signal(signal.SIGTERM, _stop)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        app.close()


if __name__ == "__main__":
    main(sys.argv[1:])
