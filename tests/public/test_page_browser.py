"""The page against the shared local cloud, which has NO worker: the test moves tasks on through
the queue protocol itself, to reach states a real worker rarely shows on cue (an automatic retry
waiting out its back-off, a stage mid-way) and a result of an unexpected shape.

The end-to-end flows with a real worker are in ``test_studio_browser.py``.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Callable

import pytest

from tests.conftest import Api
from tests.public.conftest import PASSWORD, Tab

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.xdist_group("browser")]

import playwright.sync_api as playwright_api  # noqa: E402 - a dev requirement: missing is a failure

expect = playwright_api.expect


def _analyze(tab: Tab, url: str) -> object:
    page = tab.page
    page.get_by_label("Video URL").fill(url)
    page.get_by_role("button", name="Analyze").click()
    card = page.locator("article", has=page.get_by_role("link", name=url, exact=True))
    expect(card).to_have_count(1)
    return card


def test_running_retrying_done_and_failed_cards(api: Api, open_tab: Callable[..., Tab]) -> None:
    from upstash_redis import Redis

    from sorastudio.models import TaskError, TaskStatus, now_iso
    from sorastudio.taskqueue import LeaseOp, Lifecycle, QueueOp, TaskQueue

    tab = open_tab(api.url)
    p = tab.page
    p.goto("/")
    p.get_by_label("Email").fill(f"page-{uuid.uuid4().hex[:10]}@example.com")
    p.get_by_label("Password").fill(PASSWORD)
    p.get_by_role("button", name="Sign up").click()
    expect(p.get_by_text("No analyses yet")).to_be_visible()
    cards = {
        name: _analyze(tab, f"https://videos.example.com/{name}.mp4")
        for name in ("running", "done", "failed", "retrying", "queued")
    }
    expect(cards["queued"]).to_contain_text(re.compile(r"Position in queue: \d+"))
    env = api.cloud.env
    queue = TaskQueue(
        Redis(url=env["UPSTASH_REDIS_REST_URL"], token=env["UPSTASH_REDIS_REST_TOKEN"], allow_telemetry=False),
        retention_seconds=3600,
    )
    odd = {"durationSeconds": 12.5, "scenes": [{"start": 0, "end": 4.2}], "note": "<b>not bold</b>"}
    changes = {
        "running": {"status": TaskStatus.RUNNING, "progress": 40, "stage": "scanning scenes 40%",
                    "started_at": now_iso()},
        "done": {"status": TaskStatus.DONE, "progress": 100, "stage": "done", "result": odd, "started_at": now_iso(),
                 "finished_at": now_iso()},
        "failed": {"status": TaskStatus.FAILED, "stage": "failed", "finished_at": now_iso(),
                   "error": TaskError(code="video_too_long", message="runs past the <b>14400 s</b> limit")},
    }
    for name, change in changes.items():
        snapshot = queue.read(cards[name].get_attribute("data-task-id"))
        applied, _ = queue.transition(snapshot, snapshot.task.model_copy(update=change))
        assert applied
    # An automatic retry, the way a worker makes one: claim (leased), then a retryable failure.
    snapshot = queue.read(cards["retrying"].get_attribute("data-task-id"))
    claimed = snapshot.task.model_copy(update={"status": TaskStatus.RUNNING, "attempts": 1, "worker_id": "page-test"})
    applied, snapshot = queue.transition(
        snapshot, claimed, queue=QueueOp.REMOVE, lease=LeaseOp.SET, lease_deadline_ms=int(time.time() * 1000) + 30_000
    )
    assert applied
    outcome, _ = Lifecycle(queue, "page-test").fail(snapshot, "source_unavailable", "The host did not answer.",
                                                    retryable=True)
    assert outcome == "retry"

    running = cards["running"]
    expect(running.locator(".badge")).to_have_text("running")
    expect(running.locator("progress")).to_have_attribute("value", "40")
    expect(running).to_contain_text("scanning scenes 40%")
    expect(running).to_contain_text(re.compile(r"running \d"))
    expect(running.get_by_role("button", name="Cancel")).to_be_visible()
    expect(running.get_by_role("button", name="Retry")).to_be_hidden()

    retrying = cards["retrying"]
    expect(retrying.locator(".badge")).to_have_text("queued")
    expect(retrying).to_contain_text(re.compile(r"Retrying in \d+s"))
    expect(retrying.locator(".task-error")).to_contain_text("Last attempt failed: The video host is unavailable")
    expect(retrying.locator(".task-error")).to_contain_text("The host did not answer.")
    expect(retrying).not_to_contain_text("Position in queue")

    failed = cards["failed"]
    expect(failed.locator(".badge")).to_have_text("failed")
    expect(failed.locator(".task-error")).to_contain_text("The video is too long or too large")
    expect(failed.locator(".task-error-message")).to_have_text("runs past the <b>14400 s</b> limit")
    expect(failed.get_by_role("button", name="Retry")).to_be_visible()

    # A result of a shape the view doesn't know still opens, as text, with nothing made up.
    done = cards["done"]
    expect(done.locator(".badge")).to_have_text("done")
    expect(done).to_contain_text("1 scene")
    expect(done.get_by_role("button", name="Hide result")).to_be_visible()  # started here: opens by itself
    expect(done.locator("pre.raw")).to_have_text(json.dumps({"taskId": done.get_attribute("data-task-id"), **odd},
                                                            indent=2))
    expect(done.locator("b")).to_have_count(0)
    expect(done.get_by_role("list", name="Scene timeline").get_by_role("button")).to_have_count(1)
    expect(done.get_by_role("button", name="Download JSON")).to_be_visible()
    # The link's host doesn't resolve here: the player gives way to the poster (none: a placeholder).
    tab.allow(r"ERR_NAME_NOT_RESOLVED @ https://videos\.example\.com/done\.mp4$")
    expect(done.locator(".result-caption")).to_have_text("The video can't be played here; showing the poster.")
    expect(done.locator(".poster--empty")).to_be_visible()
    expect(p.locator("b")).to_have_count(0)
    assert tab.problems == []
