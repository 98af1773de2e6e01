/**
 * Tasks: the API calls and the task cards (one `article` per task, each polling its own status).
 * @module tasks
 */

import { ApiError, describeError } from "./api.js";
import { el, show } from "./dom.js";

/** Statuses after which a task never changes again. */
const FINAL = new Set(["done", "failed", "canceled"]);
/** Poll delays (ms) by status; errors back off up to MAX_BACKOFF_MS. */
const POLL_MS = { queued: 2500, running: 1200 };
const MAX_BACKOFF_MS = 30_000;

const TYPE_LABELS = { video_analysis: "Video analysis" };

/**
 * @typedef {object} Task
 * @property {string} id
 * @property {string} type
 * @property {Record<string, any>} payload
 * @property {"queued"|"running"|"done"|"failed"|"canceled"} status
 * @property {number} progress
 * @property {string} stage
 * @property {Record<string, any>|null} result
 * @property {{code: string, message: string}|null} error
 * @property {boolean} cancelRequested
 * @property {string} createdAt
 * @property {number} [queuePosition]
 */

/**
 * A random Idempotency-Key, so a retried submit cannot create the task twice.
 * @returns {string}
 */
export function newIdempotencyKey() {
  if (crypto.randomUUID) return crypto.randomUUID();
  return Array.from(crypto.getRandomValues(new Uint8Array(16)), (b) => b.toString(16).padStart(2, "0")).join("");
}

/**
 * Create a `video_analysis` task.
 * @param {import("./session.js").SessionManager} session
 * @param {string} videoUrl http(s) URL of the video.
 * @param {string} idempotencyKey see {@link newIdempotencyKey}.
 * @returns {Promise<{taskId: string, task: Task, replayed: boolean}>}
 */
export function createVideoAnalysis(session, videoUrl, idempotencyKey) {
  return session.request("/api/task", {
    method: "POST",
    body: { type: "video_analysis", payload: { videoUrl } },
    headers: { "Idempotency-Key": idempotencyKey },
  });
}

/**
 * One page of the caller's tasks, newest first.
 * @param {import("./session.js").SessionManager} session
 * @param {{limit?: number, cursor?: string|null}} [options]
 * @returns {Promise<{tasks: Task[], nextCursor: string|null}>}
 */
export function listTasks(session, { limit = 20, cursor = null } = {}) {
  const query = new URLSearchParams({ limit: String(limit) });
  if (cursor) query.set("cursor", cursor);
  return session.request(`/api/tasks?${query}`);
}

/**
 * The current state of one task.
 * @param {import("./session.js").SessionManager} session
 * @param {string} taskId
 * @returns {Promise<{task: Task}>}
 */
export function getTask(session, taskId) {
  return session.request(`/api/status?${new URLSearchParams({ taskId })}`);
}

/**
 * Ask to cancel a task (queued ones stop at once; running ones at their next checkpoint).
 * @param {import("./session.js").SessionManager} session
 * @param {string} taskId
 * @returns {Promise<{task: Task}>}
 */
export function cancelTask(session, taskId) {
  return session.request(`/api/cancel?${new URLSearchParams({ taskId })}`, { method: "POST" });
}

/**
 * Format an ISO timestamp for people (falls back to the raw text).
 * @param {string} iso
 * @returns {string}
 */
function formatTime(iso) {
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? iso : date.toLocaleString();
}

/**
 * What a queued card says about its place: the position when known, else the stage (e.g.
 * "retrying in 8s" while a retry waits out its back-off), else a generic line.
 * @param {Task} task
 * @returns {string}
 */
function queueText(task) {
  if (Number.isInteger(task.queuePosition) && task.queuePosition >= 1) return `Position in queue: ${task.queuePosition}`;
  if (task.stage && task.stage !== "queued") return task.stage.charAt(0).toUpperCase() + task.stage.slice(1);
  return "Waiting in queue";
}

/** One task as an `article` card that keeps itself up to date until the task finishes. */
export class TaskCard {
  /**
   * @param {import("./session.js").SessionManager} session
   * @param {Task} task
   */
  constructor(session, task) {
    this.session = session;
    this.task = task;
    this.timer = 0;
    this.failures = 0;
    this.stopped = false;
    this.build();
    this.render();
  }

