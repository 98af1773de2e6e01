/**
 * The task API calls the page makes (all through the session, so tokens are refreshed as needed).
 * @module tasks
 */

/**
 * @typedef {"queued"|"running"|"done"|"failed"|"canceled"} TaskStatus
 * @typedef {object} Task
 * @property {string} id ULID: sorts by creation time.
 * @property {string} type
 * @property {{videoUrl?: string, storagePath?: string}} payload
 * @property {TaskStatus} status
 * @property {number} progress 0-100
 * @property {string} stage
 * @property {Record<string, any>|null} result
 * @property {{code: string, message: string}|null} error
 * @property {boolean} cancelRequested
 * @property {number} attempts
 * @property {string} createdAt
 * @property {string|null} startedAt
 * @property {string|null} finishedAt
 * @property {number} [queuePosition]
 */

/** Statuses after which a task never changes again. */
export const FINAL_STATUSES = new Set(["done", "failed", "canceled"]);
/** The most ids one `GET /api/tasks?ids=` accepts. */
export const MAX_BATCH_IDS = 50;

/**
 * A random Idempotency-Key, so a repeated submit cannot create the task twice.
 * @returns {string}
 */
export function newIdempotencyKey() {
  if (crypto.randomUUID) return crypto.randomUUID();
  return Array.from(crypto.getRandomValues(new Uint8Array(16)), (b) => b.toString(16).padStart(2, "0")).join("");
}

/**
 * Create a `video_analysis` task for a link or an uploaded file.
 * @param {import("./session.js").SessionManager} session
 * @param {{videoUrl: string}|{storagePath: string}} payload
 * @param {string} [idempotencyKey] see {@link newIdempotencyKey}.
 * @returns {Promise<{taskId: string, task: Task, replayed: boolean}>}
 */
export function createAnalysis(session, payload, idempotencyKey = newIdempotencyKey()) {
  return session.request("/api/task", {
    method: "POST",
    body: { type: "video_analysis", payload },
    headers: { "Idempotency-Key": idempotencyKey },
  });
}

/**
 * One page of the caller's tasks, newest first.
 * @param {import("./session.js").SessionManager} session
 * @param {{limit?: number, cursor?: string|null, status?: string|null}} [options]
 * @returns {Promise<{tasks: Task[], nextCursor: string|null}>}
 */
export function listTasks(session, { limit = 20, cursor = null, status = null } = {}) {
  const query = new URLSearchParams({ limit: String(limit) });
  if (cursor) query.set("cursor", cursor);
  if (status) query.set("status", status);
  return session.request(`/api/tasks?${query}`);
}

/**
 * The current state of several tasks in one request (unknown ids are simply absent).
 * @param {import("./session.js").SessionManager} session
 * @param {string[]} ids at most {@link MAX_BATCH_IDS}.
 * @returns {Promise<Task[]>}
 */
export async function getTasks(session, ids) {
  const query = new URLSearchParams({ ids: ids.slice(0, MAX_BATCH_IDS).join(",") });
  const data = await session.request(`/api/tasks?${query}`);
  return data.tasks;
}

/**
 * One task; a done task comes with signed URLs for its images (`result.urls`, `result.urlsExpireAt`).
 * @param {import("./session.js").SessionManager} session
 * @param {string} taskId
 * @returns {Promise<Task>}
 */
export async function getTask(session, taskId) {
  const data = await session.request(`/api/status?${new URLSearchParams({ taskId })}`);
  return data.task;
}

/**
 * Ask to cancel a task (a queued one stops at once; a running one at its next checkpoint).
 * @param {import("./session.js").SessionManager} session
 * @param {string} taskId
 * @returns {Promise<Task>}
 */
export async function cancelTask(session, taskId) {
  const data = await session.request(`/api/cancel?${new URLSearchParams({ taskId })}`, { method: "POST" });
  return data.task;
}
