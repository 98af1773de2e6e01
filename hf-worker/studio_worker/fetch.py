"""Download a user-supplied video URL to a local file, safely.

The URL comes from an untrusted user and the worker runs inside a cloud network, so this is an
SSRF boundary. The rules, per hop (the first request and every redirect):

* only ``http``/``https``, no ``user:pass@`` userinfo, at most :data:`MAX_REDIRECTS` redirects;
* the host name is resolved **once, by us** (``socket.getaddrinfo``) and every address it
  resolves to must be public (:func:`is_public_address`); ``localhost``, cloud metadata names and
  odd numeric spellings such as ``http://2130706433/`` are refused without any lookup;
* the connection then goes to the validated address and nowhere else (see *Pinning* below);
* the body is capped in size and time, and sniffed: it has to *look* like a video container.

``allow_private=True`` (the local-dev setting ``SORASTUDIO_ALLOW_PRIVATE_URLS``) turns the
address and host-name rules off so tests and the local stack can fetch from 127.0.0.1.

Pinning
-------
We talk to the server through :mod:`httpcore` (the transport layer under httpx) and give its
connection pool our own *network backend* (a documented httpcore extension point). The pool asks
the backend to ``connect_tcp(host, port)``; :class:`_PinnedBackend` ignores the DNS name it is
handed and connects to the address(es) we already validated, so there is no second lookup that
a DNS-rebinding server could answer differently. Everything above the socket still uses the
original URL: the ``Host`` header, TLS SNI and certificate verification all name the original
host, so HTTPS keeps working and stays verified. The same backend wraps every socket in
:class:`_GuardedStream`, which enforces the whole-download deadline, the stall timeout and
``should_stop`` even while a read is blocked on a silent server.
"""

from __future__ import annotations

import ipaddress
import os
import re
import secrets
import socket
import ssl
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, urljoin, urlsplit

import httpcore
import httpx

from studio_worker.errors import Canceled, PermanentError, TransientError

__all__ = ["MAX_REDIRECTS", "FetchedFile", "fetch_to_file", "is_public_address", "sniff_video"]

MAX_REDIRECTS = 5
USER_AGENT = "SoraStudio-Worker/1.0 (+video fetch)"
SNIFF_BYTES = 4096  # enough for every signature below (MPEG-TS needs 2 x 188 + 1)
_CHUNK = 64 * 1024
_POLL_S = 0.25  # how often a blocked read wakes up to check should_stop and the deadline
_PROGRESS_EVERY_S = 0.5

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# Checked on top of is_global, which misses some of these (e.g. multicast counts as "global").
_V4_EXTRA_BLOCKED = [ipaddress.ip_network(n) for n in ("100.64.0.0/10", "192.0.0.0/24", "198.18.0.0/15")]
_NAT64 = ipaddress.ip_network("64:ff9b::/96")  # well-known prefix: last 32 bits are an IPv4 address
_NAT64_LOCAL = ipaddress.ip_network("64:ff9b:1::/48")  # RFC 8215 local-use NAT64: site-internal
_V4_COMPAT = ipaddress.ip_network("::/96")  # deprecated IPv4-compatible form (also holds :: and ::1)

# Names that reach the instance metadata service or the machine itself without any DNS record
# we could check. Suffixes are private-use TLDs that never resolve to a public service.
_BLOCKED_HOSTS = frozenset({
    "localhost", "metadata", "metadata.google.internal", "metadata.goog", "instance-data",
    "instance-data.ec2.internal", "metadata.azure.com", "metadata.tencentyun.com",
})
_BLOCKED_SUFFIXES = (".localhost", ".local", ".internal", ".home.arpa")


@dataclass(frozen=True)
class FetchedFile:
    """A finished download: ``kind`` is the sniffed container (``mp4``, ``webm``, ...)."""

    path: Path
    size: int
    content_type: str | None  # as the server claimed it; informational only
    final_url: str  # after redirects
    kind: str


# --- address policy ----------------------------------------------------------------------------


