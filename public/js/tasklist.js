/**
 * The task history: cards newest first, "Load more" paging, a status filter, and live updates —
 * one `GET /api/tasks?ids=…` per poll cycle for every active card, faster while something runs,
 * slower when idle, paused while the tab is hidden.
 * @module tasklist
 */

import { ApiError, describeError } from "./api.js";
import { TaskCard, describeInput } from "./card.js";
import { announce, show } from "./dom.js";
import { FINAL_STATUSES, MAX_BATCH_IDS, cancelTask, getTask, getTasks, listTasks, retryTask } from "./tasks.js";

/** Poll delays (ms). */
export const POLL_MS = { running: 1000, queued: 2000, idle: 30_000 };
const MAX_BACKOFF_MS = 30_000;
const PAGE_SIZE = 20;

/**
 * @typedef {object} ListNodes
 * @property {HTMLElement} list
 * @property {HTMLElement} empty
 * @property {HTMLButtonElement} more
 * @property {HTMLElement} message
 * @property {HTMLElement} live  a polite live region for "analysis finished" news.
 */

/** The list of cards and the poll loop that keeps them current. */
export class TaskList {
  /**
   * @param {import("./session.js").SessionManager} session
   * @param {ListNodes} nodes
   */
  constructor(session, nodes) {
    this.session = session;
    this.nodes = nodes;
    /** @type {Map<string, TaskCard>} */
    this.cards = new Map();
    this.cursor = null;
    /** @type {string|null} */
    this.filter = null;
    this.generation = 0;
    this.failures = 0;
    this.timer = 0;
    this.ticker = 0;
    this.active = false;
    /** Tasks submitted from this tab: their result opens by itself when they finish. */
    this.watched = new Set();
    nodes.more.addEventListener("click", () => this.loadMore());
    document.addEventListener("visibilitychange", () => {
      if (!this.active) return;
      if (document.hidden) this.pause();
      else this.schedule(0);
    });
  }

  /** Start showing the signed-in user's tasks (first page) and polling. */
  async start() {
    this.active = true;
    await this.reload();
  }

  /** Stop polling and remove every card (e.g. on log out). */
  stop() {
    this.active = false;
    this.clear();
  }

  /**
   * Show only tasks with `status` (null: all), from the first page.
   * @param {string|null} status
   */
  async setFilter(status) {
    this.filter = status || null;
    await this.reload();
  }

  /** Remove every card and forget paging. */
  clear() {
    this.generation += 1;
    this.pause();
    for (const card of this.cards.values()) card.destroy();
    this.cards.clear();
    this.nodes.list.replaceChildren();
    this.cursor = null;
    show(this.nodes.more, false);
    show(this.nodes.empty, false);
    show(this.nodes.message, false);
  }

  /** Load the first page from scratch. */
  async reload() {
    this.clear();
    await this.fetchPage(null);
    this.schedule(this.nextDelay());
  }

  /** Load the next page ("Load more"). */
  async loadMore() {
    if (this.cursor) await this.fetchPage(this.cursor);
  }

  /** @param {string|null} cursor */
  async fetchPage(cursor) {
    const generation = this.generation;
    this.nodes.more.disabled = true;
    this.nodes.list.setAttribute("aria-busy", "true");
    try {
      const page = await listTasks(this.session, { cursor, status: this.filter, limit: PAGE_SIZE });
      if (generation !== this.generation) return;
      for (const task of page.tasks) this.upsert(task);
      this.cursor = page.nextCursor;
      show(this.nodes.message, false);
    } catch (err) {
      if (generation !== this.generation) return;
      if (!this.session.user) return; // the session ended: the app shows the log-in form
      announce(this.nodes.message, `Could not load your tasks: ${describeError(err)}`, "error");
    } finally {
      if (generation === this.generation) {
        this.nodes.list.removeAttribute("aria-busy");
        this.nodes.more.disabled = false;
        show(this.nodes.more, Boolean(this.cursor));
        this.updateEmpty();
      }
    }
  }

  /** Show the "no tasks" line when the list is empty. */
  updateEmpty() {
    const empty = this.cards.size === 0;
    show(this.nodes.empty, empty && !this.cursor);
    this.nodes.empty.textContent = this.filter
      ? `No ${this.filter} tasks.`
      : "No analyses yet. Paste a video link or choose a file above to start one, or generate a clip from a prompt.";
  }

  /**
   * Add a card for `task` in id order (ids sort by creation time), or update its card.
   * @param {import("./tasks.js").Task} task
   * @returns {TaskCard}
   */
  upsert(task) {
    let card = this.cards.get(task.id);
    if (card) {
      this.updateCard(card, task);
      return card;
    }
    card = new TaskCard(task, {
      cancel: (c) => this.cancel(c),
      retry: (c) => this.retry(c),
      open: (c) => this.open(c),
    });
    this.cards.set(task.id, card);
    const next = [...this.nodes.list.children].find((node) => node.dataset.taskId < task.id);
    this.nodes.list.insertBefore(card.element, next || null);
    this.updateEmpty();
    return card;
  }

