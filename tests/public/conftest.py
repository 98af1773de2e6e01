"""Fixtures for the page tests: a local cloud WITH a real worker, a media server, and real Chromium.

``studio`` is its own stack (Redis, the Upstash and Supabase stand-ins, one ``python -m
studio_worker``, the Vercel-style router) so the shared ``cloud`` fixture keeps its tasks queued.
``media`` serves generated test videos over HTTP with Range support; a name can be *held* (the
request waits until the test releases it) so a test can watch a task sit in a state.
Browsers come from Debian's /usr/bin/chromium through Playwright (no bundled browser).
"""

from __future__ import annotations

import json
import re
import shutil
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from devstack.httpkit import Request, Response, serve_in_thread
from devstack.stack import LocalCloud, serve_router, start_local_cloud, start_worker

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
SCREENS = ARTIFACTS / "screens"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
]
SESSION_KEY = "sorastudio.session"
TIMEOUT_MS = 15_000
PASSWORD = "correct horse battery"

# Reports CSP violations through console.error, so the console listener sees them too.
CSP_PROBE = """
document.addEventListener("securitypolicyviolation", (e) => {
  console.error(`CSP violation: ${e.violatedDirective} blocked ${e.blockedURI || "inline"}`);
});
"""


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """Store the report of each phase as ``item.rep_setup`` / ``rep_call`` / ``rep_teardown``."""
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report


# --- media server ----------------------------------------------------------------------------------


class Media:
    """Serves files from ``root`` at ``/<name>`` (one Range per request, like a CDN); 404 otherwise."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.holds: dict[str, threading.Event] = {}
        self.url = ""

    def hold(self, name: str) -> threading.Event:
        """Make requests for ``name`` wait (at most 30 s) until the returned event is set."""
        event = threading.Event()
        self.holds[name] = event
        return event

    def __call__(self, req: Request) -> Response:
        name = req.path.lstrip("/")
        held = self.holds.get(name)
        if held is not None:
            held.wait(timeout=30)
        file = self.root / name
        if "/" in name or not name or not file.is_file():
            return Response(404, b"not found", {"Content-Type": "text/plain"})
        data = file.read_bytes()
        headers = {"Content-Type": "video/mp4", "Accept-Ranges": "bytes", "Cache-Control": "no-store"}
        m = re.fullmatch(r"bytes=(\d*)-(\d*)", req.header("range").strip())
        if not m or not (m.group(1) or m.group(2)):
            return Response(200, data, headers)
        size = len(data)
        if m.group(1):
            start, end = int(m.group(1)), min(int(m.group(2) or size - 1), size - 1)
        else:
            start, end = max(size - int(m.group(2)), 0), size - 1
        if start >= size or start > end:
            return Response(416, b"", {**headers, "Content-Range": f"bytes */{size}"})
        return Response(206, data[start : end + 1], {**headers, "Content-Range": f"bytes {start}-{end}/{size}"})


@dataclass
class Studio:
    """The running stack: the page/API at ``url``, test videos at ``media.url``."""

    cloud: LocalCloud
    url: str
    media: Media
    videos: Path
    scene_starts: list[float] = field(default_factory=list)


@pytest.fixture(scope="session")
def studio(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Studio]:
    from tests.hf_worker.videos import make_video

    videos = tmp_path_factory.mktemp("videos")
    # 320x180, 4 s at 25 fps, cuts at frames 20, 45 and 75: analysed in well under 2 s.
    spec = make_video(videos / "clip.mp4", scenes=((20, "red"), (25, "green"), (30, "blue"), (25, "yellow")), fps=25)
    assert spec.cuts == [20, 45, 75]
    for name in ("first.mp4", "second.mp4", "held.mp4", "other.mp4"):
        shutil.copy(spec.path, videos / name)
    media = Media(videos)
    media_server = serve_in_thread(media)
    media.url = f"http://127.0.0.1:{media_server.server_port}"
    cloud = start_local_cloud(tmp_path_factory.mktemp("studio"), persist=False)
    cloud.env["SORASTUDIO_ALLOW_PRIVATE_URLS"] = "true"
    router = None
    try:
        start_worker(cloud, HEARTBEAT_SECONDS="0.5", POLL_MAX_SECONDS="2")
        router = serve_router(cloud.env)
        yield Studio(cloud, router.url, media, videos, [i / 25 for i in (0, 20, 45, 75)])
    finally:
        if router is not None:
            router.close()
        cloud.stop()
        media_server.shutdown()
        media_server.server_close()
        for event in media.holds.values():
            event.set()


# --- browser ---------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    import playwright.sync_api as playwright_api

    if not Path(CHROMIUM).exists():  # make's set-up installs it: missing is a failure, not a skip
        pytest.fail("no chromium at /usr/bin/chromium: run `make setup` (apt-get install -y chromium)")
    with playwright_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


class Tab:
    """A fresh browser context + page that records console errors, page errors and CSP violations.

    ``allow(pattern)`` accepts console errors a test causes on purpose (e.g. the 401 a refused
    refresh token answers, which Chromium logs as "Failed to load resource").
    """

    def __init__(self, browser: Any, base_url: str, **context: Any) -> None:
        options = {"viewport": {"width": 1200, "height": 900}, **context}
        self.context = browser.new_context(base_url=base_url, **options)
        self.context.set_default_timeout(TIMEOUT_MS)
        self.page = self.context.new_page()
        self._problems: list[str] = []
        self._allowed: list[re.Pattern[str]] = []
        self.page.add_init_script(CSP_PROBE)
        self.page.on("console", self._console)
        self.page.on("pageerror", lambda e: self._problems.append(f"pageerror: {e}"))

    def _console(self, message: Any) -> None:
        if message.type == "error":
            self._problems.append(f"console: {message.text} @ {message.location.get('url', '')}")

    def allow(self, pattern: str) -> None:
        self._allowed.append(re.compile(pattern))

    @property
    def problems(self) -> list[str]:
        return [p for p in self._problems if not any(a.search(p) for a in self._allowed)]

    def sign_up(self, prefix: str = "user") -> str:
        """Create an account through the page's form; returns its email once the page is signed in."""
        from playwright.sync_api import expect

        email = f"{prefix}-{uuid.uuid4().hex[:10]}@example.com"
        self.page.get_by_label("Email").fill(email)
        self.page.get_by_label("Password").fill(PASSWORD)
        self.page.get_by_role("button", name="Sign up").click()
        expect(self.page.get_by_role("button", name="Log out")).to_be_visible()
        expect(self.page.locator("#user-email")).to_have_text(email)
        return email

    def shot(self, name: str) -> None:
        """A full-page screenshot into ``test-artifacts/screens/`` for a person to look at."""
        SCREENS.mkdir(parents=True, exist_ok=True)
        self.page.evaluate("window.scrollTo(0, 0)")  # the sticky top bar then sits at the top of the shot
        self.page.screenshot(path=str(SCREENS / f"{name}.png"), full_page=True)

    def stored_session(self) -> dict[str, Any] | None:
        raw = self.page.evaluate(f"localStorage.getItem({SESSION_KEY!r})")
        return json.loads(raw) if raw else None

    def set_stored_session(self, value: dict[str, Any]) -> None:
        self.page.evaluate("([k, v]) => localStorage.setItem(k, v)", [SESSION_KEY, json.dumps(value)])


