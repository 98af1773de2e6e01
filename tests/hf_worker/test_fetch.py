"""studio_worker.fetch: SSRF policy, pinning, caps, sniffing, error mapping, cleanup.

Every server here listens on 127.0.0.1 and is started by this module. Tests that need a "public"
host fake DNS (``socket.getaddrinfo``) and, where the fetch would then dial a non-loopback
address, replace the TCP connect with a recorder that raises, so nothing leaves the machine.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import itertools
import socket
import ssl
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpcore
import pytest
from studio_worker import fetch
from studio_worker.errors import Canceled, PermanentError, TaskFailure, TransientError
from studio_worker.fetch import fetch_to_file, is_public_address, sniff_video

MP4 = b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom" + bytes(range(256)) * 400  # ~100 KB
HTML = b"<!DOCTYPE html><html><head><title>Watch</title></head><body>video here</body></html>" + b" " * 5000

Handler = Callable[[socket.socket], None]


# --- a raw HTTP origin on 127.0.0.1 ------------------------------------------------------------


class Origin:
    """A tiny threaded HTTP server: each test registers its own path -> raw-socket handler.

    Raw sockets (not devstack.httpkit) because several tests need to stream, stall or trickle.
    One server per test process keeps the suite fast; unique paths keep tests independent.
    """

    def __init__(self, tls: ssl.SSLContext | None = None) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.tls = tls
        self.routes: dict[str, Handler] = {}
        self.hits: Counter[str] = Counter()
        self.headers: dict[str, dict[str, str]] = {}
        self._ids = itertools.count()
        threading.Thread(target=self._accept, daemon=True).start()

    def route(self, handler: Handler) -> str:
        path = f"/r{next(self._ids)}"
        self.routes[path] = handler
        return path

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        return f"{'https' if self.tls else 'http'}://{host}:{self.port}{path}"

    def close(self) -> None:
        self.sock.close()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, raw: socket.socket) -> None:
        try:
            conn = self.tls.wrap_socket(raw, server_side=True) if self.tls else raw
            with conn:
                conn.settimeout(10)
                data = b""
                while b"\r\n\r\n" not in data:
                    chunk = conn.recv(4096)
                    if not chunk:
                        return
                    data += chunk
                lines = data.split(b"\r\n\r\n")[0].decode("latin-1").split("\r\n")
                path = lines[0].split(" ")[1].split("?")[0]
                self.hits[path] += 1
                self.headers[path] = {k.lower(): v.strip() for k, v in (ln.split(":", 1) for ln in lines[1:])}
                self.routes.get(path, respond(404))(conn)
        except OSError:  # the client hung up (or failed TLS): that is what several tests want
            pass


def respond(status: int, body: bytes = b"", headers: dict[str, str] | None = None, length: bool = True) -> Handler:
    """A handler that writes one complete response and closes."""

    def handler(conn: socket.socket) -> None:
        h = {"Connection": "close", **(headers or {})}
        if length:
            h.setdefault("Content-Length", str(len(body)))
        head = f"HTTP/1.1 {status} X\r\n" + "".join(f"{k}: {v}\r\n" for k, v in h.items()) + "\r\n"
        conn.sendall(head.encode() + body)

    return handler


def redirect(location: str, status: int = 302) -> Handler:
    return respond(status, headers={"Location": location})


def stream(first: bytes, then: Callable[[socket.socket], None], length: int | None = None) -> Handler:
    """Headers (no Content-Length unless given) + ``first``, then whatever ``then`` does."""

    def handler(conn: socket.socket) -> None:
        cl = f"Content-Length: {length}\r\n" if length is not None else ""
        conn.sendall(f"HTTP/1.1 200 OK\r\nConnection: close\r\n{cl}\r\n".encode() + first)
        then(conn)

    return handler


def silence(seconds: float) -> Callable[[socket.socket], None]:
    return lambda conn: time.sleep(seconds)


def trickle(chunk: bytes, every_s: float, count: int) -> Callable[[socket.socket], None]:
    def go(conn: socket.socket) -> None:
        for _ in range(count):  # bounded so the thread always ends
            time.sleep(every_s)
            conn.sendall(chunk)

    return go


@pytest.fixture(scope="module")
def origin() -> Iterator[Origin]:
    server = Origin()
    yield server
    server.close()


@pytest.fixture
def no_dns(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Any DNS lookup fails the test: the refusal must come before resolving."""
    calls: list[str] = []

    real = socket.getaddrinfo

    def fail(host: str, *args: Any, **kwargs: Any) -> Any:
        try:  # a numeric address is parsed locally, not looked up (socket.create_connection does this)
            ipaddress.ip_address(host)
            return real(host, *args, **kwargs)
        except ValueError:
            pass
        calls.append(host)
        raise AssertionError(f"unexpected DNS lookup of {host!r}")

    monkeypatch.setattr(socket, "getaddrinfo", fail)
    return calls