def is_public_address(ip: IPAddress | str) -> bool:
    """True when ``ip`` is an ordinary public unicast address a user's video may live on.

    IPv6 forms that embed an IPv4 address (mapped ``::ffff:a.b.c.d``, NAT64 ``64:ff9b::/96``,
    6to4 ``2002::/16``) are judged by the embedded address, because that is where the packets
    end up. The deprecated IPv4-compatible ``::a.b.c.d`` range is refused as a whole.
    """
    addr = ipaddress.ip_address(ip) if isinstance(ip, str) else ip
    if isinstance(addr, ipaddress.IPv6Address):
        if addr.scope_id:  # "fe80::1%eth0": zone-scoped, never a public host
            return False
        if addr.ipv4_mapped is not None:
            return is_public_address(addr.ipv4_mapped)
        if addr in _NAT64:
            return is_public_address(ipaddress.IPv4Address(int(addr) & 0xFFFFFFFF))
        if addr.sixtofour is not None:
            return is_public_address(addr.sixtofour)
        if addr in _V4_COMPAT or addr in _NAT64_LOCAL or addr.is_site_local:
            return False
    elif any(addr in net for net in _V4_EXTRA_BLOCKED):
        return False
    return not (
        addr.is_loopback or addr.is_private or addr.is_link_local or addr.is_multicast
        or addr.is_reserved or addr.is_unspecified or not addr.is_global
    )


def _ends_in_number(host: str) -> bool:
    """WHATWG's test for "this host is an IPv4 address in some spelling" (``0x7f.1``, ``017700000001``)."""
    last = host.rstrip(".").rsplit(".", 1)[-1]
    return last.isdigit() or bool(re.fullmatch(r"0[xX][0-9a-fA-F]*", last))


def _refuse(host: str, why: str) -> PermanentError:
    # Name only the host the user (or a redirect) gave us, never the address it resolved to.
    return PermanentError("url_not_allowed", f"Refusing to download from {host!r}: {why}.")


@dataclass(frozen=True)
class _Target:
    url: str  # the URL as requested (fragment dropped)
    scheme: str
    host: str  # ASCII, lower-case, no trailing dot, no IPv6 brackets
    port: int
    target: str  # path + query, percent-encoded
    host_header: str


