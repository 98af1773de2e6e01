"""The studio page in real headless Chromium against the real functions (and vercel.json's CSP).

Debian's /usr/bin/chromium (``apt-get install -y chromium``), driven by Playwright for Python
without its bundled browser. There is no worker yet, so a task stays queued unless the test moves
it on through the queue protocol itself (to check how running/done/failed cards look).
"""

from __future__ import annotations

import json
import re
import shutil
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import Api

pytestmark = [pytest.mark.browser, pytest.mark.slow]

playwright_api = pytest.importorskip("playwright.sync_api")
expect = playwright_api.expect

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
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

# Reports CSP violations through console.error, so the console listener sees them too.
CSP_PROBE = """
document.addEventListener("securitypolicyviolation", (e) => {
  console.error(`CSP violation: ${e.violatedDirective} blocked ${e.blockedURI || "inline"}`);
});
"""


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    if not Path(CHROMIUM).exists():
        pytest.skip("no chromium: apt-get install -y chromium")
    with playwright_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


class Page:
    """A fresh browser context + page that records console errors, page errors and CSP violations."""

    def __init__(self, browser: object, api: Api) -> None:
        self.context = browser.new_context(base_url=api.url, viewport={"width": 1100, "height": 900})
        self.context.set_default_timeout(TIMEOUT_MS)
        self.page = self.context.new_page()
        self.problems: list[str] = []
        self.page.add_init_script(CSP_PROBE)
        self.page.on("console", lambda m: m.type == "error" and self.problems.append(f"console: {m.text}"))
        self.page.on("pageerror", lambda e: self.problems.append(f"pageerror: {e}"))

    def stored_session(self) -> dict | None:
        raw = self.page.evaluate(f"localStorage.getItem({SESSION_KEY!r})")
        return json.loads(raw) if raw else None


@pytest.fixture
def page(browser: object, api: Api, request: pytest.FixtureRequest) -> Iterator[Page]:
    tab = Page(browser, api)
    yield tab
    failed = getattr(request.node, "rep_call", None)
    if failed is not None and failed.failed:
        ARTIFACTS.mkdir(exist_ok=True)
        tab.page.screenshot(path=str(ARTIFACTS / f"{request.node.name}.png"), full_page=True)
    tab.context.close()


def _sign_up(tab: Page) -> str:
    page = tab.page
    email = f"page-{uuid.uuid4().hex[:10]}@example.com"
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill("correct horse battery")
    page.get_by_role("button", name="Sign up").click()
    expect(page.get_by_role("button", name="Log out")).to_be_visible()
    expect(page.locator("#user-email")).to_have_text(email)
    return email


def _analyze(tab: Page, url: str) -> object:
    page = tab.page
    page.get_by_label("Video URL").fill(url)
    page.get_by_role("button", name="Analyze").click()
    card = page.locator("article", has_text=url)
    expect(card).to_have_count(1)
    return card


def test_sign_up_analyze_cancel_log_out_log_in(page: Page, api: Api) -> None:
    tab, p = page, page.page
    response = p.goto("/")
    assert response is not None and response.ok
    if (ROOT / "vercel.json").exists():
        csp = response.headers.get("content-security-policy", "")
        assert "script-src 'self'" in csp and "style-src 'self'" in csp, csp

    expect(p.get_by_role("button", name="Log in")).to_be_visible()
    expect(p.get_by_role("button", name="Log out")).to_be_hidden()
    email = _sign_up(tab)
    assert tab.stored_session()["user"]["email"] == email
    expect(p.get_by_text("No tasks yet")).to_be_visible()

    card = _analyze(tab, "https://videos.example.com/first.mp4")
    expect(card.locator(".badge")).to_have_text("queued")
    expect(card).to_contain_text(re.compile(r"Position in queue: \d+"))
    expect(card.get_by_role("button", name="Cancel")).to_be_visible()

    # User text is rendered as text, never as markup.
    tricky = "https://videos.example.com/<img/src=x/onerror=alert(1)>.mp4"
    tricky_card = _analyze(tab, tricky)
    expect(tricky_card.locator("img")).to_have_count(0)
    expect(tricky_card.locator("a")).to_have_text(tricky)
    expect(p.locator("article").first).to_contain_text(tricky)  # newest first

    # A reload keeps the session (localStorage) and lists the tasks from GET /api/tasks.
    p.reload()
    expect(p.locator("article")).to_have_count(2)
    card = p.locator("article", has_text="first.mp4")

    card.get_by_role("button", name="Cancel").click()
    expect(card.locator(".badge")).to_have_text("canceled")
    expect(card.get_by_role("button", name="Cancel")).to_be_hidden()
    expect(card).not_to_contain_text("Position in queue")

    p.get_by_role("button", name="Log out").click()
    expect(p.get_by_role("button", name="Log in")).to_be_visible()
    expect(p.locator("article")).to_have_count(0)
    assert tab.stored_session() is None

    p.get_by_label("Email").fill(email)
    p.get_by_label("Password").fill("correct horse battery")
    p.get_by_role("button", name="Log in").click()
    expect(p.locator("article")).to_have_count(2)
    expect(p.locator("article", has_text="first.mp4").locator(".badge")).to_have_text("canceled")
    queued = p.locator("article", has_text="onerror")
    expect(queued.locator(".badge")).to_have_text("queued")
    # The list has no queue positions; the card reads its own status at once to show it.
    expect(queued).to_contain_text(re.compile(r"Position in queue: \d+"))
    assert tab.problems == []