  /** Create the card's elements once; {@link TaskCard#render} only toggles and fills them. */
  build() {
    const titleId = `task-${this.task.id}-title`;
    this.badge = el("span", { className: "badge", attrs: { role: "status" } });
    this.title = el("h3", { className: "task-title", attrs: { id: titleId } });
    this.source = el("p", { className: "task-source" });
    this.meta = el("p", { className: "task-meta" });

    this.queue = el("p", { className: "task-queue" });
    this.progress = el("progress", { attrs: { max: "100", "aria-labelledby": titleId } });
    this.stage = el("span", { className: "task-stage" });
    this.percent = el("span", { className: "task-percent" });
    this.running = el("div", { className: "task-running" }, [
      this.progress, el("div", { className: "task-progress-text" }, [this.stage, this.percent]),
    ]);
    this.result = el("pre", { className: "task-result", attrs: { tabindex: "0", "aria-label": "Result" } });
    this.errorCode = el("code", { className: "task-error-code" });
    this.errorMessage = el("span", { className: "task-error-message" });
    this.errorLabel = el("span", { className: "task-error-label" });
    this.error = el("p", { className: "task-error", attrs: { role: "alert" } }, [
      this.errorLabel, this.errorCode, " ", this.errorMessage,
    ]);
    this.notice = el("p", { className: "task-notice" });
    this.cancelButton = el("button", { className: "button button--ghost", text: "Cancel", attrs: { type: "button" } });
    this.cancelButton.addEventListener("click", () => this.cancel());
    this.actions = el("div", { className: "task-actions" }, [this.cancelButton]);

    this.element = el("article", {
      className: "task-card", dataset: { taskId: this.task.id }, attrs: { "aria-labelledby": titleId },
    }, [
      el("header", { className: "task-head" }, [this.title, this.badge]),
      this.source, this.meta, this.queue, this.running, this.result, this.error, this.notice,
      this.actions,
    ]);
  }

  /** Show the task's current state. */
  render() {
    const t = this.task;
    this.element.dataset.status = t.status;
    this.badge.textContent = t.status;
    this.badge.className = `badge badge--${t.status}`;
    this.title.textContent = TYPE_LABELS[t.type] || t.type;

    const url = t.payload && typeof t.payload.videoUrl === "string" ? t.payload.videoUrl : "";
    this.source.replaceChildren();
    if (url) {
      const link = el("a", { text: url, attrs: { rel: "noopener noreferrer nofollow", target: "_blank" } });
      if (/^https?:\/\//i.test(url)) link.href = url;
      this.source.append(link);
    }
    this.meta.textContent = `Created ${formatTime(t.createdAt)} · ${t.id}`;

    const queued = t.status === "queued";
    show(this.queue, queued);
    this.queue.textContent = queueText(t);

    show(this.running, t.status === "running");
    const progress = Math.max(0, Math.min(100, Number(t.progress) || 0));
    this.progress.value = progress;
    this.stage.textContent = t.stage || "";
    this.percent.textContent = `${progress}%`;

    const done = t.status === "done";
    show(this.result, done);
    this.result.textContent = done ? JSON.stringify(t.result, null, 2) : "";

    // Failed: the error. Queued again after a failed attempt (a retry): that attempt's error.
    const failed = t.status === "failed";
    const showError = Boolean(t.error) && (failed || queued);
    show(this.error, showError);
    this.errorLabel.textContent = failed ? "" : "Last attempt failed: ";
    this.errorCode.textContent = showError ? t.error.code : "";
    this.errorMessage.textContent = showError ? t.error.message : "";

    const cancellable = queued || t.status === "running";
    show(this.actions, cancellable);
    this.cancelButton.disabled = Boolean(t.cancelRequested);
    this.cancelButton.textContent = t.cancelRequested ? "Canceling…" : "Cancel";
  }

  /**
   * Replace the task (from a poll, a list refresh or a cancel) and re-render.
   * @param {Task} task
   */
  update(task) {
    this.task = task;
    this.render();
    if (FINAL.has(task.status)) this.stop();
  }

  /**
   * Start polling the task's status until it is final. A queued task listed without its queue
   * position (GET /api/tasks leaves it out) is read soon, jittered so a full page doesn't burst.
   */
  start() {
    this.stopped = FINAL.has(this.task.status);
    if (this.stopped) return;
    const needsPosition = this.task.status === "queued" && !Number.isInteger(this.task.queuePosition);
    this.schedule(needsPosition ? Math.floor(Math.random() * 600) : POLL_MS[this.task.status] || POLL_MS.queued);
  }

  /** Stop polling (the card stays on the page). */
  stop() {
    this.stopped = true;
    window.clearTimeout(this.timer);
  }

  /** @param {number} delay ms until the next poll. */
  schedule(delay) {
    window.clearTimeout(this.timer);
    if (!this.stopped) this.timer = window.setTimeout(() => this.poll(), delay);
  }

  /** Read the status once; pauses while the page is hidden and backs off on errors. */
  async poll() {
    if (this.stopped) return;
    if (document.hidden) {
      document.addEventListener("visibilitychange", () => this.schedule(0), { once: true });
      return;
    }
    try {
      const { task } = await getTask(this.session, this.task.id);
      this.failures = 0;
      this.setNotice("");
      this.update(task);
    } catch (err) {
      if (err instanceof ApiError && err.status === 404) {
        this.setNotice("This task no longer exists.");
        this.stop();
        return;
      }
      if (err instanceof ApiError && err.status === 401) {
        this.stop();
        return;
      }
      this.failures += 1;
      this.setNotice(`Could not refresh the status: ${describeError(err)} Retrying…`);
    }
    const base = POLL_MS[this.task.status] || POLL_MS.queued;
    this.schedule(Math.min(base * 2 ** this.failures, MAX_BACKOFF_MS));
  }

  /** Ask the API to cancel the task and show the answer. */
  async cancel() {
    this.cancelButton.disabled = true;
    try {
      const { task } = await cancelTask(this.session, this.task.id);
      this.setNotice("");
      this.update(task);
    } catch (err) {
      if (err instanceof ApiError && err.code === "task_finished") {
        this.setNotice("The task had already finished.");
        this.schedule(0);
      } else {
        this.setNotice(describeError(err));
        this.cancelButton.disabled = false;
      }
    }
  }

  /** @param {string} message shown under the card (empty hides it). */
  setNotice(message) {
    this.notice.textContent = message;
    show(this.notice, Boolean(message));
  }
}

/** The list of task cards, newest first, with "Load more" paging. */
export class TaskList {
  /**
   * @param {import("./session.js").SessionManager} session
   * @param {{list: HTMLElement, empty: HTMLElement, more: HTMLButtonElement, message: HTMLElement}} nodes
   */
  constructor(session, nodes) {
    this.session = session;
    this.nodes = nodes;
    /** @type {Map<string, TaskCard>} */
    this.cards = new Map();
    this.cursor = null;
    this.generation = 0;
    nodes.more.addEventListener("click", () => this.loadMore());
  }