def fake_dns(monkeypatch: pytest.MonkeyPatch, answers: dict[str, list[str]]) -> list[str]:
    """Resolve the names in ``answers`` to fixed addresses; numeric hosts resolve normally."""
    real = socket.getaddrinfo
    looked_up: list[str] = []

    def getaddrinfo(host: str, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host not in answers:
            return real(host, port, *args, **kwargs)
        looked_up.append(host)
        ips = answers[host] if len(looked_up) == 1 else ["127.0.0.1"]  # later answers "rebind"
        return [(socket.AF_INET6 if ":" in ip else socket.AF_INET, socket.SOCK_STREAM, 6, "", (ip, port)) for ip in ips]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return looked_up


def fails(exc_type: type[BaseException], url: str, dest: Path, code: str | None = None, **kwargs: Any) -> BaseException:
    """Assert the fetch fails as expected and left nothing behind in ``dest``."""
    with pytest.raises(exc_type) as info:
        fetch_to_file(url, dest, **kwargs)
    if code is not None:
        assert isinstance(info.value, TaskFailure)
        assert info.value.code == code, info.value
    assert list(dest.iterdir()) == [], "temp file left behind"
    return info.value


# --- address policy ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ip", "public"),
    [
        ("127.0.0.1", False),
        ("10.1.2.3", False),
        ("172.16.0.1", False),
        ("192.168.1.1", False),
        ("169.254.169.254", False),
        ("100.64.0.1", False),
        ("100.100.100.200", False),
        ("0.0.0.0", False),
        ("255.255.255.255", False),
        ("224.0.0.1", False),
        ("240.0.0.1", False),
        ("192.0.2.1", False),
        ("198.18.0.1", False),
        ("::", False),
        ("::1", False),
        ("::ffff:127.0.0.1", False),
        ("::ffff:169.254.169.254", False),
        ("::127.0.0.1", False),
        ("fe80::1", False),
        ("fc00::1", False),
        ("fd12:3456::1", False),
        ("ff02::1", False),
        ("fec0::1", False),
        ("64:ff9b::a00:1", False),
        ("64:ff9b::7f00:1", False),
        ("64:ff9b:1::1", False),
        ("2002:0a00:0001::", False),
        ("2002:7f00:1::1", False),
        ("2001:db8::1", False),
        ("8.8.8.8", True),
        ("1.1.1.1", True),
        ("93.184.216.34", True),
        ("2606:4700::1111", True),
        ("::ffff:8.8.8.8", True),
        ("64:ff9b::808:808", True),
        ("2002:808:808::1", True),
    ],
)
def test_address_classifier(ip: str, public: bool) -> None:
    assert is_public_address(ip) is public
    assert is_public_address(ipaddress.ip_address(ip)) is public