def test_session_is_refreshed_before_it_expires(page: Page) -> None:
    tab, p = page, page.page
    p.goto("/")
    _sign_up(tab)
    stored = tab.stored_session()
    old_refresh = stored["session"]["refreshToken"]
    # Pretend the access token is about to expire: the page must refresh before calling the API.
    stored["session"]["expiresAt"] = int(time.time()) + 20
    p.evaluate("([k, v]) => localStorage.setItem(k, v)", [SESSION_KEY, json.dumps(stored)])
    with p.expect_request(lambda r: r.url.endswith("/api/auth/login") and "refreshToken" in (r.post_data or "")):
        p.reload()
    expect(p.get_by_text("No tasks yet")).to_be_visible()
    p.wait_for_function(
        "([k, old]) => { const s = JSON.parse(localStorage.getItem(k)); return s && s.session.refreshToken !== old; }",
        arg=[SESSION_KEY, old_refresh],
    )
    assert tab.stored_session()["session"]["expiresAt"] > time.time() + 60
    assert tab.problems == []


def test_running_done_and_failed_cards(page: Page, api: Api) -> None:
    """Move tasks on through the queue protocol (as a worker would) and watch the cards follow."""
    from upstash_redis import Redis

    from sorastudio.models import TaskError, TaskStatus, now_iso
    from sorastudio.taskqueue import LeaseOp, Lifecycle, QueueOp, TaskQueue

    tab, p = page, page.page
    p.goto("/")
    _sign_up(tab)
    cards = {
        name: _analyze(tab, f"https://videos.example.com/{name}.mp4")
        for name in ("running", "done", "failed", "retrying")
    }
    env = api.cloud.env
    queue = TaskQueue(
        Redis(url=env["UPSTASH_REDIS_REST_URL"], token=env["UPSTASH_REDIS_REST_TOKEN"], allow_telemetry=False),
        retention_seconds=3600,
    )
    result = {"durationSeconds": 12.5, "scenes": [{"start": 0, "end": 4.2}], "note": "<b>not bold</b>"}
    changes = {
        "running": {"status": TaskStatus.RUNNING, "progress": 40, "stage": "detecting scenes", "started_at": now_iso()},
        "done": {
            "status": TaskStatus.DONE,
            "progress": 100,
            "stage": "done",
            "result": result,
            "finished_at": now_iso(),
        },
        "failed": {
            "status": TaskStatus.FAILED,
            "stage": "failed",
            "finished_at": now_iso(),
            "error": TaskError(code="video_unreachable", message="The video could not be downloaded."),
        },
    }
    for name, change in changes.items():
        snapshot = queue.read(cards[name].get_attribute("data-task-id"))
        applied, _ = queue.transition(snapshot, snapshot.task.model_copy(update=change))
        assert applied
    # A retry, the way a worker makes one: claim (queued -> running, leased), then a retryable failure.
    snapshot = queue.read(cards["retrying"].get_attribute("data-task-id"))
    claimed = snapshot.task.model_copy(update={"status": TaskStatus.RUNNING, "attempts": 1, "worker_id": "page-test"})
    applied, snapshot = queue.transition(
        snapshot, claimed, queue=QueueOp.REMOVE, lease=LeaseOp.SET, lease_deadline_ms=int(time.time() * 1000) + 30_000
    )
    assert applied
    outcome, _ = Lifecycle(queue, "page-test").fail(
        snapshot, "fetch_failed", "The host did not answer.", retryable=True
    )
    assert outcome == "retry"

    running = cards["running"]
    expect(running.locator(".badge")).to_have_text("running")
    expect(running.locator("progress")).to_have_attribute("value", "40")
    expect(running).to_contain_text("detecting scenes")
    expect(running.get_by_role("button", name="Cancel")).to_be_visible()

    done = cards["done"]
    expect(done.locator(".badge")).to_have_text("done")
    expect(done.locator("pre")).to_have_text(json.dumps(result, indent=2))
    expect(done.locator("b")).to_have_count(0)
    expect(done.get_by_role("button", name="Cancel")).to_be_hidden()

    failed = cards["failed"]
    expect(failed.locator(".badge")).to_have_text("failed")
    expect(failed).to_contain_text("video_unreachable")
    expect(failed).to_contain_text("The video could not be downloaded.")

    retrying = cards["retrying"]
    expect(retrying.locator(".badge")).to_have_text("queued")
    expect(retrying).to_contain_text(re.compile(r"Retrying in \d+s"))
    expect(retrying).to_contain_text("Last attempt failed: fetch_failed The host did not answer.")
    expect(retrying).not_to_contain_text("Position in queue")

    _analyze(tab, "https://videos.example.com/queued.mp4")
    expect(p.locator("article").first).to_contain_text(re.compile(r"Position in queue: \d+"))
    ARTIFACTS.mkdir(exist_ok=True)
    p.screenshot(path=str(ARTIFACTS / "page.png"), full_page=True)
    assert tab.problems == []
