"""The studio page end to end in real headless Chromium, against a stack with a real worker.

Every test drives the page the way a person does (labels, roles, clicks, files), and checks that no
console error, page error or CSP violation happened. ``test_analyze_a_link_end_to_end`` also saves
screenshots of the main states to ``test-artifacts/screens/``.
"""

from __future__ import annotations

import json
import re
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest

from devstack.localkeys import LOCAL_JWT_SECRET
from tests.public.conftest import PASSWORD, Studio, Tab

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.xdist_group("browser")]

import playwright.sync_api as playwright_api  # noqa: E402 - a dev requirement: missing is a failure

expect = playwright_api.expect

WORKER_MS = 30_000  # generous: two busy cores run the worker, the browser and the other tests
XSS_MARK = "window.__xss=1"
RESOLUTION = "320 \u00d7 180"  # as the metadata table writes it (a multiplication sign)

# Records every state a card shows (status:progress), to check the progress only moves forward.
WATCH_CARD = """(card) => {
  const seen = [];
  const note = () => {
    const bar = card.querySelector("progress");
    const entry = `${card.dataset.status}:${bar ? bar.value : ""}`;
    if (seen[seen.length - 1] !== entry) seen.push(entry);
  };
  note();
  new MutationObserver(note).observe(card, { subtree: true, attributes: true, childList: true, characterData: true });
  card.seenStates = seen;
}"""



def _log_in(tab: Tab, email: str) -> None:
    page = tab.page
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("button", name="Log out")).to_be_visible()


def _card(tab: Tab, task_id: str) -> Any:
    return tab.page.locator(f'article[data-task-id="{task_id}"]')


def _submit(tab: Tab) -> Any:
    """Press Analyze; return the new task's card (the newest, so the first)."""
    page = tab.page
    before = set(page.locator("article").evaluate_all("cards => cards.map(c => c.dataset.taskId)"))
    page.get_by_role("button", name="Analyze").click()
    expect(page.locator("#task-message")).to_contain_text("Analysis started", timeout=WORKER_MS)
    first = page.locator("article").first
    task_id = first.get_attribute("data-task-id")
    assert task_id and task_id not in before
    return _card(tab, task_id)


def _analyze_link(tab: Tab, url: str) -> Any:
    tab.page.get_by_label("Video URL").fill(url)
    card = _submit(tab)
    expect(card.get_by_role("link")).to_have_text(url)
    return card


def _images_loaded(locator: Any) -> bool:
    return bool(locator.evaluate_all("imgs => imgs.length > 0 && imgs.every(i => i.complete && i.naturalWidth > 0)"))