def _parse(url: str) -> _Target:
    """Check the URL's shape (scheme, userinfo, host, port) without touching the network."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError as exc:
        raise PermanentError("invalid_url", f"Not a valid URL: {exc}.") from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        shown = scheme or "(none)"
        raise PermanentError("url_not_allowed", f"Only http and https URLs can be downloaded, not {shown!r}.")
    if parts.username is not None or parts.password is not None:
        raise PermanentError("url_not_allowed", "URLs with a user name or password (user:pass@host) are not allowed.")
    raw_host = (parts.hostname or "").rstrip(".")
    if not raw_host:
        raise PermanentError("invalid_url", "The URL has no host name.")
    try:
        host = raw_host.encode("idna").decode("ascii").lower()
    except UnicodeError:
        raise PermanentError("invalid_url", f"Invalid host name {raw_host!r}.") from None
    if not re.fullmatch(r"[a-z0-9._-]+|[0-9a-f:.]+(%[\w.-]+)?", host):
        raise PermanentError("invalid_url", f"Invalid host name {raw_host!r}.")
    port = port or (443 if scheme == "https" else 80)
    if port == 0:
        raise PermanentError("invalid_url", "Port 0 is not valid.")
    # Percent-encode anything h11 would refuse (spaces, non-ASCII); keep existing escapes.
    target = quote(parts.path or "/", safe="/%:@!$&'()*+,;=~")
    if parts.query:
        target += "?" + quote(parts.query, safe="/%:@!$&'()*+,;=~?")
    shown_host = f"[{host}]" if ":" in host else host
    default = port == (443 if scheme == "https" else 80)
    host_header = shown_host if default else f"{shown_host}:{port}"
    return _Target(url.strip().split("#", 1)[0], scheme, host, port, target, host_header)


def _resolve(t: _Target, allow_private: bool) -> list[str]:
    """The addresses to connect to, each one already checked against the policy."""
    try:
        literal: IPAddress | None = ipaddress.ip_address(t.host)
    except ValueError:
        literal = None
    if literal is None and _ends_in_number(t.host):
        # Decimal/octal/hex spellings parse differently in different libraries: refuse them all.
        raise _refuse(t.host, "numeric host names must be written as a plain dotted IPv4 address")
    if literal is not None:
        addrs: list[IPAddress] = [literal]
    else:
        if not allow_private and (t.host in _BLOCKED_HOSTS or t.host.endswith(_BLOCKED_SUFFIXES)):
            raise _refuse(t.host, "it names a local or internal service")
        try:
            infos = socket.getaddrinfo(t.host, t.port, type=socket.SOCK_STREAM)
        except socket.gaierror as exc:
            if exc.errno == socket.EAI_AGAIN:  # the resolver itself is struggling: worth a retry
                raise TransientError("source_unavailable", f"DNS lookup for {t.host!r} failed temporarily.") from None
            raise PermanentError("host_not_found", f"The host {t.host!r} does not exist (DNS lookup failed).") from None
        addrs = []
        for info in infos:
            a = ipaddress.ip_address(info[4][0])
            if a not in addrs:
                addrs.append(a)
        if not addrs:
            raise PermanentError("host_not_found", f"The host {t.host!r} has no addresses.")
    # All or nothing: a name that mixes public and private answers is a rebinding tell.
    if not allow_private and not all(is_public_address(a) for a in addrs):
        raise _refuse(t.host, "it points to a private, loopback or otherwise internal network address")
    return [str(a) for a in addrs]


# --- network backend: pinning, deadline, stall, cancel -------------------------------------------


class _Stop(Exception):
    """Raised inside the socket layer so that httpcore tears the connection down; mapped outside."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason  # "deadline" | "stall" | "canceled"


class _Limits:
    """Shared by every socket of one download: the overall deadline, stall limit and cancel hook."""

    def __init__(self, deadline: float, stall_s: float, should_stop: Callable[[], bool] | None) -> None:
        self.deadline = deadline
        self.stall_s = stall_s
        self.should_stop = should_stop
        self._next_poll = 0.0

    def check(self) -> float:
        """Raise when we must stop now; otherwise the seconds left until the deadline."""
        now = time.monotonic()
        # should_stop may be a network call (e.g. a queue lookup): ask at most every _POLL_S.
        if self.should_stop is not None and now >= self._next_poll:
            self._next_poll = now + _POLL_S
            if self.should_stop():
                raise _Stop("canceled")
        left = self.deadline - now
        if left <= 0:
            raise _Stop("deadline")
        return left


class _GuardedStream(httpcore.NetworkStream):
    """Reads in short slices so a silent server can't hold us past the deadline or a cancel."""

    def __init__(self, inner: httpcore.NetworkStream, limits: _Limits) -> None:
        self._inner = inner
        self._limits = limits

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        stall_until = time.monotonic() + self._limits.stall_s
        while True:
            left = self._limits.check()
            slice_s = min(_POLL_S, left, max(stall_until - time.monotonic(), 0.001))
            try:
                return self._inner.read(max_bytes, slice_s)
            except httpcore.ReadTimeout:
                # A timed-out recv() consumed nothing, so simply trying again is safe.
                if time.monotonic() >= stall_until:
                    raise _Stop("stall") from None

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        left = self._limits.check()
        self._inner.write(buffer, min(left, self._limits.stall_s))

    def close(self) -> None:
        self._inner.close()

    def start_tls(
        self, ssl_context: ssl.SSLContext, server_hostname: str | None = None, timeout: float | None = None
    ) -> httpcore.NetworkStream:
        left = self._limits.check()
        t = left if timeout is None else min(timeout, left)
        return _GuardedStream(self._inner.start_tls(ssl_context, server_hostname, t), self._limits)

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


