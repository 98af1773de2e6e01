/**
 * The task API calls the page makes (all through the session, so tokens are refreshed as needed).
 * @module tasks
 */

/**
 * @typedef {"queued"|"running"|"done"|"failed"|"canceled"} TaskStatus
 * @typedef {object} Task
 * @property {string} id ULID: sorts by creation time.
 * @property {string} type
 * @property {{videoUrl?: string, storagePath?: string}|GenerationPayload} payload
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

/**
 * A `text_to_video` payload as the API stores it (the API fills `seed` and `numFrames` when absent).
 * @typedef {object} GenerationPayload
 * @property {string} prompt 1-2000 characters.
 * @property {string} [negativePrompt]
 * @property {"tiny"|"240p"|"480p"|"720p"} [resolution]
 * @property {number} [numFrames] 4k+1, 5-121.
 * @property {number} [durationSeconds] instead of numFrames (the API turns it into frames).
 * @property {number} [fps]
 * @property {number} [steps]
 * @property {number} [guidanceScale]
 * @property {number} [seed] 0 to 2^32-1.
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
  return createTask(session, "video_analysis", payload, idempotencyKey);
}

/**
 * Create a `text_to_video` task (a clip from a prompt).
 * @param {import("./session.js").SessionManager} session
 * @param {GenerationPayload} payload
 * @param {string} [idempotencyKey] see {@link newIdempotencyKey}.
 * @returns {Promise<{taskId: string, task: Task, replayed: boolean}>}
 */
export function createGeneration(session, payload, idempotencyKey = newIdempotencyKey()) {
  return createTask(session, "text_to_video", payload, idempotencyKey);
}

/**
 * Create a task of any type.
 * @param {import("./session.js").SessionManager} session
 * @param {"video_analysis"|"text_to_video"} type
 * @param {object} payload
 * @param {string} [idempotencyKey]
 * @returns {Promise<{taskId: string, task: Task, replayed: boolean}>}
 */
export function createTask(session, type, payload, idempotencyKey = newIdempotencyKey()) {
  return session.request("/api/task", {
    method: "POST",
    body: { type, payload },
    headers: { "Idempotency-Key": idempotencyKey },
  });
}

/**
 * Submit the same work as `task` again, as a new task. A generation keeps every setting and its
 * seed (the stored payload has the seed the API chose), so it makes the same clip again.
 * @param {import("./session.js").SessionManager} session
 * @param {Task} task
 * @returns {Promise<{taskId: string, task: Task, replayed: boolean}>}
 */
export function retryTask(session, task) {
  const payload = task.payload || {};
  if (task.type === "text_to_video") return createGeneration(session, { ...payload });
  const { videoUrl, storagePath } = payload;
  return createAnalysis(session, typeof videoUrl === "string" ? { videoUrl } : { storagePath });
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