def test_analyze_a_link_end_to_end(studio: Studio, open_tab: Callable[..., Tab], tmp_path: Path) -> None:
    tab = open_tab(studio.url)
    p = tab.page
    response = p.goto("/")
    assert response is not None and response.ok
    csp = response.headers.get("content-security-policy", "")
    assert "script-src 'self'" in csp and "style-src 'self'" in csp, csp
    expect(p.get_by_role("button", name="Log in")).to_be_visible()
    expect(p.get_by_role("button", name="Log out")).to_be_hidden()
    tab.shot("01-sign-in")

    email = tab.sign_up("studio")
    expect(p.get_by_text("No analyses yet")).to_be_visible()
    p.get_by_role("button", name="Log out").click()
    expect(p.get_by_role("button", name="Log in")).to_be_visible()
    _log_in(tab, email)

    polls: list[str] = []
    p.on("request", lambda r: polls.append(r.url) if "/api/tasks?" in r.url or "/api/status?" in r.url else None)
    # The worker takes "first" and waits on its download; "second" waits in the queue behind it.
    first_gate, second_gate = studio.media.hold("first.mp4"), studio.media.hold("second.mp4")
    first = _analyze_link(tab, f"{studio.media.url}/first.mp4")
    expect(first.locator(".badge")).to_have_text("running", timeout=WORKER_MS)
    expect(first).to_contain_text("downloading")
    second = _analyze_link(tab, f"{studio.media.url}/second.mp4")
    expect(second.locator(".badge")).to_have_text("queued")
    expect(second).to_contain_text("Position in queue: 1")
    expect(second).to_contain_text(re.compile(r"waiting \d"))
    expect(second.get_by_role("button", name="Cancel")).to_be_visible()
    second.evaluate(WATCH_CARD)
    tab.shot("02-running-and-queued")

    # Live updates: one request per cycle for every active task, none per card.
    ids = sorted([first.get_attribute("data-task-id"), second.get_attribute("data-task-id")], reverse=True)
    p.wait_for_timeout(1500)
    assert f"ids={'%2C'.join(ids)}" in " ".join(polls), polls
    assert not [u for u in polls if "/api/status?" in u], polls
    first_gate.set()
    expect(second.locator(".badge")).to_have_text("running", timeout=WORKER_MS)
    expect(second.locator("progress")).to_be_visible()
    expect(second).to_contain_text(re.compile(r"running \d"))
    second_gate.set()
    expect(second.locator(".badge")).to_have_text("done", timeout=WORKER_MS)
    expect(first.locator(".badge")).to_have_text("done")

    seen = second.evaluate("card => card.seenStates")
    statuses = [s.split(":")[0] for s in seen]
    assert statuses[0] == "queued" and "running" in statuses and statuses[-1] == "done", seen
    progress = [int(s.split(":")[1]) for s in seen if s.startswith(("running:", "done:"))]
    assert progress == sorted(progress) and progress[-1] == 100 and progress[0] < 100, seen

    # The result opens by itself for a task started here: thumbnails in order, clicking seeks.
    expect(second.get_by_role("button", name="Hide result")).to_be_visible()
    scenes = second.get_by_role("list", name="Scene timeline").get_by_role("button")
    expect(scenes).to_have_count(4)
    thumbs = second.locator(".timeline img")
    p.wait_for_function("el => [...el.querySelectorAll('.timeline img')].every(i => i.complete && i.naturalWidth)",
                        arg=second.element_handle())
    assert _images_loaded(thumbs)
    video = second.locator("video")
    expect(video).to_have_attribute("src", f"{studio.media.url}/second.mp4")
    scenes.nth(2).click()
    p.wait_for_function("([v, t]) => Math.abs(v.currentTime - t) < 0.05 && v.readyState >= 1",
                        arg=[video.element_handle(), studio.scene_starts[2]])
    expect(scenes.nth(2)).to_have_attribute("aria-current", "true")
    # Keyboard: focus a scene and press Enter.
    scenes.nth(1).focus()
    p.keyboard.press("Enter")
    p.wait_for_function("([v, t]) => Math.abs(v.currentTime - t) < 0.05",
                        arg=[video.element_handle(), studio.scene_starts[1]])

    meta = second.locator("table.meta-table")
    expect(meta).to_contain_text(RESOLUTION)
    expect(meta).to_contain_text("Frames100")
    expect(second.locator("svg.chart rect")).to_have_count(8)
    expect(second.get_by_role("list", name="Faces per scene").get_by_role("listitem")).to_have_count(4)
    expect(second.locator(".model")).to_contain_text("Licence")
    with p.expect_download() as download:
        second.get_by_role("button", name="Download JSON").click()
    exported = json.loads(Path(download.value.path()).read_text())
    assert [s["startFrame"] for s in exported["scenes"]] == [0, 20, 45, 75]
    assert exported["source"] == {"videoUrl": f"{studio.media.url}/second.mp4"} and "urls" not in exported
    tab.shot("03-done-with-result")

    # Both were started here, so both results opened; one folds away and opens again.
    first.get_by_role("button", name="Hide result").click()
    expect(first.locator(".timeline")).to_have_count(0)
    first.get_by_role("button", name="Show result").click()
    expect(first.locator(".timeline img")).to_have_count(4)
    assert tab.problems == []

    # The same account on a phone, in dark mode.
    phone = open_tab(studio.url, viewport={"width": 390, "height": 844}, color_scheme="dark", is_mobile=True,
                     has_touch=True)
    phone.page.goto("/")
    _log_in(phone, email)
    expect(phone.page.locator("article")).to_have_count(2)
    width = phone.page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, f"the page scrolls sideways on a phone ({width}px)"
    phone.page.locator("article").first.get_by_role("button", name="Show result").click()
    expect(phone.page.locator("article").first.locator(".timeline img")).to_have_count(4)
    phone.shot("04-phone-dark")
    assert phone.problems == []