  /**
   * A task the page just created: show it first, watch it, and poll soon.
   * @param {import("./tasks.js").Task} task
   * @returns {TaskCard}
   */
  added(task) {
    this.watched.add(task.id);
    const card = this.upsert(task);
    this.schedule(this.nextDelay());
    return card;
  }

  /**
   * @param {TaskCard} card
   * @param {import("./tasks.js").Task} task
   */
  updateCard(card, task) {
    const before = card.task.status;
    card.update(task);
    if (before !== task.status && FINAL_STATUSES.has(task.status)) {
      const name = describeInput(task).text;
      announce(this.nodes.live, task.type === "text_to_video"
        ? `Generation “${name}”: ${task.status}.` : `Analysis of ${name}: ${task.status}.`);
      if (task.status === "done" && this.watched.has(task.id)) {
        this.watched.delete(task.id);
        this.open(card);
      }
    }
  }

  /** @returns {TaskCard[]} cards whose task can still change. */
  activeCards() {
    return [...this.cards.values()].filter((card) => !card.stale && !FINAL_STATUSES.has(card.task.status));
  }

  /** @returns {number} ms to the next poll: fast while something runs, slow when idle. */
  nextDelay() {
    const statuses = this.activeCards().map((card) => card.task.status);
    const base = statuses.includes("running") ? POLL_MS.running : statuses.length ? POLL_MS.queued : POLL_MS.idle;
    return this.failures ? Math.min(base * 2 ** this.failures, MAX_BACKOFF_MS) : base;
  }

  /** @param {number} delay ms until the next poll cycle (replaces any pending one). */
  schedule(delay) {
    window.clearTimeout(this.timer);
    if (!this.active || document.hidden) return;
    this.timer = window.setTimeout(() => this.poll(), delay);
    if (!this.ticker) this.ticker = window.setInterval(() => this.tick(), 1000);
  }

  /** Stop the poll loop and the elapsed-time ticker until {@link TaskList#schedule}. */
  pause() {
    window.clearTimeout(this.timer);
    window.clearInterval(this.ticker);
    this.timer = 0;
    this.ticker = 0;
  }

  /** Refresh the elapsed times of active cards. */
  tick() {
    for (const card of this.activeCards()) card.renderElapsed();
  }

  /** One poll cycle: one request for every active card, or a quiet refresh of the first page. */
  async poll() {
    const generation = this.generation;
    const active = this.activeCards().map((card) => card.task.id).sort().reverse().slice(0, MAX_BATCH_IDS);
    try {
      if (active.length) {
        const tasks = await getTasks(this.session, active);
        if (generation !== this.generation) return;
        const seen = new Set(tasks.map((t) => t.id));
        for (const task of tasks) this.upsert(task);
        for (const id of active) {
          if (!seen.has(id)) this.gone(id);
        }
      } else {
        // Idle: pick up tasks started elsewhere (another tab or device).
        const page = await listTasks(this.session, { status: this.filter, limit: PAGE_SIZE });
        if (generation !== this.generation) return;
        for (const task of page.tasks) this.upsert(task);
      }
      this.failures = 0;
      show(this.nodes.message, false);
    } catch (err) {
      if (generation !== this.generation) return;
      if (err instanceof ApiError && err.status === 401) return; // the session ended
      this.failures += 1;
      announce(this.nodes.message, `Live updates paused: ${describeError(err)} Retrying…`, "error");
    }
    if (generation === this.generation) this.schedule(this.nextDelay());
  }

  /**
   * A polled task is no longer there (expired or deleted): stop following it.
   * @param {string} id
   */
  gone(id) {
    const card = this.cards.get(id);
    if (!card) return;
    card.stale = true;
    card.setNotice("This task no longer exists.");
  }

  /** @param {TaskCard} card */
  async cancel(card) {
    card.cancelButton.disabled = true;
    try {
      this.updateCard(card, await cancelTask(this.session, card.task.id));
      card.setNotice("");
    } catch (err) {
      if (err instanceof ApiError && err.code === "task_finished") {
        card.setNotice("The task had already finished.");
      } else {
        card.setNotice(describeError(err));
        card.cancelButton.disabled = false;
      }
    }
    this.schedule(0);
  }

  /**
   * Submit the same input (for a generation: the same settings and seed) again as a new task.
   * @param {TaskCard} card
   */
  async retry(card) {
    card.retryButton.disabled = true;
    card.setNotice("");
    try {
      const created = await retryTask(this.session, card.task);
      this.added(created.task);
      const fresh = this.cards.get(created.task.id);
      if (fresh) fresh.element.focus();
    } catch (err) {
      card.setNotice(`Could not retry: ${describeError(err)}`);
    } finally {
      card.retryButton.disabled = false;
    }
  }

  /**
   * Open a done card's result, reading the task with fresh signed URLs first when needed.
   * @param {TaskCard} card
   */
  async open(card) {
    if (card.hasFreshUrls()) {
      card.showResult(card.task);
      return;
    }
    card.resultButton.disabled = true;
    card.setNotice("Loading the result…");
    try {
      const task = await getTask(this.session, card.task.id);
      card.setNotice("");
      card.showResult(task);
    } catch (err) {
      card.setNotice(`Could not load the result: ${describeError(err)}`);
    } finally {
      card.resultButton.disabled = false;
    }
  }
}
