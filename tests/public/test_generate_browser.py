"""The "Generate" view in real headless Chromium, against a stack whose worker runs text_to_video.

The worker runs a tiny random WanPipeline on the CPU (``.venv-t2v``; built offline by
``build_tiny_pipeline``), so the clip is noise, but every step is real: the API's checks, the GPU
queue, the denoising steps, the MP4 and poster in Storage, the signed URLs, the player.
Without ``.venv-t2v`` the ``generation`` fixture fails with the command that makes it.
"""

from __future__ import annotations

import json
import os
import re
import signal
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from jsonschema import Draft202012Validator

from tests.public.conftest import PASSWORD, ROOT, GenerationStack, Tab

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.xdist_group("browser")]

import playwright.sync_api as playwright_api  # noqa: E402 - a dev requirement: missing is a failure

expect = playwright_api.expect

SPEC = ROOT / "public" / "openapi.json"
WORKER_MS = 60_000  # torch + diffusers import and the first model load on two busy cores
PROMPT = 'A red <b>ball</b> bouncing on "wet" sand & <img src=x onerror="window.__xss=1">'




def _generate(tab: Tab) -> tuple[Any, dict[str, Any]]:
    """Press Generate; return the new card and the request's payload."""
    page = tab.page
    with page.expect_request(lambda r: r.method == "POST" and r.url.endswith("/api/task")) as sent:
        page.get_by_role("button", name="Generate", exact=True).click()
    expect(page.locator("#generate-message")).to_contain_text("Generation started")
    body = json.loads(sent.value.post_data or "{}")
    assert body["type"] == "text_to_video", body
    card = page.locator("article").first
    return card, body["payload"]


def _hold_mid_denoise(stack: GenerationStack, token: str, task_id: str, worker: Any, timeout: float = 60) -> str:
    """Freeze the worker (SIGSTOP) while its task reads "denoising i/n"; returns that stage.

    The tiny model denoises in a blink, faster than the page polls (1 s while running), so the test
    watches the task closely and, once it is denoising, stops the whole worker process, checks the
    task again (a heartbeat may have been on the wire) and keeps it frozen there.
    """
    deadline = time.monotonic() + timeout
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=stack.url, timeout=10) as http:
        while time.monotonic() < deadline:
            task = http.get(f"/api/status?taskId={task_id}", headers=headers).json()["task"]
            assert task["status"] in ("queued", "running"), f"never saw it denoising: {task['status']} {task['stage']}"
            if not task["stage"].startswith("denoising"):
                time.sleep(0.01)
                continue
            os.kill(worker.proc.pid, signal.SIGSTOP)
            time.sleep(0.1)
            task = http.get(f"/api/status?taskId={task_id}", headers=headers).json()["task"]
            if task["status"] == "running" and task["stage"].startswith("denoising"):
                return str(task["stage"])
            os.kill(worker.proc.pid, signal.SIGCONT)
    raise AssertionError("the task did not reach the denoising steps")