def test_upload_a_file_and_get_it_analyzed(studio: Studio, open_tab: Callable[..., Tab], tmp_path: Path) -> None:
    tab = open_tab(studio.url)
    p = tab.page
    p.goto("/")
    tab.sign_up("studio")
    picker = p.get_by_label("Video file")
    message = p.locator("#task-message")

    picker.set_input_files(files=[{"name": "notes.txt", "mimeType": "text/plain", "buffer": b"not a video"}])
    expect(message).to_contain_text("“notes.txt” is not a video file")
    p.get_by_role("button", name="Analyze").click()
    expect(message).to_contain_text("is not a video file")

    huge = tmp_path / "huge.mp4"
    with huge.open("wb") as fh:  # sparse: 501 MiB on paper, nothing on disk
        fh.truncate(501 * 1024 * 1024)
    picker.set_input_files(str(huge))
    expect(message).to_contain_text("“huge.mp4” is 501 MB; videos can be at most 500 MB")
    expect(p.locator("article")).to_have_count(0)

    p.locator("#dropzone").evaluate("""zone => {
      const dt = new DataTransfer();
      dt.items.add(new File(["%PDF-1.4"], "scan.pdf", { type: "application/pdf" }));
      zone.dispatchEvent(new DragEvent("drop", { dataTransfer: dt, bubbles: true, cancelable: true }));
    }""")
    expect(message).to_contain_text("“scan.pdf” is not a video file")

    data = (studio.videos / "clip.mp4").read_bytes()
    picker.set_input_files(files=[{"name": "holiday clip.mp4", "mimeType": "video/mp4", "buffer": data}])
    expect(message).to_contain_text("Ready to upload “holiday clip.mp4”")
    with p.expect_request(lambda r: r.method == "PUT" and "/storage/v1/object/upload/sign/uploads/" in r.url) as put:
        card = _submit(tab)
    assert "multipart/form-data" in (put.value.headers.get("content-type") or "")
    expect(p.locator("#upload-progress")).to_have_attribute("value", "100")
    expect(p.locator("#upload")).to_contain_text("Uploaded “holiday clip.mp4”")
    expect(card.locator(".task-title")).to_have_text("holiday clip.mp4")
    expect(card).to_contain_text("Uploaded file")
    expect(card.locator(".badge")).to_have_text("done", timeout=WORKER_MS)

    # The status read signs the upload itself, so the player plays the user's own file.
    expect(card.get_by_role("button", name="Hide result")).to_be_visible()
    video = card.locator(".result-media video")
    expect(video).to_have_attribute("src", re.compile(r"/storage/v1/object/sign/uploads/"))
    expect(card.locator(".timeline img")).to_have_count(4)
    scene4 = card.get_by_role("button", name=re.compile(r"^Scene 4"))
    scene4.click()
    expect(scene4).to_have_attribute("aria-current", "true")
    p.wait_for_function("([v, t]) => Math.abs(v.currentTime - t) < 0.05 && v.readyState >= 1",
                        arg=[video.element_handle(), studio.scene_starts[3]])
    expect(card.locator("table.meta-table")).to_contain_text(RESOLUTION)
    tab.shot("05-uploaded")
    assert tab.problems == []