class _PinnedBackend(httpcore.NetworkBackend):
    """Connects to pre-validated IPs instead of resolving the host name again (see module doc)."""

    def __init__(self, host: str, addresses: list[str], limits: _Limits) -> None:
        self._host = host
        self._addresses = addresses
        self._limits = limits
        self._inner = httpcore.SyncBackend()

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        if host != self._host:  # the pool is built per hop, so anything else is a bug
            raise httpcore.ConnectError(f"unexpected connect to {host!r}")
        error: Exception | None = None
        for ip in self._addresses:  # fall back across the validated addresses only
            left = self._limits.check()
            t = left if timeout is None else min(timeout, left)
            try:
                stream = self._inner.connect_tcp(ip, port, t, local_address, socket_options)
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                error = exc
                continue
            return _GuardedStream(stream, self._limits)
        assert error is not None
        raise error

    def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> httpcore.NetworkStream:
        raise httpcore.ConnectError("unix sockets are not allowed")


def _ssl_context() -> ssl.SSLContext:
    """Verified TLS with certifi's CA bundle (or SSL_CERT_FILE); tests swap this to trust their CA."""
    return httpx.create_ssl_context()


# --- content sniffing ------------------------------------------------------------------------


def sniff_video(head: bytes) -> str:
    """The container kind of a file starting with ``head``; raises ``PermanentError`` when it isn't video."""
    if not head:
        raise PermanentError("empty_file", "The URL returned an empty file (0 bytes).")
    if head[4:8] == b"ftyp":
        return "mov" if head[8:12] == b"qt  " else "mp4"
    if head[4:8] in (b"moov", b"mdat", b"wide", b"free", b"skip", b"pnot"):
        return "mov"  # old QuickTime files start straight with an atom
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        return "webm" if b"webm" in head[:64] else "mkv"
    if head[:4] == b"RIFF" and head[8:12] == b"AVI ":
        return "avi"
    if len(head) > 188 and head[0] == 0x47 and head[188] == 0x47 and (len(head) <= 376 or head[376] == 0x47):
        return "ts"
    if head.startswith(b"FLV\x01"):
        return "flv"
    if head.startswith(b"OggS"):
        return "ogg"
    if head.startswith((b"\x00\x00\x01\xba", b"\x00\x00\x01\xb3")):
        return "mpg"
    raise PermanentError("not_a_video", f"The URL did not return a video file: it {_describe(head)}.")


def _describe(head: bytes) -> str:
    """A human hint for what a non-video download looks like."""
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    html_starts = (b"<!doctype html", b"<html", b"<head", b"<body", b"<!--", b"<script")
    if text.startswith(html_starts) or b"<html" in text[:1024]:
        return "looks like an HTML page (a web page, not a direct link to the video file)"
    if text.startswith(b"#extm3u"):
        return "looks like an HLS playlist (.m3u8), not a single video file"
    if text.startswith(b"<?xml") or text.startswith(b"<mpd"):
        return "looks like an XML document"
    if text.startswith((b"{", b"[")):
        return "looks like JSON data"
    for magic, name in ((b"\x89PNG", "PNG"), (b"\xff\xd8\xff", "JPEG"), (b"GIF8", "GIF"), (b"BM", "BMP")):
        if head.startswith(magic):
            return f"looks like an image ({name})"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "looks like an image (WebP)"
    if (head[:4] == b"RIFF" and head[8:12] == b"WAVE") or head.startswith((b"ID3", b"fLaC")):
        return "looks like an audio file"
    if head.startswith(b"%PDF"):
        return "looks like a PDF document"
    if head.startswith(b"PK\x03\x04"):
        return "looks like a ZIP archive"
    try:
        text_ok = all(c >= 0x20 or c in b"\t\n\r\f" for c in head) and bool(head.decode("utf-8"))
    except UnicodeDecodeError:
        text_ok = False
    return "looks like a text file" if text_ok else "is in an unrecognised format"


# --- the download ------------------------------------------------------------------------------

_EXT = {"mp4": ".mp4", "mov": ".mov", "webm": ".webm", "mkv": ".mkv", "avi": ".avi", "ts": ".ts",
        "flv": ".flv", "ogg": ".ogv", "mpg": ".mpg"}


