/**
 * One task as an `article` card: input (a link, a file or a prompt), status badge, queue position or
 * progress, elapsed time, the error in plain words, and the actions (Cancel, Retry, Show result).
 * A done analysis opens a {@link ResultView}; a done generation a {@link ClipView} (player + download).
 * The card never fetches on its own; the task list feeds it and handles its actions.
 * @module card
 */

import { ClipView, describeSettings, summarizeClip } from "./clip.js";
import { el, show } from "./dom.js";
import { errorHeadline, formatDateTime, formatElapsed, formatMediaTime, parseTime } from "./format.js";
import { ResultView } from "./result.js";
import { uploadDisplayName } from "./upload.js";

/**
 * @typedef {object} CardActions
 * @property {(card: TaskCard) => void} cancel
 * @property {(card: TaskCard) => void} retry
 * @property {(card: TaskCard) => void} open  asks for the task with signed URLs, then calls showResult.
 */

/**
 * What the task works on, for people: the file name of an upload, the link, or the prompt.
 * @param {import("./tasks.js").Task} task
 * @returns {{kind: "link"|"file"|"prompt"|"other", text: string}}
 */
export function describeInput(task) {
  const payload = task.payload || {};
  if (task.type === "text_to_video") return { kind: "prompt", text: typeof payload.prompt === "string" ? payload.prompt : "" };
  if (typeof payload.videoUrl === "string") return { kind: "link", text: payload.videoUrl };
  if (typeof payload.storagePath === "string") return { kind: "file", text: uploadDisplayName(payload.storagePath) };
  return { kind: "other", text: task.type };
}

/**
 * What a queued card says: the position when known, else the stage (e.g. "retrying in 8s").
 * @param {import("./tasks.js").Task} task
 * @returns {string}
 */
function queueText(task) {
  const position = Number.isInteger(task.queuePosition) && task.queuePosition >= 1 ? task.queuePosition : 0;
  // The API says "waiting for a GPU worker" while no worker that runs this type has polled lately.
  if (task.stage === "waiting for a GPU worker") {
    return position ? `Waiting for a GPU worker · position in queue: ${position}` : "Waiting for a GPU worker";
  }
  if (position) return `Position in queue: ${position}`;
  if (task.stage && task.stage !== "queued") return task.stage.charAt(0).toUpperCase() + task.stage.slice(1);
  return "Waiting in queue";
}

/** A task card; {@link TaskCard#element} is the `article`. */
export class TaskCard {
  /**
   * @param {import("./tasks.js").Task} task
   * @param {CardActions} actions
   */
  constructor(task, actions) {
    this.task = task;
    this.actions = actions;
    /** @type {ResultView|null} */
    this.view = null;
    /** Set when the task vanished from the store: the card stays but is no longer polled. */
    this.stale = false;
    this.build();
    this.render();
  }