# --- refusals before any connection ------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:{port}{path}",
        "http://[::ffff:127.0.0.1]:{port}{path}",
        "http://localhost:{port}{path}",
        "http://LOCALHOST.:{port}{path}",
        "http://foo.localhost:{port}{path}",
        "http://metadata.google.internal{path}",
        "http://169.254.169.254/latest/meta-data/",
        "http://[fe80::1]:{port}{path}",
        "http://0.0.0.0:{port}{path}",
        "http://2130706433:{port}{path}",
        "http://0x7f.1:{port}{path}",
        "http://017700000001:{port}{path}",
        "http://127.1:{port}{path}",
        "http://0x7f000001:{port}{path}",
    ],
)
def test_internal_hosts_refused_without_dns_or_connect(
    url: str, origin: Origin, tmp_path: Path, no_dns: list[str]
) -> None:
    path = origin.route(respond(200, MP4))
    err = fails(PermanentError, url.format(port=origin.port, path=path), tmp_path, "url_not_allowed")
    assert origin.hits[path] == 0
    assert no_dns == []
    assert "Refusing" in str(err)


@pytest.mark.parametrize(
    ("url", "code"),
    [
        ("file:///etc/passwd", "url_not_allowed"),
        ("ftp://127.0.0.1/video.mp4", "url_not_allowed"),
        ("gopher://127.0.0.1:70/_x", "url_not_allowed"),
        ("//127.0.0.1/video.mp4", "url_not_allowed"),
        ("http://user:pw@127.0.0.1:{port}{path}", "url_not_allowed"),
        ("http://user@127.0.0.1:{port}{path}", "url_not_allowed"),
        ("http://127.0.0.1:99999/", "invalid_url"),
        ("http:///nohost", "invalid_url"),
        ("http://exa mple.com/", "invalid_url"),
    ],
)
def test_bad_urls_refused_even_when_private_allowed(
    url: str, code: str, origin: Origin, tmp_path: Path, no_dns: list[str]
) -> None:
    path = origin.route(respond(200, MP4))
    fails(PermanentError, url.format(port=origin.port, path=path), tmp_path, code, allow_private=True)
    assert origin.hits[path] == 0


