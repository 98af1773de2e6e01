/**
 * Formatting for people: sizes, durations, clock times and task errors in plain words.
 * Every function returns plain text; callers put it in the page with textContent.
 * @module format
 */

/**
 * A byte count as "4.6 MB" (1 MB = 1024 KB, the units Storage limits are set in).
 * @param {number} bytes
 * @returns {string}
 */
export function formatBytes(bytes) {
  if (!Number.isFinite(bytes) || bytes < 0) return "";
  if (bytes < 1024) return `${bytes} B`;
  const units = ["KB", "MB", "GB", "TB"];
  let value = bytes / 1024;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return `${value < 10 ? value.toFixed(1) : Math.round(value)} ${units[unit]}`;
}

/**
 * Seconds as a media time: "0:04.2" under a minute (tenths matter for short clips), "1:05", "1:02:03".
 * @param {number} seconds
 * @param {{tenths?: boolean}} [options]
 * @returns {string}
 */
export function formatMediaTime(seconds, { tenths = true } = {}) {
  if (!Number.isFinite(seconds) || seconds < 0) return "–";
  const h = Math.floor(seconds / 3600);
  const m = Math.floor((seconds % 3600) / 60);
  const s = seconds % 60;
  const sec = tenths && seconds < 60 ? s.toFixed(1).padStart(4, "0") : String(Math.floor(s)).padStart(2, "0");
  return h ? `${h}:${String(m).padStart(2, "0")}:${sec}` : `${m}:${sec}`;
}

/**
 * A span of milliseconds as "42 s", "3 min 05 s", "2 h 04 min".
 * @param {number} ms
 * @returns {string}
 */
export function formatElapsed(ms) {
  if (!Number.isFinite(ms) || ms < 0) ms = 0;
  const total = Math.floor(ms / 1000);
  if (total < 60) return ms < 10_000 ? `${(ms / 1000).toFixed(1)} s` : `${total} s`;
  const m = Math.floor(total / 60);
  if (m < 60) return `${m} min ${String(total % 60).padStart(2, "0")} s`;
  return `${Math.floor(m / 60)} h ${String(m % 60).padStart(2, "0")} min`;
}

/**
 * An ISO timestamp as local date and time (the raw text when it can't be parsed).
 * @param {string} iso
 * @returns {string}
 */
export function formatDateTime(iso) {
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return String(iso || "");
  const today = new Date();
  const sameDay = date.toDateString() === today.toDateString();
  const time = date.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  return sameDay ? `today ${time}` : `${date.toLocaleDateString()} ${time}`;
}

/**
 * Parse an ISO timestamp to epoch ms (NaN when missing).
 * @param {string|null|undefined} iso
 * @returns {number}
 */
export function parseTime(iso) {
  return iso ? new Date(iso).getTime() : Number.NaN;
}

/** Headlines for the error codes workers and the API use; the message adds the specifics. */
const ERROR_HEADLINES = {
  source_not_found: "The video link leads nowhere",
  source_forbidden: "The video host refused access",
  source_http_error: "The video host answered with an error",
  source_unavailable: "The video host is unavailable",
  source_tls_error: "The video host's HTTPS certificate is not valid",
  host_not_found: "That web address does not exist",
  download_timeout: "The download took too long",
  too_many_redirects: "The link redirects too many times",
  invalid_url: "That is not a valid link",
  url_not_allowed: "That link can't be downloaded",
  not_a_video: "That file is not a video",
  empty_file: "The file is empty",
  corrupt_video: "The video file is damaged",
  no_video_stream: "The file has no video in it",
  video_too_long: "The video is too long or too large",
  file_not_found: "The file could not be found",
  upload_not_found: "The uploaded file could not be found",
  storage_rejected: "Storage refused the file",
  storage_unavailable: "Storage is unavailable right now",
  storage_not_configured: "The studio's storage is not set up",
  time_limit_exceeded: "The analysis took too long",
  worker_lost: "The worker running this task stopped responding",
  internal_error: "The analysis failed unexpectedly",
  model_unavailable: "The video model could not be loaded on the worker",
  out_of_memory: "The GPU ran out of memory for this clip",
  unsupported_settings: "The model can't make a clip with these settings",
};

/** Where a generation needs other words than an analysis. */
const GENERATION_HEADLINES = {
  time_limit_exceeded: "The generation took too long",
  internal_error: "The generation failed unexpectedly",
};

/**
 * A short, plain-language headline for an error code ("Something went wrong" for unknown codes).
 * @param {string} code
 * @param {string} [taskType] the task's type, when the words depend on it.
 * @returns {string}
 */
export function errorHeadline(code, taskType = "video_analysis") {
  if (taskType === "text_to_video" && GENERATION_HEADLINES[code]) return GENERATION_HEADLINES[code];
  return ERROR_HEADLINES[code] || "Something went wrong";
}

/** Output sizes of the generation resolutions (sorastudio/models.py RESOLUTIONS). */
export const RESOLUTIONS = {
  tiny: [64, 64],
  "240p": [416, 240],
  "480p": [832, 480],
  "720p": [1280, 720],
};

/**
 * Seconds of video for a frame count: "2.1 s".
 * @param {number} frames
 * @param {number} fps
 * @returns {string}
 */
export function formatClipLength(frames, fps) {
  if (!Number.isFinite(frames) || !Number.isFinite(fps) || fps <= 0) return "";
  const seconds = frames / fps;
  return `${seconds < 10 ? seconds.toFixed(1) : Math.round(seconds)} s`;
}

/** File extensions the page accepts as video, with the content type to announce for each. */
export const VIDEO_EXTENSIONS = {
  mp4: "video/mp4", m4v: "video/mp4", mov: "video/quicktime", qt: "video/quicktime", webm: "video/webm",
  mkv: "video/x-matroska", avi: "video/x-msvideo", mpg: "video/mpeg", mpeg: "video/mpeg",
  ts: "video/mp2t", ogv: "video/ogg", "3gp": "video/3gpp", flv: "video/x-flv",
};