  /** Remove every card and stop their polling (e.g. on log out). */
  clear() {
    this.generation += 1;
    for (const card of this.cards.values()) card.stop();
    this.cards.clear();
    this.nodes.list.replaceChildren();
    this.cursor = null;
    show(this.nodes.more, false);
    show(this.nodes.empty, false);
  }

  /** Load the first page of tasks from scratch. */
  async reload() {
    this.clear();
    await this.fetchPage(null);
  }

  /** Load the next page (after "Load more"). */
  async loadMore() {
    if (this.cursor) await this.fetchPage(this.cursor);
  }

  /** @param {string|null} cursor */
  async fetchPage(cursor) {
    const generation = this.generation;
    this.nodes.more.disabled = true;
    this.nodes.list.setAttribute("aria-busy", "true");
    try {
      const page = await listTasks(this.session, { cursor });
      if (generation !== this.generation) return; // logged out or reloaded meanwhile
      for (const task of page.tasks) this.upsert(task, "end");
      this.cursor = page.nextCursor;
      this.nodes.message.hidden = true;
    } catch (err) {
      if (generation !== this.generation) return;
      this.nodes.message.textContent = `Could not load your tasks: ${describeError(err)}`;
      this.nodes.message.hidden = false;
    } finally {
      if (generation === this.generation) {
        this.nodes.list.removeAttribute("aria-busy");
        this.nodes.more.disabled = false;
        show(this.nodes.more, Boolean(this.cursor));
        show(this.nodes.empty, this.cards.size === 0);
      }
    }
  }

  /**
   * Add a card for `task`, or update the existing one.
   * @param {Task} task
   * @param {"start"|"end"} [where="start"] where a new card goes.
   * @returns {TaskCard}
   */
  upsert(task, where = "start") {
    let card = this.cards.get(task.id);
    if (card) {
      card.update(task);
      return card;
    }
    card = new TaskCard(this.session, task);
    this.cards.set(task.id, card);
    if (where === "start") this.nodes.list.prepend(card.element);
    else this.nodes.list.append(card.element);
    card.start();
    show(this.nodes.empty, false);
    return card;
  }
}