def test_generate_a_clip_plays_downloads_and_retries_with_the_same_seed(
        generation: GenerationStack, open_tab: Callable[..., Tab]) -> None:
    started = time.monotonic()
    tab = open_tab(generation.url)
    tab.allow(r"status of 400 .*/api/task")  # the bad setting below: the API's 400 is the point
    p = tab.page
    p.goto("/")
    email = tab.sign_up("gen")

    # The tabs: Analyze is shown first; Generate switches the panel (and arrow keys move between them).
    analyze_tab, generate_tab = p.get_by_role("tab", name="Analyze"), p.get_by_role("tab", name="Generate")
    expect(analyze_tab).to_have_attribute("aria-selected", "true")
    generate_tab.click()
    expect(generate_tab).to_have_attribute("aria-selected", "true")
    expect(p.get_by_role("tabpanel", name="Generate")).to_be_visible()
    expect(p.get_by_label("Video URL")).to_be_hidden()
    p.keyboard.press("ArrowLeft")
    expect(analyze_tab).to_be_focused()
    expect(p.get_by_label("Video URL")).to_be_visible()
    p.keyboard.press("ArrowRight")
    expect(p.get_by_label("Prompt", exact=True)).to_be_visible()

    # Presets fill the folded-away settings; Standard 480p is the default.
    advanced = p.locator("details#advanced")
    expect(advanced).not_to_have_attribute("open", "")
    expect(p.get_by_role("button", name="Standard 480p")).to_have_attribute("aria-pressed", "true")
    p.get_by_label("Prompt", exact=True).fill(PROMPT)
    p.get_by_role("button", name="Quick preview").click()
    expect(p.get_by_role("button", name="Quick preview")).to_have_attribute("aria-pressed", "true")
    expect(p.get_by_role("button", name="Standard 480p")).to_have_attribute("aria-pressed", "false")
    p.get_by_text("Advanced settings").click()
    expect(p.get_by_label("Resolution")).to_have_value("tiny")
    expect(p.get_by_label("Frames", exact=True)).to_have_value("9")
    expect(p.get_by_label("Steps")).to_have_value("4")

    # A bad value: the page hints, the API judges, and its field error shows next to the field.
    frames = p.get_by_label("Frames", exact=True)
    frames.fill("10")
    expect(p.locator("#num-frames-error")).to_contain_text("steps of 4")
    expect(p.get_by_role("button", name="Quick preview")).to_have_attribute("aria-pressed", "false")
    with p.expect_response(lambda r: r.url.endswith("/api/task") and r.status == 400):
        p.get_by_role("button", name="Generate", exact=True).click()
    expect(p.locator("#num-frames-error")).to_contain_text("Must be 4k+1")
    expect(frames).to_have_attribute("aria-invalid", "true")
    expect(frames).to_be_focused()
    expect(p.locator("#generate-message")).to_contain_text("see the marked fields")
    expect(p.locator("article")).to_have_count(0)
    tab.shot("07-generate-field-error")

    # Quick preview again; no GPU worker yet: the card says what it waits for.
    p.get_by_role("button", name="Quick preview").click()
    expect(frames).not_to_have_attribute("aria-invalid", "true")
    expect(p.locator("#num-frames-error")).to_be_hidden()
    card, payload = _generate(tab)
    assert payload == {"prompt": PROMPT, "resolution": "tiny", "numFrames": 9, "fps": 16, "steps": 4,
                       "guidanceScale": 5}, payload
    task_id = card.get_attribute("data-task-id")
    expect(card.locator(".task-title")).to_have_text(PROMPT)
    expect(card.locator(".badge")).to_have_text("queued")
    expect(card.locator(".task-queue")).to_contain_text("Waiting for a GPU worker")
    seed = int(re.search(r"seed (\d+)", card.locator(".task-source").inner_text()).group(1))  # type: ignore[union-attr]

    # A worker arrives; held mid-denoise, the card shows the step and its progress bar.
    worker = generation.start_worker()
    token = tab.stored_session()["session"]["accessToken"]  # type: ignore[index]
    stage = _hold_mid_denoise(generation, token, str(task_id), worker)
    try:
        expect(card.locator(".badge")).to_have_text("running")
        expect(card.locator(".task-stage")).to_have_text(stage)
        expect(card.get_by_role("progressbar", name="Generation progress")).to_be_visible()
        assert 5 <= int(card.locator("progress").evaluate("b => b.value")) <= 90
        tab.shot("08-generate-denoising")
    finally:
        os.kill(worker.proc.pid, signal.SIGCONT)

    # Done: the clip opens by itself, with its poster, and plays.
    expect(card.locator(".badge")).to_have_text("done", timeout=WORKER_MS)
    expect(card.locator(".task-summary")).to_contain_text("64 × 64 · 9 frames at 16 fps")
    video = card.locator("video")
    expect(video).to_have_count(1)
    src, poster = video.get_attribute("src"), video.get_attribute("poster")
    assert src and "/storage/v1/object/sign/results/" in src and "video.mp4" in src, src
    assert poster and "poster.webp" in poster, poster
    assert httpx.get(poster).content[8:12] == b"WEBP"
    video.evaluate("v => { v.muted = true; return v.play().catch(() => null); }")
    p.wait_for_function("v => v.readyState >= 2 && v.duration > 0 && v.videoWidth === 64", arg=video.element_handle())
    expect(card.locator("table.meta-table")).to_contain_text(f"Seed{seed}")
    status = httpx.get(f"{generation.url}/api/status?taskId={task_id}",
                       headers={"Authorization": f"Bearer {token}"}).json()["task"]
    schema = json.loads(SPEC.read_text())["components"]["schemas"]["TextToVideoResult"]
    assert [e.message for e in Draft202012Validator(schema).iter_errors(status["result"])] == []
    assert status["result"]["seed"] == seed and status["result"]["video"] in status["result"]["urls"]

    download = card.get_by_role("link", name="Download MP4")
    href = download.get_attribute("href")
    assert href and "download=" in href, href
    r = httpx.get(href)
    assert r.status_code == 200 and r.content[4:8] == b"ftyp", (r.status_code, r.content[:16])
    assert "attachment" in r.headers.get("content-disposition", ""), r.headers
    tab.shot("09-generate-done")
    p.get_by_text("Advanced settings").click()  # folded away again, for the picture
    expect(advanced).not_to_have_attribute("open", "")
    tab.shot("generate")

    # Retry: a new task with the same settings and the same seed.
    with p.expect_request(lambda r: r.method == "POST" and r.url.endswith("/api/task")) as sent:
        card.get_by_role("button", name="Retry").click()
    again = json.loads(sent.value.post_data or "{}")
    assert again["type"] == "text_to_video" and again["payload"]["seed"] == seed, again
    assert {k: v for k, v in again["payload"].items() if k != "seed"} == payload, again
    expect(p.locator("article")).to_have_count(2)
    retried = p.locator("article").first
    assert retried.get_attribute("data-task-id") != task_id
    expect(retried.locator(".task-source")).to_contain_text(f"seed {seed}")
    expect(retried.locator(".badge")).to_have_text("done", timeout=WORKER_MS)
    expect(retried.locator("table.meta-table")).to_contain_text(f"Seed{seed}")

    expect(p.locator('img[src="x"]')).to_have_count(0)
    assert p.evaluate("window.__xss") is None
    assert tab.problems == []

    # On a phone, in dark mode: the Generate view and the clip fit the width.
    phone = open_tab(generation.url, viewport={"width": 390, "height": 844}, color_scheme="dark", is_mobile=True,
                     has_touch=True)
    phone.page.goto("/")
    phone.page.get_by_label("Email").fill(email)
    phone.page.get_by_label("Password").fill(PASSWORD)
    phone.page.get_by_role("button", name="Log in").click()
    phone.page.get_by_role("tab", name="Generate").click()
    phone.page.locator("article").nth(1).get_by_role("button", name="Show result").click()
    expect(phone.page.locator("article").nth(1).locator("video")).to_have_count(1)
    width = phone.page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, f"the page scrolls sideways on a phone ({width}px)"
    phone.shot("10-generate-phone-dark")
    assert phone.problems == []
    print(f"generate page test: {time.monotonic() - started:.1f} s")