def test_cancel_retry_and_filter(studio: Studio, open_tab: Callable[..., Tab]) -> None:
    tab = open_tab(studio.url)
    p = tab.page
    p.goto("/")
    tab.sign_up("studio")

    gate = studio.media.hold("held.mp4")
    running = _analyze_link(tab, f"{studio.media.url}/held.mp4")
    expect(running.locator(".badge")).to_have_text("running", timeout=WORKER_MS)
    # A hidden tab stops polling (this is what the browser reports when the tab is in the background).
    polls: list[float] = []
    p.on("request", lambda r: polls.append(time.monotonic()) if "/api/tasks?ids=" in r.url else None)
    p.evaluate("""() => {
      Object.defineProperty(document, "hidden", { configurable: true, get: () => true });
      document.dispatchEvent(new Event("visibilitychange"));
    }""")
    hidden_at = time.monotonic()
    p.wait_for_timeout(2500)
    assert not [t for t in polls if t > hidden_at + 0.2], "polled while hidden"
    p.evaluate("""() => {
      delete document.hidden;
      document.dispatchEvent(new Event("visibilitychange"));
    }""")
    shown_at = time.monotonic()
    p.wait_for_timeout(800)
    assert [t for t in polls if t > shown_at], "did not poll again when shown"

    queued = _analyze_link(tab, f"{studio.media.url}/other.mp4")
    expect(queued.locator(".badge")).to_have_text("queued")

    queued.get_by_role("button", name="Cancel").click()
    expect(queued.locator(".badge")).to_have_text("canceled")
    expect(queued.get_by_role("button", name="Cancel")).to_be_hidden()
    expect(queued.get_by_role("button", name="Retry")).to_be_visible()

    running.get_by_role("button", name="Cancel").click()
    expect(running.get_by_role("button", name="Canceling…")).to_be_disabled()
    gate.set()
    expect(running.locator(".badge")).to_have_text("canceled", timeout=WORKER_MS)
    expect(running.get_by_role("button", name="Retry")).to_be_visible()

    # A link that 404s fails in words; once the file is there, Retry sends the same link again.
    late_url = f"{studio.media.url}/late.mp4"
    failed = _analyze_link(tab, late_url)
    expect(failed.locator(".badge")).to_have_text("failed", timeout=WORKER_MS)
    expect(failed.locator(".task-error")).to_contain_text("The video link leads nowhere")
    expect(failed.locator(".task-error")).to_contain_text("does not exist (HTTP 404)")
    expect(failed.locator(".task-error-code")).to_have_text("source_not_found")
    tab.shot("06-failed-and-canceled")
    shutil.copy(studio.videos / "clip.mp4", studio.videos / "late.mp4")
    failed.get_by_role("button", name="Retry").click()
    retried = p.locator("article", has=p.get_by_role("link", name=late_url))
    expect(retried).to_have_count(2)
    expect(retried.first.locator(".badge")).to_have_text("done", timeout=WORKER_MS)
    expect(failed.locator(".badge")).to_have_text("failed")

    queued.get_by_role("button", name="Retry").click()
    again = p.locator("article", has=p.get_by_role("link", name=f"{studio.media.url}/other.mp4"))
    expect(again).to_have_count(2)
    expect(again.first.locator(".badge")).to_have_text("done", timeout=WORKER_MS)

    filters = p.get_by_role("group", name="Filter by status")
    filters.get_by_role("button", name="Failed").click()
    expect(filters.get_by_role("button", name="Failed")).to_have_attribute("aria-pressed", "true")
    expect(p.locator("article")).to_have_count(1)
    expect(p.locator("article .badge")).to_have_text("failed")
    filters.get_by_role("button", name="Canceled").click()
    expect(p.locator("article")).to_have_count(2)
    filters.get_by_role("button", name="All").click()
    expect(p.locator("article")).to_have_count(5)
    assert tab.problems == []


def test_untrusted_text_and_a_second_user(studio: Studio, open_tab: Callable[..., Tab]) -> None:
    tab = open_tab(studio.url)
    p = tab.page
    p.goto("/")
    tab.sign_up("studio")

    tricky_url = f"{studio.media.url}/<img/src=x/onerror={XSS_MARK}>.mp4"
    link_card = _analyze_link(tab, tricky_url)
    tricky_name = f"clip <img src=x onerror={XSS_MARK}>.mp4"
    data = (studio.videos / "clip.mp4").read_bytes()
    p.get_by_label("Video file").set_input_files(files=[{"name": tricky_name, "mimeType": "video/mp4", "buffer": data}])
    expect(p.locator("#task-message")).to_contain_text(tricky_name)
    file_card = _submit(tab)
    expect(file_card.locator(".task-title")).to_have_text(tricky_name)
    expect(link_card.locator(".badge")).to_have_text("failed", timeout=WORKER_MS)
    expect(file_card.locator(".badge")).to_have_text("done", timeout=WORKER_MS)
    expect(p.locator("article")).to_have_count(2)
    expect(p.locator("article").nth(1).get_by_role("link")).to_have_text(tricky_url)
    expect(p.locator('img[src="x"]')).to_have_count(0)
    assert p.evaluate("window.__xss") is None

    p.reload()  # and again from the list: still text
    expect(p.locator("article")).to_have_count(2)
    expect(p.locator("article").first.locator(".task-title")).to_have_text(tricky_name)
    expect(p.locator('img[src="x"]')).to_have_count(0)
    assert p.evaluate("window.__xss") is None
    assert tab.problems == []

    p.get_by_role("button", name="Log out").click()
    expect(p.locator("article")).to_have_count(0)
    tab.sign_up("studio")
    expect(p.get_by_text("No analyses yet")).to_be_visible()
    expect(p.locator("article")).to_have_count(0)
    for status in ("Done", "Failed"):
        p.get_by_role("group", name="Filter by status").get_by_role("button", name=status).click()
        expect(p.get_by_text(f"No {status.lower()} tasks.")).to_be_visible()
    assert tab.problems == []