def test_dns_failure_is_host_not_found(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    def nxdomain(*args: Any, **kwargs: Any) -> Any:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", nxdomain)
    err = fails(PermanentError, "https://no-such-host.example/v.mp4", tmp_path, "host_not_found")
    assert "no-such-host.example" in str(err)


def test_any_private_answer_refuses_the_name(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    fake_dns(monkeypatch, {"mixed.example": ["93.184.216.34", "10.0.0.5"]})
    err = fails(PermanentError, "http://mixed.example/v.mp4", tmp_path, "url_not_allowed")
    assert "10.0.0.5" not in str(err)  # the internal address is not echoed back


def test_connects_to_the_pinned_ip_only(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """DNS rebinding: the first answer is public, later ones loopback; we must dial the first one."""
    looked_up = fake_dns(monkeypatch, {"videos.example": ["93.184.216.34"]})
    dialed: list[tuple[str, int]] = []

    def record(self: Any, host: str, port: int, *args: Any, **kwargs: Any) -> Any:
        dialed.append((host, port))
        raise httpcore.ConnectError("test: not actually connecting")

    monkeypatch.setattr(httpcore.SyncBackend, "connect_tcp", record)
    fails(TransientError, "http://videos.example/clip.mp4", tmp_path, "source_unavailable")
    assert dialed == [("93.184.216.34", 80)]
    assert looked_up == ["videos.example"]


def test_pinned_ip_keeps_host_header(origin: Origin, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    fake_dns(monkeypatch, {"videos.example": ["127.0.0.1"]})
    path = origin.route(respond(200, MP4))
    got = fetch_to_file(origin.url(path, host="videos.example"), tmp_path, allow_private=True)
    assert got.kind == "mp4"
    assert origin.headers[path]["host"] == f"videos.example:{origin.port}"
    assert origin.headers[path]["accept-encoding"] == "identity"


# --- TLS: verified against the original host name while connected to the pinned IP -------------


@pytest.fixture(scope="module")
def tls() -> Iterator[tuple[Origin, ssl.SSLContext]]:
    from cryptography import x509  # via pyjwt[crypto], a requirement
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = dt.datetime.now(dt.UTC)
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "videos.example")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("videos.example")]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    pem = cert.public_bytes(serialization.Encoding.PEM)
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    with tempfile.TemporaryDirectory() as d:
        (Path(d) / "c.pem").write_bytes(pem)
        (Path(d) / "k.pem").write_bytes(key_pem)
        server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        server_ctx.load_cert_chain(Path(d) / "c.pem", Path(d) / "k.pem")
    client_ctx = ssl.create_default_context(cadata=pem.decode())
    server = Origin(tls=server_ctx)
    yield server, client_ctx
    server.close()


def test_https_through_pinned_ip(
    tls: tuple[Origin, ssl.SSLContext], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    server, client_ctx = tls
    monkeypatch.setattr(fetch, "_ssl_context", lambda: client_ctx)
    fake_dns(monkeypatch, {"videos.example": ["127.0.0.1"]})
    path = server.route(respond(200, MP4))
    got = fetch_to_file(server.url(path, host="videos.example"), tmp_path, allow_private=True)
    assert got.path.read_bytes() == MP4


def test_https_certificate_must_match_original_host(
    tls: tuple[Origin, ssl.SSLContext], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    server, client_ctx = tls
    monkeypatch.setattr(fetch, "_ssl_context", lambda: client_ctx)
    fake_dns(monkeypatch, {"other.example": ["127.0.0.1"]})
    path = server.route(respond(200, MP4))
    fails(PermanentError, server.url(path, host="other.example"), tmp_path, "source_tls_error", allow_private=True)


# --- happy path and redirects ------------------------------------------------------------------


def test_downloads_mp4(origin: Origin, tmp_path: Path) -> None:
    path = origin.route(respond(200, MP4, {"Content-Type": "text/plain"}))  # the header is not trusted
    calls: list[tuple[int, int | None]] = []
    got = fetch_to_file(origin.url(path), tmp_path, allow_private=True, progress=lambda d, t: calls.append((d, t)))
    assert got.kind == "mp4" and got.size == len(MP4) and got.content_type == "text/plain"
    assert got.path.parent == tmp_path and got.path.suffix == ".mp4"
    assert got.path.read_bytes() == MP4
    assert got.final_url == origin.url(path)
    assert list(tmp_path.iterdir()) == [got.path]  # the temp file was renamed, not copied
    assert calls[-1] == (len(MP4), len(MP4))


def test_progress_is_throttled(origin: Origin, tmp_path: Path) -> None:
    path = origin.route(stream(MP4[:8192], trickle(b"\0" * 1024, 0.05, 24)))  # ~1.2 s, 25 chunks
    calls: list[tuple[int, int | None]] = []
    t0 = time.monotonic()
    got = fetch_to_file(origin.url(path), tmp_path, allow_private=True, progress=lambda d, t: calls.append((d, t)))
    assert 2 <= len(calls) <= (time.monotonic() - t0) / 0.5 + 2  # every 0.5 s + the final call, not per chunk
    assert calls[-1] == (got.size, None)


def test_follows_redirects(origin: Origin, tmp_path: Path) -> None:
    final = origin.route(respond(200, MP4))
    middle = origin.route(redirect(origin.url(final), 301))
    first = origin.route(redirect(middle, 307))  # relative Location
    got = fetch_to_file(origin.url(first), tmp_path, allow_private=True)
    assert got.final_url == origin.url(final)
    assert origin.hits[first] == origin.hits[middle] == origin.hits[final] == 1


def test_too_many_redirects(origin: Origin, tmp_path: Path) -> None:
    paths = [f"/loop{i}" for i in range(fetch.MAX_REDIRECTS + 3)]
    for here, there in itertools.pairwise(paths):
        origin.routes[here] = redirect(there)
    fails(PermanentError, origin.url(paths[0]), tmp_path, "too_many_redirects", allow_private=True)
    assert sum(origin.hits[p] for p in paths) == fetch.MAX_REDIRECTS + 1


@pytest.mark.parametrize("location", ["file:///etc/passwd", "ftp://127.0.0.1/v.mp4", "http://u:p@127.0.0.1/"])
def test_redirect_to_refused_url(location: str, origin: Origin, tmp_path: Path) -> None:
    path = origin.route(redirect(location))
    err = fails(PermanentError, origin.url(path), tmp_path, "url_not_allowed", allow_private=True)
    assert "redirected" in str(err)


@pytest.mark.parametrize(
    "location",
    [
        "http://127.0.0.1:{port}{target}",
        "http://localhost:{port}{target}",
        "http://[::1]:{port}{target}",
        "http://169.254.169.254/latest/meta-data/",
        "http://metadata.google.internal/",
        "http://2130706433:{port}/",
    ],
)
def test_redirect_to_internal_address_refused(
    location: str, origin: Origin, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, no_dns: list[str]
) -> None:
    """The first hop is let through as if public; the redirect target must be re-checked and refused."""
    real = fetch.is_public_address
    checked: list[str] = []

    def first_hop_is_public(ip: Any) -> bool:
        checked.append(str(ip))
        return len(checked) == 1 or real(ip)

    monkeypatch.setattr(fetch, "is_public_address", first_hop_is_public)
    target = origin.route(respond(200, MP4))
    start = origin.route(redirect(location.format(port=origin.port, target=target)))
    fails(PermanentError, origin.url(start), tmp_path, "url_not_allowed")
    assert origin.hits[start] == 1 and origin.hits[target] == 0


# --- size and time caps ------------------------------------------------------------------------


def test_content_length_over_cap_refused_before_body(origin: Origin, tmp_path: Path) -> None:
    # Headers promise 1 GB, then the server goes quiet: only an up-front refusal is fast.
    path = origin.route(stream(b"", silence(8), length=10**9))
    t0 = time.monotonic()
    fails(PermanentError, origin.url(path), tmp_path, "video_too_large_download", allow_private=True, max_bytes=1024**2)
    assert time.monotonic() - t0 < 3


def test_stream_past_cap_aborted(origin: Origin, tmp_path: Path) -> None:
    path = origin.route(stream(MP4, trickle(b"\0" * 65536, 0, 64)))  # 4 MB+, no Content-Length
    fails(
        PermanentError, origin.url(path), tmp_path, "video_too_large_download", allow_private=True, max_bytes=512 * 1024
    )


def test_stalled_server_times_out(origin: Origin, tmp_path: Path) -> None:
    path = origin.route(stream(MP4[:8192], silence(8)))
    t0 = time.monotonic()
    err = fails(TransientError, origin.url(path), tmp_path, "download_timeout", allow_private=True, stall_timeout_s=0.5)
    assert time.monotonic() - t0 < 3
    assert "stopped sending" in str(err)


def test_slow_loris_hits_total_deadline(origin: Origin, tmp_path: Path) -> None:
    path = origin.route(stream(MP4[:8192], trickle(b"\0", 0.1, 40)))  # never stalls, never ends
    t0 = time.monotonic()
    fails(TransientError, origin.url(path), tmp_path, "download_timeout", allow_private=True, timeout_s=1.0)
    assert time.monotonic() - t0 < 3  # generous: the trickle would last 4 s


def test_cancel_while_server_is_silent(origin: Origin, tmp_path: Path) -> None:
    path = origin.route(stream(MP4[:8192], silence(8)))
    t0 = time.monotonic()
    fails(Canceled, origin.url(path), tmp_path, allow_private=True, should_stop=lambda: time.monotonic() - t0 > 0.3)
    assert time.monotonic() - t0 < 3


def test_cancel_mid_download(origin: Origin, tmp_path: Path) -> None:
    path = origin.route(stream(MP4, trickle(b"\0" * 4096, 0.02, 200)))
    seen: list[int] = []
    fails(
        Canceled,
        origin.url(path),
        tmp_path,
        allow_private=True,
        progress=lambda d, t: seen.append(d),
        should_stop=lambda: bool(seen),
    )
    assert seen and seen[-1] < len(MP4) + 200 * 4096


# --- content and status mapping ----------------------------------------------------------------


def test_html_page_is_not_a_video(origin: Origin, tmp_path: Path) -> None:
    path = origin.route(respond(200, HTML, {"Content-Type": "video/mp4"}))  # lying Content-Type
    err = fails(PermanentError, origin.url(path), tmp_path, "not_a_video", allow_private=True)
    assert "HTML page" in str(err)


def test_zero_bytes_is_empty_file(origin: Origin, tmp_path: Path) -> None:
    path = origin.route(respond(200, b""))
    fails(PermanentError, origin.url(path), tmp_path, "empty_file", allow_private=True)


@pytest.mark.parametrize(
    ("status", "exc_type", "code"),
    [
        (404, PermanentError, "source_not_found"),
        (410, PermanentError, "source_not_found"),
        (401, PermanentError, "source_forbidden"),
        (403, PermanentError, "source_forbidden"),
        (400, PermanentError, "source_http_error"),
        (429, TransientError, "source_unavailable"),
        (500, TransientError, "source_unavailable"),
        (503, TransientError, "source_unavailable"),
    ],
)
def test_http_status_mapping(
    status: int, exc_type: type[TaskFailure], code: str, origin: Origin, tmp_path: Path
) -> None:
    path = origin.route(respond(status, b"nope"))
    err = fails(exc_type, origin.url(path), tmp_path, code, allow_private=True)
    assert str(status) in str(err)


def test_truncated_body_is_transient(origin: Origin, tmp_path: Path) -> None:
    path = origin.route(stream(MP4[:8192], lambda conn: None, length=len(MP4)))  # closes early
    fails(TransientError, origin.url(path), tmp_path, "source_unavailable", allow_private=True)


def test_connection_refused_is_transient(tmp_path: Path) -> None:
    with socket.create_server(("127.0.0.1", 0)) as s:
        port = s.getsockname()[1]  # closed again below: nothing listens there
    fails(TransientError, f"http://127.0.0.1:{port}/v.mp4", tmp_path, "source_unavailable", allow_private=True)


# --- sniffing ----------------------------------------------------------------------------------

TS = (b"\x47" + bytes(187)) * 3


@pytest.mark.parametrize(
    ("head", "kind"),
    [
        (b"\0\0\0\x18ftypisom", "mp4"),
        (b"\0\0\0\x14ftypqt  ", "mov"),
        (b"\0\0\0\x08moov", "mov"),
        (b"\x1a\x45\xdf\xa3\x9f\x42\x82\x84webm", "webm"),
        (b"\x1a\x45\xdf\xa3\x42\x82\x88matroska", "mkv"),
        (b"RIFF\0\0\0\0AVI LIST", "avi"),
        (TS, "ts"),
        (b"FLV\x01\x05", "flv"),
        (b"OggS\0\x02", "ogg"),
        (b"\0\0\x01\xba\x44", "mpg"),
    ],
)
def test_sniff_video_kinds(head: bytes, kind: str) -> None:
    assert sniff_video(head) == kind


@pytest.mark.parametrize(
    ("head", "hint"),
    [
        (b"\xef\xbb\xbf\n  <html lang=en>", "HTML page"),
        (b"<!-- hi --><!doctype html>", "HTML page"),
        (b'{"error": "no"}', "JSON"),
        (b"#EXTM3U\n#EXT-X-VERSION:3", "HLS playlist"),
        (b"\x89PNG\r\n\x1a\n", "image (PNG)"),
        (b"\xff\xd8\xff\xe0", "image (JPEG)"),
        (b"RIFF\0\0\0\0WEBPVP8 ", "image (WebP)"),
        (b"RIFF\0\0\0\0WAVEfmt ", "audio"),
        (b"plain words", "text file"),
        (b"\x47" + bytes(300), "unrecognised"),
        (b"\xfe\xed\xfa\xce\x00", "unrecognised"),
    ],
)
def test_sniff_refuses_non_video(head: bytes, hint: str) -> None:
    with pytest.raises(PermanentError) as info:
        sniff_video(head)
    assert info.value.code == "not_a_video"
    assert hint in info.value.message


def test_sniff_empty() -> None:
    with pytest.raises(PermanentError) as info:
        sniff_video(b"")
    assert info.value.code == "empty_file"