def _status_error(status: int, host: str) -> Exception:
    if status in (401, 403):
        return PermanentError("source_forbidden", f"{host} refused access to the video (HTTP {status}).")
    if status in (404, 410):
        return PermanentError("source_not_found", f"{host} says the video does not exist (HTTP {status}).")
    if status in (408, 425, 429) or status >= 500:
        return TransientError("source_unavailable", f"{host} is unavailable right now (HTTP {status}).")
    return PermanentError("source_http_error", f"{host} answered HTTP {status} instead of the video.")


def _network_error(exc: BaseException, t: _Target, limits: _Limits, timeout_s: float) -> Exception:
    """Map httpcore/socket failures to the worker's error types."""
    if isinstance(exc, _Stop):
        if exc.reason == "canceled":
            return Canceled()
        if exc.reason == "deadline":
            return TransientError("download_timeout", f"The download did not finish within {timeout_s:g} s.")
        return TransientError("download_timeout", f"{t.host} stopped sending data for {limits.stall_s:g} s.")
    if isinstance(exc, httpcore.ConnectTimeout):
        return TransientError("source_unavailable", f"Timed out connecting to {t.host}.")
    if isinstance(exc, httpcore.ConnectError):
        # httpcore wraps the ssl error; depending on the path it sits in __cause__, __context__ or args.
        inner = (exc.__cause__, exc.__context__, *exc.args)
        if any(isinstance(e, ssl.SSLCertVerificationError) for e in inner):
            return PermanentError("source_tls_error", f"{t.host} has an invalid HTTPS certificate.")
        return TransientError("source_unavailable", f"Could not connect to {t.host}.")
    if isinstance(exc, httpcore.TimeoutException):
        return TransientError("download_timeout", f"{t.host} stopped responding.")
    if isinstance(exc, httpcore.UnsupportedProtocol | httpcore.LocalProtocolError):
        return PermanentError("invalid_url", f"Cannot request this URL: {exc}.")
    # ReadError, WriteError, RemoteProtocolError: reset, truncated body, garbage response.
    return TransientError("source_unavailable", f"The connection to {t.host} broke off during the download.")