def test_session_survives_reload_refreshes_and_expires(studio: Studio, open_tab: Callable[..., Tab]) -> None:
    tab = open_tab(studio.url)
    p = tab.page
    p.clock.install()  # time still flows; fast_forward below is "closing the laptop lid"
    p.goto("/")
    email = tab.sign_up("studio")

    p.reload()
    expect(p.get_by_role("button", name="Log out")).to_be_visible()
    expect(p.locator("#user-email")).to_have_text(email)

    # About to expire: the page refreshes before it calls the API.
    stored = tab.stored_session()
    assert stored is not None
    stored["session"]["expiresAt"] = int(time.time()) + 20
    tab.set_stored_session(stored)
    with p.expect_request(lambda r: r.url.endswith("/api/auth/login") and "refreshToken" in (r.post_data or "")):
        p.reload()
    expect(p.get_by_text("No analyses yet")).to_be_visible()
    p.wait_for_function("([k, old]) => JSON.parse(localStorage.getItem(k)).session.refreshToken !== old",
                        arg=["sorastudio.session", stored["session"]["refreshToken"]])

    # Already expired, though the page can't tell: the API says 401, the page refreshes and retries.
    stored = tab.stored_session()
    assert stored is not None
    stored["session"]["accessToken"] = jwt.encode(
        {"sub": stored["user"]["id"], "aud": "authenticated", "role": "authenticated", "exp": int(time.time()) - 60},
        LOCAL_JWT_SECRET, algorithm="HS256")
    tab.set_stored_session(stored)
    tab.allow(r"status of 401 .*/api/tasks")
    p.reload()
    expect(p.get_by_text("No analyses yet")).to_be_visible()
    renewed = tab.stored_session()
    assert renewed is not None and renewed["session"]["accessToken"] != stored["session"]["accessToken"]

    # The session ends elsewhere (log out everywhere), then the laptop sleeps past the token's
    # expiry: back to log in, and what was typed is still there afterwards.
    typed = f"{studio.media.url}/typed-before-expiry.mp4"
    p.get_by_label("Video URL").fill(typed)
    r = httpx.post(f"{studio.cloud.env['SUPABASE_URL']}/auth/v1/logout?scope=global",
                   headers={"apikey": studio.cloud.env["SUPABASE_ANON_KEY"],
                            "Authorization": f"Bearer {renewed['session']['accessToken']}"})
    assert r.status_code == 204, r.text
    tab.allow(r"status of 401 .*/api/auth/login")
    p.clock.fast_forward("02:00:00")
    expect(p.get_by_role("button", name="Log in")).to_be_visible()
    expect(p.locator("#auth-message")).to_contain_text("Your session has expired")
    expect(p.get_by_label("Email")).to_have_value(email)
    expect(p.get_by_label("Password")).to_be_focused()
    assert tab.stored_session() is None
    p.get_by_label("Password").fill(PASSWORD)
    p.get_by_role("button", name="Log in").click()
    expect(p.get_by_role("button", name="Log out")).to_be_visible()
    expect(p.get_by_label("Video URL")).to_have_value(typed)
    assert tab.problems == []