@pytest.fixture
def open_tab(browser: Any, request: pytest.FixtureRequest) -> Iterator[Callable[..., Tab]]:
    """Open tabs (``open_tab(base_url, **context_options)``); screenshots of each on failure."""
    tabs: list[Tab] = []

    def factory(base_url: str, **context: Any) -> Tab:
        tab = Tab(browser, base_url, **context)
        tabs.append(tab)
        return tab

    yield factory
    failed = getattr(request.node, "rep_call", None)
    for i, tab in enumerate(tabs):
        if failed is not None and failed.failed:
            ARTIFACTS.mkdir(exist_ok=True)
            try:
                tab.page.screenshot(path=str(ARTIFACTS / f"{request.node.name}-{i}.png"), full_page=True)
            except Exception as exc:  # the page may be gone; the failure itself matters more
                print(f"screenshot failed: {exc!r}")
        tab.context.close()


# --- text_to_video ---------------------------------------------------------------------------------


class GenerationStack:
    """The ``studio`` stack plus, on request, a worker that runs ``text_to_video`` (tiny random Wan).

    The worker runs under ``.venv-t2v`` (torch + diffusers; ``scripts/setup-t2v.sh``). The tiny model
    is built in the background as soon as the fixture starts; :meth:`start_worker` waits for it, so a
    test can first see a generation wait for a GPU worker, then start one.
    """

    def __init__(self, studio: Studio, base: Path) -> None:
        from tests.hf_worker.t2v.t2v_env import build_tiny_pipeline

        self.studio = studio
        self.url = studio.url
        self.base = base
        self.tiny = base / "tiny-wan"
        self.worker: Any = None
        self._built: list[BaseException] = []

        def build() -> None:
            try:
                build_tiny_pipeline(self.tiny)
            except BaseException as exc:  # re-raised by start_worker, in the test's thread
                self._built.append(exc)

        self._builder = threading.Thread(target=build, daemon=True)
        self._builder.start()

    def start_worker(self) -> Any:
        """Start (once) the text_to_video worker on the tiny model; returns its ``WorkerProc``."""
        from tests.hf_worker.t2v.t2v_env import require_t2v_python, start_worker

        if self.worker is None:
            self._builder.join(timeout=180)
            if self._built:
                raise self._built[0]
            self.worker = start_worker(self.studio.cloud, "t2v-page", self.base, python=require_t2v_python(),
                                       WORKER_TASK_TYPES="text_to_video", T2V_MODEL_ID=str(self.tiny))
        return self.worker

    def stop(self) -> None:
        self._builder.join(timeout=180)
        if self.worker is not None:
            self.worker.stop()


@pytest.fixture(scope="module")
def generation(studio: Studio, tmp_path_factory: pytest.TempPathFactory) -> Iterator[GenerationStack]:
    """``studio`` with a text_to_video worker on demand. Fails (never skips) without ``.venv-t2v``."""
    from tests.hf_worker.t2v.t2v_env import T2V_PYTHON

    if not T2V_PYTHON.exists():
        pytest.fail(f"{T2V_PYTHON} is missing: the Generate page test needs the text_to_video worker's venv. "
                    "Run `bash scripts/setup-t2v.sh` (make test does).", pytrace=False)
    stack = GenerationStack(studio, tmp_path_factory.mktemp("t2v-page"))
    try:
        yield stack
    finally:
        stack.stop()