def fetch_to_file(
    url: str,
    dest_dir: Path,
    *,
    allow_private: bool = False,
    max_bytes: int = 500 * 1024**2,
    timeout_s: float = 300,
    connect_timeout_s: float = 10,
    stall_timeout_s: float = 30,
    progress: Callable[[int, int | None], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> FetchedFile:
    """Download ``url`` into a new file in ``dest_dir``, enforcing the policy in the module doc.

    ``timeout_s`` bounds the whole call (DNS aside), ``stall_timeout_s`` the silence between two
    reads. ``progress(done, total_or_None)`` is called at most every 0.5 s and once at the end.
    ``should_stop()`` is polled while waiting; when it returns True we raise ``Canceled``.
    Raises ``PermanentError``/``TransientError``/``Canceled``; no partial file is left behind.
    """
    limits = _Limits(time.monotonic() + timeout_s, stall_timeout_s, should_stop)
    t = _parse(url)
    for _hop in range(MAX_REDIRECTS + 1):
        addresses = _resolve(t, allow_private)
        pool = httpcore.ConnectionPool(
            ssl_context=_ssl_context() if t.scheme == "https" else None,
            max_connections=1,
            retries=0,
            network_backend=_PinnedBackend(t.host, addresses, limits),
        )
        try:
            with pool:
                result = _request(pool, t, dest_dir, limits, max_bytes, connect_timeout_s, progress)
        except (_Stop, httpcore.NetworkError, httpcore.TimeoutException, httpcore.ProtocolError,
                httpcore.UnsupportedProtocol) as exc:
            raise _network_error(exc, t, limits, timeout_s) from None
        if isinstance(result, FetchedFile):
            return result
        try:
            t = _parse(urljoin(t.url, result))  # a redirect: validate the new hop from scratch
        except PermanentError as exc:
            raise PermanentError(exc.code, f"The URL redirected somewhere not allowed. {exc.message}") from None
    raise PermanentError("too_many_redirects", f"The URL redirected more than {MAX_REDIRECTS} times.")


def _request(
    pool: httpcore.ConnectionPool,
    t: _Target,
    dest_dir: Path,
    limits: _Limits,
    max_bytes: int,
    connect_timeout_s: float,
    progress: Callable[[int, int | None], None] | None,
) -> FetchedFile | str:
    """One GET: the finished file, or the ``Location`` of a redirect to follow."""
    request_url = httpcore.URL(scheme=t.scheme, host=t.host, port=t.port, target=t.target)
    headers = [
        (b"Host", t.host_header.encode("ascii")),
        (b"User-Agent", USER_AGENT.encode()),
        (b"Accept", b"video/*, application/octet-stream;q=0.9, */*;q=0.5"),
        (b"Accept-Encoding", b"identity"),  # compressed video is pointless and a decompression risk
    ]
    # The guarded stream enforces deadline/stall itself; these are upper bounds for httpcore.
    timeouts = {"connect": connect_timeout_s, "read": limits.stall_s, "write": limits.stall_s, "pool": 1.0}
    with pool.stream("GET", request_url, headers=headers, extensions={"timeout": timeouts}) as resp:
        if resp.status in (301, 302, 303, 307, 308):
            location = _header(resp.headers, b"location")
            if not location:
                raise PermanentError("source_http_error", f"{t.host} sent a redirect without a Location.")
            return location
        if not 200 <= resp.status < 300:
            raise _status_error(resp.status, t.host)
        total = _content_length(resp.headers)
        if total is not None and total > max_bytes:
            raise _too_large(max_bytes)
        content_type = _header(resp.headers, b"content-type")
        return _stream_to_file(resp, t, dest_dir, limits, max_bytes, total, content_type, progress)


def _stream_to_file(
    resp: httpcore.Response,
    t: _Target,
    dest_dir: Path,
    limits: _Limits,
    max_bytes: int,
    total: int | None,
    content_type: str | None,
    progress: Callable[[int, int | None], None] | None,
) -> FetchedFile:
    tmp = tempfile.NamedTemporaryFile(dir=dest_dir, prefix=".fetch-", suffix=".part", delete=False)  # noqa: SIM115
    tmp_path = Path(tmp.name)
    try:
        with tmp:
            size = 0
            head = b""
            kind: str | None = None
            last_report = time.monotonic()
            for chunk in resp.iter_stream():
                size += len(chunk)
                if size > max_bytes:
                    raise _too_large(max_bytes)
                if kind is None:
                    head += chunk[: SNIFF_BYTES - len(head)]
                    if len(head) >= SNIFF_BYTES:
                        kind = sniff_video(head)  # refuse an HTML page now, not after 500 MB
                tmp.write(chunk)
                limits.check()  # cancel/deadline also between chunks of a fast download
                if progress is not None and time.monotonic() - last_report >= _PROGRESS_EVERY_S:
                    last_report = time.monotonic()
                    progress(size, total)
            if kind is None:
                kind = sniff_video(head)
        final = dest_dir / f"source-{secrets.token_hex(6)}{_EXT[kind]}"
        os.replace(tmp_path, final)
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise
    if progress is not None:
        progress(size, total)
    return FetchedFile(final, size, content_type, t.url, kind)


def _too_large(max_bytes: int) -> PermanentError:
    return PermanentError(
        "video_too_large_download", f"The video is larger than the {max_bytes / 1024**2:g} MB download limit."
    )


def _header(headers: list[tuple[bytes, bytes]], name: bytes) -> str | None:
    for k, v in headers:
        if k.lower() == name:
            try:
                return v.decode("utf-8").strip()
            except UnicodeDecodeError:
                return v.decode("latin-1").strip()
    return None


def _content_length(headers: list[tuple[bytes, bytes]]) -> int | None:
    # h11 has already rejected malformed or conflicting Content-Length values.
    value = _header(headers, b"content-length")
    return int(value) if value and value.isdigit() else None