  /** Create the elements once; {@link TaskCard#render} only fills and toggles them. */
  build() {
    const id = this.task.id;
    const titleId = `task-${id}-title`;
    const input = describeInput(this.task);
    this.badge = el("span", { className: "badge" });
    this.icon = el("span", { className: `task-icon task-icon--${input.kind}`, attrs: { "aria-hidden": "true" } });
    this.title = el("h3", { className: "task-title", attrs: { id: titleId }, text: input.text });
    this.source = el("p", { className: "task-source" });
    if (input.kind === "link") {
      const link = el("a", { text: input.text, attrs: { rel: "noopener noreferrer nofollow", target: "_blank" } });
      if (/^https?:\/\//i.test(input.text)) link.href = input.text;
      this.source.append(link);
      this.title.textContent = linkTitle(input.text);
    } else if (input.kind === "prompt") {
      this.title.classList.add("task-title--prompt");
      this.source.textContent = `Text to video · ${describeSettings(this.task.payload || {})}`;
    } else {
      this.source.textContent = input.kind === "file" ? "Uploaded file" : "";
    }
    this.created = el("span", { className: "task-created" });
    this.elapsed = el("span", { className: "task-elapsed" });
    this.meta = el("p", { className: "task-meta" }, [this.created, this.elapsed]);

    this.queue = el("p", { className: "task-queue" });
    const generation = this.task.type === "text_to_video";
    this.progress = el("progress", { attrs: { max: "100", "aria-label": generation ? "Generation progress" : "Analysis progress" } });
    this.stage = el("span", { className: "task-stage" });
    this.percent = el("span", { className: "task-percent" });
    this.running = el("div", { className: "task-running" }, [
      this.progress, el("div", { className: "task-progress-text" }, [this.stage, this.percent]),
    ]);
    this.summary = el("p", { className: "task-summary" });

    this.errorTitle = el("strong", { className: "task-error-title" });
    this.errorMessage = el("span", { className: "task-error-message" });
    this.errorCode = el("code", { className: "task-error-code" });
    this.error = el("div", { className: "task-error" }, [
      this.errorTitle, this.errorMessage, el("span", { className: "task-error-meta" }, ["Error code: ", this.errorCode]),
    ]);
    this.notice = el("p", { className: "task-notice", attrs: { role: "status" } });

    this.cancelButton = this.button("Cancel", "button--ghost", () => this.actions.cancel(this));
    this.retryButton = this.button("Retry", "button--secondary", () => this.actions.retry(this));
    this.resultButton = this.button("Show result", "", () => this.toggleResult());
    this.resultRegion = el("div", { className: "task-result", attrs: { id: `task-${id}-result` } });
    this.resultButton.setAttribute("aria-controls", this.resultRegion.id);
    this.resultButton.setAttribute("aria-expanded", "false");
    show(this.resultRegion, false);

    this.element = el("article", {
      className: "task-card", dataset: { taskId: id }, attrs: { "aria-labelledby": titleId, tabindex: "-1" },
    }, [
      el("header", { className: "task-head" }, [
        this.icon, el("div", { className: "task-heading" }, [this.title, this.source]), this.badge,
      ]),
      this.meta, this.queue, this.running, this.summary, this.error,
      el("div", { className: "task-actions" }, [this.resultButton, this.retryButton, this.cancelButton]),
      this.notice, this.resultRegion,
    ]);
  }

  /**
   * @param {string} text
   * @param {string} variant
   * @param {() => void} onClick
   * @returns {HTMLButtonElement}
   */
  button(text, variant, onClick) {
    const button = el("button", { className: `button button--small ${variant}`.trim(), text, attrs: { type: "button" } });
    button.addEventListener("click", onClick);
    return button;
  }

  /** Show the task's current state. */
  render() {
    const t = this.task;
    const status = t.status;
    this.element.dataset.status = status;
    this.badge.textContent = status;
    this.badge.className = `badge badge--${status}`;
    this.created.textContent = `Created ${formatDateTime(t.createdAt)}`;
    this.renderElapsed();

    const queued = status === "queued";
    show(this.queue, queued);
    this.queue.textContent = queued ? queueText(t) : "";

    const running = status === "running";
    show(this.running, running);
    const progress = Math.max(0, Math.min(100, Number(t.progress) || 0));
    this.progress.value = progress;
    this.stage.textContent = t.cancelRequested ? "canceling…" : t.stage || "";
    this.percent.textContent = `${progress}%`;

    const done = status === "done";
    show(this.summary, done);
    this.summary.textContent = done ? (t.type === "text_to_video" ? summarizeClip(t.result) : summarize(t.result)) : "";

    // Failed: the error. Queued again after a failed attempt (an automatic retry): that attempt's.
    const showError = Boolean(t.error) && (status === "failed" || queued);
    show(this.error, showError);
    if (showError) {
      const headline = errorHeadline(t.error.code, t.type);
      this.errorTitle.textContent = queued ? `Last attempt failed: ${headline}` : headline;
      this.errorMessage.textContent = t.error.message;
      this.errorCode.textContent = t.error.code;
    }
    this.error.classList.toggle("task-error--soft", queued);

    show(this.cancelButton, queued || running);
    this.cancelButton.disabled = Boolean(t.cancelRequested);
    this.cancelButton.textContent = t.cancelRequested ? "Canceling…" : "Cancel";
    // A generation can also be made again when done: same settings, same seed.
    show(this.retryButton, status === "failed" || status === "canceled" || (done && t.type === "text_to_video"));
    show(this.resultButton, done);
    if (!done && this.view) this.closeResult();
  }

  /** Update the elapsed-time text (called every second while the task is active). */
  renderElapsed() {
    const t = this.task;
    const now = Date.now();
    const created = parseTime(t.createdAt);
    const started = parseTime(t.startedAt);
    const finished = parseTime(t.finishedAt);
    let text = "";
    if (t.status === "queued") text = `waiting ${formatElapsed(now - created)}`;
    else if (t.status === "running") text = `running ${formatElapsed(now - (Number.isNaN(started) ? created : started))}`;
    else if (!Number.isNaN(finished)) {
      const from = Number.isNaN(started) ? created : started;
      text = `${t.status === "done" ? "took" : "after"} ${formatElapsed(finished - from)}`;
    }
    this.elapsed.textContent = text ? ` · ${text}` : "";
  }

  /**
   * Replace the task and re-render.
   * @param {import("./tasks.js").Task} task
   */
  update(task) {
    const urls = this.task.result && this.task.result.urls;
    // Batch polls carry no signed URLs: keep the ones already fetched for the same result.
    if (urls && task.status === "done" && task.result && !task.result.urls) {
      task = { ...task, result: { ...task.result, urls, urlsExpireAt: this.task.result.urlsExpireAt } };
    }
    this.task = task;
    this.render();
  }

  /** @returns {boolean} does the result have signed URLs that are still good for a minute? */
  hasFreshUrls() {
    const r = this.task.result;
    return Boolean(r && r.urls && Number(r.urlsExpireAt) * 1000 > Date.now() + 60_000);
  }

  /** Open or close the result view. */
  toggleResult() {
    if (this.view) this.closeResult();
    else this.actions.open(this);
  }

  /**
   * Show the result view for `task` (read with signed URLs).
   * @param {import("./tasks.js").Task} task
   */
  showResult(task) {
    this.update(task);
    if (this.view) this.view.destroy();
    this.view = this.task.type === "text_to_video" ? new ClipView(this.task) : new ResultView(this.task);
    this.resultRegion.replaceChildren(this.view.element);
    show(this.resultRegion, true);
    this.resultButton.textContent = "Hide result";
    this.resultButton.setAttribute("aria-expanded", "true");
  }

  /** Collapse the result view. */
  closeResult() {
    if (this.view) this.view.destroy();
    this.view = null;
    this.resultRegion.replaceChildren();
    show(this.resultRegion, false);
    this.resultButton.textContent = "Show result";
    this.resultButton.setAttribute("aria-expanded", "false");
  }

  /** @param {string} message shown under the card (empty hides it). */
  setNotice(message) {
    this.notice.textContent = message;
    show(this.notice, Boolean(message));
  }

  /** Release what the card holds (it is leaving the page). */
  destroy() {
    if (this.view) this.view.destroy();
  }
}

/**
 * A short title for a link: its file name, else its host.
 * @param {string} url
 * @returns {string}
 */
function linkTitle(url) {
  try {
    const parsed = new URL(url);
    const name = decodeURIComponent(parsed.pathname.split("/").pop() || "");
    return name || parsed.hostname || url;
  } catch {
    return url;
  }
}

/**
 * One line about a result: "0:03.0 · 320 × 180 · 4 scenes".
 * @param {Record<string, any>|null} result
 * @returns {string}
 */
function summarize(result) {
  if (!result || typeof result !== "object") return "Finished.";
  const parts = [];
  const media = result.media && typeof result.media === "object" ? result.media : null;
  if (media && Number.isFinite(media.duration)) parts.push(formatMediaTime(media.duration));
  if (media && media.video && Number.isFinite(media.video.width)) parts.push(`${media.video.width} × ${media.video.height}`);
  if (Array.isArray(result.scenes)) parts.push(`${result.scenes.length} ${result.scenes.length === 1 ? "scene" : "scenes"}`);
  return parts.length ? parts.join(" · ") : "Finished.";
}
